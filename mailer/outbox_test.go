package mailer_test

import (
	"bytes"
	"context"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixture struct {
	st     *ballots.Store
	hub    *mailhub.Hub
	outbox *mailer.Outbox
	toks   *token.Key
}

// newFixture opens a race of three MA members (one named with a header
// injection attempt) and two candidates, with an outbox sending to a
// loopback hub.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	members := "email,name,district\n" +
		"alice@example.net,Alice Ä,MA-07\n" +
		"bob@example.net,\"Bob\r\nBcc: victim@example.com\",MA-02\n" +
		"carol@reject.example,Carol,MA-03\n"
	if _, err := st.ImportMembers(ctx, strings.NewReader(members)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "March", NominationsClose: now, VotingOpen: now, VotingClose: now.Add(time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Ed Markey", "Joe Kennedy\r\nSubject: injected"} {
		if _, err := st.AddCandidate(ctx, "MA-SEN", "", n, "Bio of "+n, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); err != nil {
		t.Fatal(err)
	}
	hub, err := mailhub.Start(mailhub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	toks, _ := token.NewKey("test-secret-0123456789")
	tpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ob := &mailer.Outbox{
		Store:    st,
		Renderer: &mailer.Renderer{Store: st, Templates: tpl, Tokens: toks, ID: mailer.Identity{Local: "ballots", Domain: "example.org", FromName: "Ballots"}},
		NewSender: func() mailer.Sender {
			return mailer.NewSMTPSender(mailer.SMTPConfig{Addr: hub.SMTPAddr, HeloName: "example.org"})
		},
	}
	return &fixture{st: st, hub: hub, outbox: ob, toks: toks}
}

func statuses(t *testing.T, st *ballots.Store) map[string]string {
	t.Helper()
	rows, err := testenv.DB(t, st).Query(`SELECT recipient, status || ':' || coalesce(last_code, 0) FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var r, s string
		rows.Scan(&r, &s)
		out[r] = s
	}
	return out
}

func TestOutboxSendsBallots(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.hub.SetRcptFault(func(rcpt string) *smtp.SMTPError {
		if strings.HasSuffix(rcpt, "@reject.example") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	n, err := f.outbox.Drain(ctx)
	if err != nil || n != 3 {
		t.Fatalf("drain = %d, %v; want 3", n, err)
	}
	got := statuses(t, f.st)
	want := map[string]string{"alice@example.net": "sent:250", "bob@example.net": "sent:250", "carol@reject.example": "failed:550"}
	for r, w := range want {
		if got[r] != w {
			t.Errorf("%s: %s, want %s", r, got[r], w)
		}
	}
	env := f.hub.Received()
	if len(env) != 2 {
		t.Fatalf("hub received %d messages, want 2", len(env))
	}
	seenIDs := map[string]bool{}
	for _, e := range env {
		if !strings.HasPrefix(e.From, "ballots+b-") || !strings.HasSuffix(e.From, "@example.org") {
			t.Errorf("envelope sender %q is not a VERP address", e.From)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(e.Data))
		if err != nil {
			t.Fatalf("sent message does not parse: %v", err)
		}
		h := msg.Header
		if got := h["Bcc"]; len(got) != 0 {
			t.Errorf("header injection through a name: Bcc %v", got)
		}
		if len(h["Subject"]) != 1 {
			t.Errorf("Subject headers: %v", h["Subject"])
		}
		replyTo, err := mail.ParseAddress(h.Get("Reply-To"))
		if err != nil || !strings.HasPrefix(replyTo.Address, "ballots+v-") {
			t.Fatalf("Reply-To %q: %v", h.Get("Reply-To"), err)
		}
		token := strings.TrimSuffix(strings.TrimPrefix(replyTo.Address, "ballots+v-"), "@example.org")
		body := string(e.Data)
		if !strings.Contains(body, "Ballot code: "+token) {
			t.Errorf("body does not carry the ballot code %s", token)
		}
		if h.Get("Auto-Submitted") != "auto-generated" || h.Get("X-Auto-Response-Suppress") != "All" {
			t.Errorf("automatic-mail headers missing: %v", h)
		}
		id := h.Get("Message-ID")
		if seenIDs[id] || strings.Contains(id, token) {
			t.Errorf("Message-ID %s repeats or reveals the token", id)
		}
		seenIDs[id] = true
		for _, s := range []string{"1. Ed Markey", "2. Joe Kennedy", "NUMBER or NAME"} {
			if !strings.Contains(strings.ReplaceAll(body, "=\r\n", ""), s) {
				t.Errorf("ballot lacks %q", s)
			}
		}
	}
}

func TestOutboxDefersThrottledAndRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.hub.SetRcptFault(func(rcpt string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "slow down"}
	})
	if _, err := f.outbox.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for r, s := range statuses(t, f.st) {
		if s != "deferred:451" {
			t.Errorf("%s: %s, want deferred:451", r, s)
		}
	}
	var next time.Time
	if err := testenv.DB(t, f.st).Get(&next, `SELECT min(next_attempt) FROM outbox`); err != nil || time.Until(next) < 5*time.Second {
		t.Fatalf("next attempt %v (%v) should be backed off", next, err)
	}
	// The relay recovers; the deferred rows come due.
	f.hub.SetRcptFault(nil)
	if _, err := testenv.DB(t, f.st).Exec(`UPDATE outbox SET next_attempt = now()`); err != nil {
		t.Fatal(err)
	}
	if n, err := f.outbox.Drain(ctx); err != nil || n != 3 {
		t.Fatalf("retry drain = %d, %v", n, err)
	}
	for r, s := range statuses(t, f.st) {
		if s != "sent:250" {
			t.Errorf("%s after retry: %s, want sent:250", r, s)
		}
	}
	if got := len(f.hub.Received()); got != 3 {
		t.Errorf("hub received %d, want 3", got)
	}
}

// A relay that is down: every row is deferred with the error on record,
// none is lost or marked sent.
func TestOutboxRelayDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.hub.Close()
	if _, err := f.outbox.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	var deferred int
	var reply string
	if err := testenv.DB(t, f.st).QueryRow(`SELECT count(*), max(last_reply) FROM outbox WHERE status = 'deferred'`).Scan(&deferred, &reply); err != nil {
		t.Fatal(err)
	}
	if deferred != 3 || !strings.Contains(reply, "dial") {
		t.Fatalf("deferred %d with %q; want 3 with the dial error", deferred, reply)
	}
}

// A worker that crashed holding a claim: once the lease expires the row is
// claimed again and sent with the same Message-ID.
func TestLeaseExpiryResendsSameMessageID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rows, err := f.st.ClaimOutbox(ctx, 1, time.Millisecond)
	if err != nil || len(rows) != 1 {
		t.Fatalf("claim: %v %v", rows, err)
	}
	var buf bytes.Buffer
	first, err := f.outbox.Renderer.Render(ctx, rows[0], &buf)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // let the 1ms lease lapse; not a timing assertion
	if _, err := f.outbox.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.hub.Received() {
		if strings.Contains(string(e.Data), "Message-ID: <"+first.MessageID+">") {
			return
		}
	}
	t.Fatalf("the re-claimed row was not sent with Message-ID %s", first.MessageID)
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	t.Parallel()
	prev := time.Duration(0)
	for a := 1; a <= 6; a++ {
		d := mailer.Backoff(a)
		if d <= prev/2 {
			t.Errorf("backoff(%d) = %v did not grow from %v", a, d, prev)
		}
		prev = d
	}
	if d := mailer.Backoff(50); d > time.Hour+time.Hour/5 {
		t.Errorf("backoff(50) = %v exceeds the cap", d)
	}
}

// A row naming a ballot that is not there (no foreign key checks an
// outbox row's ballot since migration 0018) fails at render: a ballot code
// made without the ballot's nonce could never be checked, so nothing goes
// out for it, and the other rows are sent.
func TestOutboxFailsRowOfMissingBallot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := testenv.DB(t, f.st).Exec(`INSERT INTO outbox (kind, recipient, member_id, ballot_id, race_id)
		SELECT 'ballot', 'dave@example.net', member_id, (SELECT max(id) + 1000 FROM ballots), race_id FROM outbox LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	n, err := f.outbox.Drain(ctx)
	if err != nil || n != 4 {
		t.Fatalf("drain = %d, %v; want 4", n, err)
	}
	var status, reply string
	if err := testenv.DB(t, f.st).QueryRow(`SELECT status, last_reply FROM outbox WHERE recipient = 'dave@example.net'`).Scan(&status, &reply); err != nil {
		t.Fatal(err)
	}
	if status != ballots.OutboxFailed || !strings.Contains(reply, "not found") {
		t.Errorf("row of a missing ballot: %s (%s), want failed, ballot not found", status, reply)
	}
	for _, e := range f.hub.Received() {
		for _, r := range e.To {
			if r == "dave@example.net" {
				t.Errorf("a message went out to %s for a ballot that is not there", r)
			}
		}
	}
	if got := len(f.hub.Received()); got != 3 {
		t.Errorf("hub received %d messages, want the 3 ballots", got)
	}
}
