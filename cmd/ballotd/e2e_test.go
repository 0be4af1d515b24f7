package main

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(asBallotdEnv) == "1" {
		main() // exits
	}
	testenv.Main(m)
}

// harness runs ballotd commands against one database and one mail hub.
type harness struct {
	t   *testing.T
	hub *mailhub.Hub
	env map[string]string
	dir string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	hub, err := mailhub.Start(mailhub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	h := &harness{t: t, hub: hub, dir: t.TempDir(), env: map[string]string{
		"DATABASE_URL":          testenv.MigratedURL(t),
		"BALLOTD_DOMAIN":        "example.org",
		"BALLOTD_SECRET":        "e2e-secret-0123456789abcdef",
		"BALLOTD_FROM":          "Indivisible Endorsements",
		"BALLOTD_IMAP_ADDR":     hub.IMAPAddr,
		"BALLOTD_IMAP_USER":     "ballots@example.org",
		"BALLOTD_IMAP_PASSWORD": hub.Password,
		"BALLOTD_IMAP_POLL":     "200ms",
		"BALLOTD_SMTP_ADDR":     hub.SMTPAddr,
		// A digest is a scheduler mail any serve may send on its first tick;
		// tests that are about the digest turn it on.
		"BALLOTD_DIGEST_EVERY": "off",
	}}
	return h
}

// ballotd runs one command and returns its stdout; it fails the test on a
// non-zero exit.
func (h *harness) ballotd(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.try(args...)
	if code != 0 {
		h.t.Fatalf("ballotd %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (h *harness) try(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return h.env[k] }, &out, &errOut)
	return out.String(), errOut.String(), code
}

func (h *harness) file(name, content string) string {
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// openRace is the usual start of a test: migrate, import the members (CSV
// rows after the header email,name,district), a wave "March" whose voting
// runs from now for 48 hours, one candidate (with any more flags, such as
// --group) and the race opened.
func (h *harness) openRace(members, race, candidate string, candidateFlags ...string) {
	h.t.Helper()
	h.ballotd("migrate")
	h.ballotd("import", "members", h.file("members.csv", "email,name,district\n"+members))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "March",
		"--nominations-close", now.Add(-time.Hour).Format(time.RFC3339),
		"--voting-open", now.Format(time.RFC3339),
		"--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	h.ballotd(append([]string{"candidate", "add", "--race", race, "--name", candidate}, candidateFlags...)...)
	h.ballotd("race", "open", race)
}

// serve starts `ballotd serve` and returns a func that stops it (SIGTERM's
// path: the context is cancelled) and checks it exited 0.
func (h *harness) serve() (stop func()) {
	stop, _ = h.serveLogged()
	return stop
}

// serveLogged is serve, with what the daemon has logged so far.
func (h *harness) serveLogged() (stop func(), logs func() string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut syncBuffer
	go func() {
		done <- run(ctx, []string{"serve"}, func(k string) string { return h.env[k] }, &bytes.Buffer{}, &errOut)
	}()
	return func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				h.t.Errorf("serve exited %d: %s", code, errOut.String())
			}
		case <-time.After(30 * time.Second):
			h.t.Fatal("serve did not stop within 30s of its context ending")
		}
	}, errOut.String
}

// sent returns what ballotd sent (envelope sender is its VERP address),
// keyed by nothing: in order.
func (h *harness) sent() []mailhub.Envelope {
	var out []mailhub.Envelope
	for _, e := range h.hub.Received() {
		if strings.HasPrefix(e.From, "ballots+b-") {
			out = append(out, e)
		}
	}
	return out
}

// waitSent waits until ballotd has sent n messages (a bounded wait for
// asynchronous delivery, not a timing assertion).
func (h *harness) waitSent(n int) []mailhub.Envelope {
	h.t.Helper()
	var s []mailhub.Envelope
	if !testenv.Poll(30*time.Second, func() bool { s = h.sent(); return len(s) >= n }) {
		h.t.Fatalf("ballotd sent %d messages, want %d", len(s), n)
	}
	return s
}

// waitIdle waits until serve has done all it will do with what it has
// been given, so that a test can then assert that nothing more happened
// without sleeping for it:
//   - every message in the mailbox is handled: flagged \Seen, which serve
//     does after the message's transaction (and the mail it enqueues) has
//     committed;
//   - the outbox has no row queued or sending, nor one deferred and due;
//   - the hub has received exactly the messages the outbox recorded sent.
//
// A mail the scheduler may still enqueue on a later tick is not covered:
// a test that moves a wave's clock waits for what that move sends.
func (h *harness) waitIdle() {
	h.t.Helper()
	db := h.db()
	var why string
	idle := testenv.Poll(30*time.Second, func() bool {
		msgs, err := h.hub.Inbox("ballots@example.org")
		if err != nil {
			h.t.Fatal(err)
		}
		for _, m := range msgs {
			if !strings.Contains(strings.Join(m.Flags, " "), `\Seen`) {
				why = fmt.Sprintf("message uid %d not handled", m.UID)
				return false
			}
		}
		var busy, sent int
		if err := db.QueryRow(`SELECT count(*) FILTER (WHERE status IN ('queued', 'sending') OR (status = 'deferred' AND next_attempt <= now())),
			count(*) FILTER (WHERE status = 'sent') FROM outbox`).Scan(&busy, &sent); err != nil {
			h.t.Fatal(err)
		}
		if got := len(h.sent()); busy != 0 || got != sent {
			why = fmt.Sprintf("%d outbox rows to send, %d recorded sent, %d received by the hub", busy, sent, got)
			return false
		}
		return true
	})
	if !idle {
		h.t.Fatalf("serve did not become idle: %s", why)
	}
}

// reply sends raw as from, through the hub's SMTP side, as a mail client would.
func (h *harness) reply(from, to string, raw string) {
	h.t.Helper()
	c, err := smtp.Dial(h.hub.SMTPAddr)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail(from, []string{to}, strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n"))); err != nil {
		h.t.Fatal(err)
	}
}

// ballotOf is what a member's mail client sees of their ballot.
type ballotOf struct {
	To, ReplyTo, MessageID, Subject, Body, Code string
}

// memberMail is sent without what went to staff: a wave's vetting notice
// goes out beside its first ballots, in no set order (the scheduler may
// close the nominations and open the race in one tick, and the outbox
// sends on several connections at once).
func memberMail(t *testing.T, sent []mailhub.Envelope, staff string) []mailhub.Envelope {
	t.Helper()
	var out []mailhub.Envelope
	for _, e := range sent {
		if parseSent(t, e).To != staff {
			out = append(out, e)
		}
	}
	return out
}

func parseSent(t *testing.T, e mailhub.Envelope) ballotOf {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(e.Data))
	if err != nil {
		t.Fatal(err)
	}
	to, _ := mail.ParseAddress(m.Header.Get("To"))
	rt, _ := mail.ParseAddress(m.Header.Get("Reply-To"))
	subj, _ := new(mimeDecoder).DecodeHeader(m.Header.Get("Subject"))
	body := decodeQP(string(e.Data))
	b := ballotOf{To: to.Address, MessageID: m.Header.Get("Message-ID"), Subject: subj, Body: body}
	if rt != nil {
		b.ReplyTo = rt.Address
	}
	if i := strings.Index(body, "Ballot code: "); i >= 0 {
		b.Code = strings.Fields(body[i+len("Ballot code: "):])[0]
	}
	return b
}

func TestEndToEndRace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ballotd("migrate")
	if out := h.ballotd("migrate"); !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %q", out)
	}
	h.ballotd("import", "groups", h.file("groups.csv", "name,state,district,leader_email,leader_name\n"+
		"Indivisible Northampton,MA,MA-02,lead@northampton.example,Lee\n"+
		"Indivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n"))
	out := h.ballotd("import", "members", h.file("members.csv", "email,name,district\n"+
		"alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-02\ncarol@example.net,Carol,MA-05\n"+
		"dave@example.net,Dave,MA-07\nerin@example.net,Erin,MA-01\nfrank@example.net,Frank,MA-09\n"+
		"nora@example.net,Nora,NY-10\nbroken-row,Nobody,MA-07\n"))
	if !strings.Contains(out, "7 added") || !strings.Contains(out, "1 rejected") {
		t.Fatalf("import members: %q", out)
	}
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "March",
		"--nominations-close", now.Add(-time.Hour).Format(time.RFC3339),
		"--voting-open", now.Format(time.RFC3339),
		"--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-SEN", "--name", "Ed Markey",
		"--bio", "Sen. Markey is a leader of the climate movement.",
		"--group", "Indivisible Northampton", "--group", "Indivisible Somerville")
	if out := h.ballotd("race", "open", "MA-SEN"); !strings.Contains(out, "6 ballots") {
		t.Fatalf("race open: %q", out)
	}

	stop := h.serve()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	ballots := map[string]ballotOf{}
	for _, e := range h.waitSent(6) {
		b := parseSent(t, e)
		ballots[b.To] = b
		for _, want := range []string{"Ed Markey", "Indivisible Northampton, Indivisible Somerville", "YES or NO", "Ballot code: " + b.Code} {
			if !strings.Contains(b.Body, want) {
				t.Errorf("ballot to %s lacks %q", b.To, want)
			}
		}
		if b.ReplyTo != "ballots+v-"+b.Code+"@example.org" {
			t.Errorf("ballot to %s: Reply-To %q does not carry its code %q", b.To, b.ReplyTo, b.Code)
		}
	}
	if len(ballots) != 6 || ballots["nora@example.net"].To != "" {
		t.Fatalf("ballots went to %d members (%v); want the 6 in MA", len(ballots), keys(ballots))
	}

	// Alice: a plain top-posted reply from a phone.
	a := ballots["alice@example.net"]
	aliceReply := fmt.Sprintf("From: Alice <alice@example.net>\nTo: %s\nSubject: Re: %s\nMessage-ID: <alice-1@example.net>\nIn-Reply-To: %s\n\nYes\n\nSent from my iPhone\n\n> %s\n",
		a.ReplyTo, a.Subject, a.MessageID, strings.ReplaceAll(a.Body, "\n", "\n> "))
	h.reply("alice@example.net", a.ReplyTo, aliceReply)
	// Bob: Gmail style; the quote contains "YES or NO" and the ballot code.
	b := ballots["bob@example.net"]
	h.reply("bob@example.net", b.ReplyTo, fmt.Sprintf("From: Bob <bob@example.net>\nTo: %s\nSubject: Re: %s\nMessage-ID: <bob-1@example.net>\n"+
		"Content-Type: text/plain; charset=UTF-8\n\nYES\n\nOn Tue, Mar 3, 2026 at 9:00 AM Indivisible Endorsements <%s> wrote:\n> Reply to this email with YES or NO.\n>\n> Ballot code: %s\n",
		b.ReplyTo, b.Subject, "ballots@example.org", b.Code))
	// Carol: NO, and her reply lost the plus address: found by the code in the quote.
	c := ballots["carol@example.net"]
	h.reply("carol@example.net", "ballots@example.org", fmt.Sprintf("From: carol@example.net\nTo: ballots@example.org\nSubject: my vote\nMessage-ID: <carol-1@example.net>\n\nno\n\n-----Original Message-----\nBallot code: %s\n", c.Code))
	// Dave: unclear first, then a clear YES.
	d := ballots["dave@example.net"]
	h.reply("dave@example.net", d.ReplyTo, fmt.Sprintf("From: dave@example.net\nTo: %s\nSubject: Re: ballot\nMessage-ID: <dave-1@example.net>\n\nHmm, maybe?\n", d.ReplyTo))
	// Erin's ballot answered by somebody else: not counted.
	e := ballots["erin@example.net"]
	h.reply("mallory@example.com", e.ReplyTo, fmt.Sprintf("From: mallory@example.com\nTo: %s\nSubject: Re: ballot\nMessage-ID: <mallory-1@example.com>\n\nNO\n", e.ReplyTo))
	// A forged token: unmatched, answered, not counted.
	h.reply("frank@example.net", "ballots+v-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.org", "From: frank@example.net\nTo: ballots+v-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.org\nSubject: Re: ballot\nMessage-ID: <frank-1@example.net>\n\nYES\n")
	// An out-of-office robot: never answered.
	h.reply("frank@example.net", ballots["frank@example.net"].ReplyTo, fmt.Sprintf("From: frank@example.net\nTo: %s\nSubject: Out of Office: Your ballot\nAuto-Submitted: auto-replied\nMessage-ID: <frank-ooo@example.net>\n\nI am away until Monday.\n", ballots["frank@example.net"].ReplyTo))
	// Alice's reply delivered a second time (same Message-ID): changes nothing.
	h.reply("alice@example.net", a.ReplyTo, aliceReply)

	// 6 ballots + receipts (alice, bob, carol) + clarify (dave) + not-voter (to erin) + unmatched (frank).
	answers := h.waitSent(12)[6:]
	byTo := map[string][]ballotOf{}
	for _, env := range answers {
		p := parseSent(t, env)
		byTo[p.To] = append(byTo[p.To], p)
	}
	for _, who := range []string{"alice@example.net", "bob@example.net", "carol@example.net"} {
		if len(byTo[who]) != 1 || !strings.HasPrefix(byTo[who][0].Subject, "Vote received") || !strings.Contains(byTo[who][0].Body, "Receipt code: ") {
			t.Errorf("%s: want one receipt, got %+v", who, byTo[who])
		}
	}
	if !strings.Contains(byTo["carol@example.net"][0].Body, "NO: do not endorse Ed Markey") {
		t.Errorf("carol's receipt does not say NO: %s", byTo["carol@example.net"][0].Body)
	}
	if len(byTo["dave@example.net"]) != 1 || !strings.HasPrefix(byTo["dave@example.net"][0].Subject, "We could not read your vote") {
		t.Errorf("dave: want a clarification, got %+v", byTo["dave@example.net"])
	}
	if len(byTo["erin@example.net"]) != 1 || !strings.Contains(byTo["erin@example.net"][0].Body, "mallory@example.com") {
		t.Errorf("erin: want the not-voter notice naming the sender, got %+v", byTo["erin@example.net"])
	}
	if len(byTo["mallory@example.com"]) != 0 {
		t.Errorf("the impostor was answered: %+v", byTo["mallory@example.com"])
	}
	if len(byTo["frank@example.net"]) != 1 || !strings.HasPrefix(byTo["frank@example.net"][0].Subject, "We could not match") {
		t.Errorf("frank: want one unmatched answer (forged token) and none to the out-of-office, got %+v", byTo["frank@example.net"])
	}

	// Dave tries again, clearly.
	h.reply("dave@example.net", d.ReplyTo, fmt.Sprintf("From: dave@example.net\nTo: %s\nSubject: Re: ballot\nMessage-ID: <dave-2@example.net>\n\nYES!\n", d.ReplyTo))
	h.waitSent(13)

	live := h.tally()
	if live.Status != "open" || live.Voted != 4 {
		t.Fatalf("live tally = %+v", live)
	}
	if out := h.ballotd("race", "close", "MA-SEN"); !strings.Contains(out, "4 of 6 voted") {
		t.Fatalf("race close: %q", out)
	}
	// A vote after the close is answered "closed" and not counted.
	h.reply("frank@example.net", ballots["frank@example.net"].ReplyTo, fmt.Sprintf("From: frank@example.net\nTo: %s\nSubject: Re: ballot\nMessage-ID: <frank-late@example.net>\n\nYES\n", ballots["frank@example.net"].ReplyTo))

	// 6 announcements to members, 2 to the nominating groups' leaders, and
	// the closed notice to frank.
	all := h.waitSent(13 + 9)
	announced := map[string]bool{}
	closedNotice := false
	for _, env := range all[13:] {
		p := parseSent(t, env)
		switch {
		case strings.HasPrefix(p.Subject, "Results:"):
			announced[p.To] = true
			if !strings.Contains(p.Body, "\n     endorsed: ") || !strings.Contains(p.Body, "4 of 6 eligible members voted (66.7 %)") {
				t.Errorf("announcement to %s lacks the result: %s", p.To, p.Body)
			}
		case strings.HasPrefix(p.Subject, "Voting has closed") && p.To == "frank@example.net":
			closedNotice = true
		}
	}
	if len(announced) != 8 || !announced["lead@northampton.example"] || !announced["lead@somerville.example"] || !closedNotice {
		t.Errorf("announced to %v (want the 6 members and 2 leaders), closed notice %v", keys(announced), closedNotice)
	}

	final := h.tally()
	want := tallyJSON{Race: "MA-SEN", Status: "closed", Eligible: 6, Voted: 4, Turnout: 4.0 / 6, Reachable: 6,
		Candidates: []candidateJSON{{Number: 1, Name: "Ed Markey", Votes: 3, Support: 0.75, Endorsed: true}}}
	if fmt.Sprint(final) != fmt.Sprint(want) {
		t.Errorf("tally --json = %+v\nwant %+v", final, want)
	}
	stop()
	stop = nil

	// Every handled message is flagged \Seen, after its commit.
	msgs, err := h.hub.Inbox("ballots@example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if !strings.Contains(strings.Join(m.Flags, " "), `\Seen`) {
			t.Errorf("message uid %d not flagged \\Seen", m.UID)
		}
	}
	if len(msgs) != 10 {
		t.Errorf("mailbox holds %d messages, want 10", len(msgs))
	}
}

type candidateJSON struct {
	Number   int     `json:"number"`
	Name     string  `json:"name"`
	Votes    int     `json:"votes"`
	Support  float64 `json:"support"`
	Endorsed bool    `json:"endorsed"`
}

type tallyJSON struct {
	Race       string          `json:"race"`
	Status     string          `json:"status"`
	Eligible   int             `json:"eligible"`
	Voted      int             `json:"voted"`
	Turnout    float64         `json:"turnout"`
	Reachable  int             `json:"reachable"`
	Candidates []candidateJSON `json:"candidates"`
}

func (h *harness) tally() tallyJSON {
	h.t.Helper()
	return h.tallyOf("MA-SEN")
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
