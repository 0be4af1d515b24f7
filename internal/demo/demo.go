// Package demo owns `ballotd demo`: a whole endorsement wave run by
// itself on the embedded mail hub and narrated: the seeds' Massachusetts
// example, group leaders' nominations, staff vetting by reply, ballots
// out, members replying from assorted mail clients, the close, the tally
// checked against the demo's own count, the announcements, and a sample
// of every message saved. It drives a real daemon, which cmd/ballotd
// starts for it (Options.Start); it reads and writes only through
// package ballots and the hub.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/internal/progress"
	"github.com/ballotd/ballotd/internal/report"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// The demo's Massachusetts: the seeds' example, with groups in the nine
// districts and one state-wide coalition.
const groups = `name,state,district,leader_email,leader_name
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

type member struct{ email, name, district string }

func members(n int, rng *rand.Rand) []member {
	out := make([]member, n)
	for i := range out {
		f, l := demoFirst[rng.IntN(len(demoFirst))], demoLast[rng.IntN(len(demoLast))]
		local := strings.ToLower(strings.NewReplacer("'", "").Replace(f + "." + l))
		out[i] = member{
			email:    fmt.Sprintf("%s%d@%s", local, i+1, demoMail[i%len(demoMail)]),
			name:     f + " " + l,
			district: fmt.Sprintf("MA-%02d", 1+i%9),
		}
	}
	return out
}

// Options are the demo's flags and the daemon it drives.
type Options struct {
	Members int    // members to generate (at least 10)
	Keep    bool   // leave the hub and the daemon running until ctx ends
	OutDir  string // where the sample messages and results are saved
	Seed    uint64 // of the members and their replies
	// Start finds the demo's database and starts the daemon on hub, with
	// the settings Env gives; it returns once the daemon runs.
	Start func(ctx context.Context, hub *mailhub.Hub) (Daemon, error)
}

// Daemon is the running ballotd the demo drives, and the settings it
// runs with.
type Daemon struct {
	Store  *ballots.Store
	Tokens *token.Key
	// Wake wakes the outbox, to send what was just enqueued.
	Wake func()
	// Database says which database it runs on and what becomes of it.
	Database              string
	Mailbox, Domain, From string
	Org                   templates.Org
	// Stop stops the daemon, waits for it, and lets its database go.
	Stop func()
}

// Staff is the staff address of the demo.
const Staff = "staff@example.org"

// Env returns getenv with the demo's settings: its organisation, its
// staff, and a fast poll of the mailbox.
func Env(getenv func(string) string) func(string) string {
	return func(k string) string {
		switch k {
		case "BALLOTD_FROM":
			if v := getenv(k); v != "" {
				return v
			}
			return "Indivisible Endorsements"
		case "BALLOTD_ORG_NAME":
			// The demo's mail names its organisation, as a real one's would.
			if v := getenv(k); v != "" {
				return v
			}
			return "Indivisible"
		case "BALLOTD_IMAP_POLL":
			return "500ms"
		case "BALLOTD_STAFF":
			return Staff
		}
		return getenv(k)
	}
}

// run is one demo under way: what it drives and what it has seen.
type run struct {
	o       Options
	w       io.Writer
	hub     *mailhub.Hub
	d       Daemon
	st      *ballots.Store
	r       *replier
	members []member
	wave    ballots.Wave
	step    int
}

// phase prints the next of the nine phases.
func (x *run) phase(name, format string, a ...any) {
	x.step++
	fmt.Fprintf(x.w, "[%d/9] %-15s %s\n", x.step, name, fmt.Sprintf(format, a...))
}

// Run runs a whole wave on the embedded hub, by itself, and prints what
// happens to w: the seeds' Massachusetts example, ballots out, members
// replying from assorted mail clients, the close, the tally and the
// announcements.
func Run(ctx context.Context, o Options, w io.Writer) error {
	start := time.Now()
	fmt.Fprintln(w, "ballotd demo: a whole endorsement wave on an embedded mail hub")
	hub, err := mailhub.Start(mailhub.Options{Password: "demo"})
	if err != nil {
		return fmt.Errorf("start the mail hub: %w", err)
	}
	defer hub.Close()
	d, err := o.Start(ctx, hub)
	if err != nil {
		return err
	}
	defer d.Stop()
	x := &run{o: o, w: w, hub: hub, d: d, st: d.Store}
	x.phase("database", "%s", d.Database)
	x.phase("mail hub", "IMAP %s, SMTP %s, password %q; ballot mailbox %s@%s", hub.IMAPAddr, hub.SMTPAddr, hub.Password, d.Mailbox, d.Domain)
	rng := rand.New(rand.NewPCG(o.Seed, 7))
	x.r = &replier{hub: hub, from: d.From + " <" + d.Mailbox + "@" + d.Domain + ">", rng: rng, expect: map[string]map[string]int{}, styles: map[string]int{}}
	defer x.r.close()
	for _, step := range []func(context.Context) error{x.importLists, x.nominate, x.vet, x.open, x.reply, x.close, x.results} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "done in %s\n", time.Since(start).Round(100*time.Millisecond))
	if o.Keep {
		fmt.Fprintf(w, "\n--keep: the hub stays up until Ctrl-C. IMAP %s, SMTP %s, password %q; log in as any member, e.g. %s\n",
			hub.IMAPAddr, hub.SMTPAddr, hub.Password, x.members[0].email)
		<-ctx.Done()
	}
	return nil
}

// importLists imports the groups and the generated members, and creates
// the wave.
func (x *run) importLists(ctx context.Context) error {
	x.members = members(x.o.Members, x.r.rng)
	var csv strings.Builder
	csv.WriteString("email,name,district\n")
	for _, m := range x.members {
		fmt.Fprintf(&csv, "%s,%s,%s\n", m.email, m.name, m.district)
	}
	grep, err := x.st.ImportGroups(ctx, strings.NewReader(groups))
	if err != nil {
		return err
	}
	mrep, err := x.st.ImportMembers(ctx, strings.NewReader(csv.String()))
	if err != nil {
		return err
	}
	x.phase("groups, members", "%d group leaders in 11 groups; %d members across MA-01 … MA-09", grep.Added+grep.Updated, mrep.Added)
	now := time.Now().UTC().Truncate(time.Second)
	x.wave = ballots.Wave{Name: "Demo wave " + now.Format("2006-01-02 15:04:05"), NominationsClose: now.Add(10 * time.Minute),
		VotingOpen: now.Add(10 * time.Minute), VotingClose: now.Add(2 * time.Hour), Threshold: 0.6}
	_, err = x.st.CreateWave(ctx, x.wave)
	return err
}

// nominate has group leaders email their nomination forms; one is
// refused with every problem listed.
func (x *run) nominate(ctx context.Context) error {
	for _, nom := range nominations {
		if err := x.r.send(nom.from, "ballots+nominate@"+x.d.Domain, nom.message(x.d.Domain)); err != nil {
			return err
		}
	}
	confirmed := 0
	for _, nom := range nominations {
		prefix := "Nomination "
		if nom.refused {
			prefix = "We could not accept"
		}
		if _, err := x.r.waitMail(ctx, nom.from, prefix, 1); err != nil {
			return err
		}
		if !nom.refused {
			confirmed++
		}
	}
	x.phase("nominations", "%d forms emailed by group leaders (the seed's Markey form among them): %d confirmed, 1 answered with its problems", len(nominations), confirmed)
	return nil
}

// vet has staff approve each candidate by replying to its vetting notice.
func (x *run) vet(ctx context.Context) error {
	confirmed := 0
	for _, nom := range nominations {
		if !nom.refused {
			confirmed++
		}
	}
	notices, err := x.r.waitMail(ctx, Staff, "Vet candidate", confirmed)
	if err != nil {
		return err
	}
	approved := map[string]bool{}
	for _, raw := range notices {
		m, err := message.Parse(raw)
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
			Staff, m.ReplyTo, m.Subject, id, x.d.Domain, m.MessageID, id)
		if err := x.r.send(Staff, m.ReplyTo, reply); err != nil {
			return err
		}
	}
	if _, err := x.r.waitMail(ctx, Staff, "", confirmed+len(approved)); err != nil {
		return err
	}
	if err := x.questionnaires(ctx, confirmed+len(approved)); err != nil {
		return err
	}
	x.phase("vetting", "staff approved %d candidates by replying APPROVE n to the vetting notices: MA-SEN Ed Markey (2 groups), MA-07 Jordan Rivera, Sam Okafor; "+
		"their campaigns answered the policy questionnaire (inline, numbered, with an attachment) and staff replied PASS n to each", len(approved))
	return nil
}

// campaigns are the demo candidates' campaign addresses (from the forms'
// Campaign email lines) and how each answers the questionnaire.
var campaigns = []struct{ addr, style string }{
	{"team@markey.example", "inline"}, {"hq@rivera.example", "numbered"}, {"campaign@okafor.example", "attachment"},
}

// questionnaires has each campaign answer its questionnaire, and staff
// pass each by replying PASS n to the answers; staffMail is how many
// messages staff have had so far.
func (x *run) questionnaires(ctx context.Context, staffMail int) error {
	for i, c := range campaigns {
		raws, err := x.r.waitMail(ctx, c.addr, "Policy questionnaire", 1)
		if err != nil {
			return err
		}
		m, err := message.Parse(raws[0])
		if err != nil {
			return fmt.Errorf("demo: questionnaire: %w", err)
		}
		head := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Re: %s\r\nMessage-ID: <answers-%d@demo.example>\r\nIn-Reply-To: <%s>\r\n",
			c.addr, m.ReplyTo, m.Subject, i, m.MessageID)
		var body strings.Builder
		n := 0
		for _, l := range strings.Split(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n") {
			isQuestion := len(l) > 2 && l[0] >= '1' && l[0] <= '9' && strings.Contains(l[:3], ".")
			if isQuestion {
				n++
			}
			if c.style == "inline" {
				body.WriteString("> " + l + "\n")
				if isQuestion {
					fmt.Fprintf(&body, "\nYes. Answer %d of Sen. Markey's campaign, in its own words.\n\n", n)
				}
			}
		}
		raw := head
		switch c.style {
		case "numbered":
			for k := 1; k <= n; k++ {
				fmt.Fprintf(&body, "%d. Yes: our answer to question %d.\n", k, k)
			}
			raw += "Content-Type: text/plain; charset=utf-8\r\n\r\n" + crlfText(body.String())
		case "attachment":
			raw += "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=demo\r\n\r\n--demo\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
				"Our answers are in the attached document.\r\n--demo\r\nContent-Type: application/pdf; name=\"okafor-answers.pdf\"\r\n" +
				"Content-Disposition: attachment; filename=\"okafor-answers.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJSVFT0YK\r\n--demo--\r\n"
		default:
			raw += "Content-Type: text/plain; charset=utf-8\r\n\r\nOn Monday you wrote:\r\n" + crlfText(body.String())
		}
		if err := x.r.send(c.addr, m.ReplyTo, raw); err != nil {
			return err
		}
	}
	notices, err := x.r.waitMail(ctx, Staff, "Questionnaire ", len(campaigns))
	if err != nil {
		return err
	}
	for _, raw := range notices {
		m, err := message.Parse(raw)
		if err != nil {
			return fmt.Errorf("demo: questionnaire answers: %w", err)
		}
		id := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(m.Subject, "Questionnaire "))[0], ":")
		reply := fmt.Sprintf("From: Vetting Staff <%s>\r\nTo: %s\r\nSubject: Re: %s\r\nMessage-ID: <pass-%s@%s>\r\nIn-Reply-To: <%s>\r\n\r\nPASS %s\r\n",
			Staff, m.ReplyTo, m.Subject, id, x.d.Domain, m.MessageID, id)
		if err := x.r.send(Staff, m.ReplyTo, reply); err != nil {
			return err
		}
	}
	_, err = x.r.waitMail(ctx, Staff, "", staffMail+2*len(campaigns))
	return err
}

// races are the demo's two races.
var races = []string{"MA-SEN", "MA-07"}

// open opens both races and sends their ballots.
func (x *run) open(ctx context.Context) error {
	opened := 0
	for _, code := range races {
		p := progress.New(x.w, "      opening "+code)
		k, err := x.st.OpenRaceProgress(ctx, code, p.OpenRace)
		p.Clear()
		if err != nil {
			return err
		}
		opened += k
	}
	x.d.Wake()
	if err := waitOutbox(ctx, x.st, x.w, "ballots"); err != nil {
		return err
	}
	x.phase("ballots", "%d ballots sent (MA-SEN to every MA member, MA-07 to its district)", opened)
	return nil
}

// settle waits until ballotd has handled every message sent to it and
// sent what it enqueued.
func (x *run) settle(ctx context.Context) error {
	if err := waitInbound(ctx, x.st, x.w, x.r.sent); err != nil {
		return err
	}
	return waitOutbox(ctx, x.st, io.Discard, "")
}

// reply has the members read their ballots and reply; those whose reply
// could not be read answer the clarification; those who did not vote get
// the race's one reminder.
func (x *run) reply(ctx context.Context) error {
	before := x.r.sent
	p := progress.New(x.w, "      members replying")
	for i, m := range x.members {
		if err := x.r.answerBallots(ctx, m); err != nil {
			return err
		}
		p.Step(float64(i+1)/float64(len(x.members)), x.r.sent-before, "replies", fmt.Sprintf("%d of %d members read their ballots", i+1, len(x.members)))
	}
	p.Clear()
	if err := x.settle(ctx); err != nil {
		return err
	}
	for _, m := range x.r.unclear {
		if err := x.r.answerClarification(ctx, m); err != nil {
			return err
		}
	}
	if err := x.settle(ctx); err != nil {
		return err
	}
	// The scheduler sends the reminder halfway through the vote at the
	// earliest; the demo asks now.
	reminded := 0
	for _, code := range races {
		k, err := x.st.RemindRace(ctx, code)
		if err != nil {
			return err
		}
		reminded += k
	}
	x.d.Wake()
	if err := waitOutbox(ctx, x.st, io.Discard, ""); err != nil {
		return err
	}
	x.phase("replies", "%d messages from members: %s; %d reminders to those who had not voted", x.r.sent-before, x.r.styleSummary(), reminded)
	return nil
}

// digest sends the staff digest now.
func (x *run) digest(ctx context.Context) error {
	if _, _, err := x.st.SendDigest(ctx, []string{Staff}, 0); err != nil {
		return err
	}
	x.d.Wake()
	return waitOutbox(ctx, x.st, io.Discard, "")
}

// close sends the digest of the open vote (turnout so far, with its
// chart), then closes both races and sends the announcements.
func (x *run) close(ctx context.Context) error {
	if err := x.digest(ctx); err != nil {
		return err
	}
	for _, code := range races {
		if _, err := x.st.CloseRace(ctx, code); err != nil {
			return err
		}
	}
	x.d.Wake()
	x.phase("close, tally", "both races closed; tallies frozen")
	if err := waitOutbox(ctx, x.st, x.w, "announcements"); err != nil {
		return err
	}
	counts, err := x.st.OutboxCounts(ctx)
	if err != nil {
		return err
	}
	x.phase("announcements", "%s", outboxSummary(counts))
	return nil
}

// results prints the tallies, checks them against the replies the demo
// sent, sends the results digest, and saves the messages and the page.
func (x *run) results(ctx context.Context) error {
	fmt.Fprintln(x.w)
	tallies, err := x.verify(ctx)
	if err != nil {
		return err
	}
	if err := x.digest(ctx); err != nil {
		return err
	}
	saved, err := writeFiles(ctx, x.o.OutDir, x.hub, x.st, x.d.Tokens, tallies)
	if err != nil {
		return err
	}
	if err := x.writePage(ctx); err != nil {
		return err
	}
	fmt.Fprintf(x.w, "\nwhere to look (in %s/): endorsements.html (the public page), results.json, and one of each\n"+
		"message ballotd sent (open a .eml in any mail client):\n", x.o.OutDir)
	for _, f := range saved {
		fmt.Fprintf(x.w, "  %-30s %s\n", f.name, f.what)
	}
	return nil
}

// verify prints each race's tally and checks it against the demo's own
// count of the replies it sent.
func (x *run) verify(ctx context.Context) ([]ballots.Tally, error) {
	var tallies []ballots.Tally
	verified := true
	for _, code := range races {
		t, err := x.st.TallyRace(ctx, code)
		if err != nil {
			return nil, err
		}
		tallies = append(tallies, t)
		report.Tally(x.w, t)
		for _, c := range t.Candidates {
			if x.r.expect[code][c.Name] != c.Votes {
				verified = false
				fmt.Fprintf(x.w, "  MISMATCH: %s %s: ballotd counted %d, the demo sent %d\n", code, c.Name, c.Votes, x.r.expect[code][c.Name])
			}
		}
		if x.r.expect[code]["(voted)"] != t.Voted {
			verified = false
			fmt.Fprintf(x.w, "  MISMATCH: %s voted: ballotd counted %d, the demo sent %d\n", code, t.Voted, x.r.expect[code]["(voted)"])
		}
		fmt.Fprintln(x.w)
	}
	if !verified {
		return nil, fmt.Errorf("demo: ballotd's tally differs from the replies the demo sent")
	}
	fmt.Fprintln(x.w, "verified: ballotd's tally equals the demo's own count of the replies it sent.")
	return tallies, nil
}

// writePage saves the public endorsement page of the wave.
func (x *run) writePage(ctx context.Context) error {
	list, err := x.st.Endorsements(ctx, x.wave.Name)
	if err != nil {
		return err
	}
	page, err := os.Create(filepath.Join(x.o.OutDir, "endorsements.html"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	err = report.Page(page, list, x.d.Org)
	if cerr := page.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("demo: endorsement page: %w", err)
	}
	return nil
}

// waitOutbox waits until nothing is queued, sending or deferred, showing
// progress for label when w is not io.Discard.
func waitOutbox(ctx context.Context, st *ballots.Store, w io.Writer, label string) error {
	deadline := time.Now().Add(5 * time.Minute)
	p := progress.New(w, "      sending "+label)
	defer p.Clear()
	first := -1
	for {
		counts, err := st.OutboxCounts(ctx)
		if err != nil {
			return err
		}
		pending, total := outboxLeft(counts)
		if pending == 0 {
			return nil
		}
		if first < 0 {
			first = total
		}
		sent := total - first
		p.Step(float64(sent)/float64(sent+pending), sent, "sent", fmt.Sprintf("%s to go", progress.Grouped(pending)))
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %d messages still unsent after 5 minutes", pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// outboxLeft adds up the outbox: what is still to be sent (queued, being
// sent, deferred), and what is sent.
func outboxLeft(cs []ballots.OutboxCount) (pending, sent int) {
	for _, c := range cs {
		switch c.Status {
		case ballots.OutboxQueued, ballots.OutboxSending, ballots.OutboxDeferred:
			pending += c.Count
		case ballots.OutboxSent:
			sent += c.Count
		}
	}
	return pending, sent
}

// waitInbound waits until ballotd has handled n messages, showing
// progress on w.
func waitInbound(ctx context.Context, st *ballots.Store, w io.Writer, n int) error {
	deadline := time.Now().Add(5 * time.Minute)
	p := progress.New(w, "      ballotd reading")
	defer p.Clear()
	first := -1
	for {
		got, err := st.CountHandled(ctx)
		if err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if first < 0 {
			first = got
		}
		p.Step(float64(got-first)/float64(n-first), got-first, "messages", fmt.Sprintf("%s to go", progress.Grouped(n-got)))
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

// nomination is a nomination form a group leader emails.
type nomination struct {
	from, body string
	refused    bool
}

func (n nomination) message(domain string) string {
	return fmt.Sprintf("From: %s\r\nTo: ballots+nominate@%s\r\nSubject: Nomination\r\nMessage-ID: <nom.%d@demo.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		n.from, domain, len(n.body)+int(n.from[0]), crlfText(n.body))
}

var nominations = []nomination{
	// The seed's own wording (seed 000), as Indivisible Northampton published it.
	{from: "leader@northampton.example", body: "Sen. Ed Markey\n\nState: Massachusetts\n\nElected Office: U.S. Senator\n\nCandidate District: MA-Sen\n\nReason for Endorsement:\n\n" +
		markeyReason + "\n\nIndivisible Northampton nominated Sen. Ed Markey for a national endorsement. If you would like to join the group or get involved, you can find them on Facebook.\n"},
	// DESIGN.md's wording.
	{from: "board@imc.example", body: "Group: Indivisible Mass Coalition\nCandidate: Ed Markey\nOffice: U.S. Senate\nState: MA\nDistrict: MA-SEN\nLocal endorsement: yes\nCampaign email: team@markey.example\nPartner endorsements: Sunrise Movement, Working Families\nFirst-time candidate: no\nPast races: U.S. Senate 2014 and 2020, won both\nReason for endorsement:\nOur coordinating board voted to endorse him.\n\n-- \nPat Board\n"},
	{from: "chair@somerville.example", body: "Group: Indivisible Somerville\nCandidate: Jordan Rivera\nOffice: House\nState: MA\nDistrict: MA-07\nLocal endorsement: yes\nCampaign email: hq@rivera.example\nFirst-time candidate: yes\nReason for endorsement:\nJordan has organised tenants in Somerville for a decade.\n"},
	{from: "hello@jp.example", body: "Group: Indivisible Jamaica Plain\nCandidate: Sam Okafor\nOffice: House\nState: MA\nDistrict: MA-07\nLocal endorsement: yes\nCampaign email: campaign@okafor.example\nReason for endorsement:\nSam teaches at our public high school and leads the union local.\n"},
	// A group outside the district, with no local endorsement: refused, every problem listed.
	{from: "team@lowell.example", body: "Group: Indivisible Lowell\nCandidate: Sam Okafor\nOffice: House\nState: MA\nDistrict: MA-07\nLocal endorsement: no\nReason for endorsement:\nWe like him.\n", refused: true},
}

// waitMail waits until addr's mailbox holds n messages whose subject
// starts with prefix, and returns them.
func (r *replier) waitMail(ctx context.Context, addr, prefix string, n int) ([][]byte, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		msgs, err := r.hub.Inbox(addr)
		if err != nil {
			return nil, err
		}
		var got [][]byte
		for _, sm := range msgs {
			if m, err := message.Parse(sm.Raw); err == nil && strings.HasPrefix(m.Subject, prefix) {
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

// replier plays the members.
type replier struct {
	hub     *mailhub.Hub
	from    string // the From of ballotd's mail, as a client shows it
	rng     *rand.Rand
	c       *smtp.Client
	sent    int
	expect  map[string]map[string]int // race → candidate name (or "(voted)") → votes
	styles  map[string]int
	unclear []unclearReply
}

type unclearReply struct {
	member member
	race   string
	ballot Ballot
}

// Ballot is what a member's client shows of a ballot.
type Ballot struct {
	Subject, MessageID, ReplyTo, Text, Race string
	Candidates                              []string
}

func (r *replier) close() {
	if r.c != nil {
		r.c.Quit()
	}
}

func (r *replier) send(from, to, raw string) error {
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

func ReadBallot(raw []byte) (Ballot, bool) {
	m, err := message.Parse(raw)
	if err != nil || !strings.HasPrefix(m.Subject, "Your ballot") {
		return Ballot{}, false
	}
	b := Ballot{Subject: m.Subject, MessageID: "<" + m.MessageID + ">", ReplyTo: m.ReplyTo, Text: m.Text}
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

func (r *replier) input(m member, b Ballot, answer string) ReplyInput {
	return ReplyInput{
		FromName: m.name, From: m.email, To: b.ReplyTo, Subject: b.Subject, InReplyTo: b.MessageID,
		MessageID: fmt.Sprintf("<%d.%d@%s>", r.rng.Uint64(), r.sent, strings.SplitN(m.email, "@", 2)[1]),
		Answer:    answer, BallotText: b.Text, BallotFrom: r.from,
		Sent: time.Now().Format("Mon, Jan 2, 2006 at 3:04 PM"),
	}
}

func (r *replier) count(race, name string) {
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
func (r *replier) answerBallots(ctx context.Context, m member) error {
	msgs, err := r.hub.Inbox(m.email)
	if err != nil {
		return err
	}
	for _, sm := range msgs {
		b, ok := ReadBallot(sm.Raw)
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

func (r *replier) sendStyled(m member, in ReplyInput) error {
	s := ReplyStyles[r.rng.IntN(len(ReplyStyles))]
	r.styles[s.Name]++
	return r.send(m.email, in.To, s.Write(in))
}

// vote picks an answer and says whom it supports ("" for NO or NONE).
func (r *replier) vote(b Ballot) (answer, supports string) {
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
func (r *replier) answerClarification(ctx context.Context, u unclearReply) error {
	answer, name := r.vote(u.ballot)
	r.count(u.race, name)
	in := r.input(u.member, u.ballot, answer)
	in.Subject = "We could not read your vote"
	r.styles["answered a clarification"]++
	return r.send(u.member.email, u.ballot.ReplyTo, ReplyStyles[0].Write(in))
}

func (r *replier) styleSummary() string {
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

// savedFile is a message the demo saved, and what it is.
type savedFile struct{ name, what string }

// files names the file each kind of message is saved as, and says what
// it is, in the order the demo lists them; a kind not here is saved as
// KIND.eml. The digest is saved twice: the first while the vote is open,
// the last after the close.
var files = []struct{ kind, name, what string }{
	{string(templates.KindNominationConfirm), "nomination-confirmation.eml", "a group leader's accepted nomination form"},
	{string(templates.KindNominationProblems), "nomination-problems.eml", "a refused form, every problem listed"},
	{string(templates.KindVettingNotice), "vetting-notice.eml", "staff's notice of a nomination to vet (reply APPROVE n)"},
	{string(templates.KindStaffAnswer), "staff-answer.eml", "the answer to staff's APPROVE"},
	{string(templates.KindQuestionnaire), "questionnaire.eml", "the policy questionnaire to a candidate's campaign"},
	{string(templates.KindQuestionnaireReceipt), "questionnaire-receipt.eml", "the receipt to a campaign's answers"},
	{string(templates.KindQuestionnaireAnswers), "questionnaire-answers.eml", "a campaign's answers, to staff (reply PASS n)"},
	{string(templates.KindQuestionnaireShared), "questionnaire-shared.eml", "passed answers, to the leaders of the race's groups"},
	{string(templates.KindBallot), "ballot.eml", "a member's ballot"},
	{string(templates.KindReceipt), "receipt.eml", "the receipt of a counted vote"},
	{string(templates.KindClarify), "clarification.eml", "the answer to a reply that could not be read"},
	{string(templates.KindReminder), "reminder.eml", "the one reminder to a member who had not voted"},
	{string(templates.KindDigest), "digest-voting.eml", "the staff digest while the vote was open, with its turnout chart"},
	{string(templates.KindDigest), "digest.eml", "the staff digest after the close, with the results"},
	{string(templates.KindAnnouncement), "announcement.eml", "the results, to every member of the race"},
}

// writeFiles saves one of each kind of message ballotd sent, and the
// results, and returns the files saved in the order to read them. A
// message's kind is read from its outbox row, named by the VERP envelope
// sender's token, not guessed from its subject.
func writeFiles(ctx context.Context, dir string, hub *mailhub.Hub, st *ballots.Store, toks *token.Key, tallies []ballots.Tally) ([]savedFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	firstOf := map[string][]byte{}
	lastOf := map[string][]byte{}
	var order []string
	for _, env := range hub.Received() {
		local, _, _ := strings.Cut(env.From, "@")
		_, tag, _ := strings.Cut(local, "+")
		tok, ok := strings.CutPrefix(tag, token.Bounce+"-")
		if !ok {
			continue // not sent by ballotd
		}
		id, err := toks.Open(token.Bounce, tok)
		if err != nil {
			continue
		}
		kind, err := st.OutboxKind(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if _, seen := firstOf[kind]; !seen {
			firstOf[kind] = env.Data
			order = append(order, kind)
		}
		lastOf[kind] = env.Data
	}
	var saved []savedFile
	write := func(name, what string, data []byte) error {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		saved = append(saved, savedFile{name, what})
		return nil
	}
	listed := map[string]bool{}
	for _, f := range files {
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
