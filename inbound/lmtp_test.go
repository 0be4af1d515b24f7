package inbound

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/inbound/message"
)

// lmtpDoor starts the door for w on a loopback port and returns its
// address; it stops with the test.
func lmtpDoor(t *testing.T, w *world) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&LMTPDoor{Processor: w.p}).Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("door: %v", err)
		}
	})
	return l.Addr().String()
}

// lmtpSend delivers raw from from to rcpts over LMTP and returns each
// recipient's answer (nil for 250) and the error of the transaction.
func lmtpSend(t *testing.T, addr, from string, rcpts []string, raw []byte) (map[string]*smtp.SMTPError, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mx.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return nil, err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return nil, err
	}
	if _, err := wc.Write(raw); err != nil {
		t.Fatal(err)
	}
	_, err = wc.CloseWithLMTPResponse()
	out := map[string]*smtp.SMTPError{}
	var lerr smtp.LMTPDataError
	if errors.As(err, &lerr) {
		for r, e := range lerr {
			out[r] = e
		}
		return out, err
	}
	return out, err
}

func TestLMTPDoorRecordsOnceAndAcceptsAfterTheCommit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addr := lmtpDoor(t, w)
	_, tok := w.ballot("MA-07", "alice@example.net")
	rcpt := "ballots+v-" + tok + "@example.org"
	raw := []byte(strings.ReplaceAll(string(w.replyAt("alice@example.net", "v-"+tok, time.Now(), "YES")), "\r\n", "\n"))
	// Delivered twice, as after a 250 lost on the way back to the MTA.
	for i := 0; i < 2; i++ {
		if st, err := lmtpSend(t, addr, "alice@example.net", []string{rcpt}, raw); err != nil || st[rcpt] != nil {
			t.Fatalf("delivery %d: %v %v", i, st, err)
		}
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=1" {
		t.Fatalf("tally = %s", got)
	}
	if n := w.count(`SELECT count(*) FROM inbound_messages WHERE mailbox = 'lmtp'`); n != 1 {
		t.Fatalf("inbound records = %d, want 1", n)
	}
	if n := w.answers("receipt"); n != 1 {
		t.Fatalf("receipts = %d, want 1", n)
	}
	// Nobody else's mail comes in by this door.
	if _, err := lmtpSend(t, addr, "x@example.net", []string{"someone@example.org"}, raw); err == nil ||
		!strings.Contains(err.Error(), "550") {
		t.Fatalf("a stranger's recipient: %v, want 550", err)
	}
}

func TestLMTPDoorUsesTheEnvelope(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addr := lmtpDoor(t, w)
	_, tok := w.ballot("MA-07", "bob@example.net")
	// Bcc'd to the ballot address: only the envelope names the ballot.
	raw := []byte("From: bob@example.net\nTo: friends@example.net\nSubject: Re: Your ballot\nMessage-ID: <bcc-1@example.net>\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\n\nNO\n")
	rcpt := "ballots+v-" + tok + "@example.org"
	if _, err := lmtpSend(t, addr, "bob@example.net", []string{rcpt}, raw); err != nil {
		t.Fatal(err)
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=0" {
		t.Fatalf("tally = %s: the envelope's plus address should name the ballot", got)
	}
	// A delivery report comes from the null sender: a bounce, not answered.
	dsnRaw := []byte("From: MAILER-DAEMON@mx.example.net\nTo: ballots+b-x@example.org\nSubject: Undelivered Mail Returned to Sender\n" +
		"Message-ID: <dsn-1@mx.example.net>\n\nThis is the mail system at host mx.example.net.\n")
	if _, err := lmtpSend(t, addr, "", []string{"ballots+b-x@example.org"}, dsnRaw); err != nil {
		t.Fatal(err)
	}
	var class string
	if err := w.db.Get(&class, `SELECT class FROM inbound_messages WHERE from_addr LIKE 'mailer-daemon%'`); err != nil || class != string(message.ClassBounce) {
		t.Fatalf("the report's class = %q, %v; want bounce", class, err)
	}
}

func TestLMTPDoorRefusesWithA4xxWhenTheDatabaseIsAway(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addr := lmtpDoor(t, w)
	_, tok := w.ballot("MA-07", "carol@example.net")
	rcpt := "ballots+v-" + tok + "@example.org"
	// The database goes away (a fault a test cannot cause otherwise).
	w.st.Close()
	st, err := lmtpSend(t, addr, "carol@example.net", []string{rcpt}, w.replyAt("carol@example.net", "v-"+tok, time.Now(), "YES"))
	if err == nil || st[rcpt] == nil || st[rcpt].Code != 451 {
		t.Fatalf("with the database away: %v %v; want 451 so the MTA keeps the message", st, err)
	}
}

// TestLMTPDoorQuarantinesAMessageThatFailsAlone: a message the database
// refuses for a reason of its own (a trigger that raises, as a bug or a bad
// row would) is accepted and kept in quarantine with the error, not refused
// for the MTA to retry for days; after the fix a replay counts it.
func TestLMTPDoorQuarantinesAMessageThatFailsAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	addr := lmtpDoor(t, w)
	id, tok := w.ballot("MA-07", "bob@example.net")
	poison(w, id)
	rcpt := "ballots+v-" + tok + "@example.org"
	if st, err := lmtpSend(t, addr, "bob@example.net", []string{rcpt}, w.replyAt("bob@example.net", "v-"+tok, time.Now(), "YES")); err != nil || st[rcpt] != nil {
		t.Fatalf("delivery: %v %v, want accepted", st, err)
	}
	var q struct {
		ID     int64  `db:"id"`
		Detail string `db:"detail"`
	}
	if err := w.db.Get(&q, `SELECT id, detail FROM inbound_messages WHERE quarantined AND mailbox = 'lmtp'`); err != nil {
		t.Fatalf("not quarantined: %v", err)
	}
	if !strings.Contains(q.Detail, "poisoned ballot") {
		t.Errorf("quarantine detail %q does not say why", q.Detail)
	}
	cure(w)
	if res, err := w.p.Replay(w.ctx, q.ID); err != nil || res.Outcome != OutcomeCounted {
		t.Fatalf("replay after the fix: %+v, %v", res, err)
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=1" {
		t.Errorf("tally after the replay: %s", got)
	}
}
