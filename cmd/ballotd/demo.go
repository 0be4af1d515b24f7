package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/templates"
)

// The demo's Massachusetts: the seeds' example, with groups in the nine
// districts and one state-wide coalition.
const demoGroups = `name,state,district,leader_email,leader_name
Indivisible Northampton,MA,MA-02,leader@northampton.example,Robin Leader
Indivisible Mass Coalition,MA,,board@imc.example,Pat Board
Indivisible Somerville,MA,MA-07,chair@somerville.example,Sam Chair
Indivisible Jamaica Plain,MA,MA-07,hello@jp.example,Jo Plain
Indivisible Pittsfield,MA,MA-01,info@pittsfield.example,Lee Berk
Indivisible Lowell,MA,MA-03,team@lowell.example,Ana Mill
Indivisible Newton,MA,MA-04,hi@newton.example,Chris Garden
Indivisible Cambridge,MA,MA-05,we@cambridge.example,Dana River
Indivisible North Shore,MA,MA-06,ns@northshore.example,Kim Coast
Indivisible Quincy,MA,MA-08,q@quincy.example,Max Granite
Indivisible Cape Cod,MA,MA-09,cape@capecod.example,Ray Dune
`

// markeyReason is the seed's reason for endorsement (seed 000).
const markeyReason = `Sen. Markey is a leader of the climate movement and a progressive champion for a more just, sustainable, and livable future. He consistently demonstrates progressive leadership and vision by prioritizing working people and marginalized communities, and we're proud to endorse him for re-election.

Sen. Markey is a model progressive legislator: consistent, accountable, and ready to fight for a more equitable future. We are committed to fighting alongside him.`

var (
	demoFirst = []string{"Alice", "Bob", "Carmen", "Deshawn", "Elena", "Farid", "Grace", "Hiro", "Imani", "Jonah", "Keiko", "Luis", "Maya", "Nikhil", "Olga", "Priya", "Quinn", "Rosa", "Sean", "Tanya", "Uma", "Victor", "Wen", "Yusuf", "Zoe"}
	demoLast  = []string{"Alvarez", "Brooks", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Johnson", "Kowalski", "Lopez", "Murphy", "Nguyen", "O'Brien", "Patel", "Rossi", "Silva", "Thompson", "Walsh"}
	demoMail  = []string{"example.net", "example.com", "mail.example.org"}
)

type demoMember struct{ email, name, district string }

func demoMembers(n int, rng *rand.Rand) []demoMember {
	out := make([]demoMember, n)
	for i := range out {
		f, l := demoFirst[rng.IntN(len(demoFirst))], demoLast[rng.IntN(len(demoLast))]
		local := strings.ToLower(strings.NewReplacer("'", "").Replace(f + "." + l))
		out[i] = demoMember{
			email:    fmt.Sprintf("%s%d@%s", local, i+1, demoMail[i%len(demoMail)]),
			name:     f + " " + l,
			district: fmt.Sprintf("MA-%02d", 1+i%9),
		}
	}
	return out
}

// cmdDemo runs a whole wave on the embedded hub, by itself, and prints
// what happens: the seeds' Massachusetts example, ballots out, members
// replying from assorted mail clients, the close, the tally and the
// announcements.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := flags("demo")
	n := fs.Int("members", 300, "members to generate")
	keep := fs.Bool("keep", false, "leave the mail hub and daemon running to browse with a mail client")
	outDir := fs.String("out", "ballotd-demo", "directory for the sample messages and results")
	seed := fs.Uint64("seed", 2026, "random seed for members and their replies")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *n < 10 {
		return usageError{"demo: --members must be at least 10"}
	}
	start := time.Now()
	w := e.stdout
	step := 0
	phase := func(name, format string, a ...any) {
		step++
		fmt.Fprintf(w, "[%d/9] %-15s %s\n", step, name, fmt.Sprintf(format, a...))
	}
	fmt.Fprintln(w, "ballotd demo: a whole endorsement wave on an embedded mail hub")

	dbURL, dbFate, cleanup, err := localDatabase(ctx, e, "ballotd_demo", true)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := guardDevSecret(ctx, e.getenv, dbURL); err != nil {
		return err
	}
	phase("database", "%s", dbFate)

	hub, err := mailhub.Start(mailhub.Options{Password: "demo"})
	if err != nil {
		return fmt.Errorf("start the mail hub: %w", err)
	}
	defer hub.Close()
	base := hubEnv(e.getenv, hub, dbURL)
	getenv := func(k string) string {
		switch k {
		case "BALLOTD_FROM":
			if v := base(k); v != "" {
				return v
			}
			return "Indivisible Endorsements"
		case "BALLOTD_ORG_NAME":
			// The demo's mail names its organisation, as a real one's would.
			if v := base(k); v != "" {
				return v
			}
			return "Indivisible"
		case "BALLOTD_IMAP_POLL":
			return "500ms"
		case "BALLOTD_STAFF":
			return demoStaff
		}
		return base(k)
	}
	cfg, err := loadConfig(getenv, need{mail: true})
	if err != nil {
		return err
	}
	phase("mail hub", "IMAP %s, SMTP %s, password %q; ballot mailbox %s@%s", hub.IMAPAddr, hub.SMTPAddr, hub.Password, cfg.Mailbox, cfg.Domain)

	// The daemon runs exactly as serve does, quietly: the demo narrates.
	de := &env{getenv: getenv, stdout: io.Discard, stderr: e.stderr,
		log: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	dctx, stopDaemon := context.WithCancel(ctx)
	ready := make(chan *daemon, 1)
	done := make(chan error, 1)
	go func() { done <- serveDaemon(dctx, de, cfg, true, func(d *daemon) { ready <- d }) }()
	var d *daemon
	select {
	case d = <-ready:
	case err := <-done:
		stopDaemon()
		return fmt.Errorf("start the daemon: %w", err)
	}
	defer func() {
		stopDaemon()
		<-done
	}()
	st := d.store

	rng := rand.New(rand.NewPCG(*seed, 7))
	members := demoMembers(*n, rng)
	var csv strings.Builder
	csv.WriteString("email,name,district\n")
	for _, m := range members {
		fmt.Fprintf(&csv, "%s,%s,%s\n", m.email, m.name, m.district)
	}
	grep, err := st.ImportGroups(ctx, strings.NewReader(demoGroups))
	if err != nil {
		return err
	}
	mrep, err := st.ImportMembers(ctx, strings.NewReader(csv.String()))
	if err != nil {
		return err
	}
	phase("groups, members", "%d group leaders in 11 groups; %d members across MA-01 … MA-09", grep.Added+grep.Updated, mrep.Added)

	now := time.Now().UTC().Truncate(time.Second)
	wave := ballots.Wave{Name: "Demo wave " + now.Format("2006-01-02 15:04:05"), NominationsClose: now.Add(10 * time.Minute),
		VotingOpen: now.Add(10 * time.Minute), VotingClose: now.Add(2 * time.Hour), Threshold: 0.6}
	if _, err := st.CreateWave(ctx, wave); err != nil {
		return err
	}
	r := &demoReplier{hub: hub, cfg: cfg, rng: rng, expect: map[string]map[string]int{}, styles: map[string]int{}}
	defer r.close()

	// Group leaders email their nomination forms; one is refused with every
	// problem listed.
	for _, nom := range demoNominations {
		if err := r.send(nom.from, "ballots+nominate@"+cfg.Domain, nom.message(cfg.Domain)); err != nil {
			return err
		}
	}
	confirmed := 0
	for _, nom := range demoNominations {
		prefix := "Nomination "
		if nom.refused {
			prefix = "We could not accept"
		}
		if _, err := r.waitMail(ctx, nom.from, prefix, 1); err != nil {
			return err
		}
		if !nom.refused {
			confirmed++
		}
	}
	phase("nominations", "%d forms emailed by group leaders (the seed's Markey form among them): %d confirmed, 1 answered with its problems", len(demoNominations), confirmed)

	// Staff approve each candidate by replying to its vetting notice.
	notices, err := r.waitMail(ctx, demoStaff, "Vet candidate", confirmed)
	if err != nil {
		return err
	}
	approved := map[string]bool{}
	for _, raw := range notices {
		m, err := inbound.Parse(raw)
		if err != nil {
			return fmt.Errorf("demo: vetting notice: %w", err)
		}
		id := strings.Fields(strings.TrimPrefix(m.Subject, "Vet candidate "))[0]
		id = strings.TrimSuffix(id, ":")
		if approved[id] {
			continue
		}
		approved[id] = true
		reply := fmt.Sprintf("From: Vetting Staff <%s>\r\nTo: %s\r\nSubject: Re: %s\r\nMessage-ID: <vet-%s@%s>\r\nIn-Reply-To: <%s>\r\n\r\nAPPROVE %s\r\n\r\nThanks!\r\n",
			demoStaff, m.ReplyTo, m.Subject, id, cfg.Domain, m.MessageID, id)
		if err := r.send(demoStaff, m.ReplyTo, reply); err != nil {
			return err
		}
	}
	if _, err := r.waitMail(ctx, demoStaff, "", confirmed+len(approved)); err != nil {
		return err
	}
	phase("vetting", "staff approved %d candidates by replying APPROVE n to the vetting notices: MA-SEN Ed Markey (2 groups), MA-07 Jordan Rivera, Sam Okafor", len(approved))

	opened := 0
	for _, code := range []string{"MA-SEN", "MA-07"} {
		p := newProgress(w, "      opening "+code)
		k, err := st.OpenRaceProgress(ctx, code, p.openRace)
		p.clear()
		if err != nil {
			return err
		}
		opened += k
	}
	d.outbox.Wake()
	if err := waitOutbox(ctx, st, w, "ballots"); err != nil {
		return err
	}
	phase("ballots", "%d ballots sent (MA-SEN to every MA member, MA-07 to its district)", opened)

	// Members read their ballots and reply.
	before := r.sent
	p := newProgress(w, "      members replying")
	for i, m := range members {
		if err := r.answerBallots(ctx, m); err != nil {
			return err
		}
		p.step(float64(i+1)/float64(len(members)), r.sent-before, "replies", fmt.Sprintf("%d of %d members read their ballots", i+1, len(members)))
	}
	p.clear()
	if err := waitInbound(ctx, st, w, r.sent); err != nil {
		return err
	}
	// Those whose reply could not be read got a clarification; they answer it.
	if err := waitOutbox(ctx, st, io.Discard, ""); err != nil {
		return err
	}
	for _, m := range r.unclear {
		if err := r.answerClarification(ctx, m); err != nil {
			return err
		}
	}
	if err := waitInbound(ctx, st, w, r.sent); err != nil {
		return err
	}
	if err := waitOutbox(ctx, st, io.Discard, ""); err != nil {
		return err
	}
	// Those who have not voted get the race's one reminder (the scheduler
	// sends it halfway through the vote at the earliest; the demo asks now).
	reminded := 0
	for _, code := range []string{"MA-SEN", "MA-07"} {
		k, err := st.RemindRace(ctx, code)
		if err != nil {
			return err
		}
		reminded += k
	}
	d.outbox.Wake()
	if err := waitOutbox(ctx, st, io.Discard, ""); err != nil {
		return err
	}
	phase("replies", "%d messages from members: %s; %d reminders to those who had not voted", r.sent-before, r.styleSummary(), reminded)
	// The staff digest while the vote is open: turnout so far, with its chart.
	if _, _, err := st.SendDigest(ctx, []string{demoStaff}, 0); err != nil {
		return err
	}
	d.outbox.Wake()
	if err := waitOutbox(ctx, st, io.Discard, ""); err != nil {
		return err
	}

	for _, code := range []string{"MA-SEN", "MA-07"} {
		if _, err := st.CloseRace(ctx, code); err != nil {
			return err
		}
	}
	d.outbox.Wake()
	phase("close, tally", "both races closed; tallies frozen")
	if err := waitOutbox(ctx, st, w, "announcements"); err != nil {
		return err
	}
	counts, err := st.OutboxCounts(ctx)
	if err != nil {
		return err
	}
	phase("announcements", "%s", outboxSummary(counts))

	fmt.Fprintln(w)
	var tallies []ballots.Tally
	verified := true
	for _, code := range []string{"MA-SEN", "MA-07"} {
		t, err := st.TallyRace(ctx, code)
		if err != nil {
			return err
		}
		tallies = append(tallies, t)
		writeTally(w, t)
		for _, c := range t.Candidates {
			if r.expect[code][c.Name] != c.Votes {
				verified = false
				fmt.Fprintf(w, "  MISMATCH: %s %s: ballotd counted %d, the demo sent %d\n", code, c.Name, c.Votes, r.expect[code][c.Name])
			}
		}
		if r.expect[code]["(voted)"] != t.Voted {
			verified = false
			fmt.Fprintf(w, "  MISMATCH: %s voted: ballotd counted %d, the demo sent %d\n", code, t.Voted, r.expect[code]["(voted)"])
		}
		fmt.Fprintln(w)
	}
	if !verified {
		return fmt.Errorf("demo: ballotd's tally differs from the replies the demo sent")
	}
	fmt.Fprintln(w, "verified: ballotd's tally equals the demo's own count of the replies it sent.")
	// The staff digest of the results, and the public endorsement page.
	if _, _, err := st.SendDigest(ctx, []string{demoStaff}, 0); err != nil {
		return err
	}
	d.outbox.Wake()
	if err := waitOutbox(ctx, st, io.Discard, ""); err != nil {
		return err
	}
	saved, err := writeDemoFiles(ctx, *outDir, hub, st, d.tokens, tallies)
	if err != nil {
		return err
	}
	list, err := st.Endorsements(ctx, wave.Name)
	if err != nil {
		return err
	}
	page, err := os.Create(filepath.Join(*outDir, "endorsements.html"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	err = endorsementsPage.Execute(page, endorsementsPageData{EndorsementList: list, Org: cfg.Org})
	if cerr := page.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("demo: endorsement page: %w", err)
	}
	fmt.Fprintf(w, "\nwhere to look (in %s/): endorsements.html (the public page), results.json, and one of each\n"+
		"message ballotd sent (open a .eml in any mail client):\n", *outDir)
	for _, f := range saved {
		fmt.Fprintf(w, "  %-30s %s\n", f.name, f.what)
	}
	fmt.Fprintf(w, "done in %s\n", time.Since(start).Round(100*time.Millisecond))
	if *keep {
		fmt.Fprintf(w, "\n--keep: the hub stays up until Ctrl-C. IMAP %s, SMTP %s, password %q; log in as any member, e.g. %s\n",
			hub.IMAPAddr, hub.SMTPAddr, hub.Password, members[0].email)
		<-ctx.Done()
	}
	return nil
}

// isTerminal reports whether w is a terminal, where progress can redraw
// one line.
func isTerminal(w io.Writer) bool {
	if r, ok := w.(redactingWriter); ok {
		w = r.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}

// waitOutbox waits until nothing is queued, sending or deferred, showing
// progress for label when w is not io.Discard.
func waitOutbox(ctx context.Context, st *ballots.Store, w io.Writer, label string) error {
	deadline := time.Now().Add(5 * time.Minute)
	p := newProgress(w, "      sending "+label)
	defer p.clear()
	first := -1
	for {
		counts, err := st.OutboxCounts(ctx)
		if err != nil {
			return err
		}
		t := totalsOf(counts)
		if t.pending() == 0 {
			return nil
		}
		if first < 0 {
			first = t.Sent
		}
		sent := t.Sent - first
		p.step(float64(sent)/float64(sent+t.pending()), sent, "sent", fmt.Sprintf("%s to go", grouped(t.pending())))
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %d messages still unsent after 5 minutes", t.pending())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitInbound waits until ballotd has handled n messages, showing
// progress on w.
func waitInbound(ctx context.Context, st *ballots.Store, w io.Writer, n int) error {
	deadline := time.Now().Add(5 * time.Minute)
	p := newProgress(w, "      ballotd reading")
	defer p.clear()
	first := -1
	for {
		var got int
		if err := st.DB.GetContext(ctx, &got, `SELECT count(*) FROM inbound_messages WHERE processed_at IS NOT NULL`); err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if first < 0 {
			first = got
		}
		p.step(float64(got-first)/float64(n-first), got-first, "messages", fmt.Sprintf("%s to go", grouped(n-got)))
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: ballotd handled %d of %d replies in 5 minutes", got, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var plural = map[string]string{string(templates.KindAnnouncement): "announcements", string(templates.KindBallot): "ballots",
	string(templates.KindReceipt): "receipts", string(templates.KindClarify): "clarifications", string(templates.KindReminder): "reminders"}

func outboxSummary(counts []ballots.OutboxCount) string {
	by := map[string]int{}
	for _, c := range counts {
		if c.Status == ballots.OutboxSent {
			by[c.Kind] += c.Count
		}
	}
	var parts []string
	for _, k := range []string{string(templates.KindAnnouncement), string(templates.KindBallot), string(templates.KindReceipt), string(templates.KindClarify), string(templates.KindReminder)} {
		if by[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", by[k], plural[k]))
		}
	}
	return "sent in all: " + strings.Join(parts, ", ")
}

// demoStaff is the staff address of the demo.
const demoStaff = "staff@example.org"

// demoNomination is a nomination form a group leader emails.
type demoNomination struct {
	from, body string
	refused    bool
}

func (n demoNomination) message(domain string) string {
	return fmt.Sprintf("From: %s\r\nTo: ballots+nominate@%s\r\nSubject: Nomination\r\nMessage-ID: <nom.%d@demo.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		n.from, domain, len(n.body)+int(n.from[0]), crlfText(n.body))
}

var demoNominations = []demoNomination{
	// The seed's own wording (seed 000), as Indivisible Northampton published it.
	{from: "leader@northampton.example", body: "Sen. Ed Markey\n\nState: Massachusetts\n\nElected Office: U.S. Senator\n\nCandidate District: MA-Sen\n\nReason for Endorsement:\n\n" +
		markeyReason + "\n\nIndivisible Northampton nominated Sen. Ed Markey for a national endorsement. If you would like to join the group or get involved, you can find them on Facebook.\n"},
	// DESIGN.md's wording.
	{from: "board@imc.example", body: "Group: Indivisible Mass Coalition\nCandidate: Ed Markey\nOffice: U.S. Senate\nState: MA\nDistrict: MA-SEN\nLocal endorsement: yes\nReason for endorsement:\nOur coordinating board voted to endorse him.\n\n-- \nPat Board\n"},
	{from: "chair@somerville.example", body: "Group: Indivisible Somerville\nCandidate: Jordan Rivera\nOffice: House\nState: MA\nDistrict: MA-07\nLocal endorsement: yes\nReason for endorsement:\nJordan has organised tenants in Somerville for a decade.\n"},
	{from: "hello@jp.example", body: "Group: Indivisible Jamaica Plain\nCandidate: Sam Okafor\nOffice: House\nState: MA\nDistrict: MA-07\nLocal endorsement: yes\nReason for endorsement:\nSam teaches at our public high school and leads the union local.\n"},
	// A group outside the district, with no local endorsement: refused, every problem listed.
	{from: "team@lowell.example", body: "Group: Indivisible Lowell\nCandidate: Sam Okafor\nOffice: House\nState: MA\nDistrict: MA-07\nLocal endorsement: no\nReason for endorsement:\nWe like him.\n", refused: true},
}

// waitMail waits until addr's mailbox holds n messages whose subject
// starts with prefix, and returns them.
func (r *demoReplier) waitMail(ctx context.Context, addr, prefix string, n int) ([][]byte, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		msgs, err := r.hub.Inbox(addr)
		if err != nil {
			return nil, err
		}
		var got [][]byte
		for _, sm := range msgs {
			if m, err := inbound.Parse(sm.Raw); err == nil && strings.HasPrefix(m.Subject, prefix) {
				got = append(got, sm.Raw)
			}
		}
		if len(got) >= n {
			return got, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: %s received %d messages %q…, want %d", addr, len(got), prefix, n)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// demoReplier plays the members.
type demoReplier struct {
	hub     *mailhub.Hub
	cfg     Config
	rng     *rand.Rand
	c       *smtp.Client
	sent    int
	expect  map[string]map[string]int // race → candidate name (or "(voted)") → votes
	styles  map[string]int
	unclear []unclearReply
}

type unclearReply struct {
	member demoMember
	race   string
	ballot ballotMail
}

// ballotMail is what a member's client shows of a ballot.
type ballotMail struct {
	Subject, MessageID, ReplyTo, Text, Race string
	Candidates                              []string
}

func (r *demoReplier) close() {
	if r.c != nil {
		r.c.Quit()
	}
}

func (r *demoReplier) send(from, to, raw string) error {
	if r.c == nil {
		c, err := smtp.Dial(r.hub.SMTPAddr)
		if err != nil {
			return err
		}
		r.c = c
	}
	if err := r.c.SendMail(from, []string{to}, strings.NewReader(raw)); err != nil {
		return fmt.Errorf("demo: send reply from %s: %w", from, err)
	}
	r.sent++
	return nil
}

func readBallot(raw []byte) (ballotMail, bool) {
	m, err := inbound.Parse(raw)
	if err != nil || !strings.HasPrefix(m.Subject, "Your ballot") {
		return ballotMail{}, false
	}
	b := ballotMail{Subject: m.Subject, MessageID: "<" + m.MessageID + ">", ReplyTo: m.ReplyTo, Text: m.Text}
	// "Your ballot: TITLE (CODE) — ORG": the code is in the last
	// parentheses before the organisation.
	subject, _, _ := strings.Cut(m.Subject, " — ")
	if i := strings.LastIndex(subject, "("); i > 0 {
		b.Race = strings.TrimSuffix(subject[i+1:], ")")
	}
	lines := strings.Split(m.Text, "\n")
	for _, line := range lines {
		if num, name, ok := strings.Cut(line, ". "); ok && len(num) <= 2 && num >= "1" && num <= "99" && !strings.Contains(name, ".") {
			b.Candidates = append(b.Candidates, strings.TrimSpace(name))
		}
	}
	if len(b.Candidates) == 0 {
		// A YES/NO ballot does not number its one candidate: the name is
		// the line above "Nominated by:".
		for i := 1; i < len(lines); i++ {
			if strings.HasPrefix(strings.TrimSpace(lines[i]), "Nominated by:") {
				b.Candidates = append(b.Candidates, strings.TrimSpace(lines[i-1]))
				break
			}
		}
	}
	return b, b.ReplyTo != ""
}

func (r *demoReplier) input(m demoMember, b ballotMail, answer string) replyInput {
	return replyInput{
		FromName: m.name, From: m.email, To: b.ReplyTo, Subject: b.Subject, InReplyTo: b.MessageID,
		MessageID: fmt.Sprintf("<%d.%d@%s>", r.rng.Uint64(), r.sent, strings.SplitN(m.email, "@", 2)[1]),
		Answer:    answer, BallotText: b.Text, BallotFrom: r.cfg.From + " <" + r.cfg.Mailbox + "@" + r.cfg.Domain + ">",
		Sent: time.Now().Format("Mon, Jan 2, 2006 at 3:04 PM"),
	}
}

func (r *demoReplier) count(race, name string) {
	if r.expect[race] == nil {
		r.expect[race] = map[string]int{}
	}
	if name != "" {
		r.expect[race][name]++
	}
	r.expect[race]["(voted)"]++
}

// answerBallots reads the member's mailbox and answers each ballot: about
// seven in ten vote, a few write something unclear, a few are away.
func (r *demoReplier) answerBallots(ctx context.Context, m demoMember) error {
	msgs, err := r.hub.Inbox(m.email)
	if err != nil {
		return err
	}
	for _, sm := range msgs {
		b, ok := readBallot(sm.Raw)
		if !ok {
			continue
		}
		roll := r.rng.Float64()
		in := r.input(m, b, "")
		switch {
		case roll < 0.03:
			r.styles["out-of-office"]++
			if err := r.send(m.email, b.ReplyTo, outOfOffice(in)); err != nil {
				return err
			}
		case roll < 0.07:
			in.Answer = []string{"I'm not sure yet, can you tell me more about them?", "yes and no", "Which one is the teacher?"}[r.rng.IntN(3)]
			r.styles["unclear"]++
			r.unclear = append(r.unclear, unclearReply{m, b.Race, b})
			if err := r.sendStyled(m, in); err != nil {
				return err
			}
		case roll < 0.72:
			answer, name := r.vote(b)
			in.Answer = answer
			r.count(b.Race, name)
			if err := r.sendStyled(m, in); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *demoReplier) sendStyled(m demoMember, in replyInput) error {
	s := replyStyles[r.rng.IntN(len(replyStyles))]
	r.styles[s.Name]++
	return r.send(m.email, in.To, s.Write(in))
}

// vote picks an answer and says whom it supports ("" for NO or NONE).
func (r *demoReplier) vote(b ballotMail) (answer, supports string) {
	roll := r.rng.Float64()
	if len(b.Candidates) == 1 {
		if roll < 0.78 {
			return []string{"Yes", "YES", "yes!", "Yes, absolutely.", "I vote yes"}[r.rng.IntN(5)], b.Candidates[0]
		}
		return []string{"No", "NO", "no thanks"}[r.rng.IntN(3)], ""
	}
	switch {
	case roll < 0.5:
		return []string{"1", "#1", b.Candidates[0], "I vote for " + b.Candidates[0]}[r.rng.IntN(4)], b.Candidates[0]
	case roll < 0.9:
		last := b.Candidates[1][strings.LastIndex(b.Candidates[1], " ")+1:]
		return []string{"2", last, b.Candidates[1]}[r.rng.IntN(3)], b.Candidates[1]
	}
	return "NONE", ""
}

// answerClarification replies to the clarification with a clear vote.
func (r *demoReplier) answerClarification(ctx context.Context, u unclearReply) error {
	answer, name := r.vote(u.ballot)
	r.count(u.race, name)
	in := r.input(u.member, u.ballot, answer)
	in.Subject = "We could not read your vote"
	r.styles["answered a clarification"]++
	return r.send(u.member.email, u.ballot.ReplyTo, replyStyles[0].Write(in))
}

func (r *demoReplier) styleSummary() string {
	var names []string
	for k := range r.styles {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return r.styles[names[i]] > r.styles[names[j]] })
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%d %s", r.styles[k], k))
	}
	return strings.Join(parts, ", ")
}

// demoFile is a message the demo saved, and what it is.
type demoFile struct{ name, what string }

// demoFiles names the file each kind of message is saved as, and says what
// it is, in the order the demo lists them; a kind not here is saved as
// KIND.eml. The digest is saved twice: the first while the vote is open,
// the last after the close.
var demoFiles = []struct{ kind, name, what string }{
	{string(templates.KindNominationConfirm), "nomination-confirmation.eml", "a group leader's accepted nomination form"},
	{string(templates.KindNominationProblems), "nomination-problems.eml", "a refused form, every problem listed"},
	{string(templates.KindVettingNotice), "vetting-notice.eml", "staff's notice of a nomination to vet (reply APPROVE n)"},
	{string(templates.KindStaffAnswer), "staff-answer.eml", "the answer to staff's APPROVE"},
	{string(templates.KindBallot), "ballot.eml", "a member's ballot"},
	{string(templates.KindReceipt), "receipt.eml", "the receipt of a counted vote"},
	{string(templates.KindClarify), "clarification.eml", "the answer to a reply that could not be read"},
	{string(templates.KindReminder), "reminder.eml", "the one reminder to a member who had not voted"},
	{string(templates.KindDigest), "digest-voting.eml", "the staff digest while the vote was open, with its turnout chart"},
	{string(templates.KindDigest), "digest.eml", "the staff digest after the close, with the results"},
	{string(templates.KindAnnouncement), "announcement.eml", "the results, to every member of the race"},
}

// writeDemoFiles saves one of each kind of message ballotd sent, and the
// results, and returns the files saved in the order to read them. A
// message's kind is read from its outbox row, named by the VERP envelope
// sender's token, not guessed from its subject.
func writeDemoFiles(ctx context.Context, dir string, hub *mailhub.Hub, st *ballots.Store, toks *ballots.Tokens, tallies []ballots.Tally) ([]demoFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	firstOf := map[string][]byte{}
	lastOf := map[string][]byte{}
	var order []string
	for _, env := range hub.Received() {
		local, _, _ := strings.Cut(env.From, "@")
		_, tag, _ := strings.Cut(local, "+")
		token, ok := strings.CutPrefix(tag, ballots.TokenBounce+"-")
		if !ok {
			continue // not sent by ballotd
		}
		id, err := toks.Open(ballots.TokenBounce, token)
		if err != nil {
			continue
		}
		var kind string
		if err := st.DB.GetContext(ctx, &kind, `SELECT kind FROM outbox WHERE id = $1`, id); err != nil {
			return nil, fmt.Errorf("demo: the kind of outbox row %d: %w", id, err)
		}
		if _, seen := firstOf[kind]; !seen {
			firstOf[kind] = env.Data
			order = append(order, kind)
		}
		lastOf[kind] = env.Data
	}
	var saved []demoFile
	write := func(name, what string, data []byte) error {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		saved = append(saved, demoFile{name, what})
		return nil
	}
	listed := map[string]bool{}
	for _, f := range demoFiles {
		listed[f.kind] = true
		data := firstOf[f.kind]
		if f.name == "digest.eml" {
			data = lastOf[f.kind]
		}
		if data == nil {
			continue
		}
		if err := write(f.name, f.what, data); err != nil {
			return nil, err
		}
	}
	for _, kind := range order {
		if !listed[kind] {
			if err := write(kind+".eml", "a "+kind+" message", firstOf[kind]); err != nil {
				return nil, err
			}
		}
	}
	b, _ := json.MarshalIndent(tallies, "", "  ")
	return saved, os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}
