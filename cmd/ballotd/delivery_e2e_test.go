package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// TestBallotsDeliveryStatus sends a race's ballots over SMTP and checks
// `ballotd ballots` shows each member's status: one rejected at RCPT (550),
// one returned by a DSN, one unsubscribed, one who voted (the time, never
// the choice), one simply sent; and that --status filters.
func TestBallotsDeliveryStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.hub.SetRcptFault(func(rcpt string) *smtp.SMTPError {
		if rcpt == "carol@example.net" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	h.openRace("alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-02\ncarol@example.net,Carol,MA-05\n"+
		"dave@example.net,Dave,MA-05\nerin@example.net,Erin,MA-07\n", "MA-SEN", "Ed Markey")

	// Before serving, every ballot is queued.
	if d := h.deliveries("MA-SEN"); d.Totals["queued"] != 5 || len(d.Ballots) != 5 {
		t.Fatalf("before sending: %+v, want 5 queued", d)
	}

	stop := h.serve()
	defer func() { stop() }()
	sent := map[string]ballotOf{}
	var bobFrom string
	for _, e := range h.waitSent(4) {
		b := parseSent(t, e)
		sent[b.To] = b
		if b.To == "bob@example.net" {
			bobFrom = e.From
		}
	}
	a := sent["alice@example.net"]
	h.reply("alice@example.net", a.ReplyTo, fmt.Sprintf("From: Alice <alice@example.net>\nTo: %s\nSubject: Re: %s\nMessage-ID: <alice-1@example.net>\n\nYes\n", a.ReplyTo, a.Subject))
	h.reply("", bobFrom, fmt.Sprintf("From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\nTo: %s\n"+
		"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <bounce-1@mx.example.net>\nAuto-Submitted: auto-replied\n"+
		"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\n\n"+
		"--R\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"+
		"--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"+
		"Final-Recipient: rfc822; bob@example.net\nAction: failed\nStatus: 5.1.1\n"+
		"Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: User unknown\n\n"+
		"--R\nContent-Type: text/rfc822-headers\n\nTo: bob@example.net\nMessage-ID: %s\n\n--R--\n", bobFrom, sent["bob@example.net"].MessageID))

	// Erin's server took the ballot, then reported it delayed: still sent.
	var erinFrom string
	for _, e := range h.sent() {
		if parseSent(t, e).To == "erin@example.net" {
			erinFrom = e.From
		}
	}
	h.reply("", erinFrom, fmt.Sprintf("From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\nTo: %s\n"+
		"Subject: Delayed Mail (still being retried)\nMessage-ID: <delay-1@mx.example.net>\nAuto-Submitted: auto-replied\n"+
		"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\n\n"+
		"--R\nContent-Type: text/plain\n\nYour message has not been delivered yet; we will keep trying.\n\n"+
		"--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"+
		"Final-Recipient: rfc822; erin@example.net\nAction: delayed\nStatus: 4.2.2\n"+
		"Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\n\n"+
		"--R--\n", erinFrom))

	st, err := ballots.Open(context.Background(), h.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db := h.db()
	var daveID int64
	if err := db.Get(&daveID, `SELECT id FROM members WHERE email = 'dave@example.net'`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Unsubscribe(context.Background(), daveID); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"alice@example.net": "voted", "bob@example.net": "bounced", "carol@example.net": "failed",
		"dave@example.net": "unsubscribed", "erin@example.net": "sent",
	}
	// A bounded wait for the daemon to read the vote and the two reports.
	var d ballots.BallotDeliveries
	erinDelayed := func() bool {
		for _, b := range d.Ballots {
			if b.Email == "erin@example.net" {
				return b.BounceStatus == "4.2.2"
			}
		}
		return false
	}
	testenv.Poll(30*time.Second, func() bool {
		d = h.deliveries("MA-SEN")
		return reflect.DeepEqual(statusOf(d), want) && erinDelayed()
	})
	if got := statusOf(d); !reflect.DeepEqual(got, want) {
		t.Fatalf("statuses = %v, want %v", got, want)
	}
	for _, b := range d.Ballots {
		switch b.Email {
		case "alice@example.net":
			if b.VotedAt == nil {
				t.Errorf("alice voted but has no time")
			}
		case "bob@example.net":
			if b.BounceStatus != "5.1.1" || !strings.Contains(b.BounceDiagnostic, "User unknown") {
				t.Errorf("bob: bounce %q %q, want 5.1.1 and the diagnostic", b.BounceStatus, b.BounceDiagnostic)
			}
		case "carol@example.net":
			if b.Code == nil || *b.Code != 550 || !strings.Contains(b.Reply, "no such user") {
				t.Errorf("carol: code %v reply %q, want 550 no such user", b.Code, b.Reply)
			}
		case "erin@example.net":
			if b.Code == nil || *b.Code != 250 {
				t.Errorf("erin: code %v reply %q, want the server's 250", b.Code, b.Reply)
			}
		}
	}
	want1 := map[string]int{"queued": 0, "sent": 1, "deferred": 0, "failed": 1, "bounced": 1, "unsubscribed": 1, "voted": 1}
	if !reflect.DeepEqual(d.Totals, want1) {
		t.Errorf("totals = %v, want %v", d.Totals, want1)
	}

	// The JSON never carries a choice.
	raw := h.ballotd("ballots", "MA-SEN", "--json")
	for _, never := range []string{"yes", "choice", "candidate"} {
		if strings.Contains(strings.ToLower(raw), never) {
			t.Errorf("ballots --json mentions %q: %s", never, raw)
		}
	}
	if f := h.deliveries("MA-SEN", "--status", "bounced"); len(f.Ballots) != 1 || f.Ballots[0].Email != "bob@example.net" || f.Totals["voted"] != 1 {
		t.Errorf("--status bounced: %+v, want bob only, totals over all", f)
	}
	if text := h.ballotd("ballots", "MA-SEN", "--status", "sent"); !regexp.MustCompile(`erin@example\.net\s+Erin\s+sent\s+250 .*; then delayed: 4\.2\.2 452 4\.2\.2 Mailbox full`).MatchString(text) {
		t.Errorf("ballots --status sent does not show erin's delay:\n%s", text)
	}
	text := h.ballotd("ballots", "MA-SEN", "--status", "failed")
	if !strings.Contains(text, "carol@example.net") || strings.Contains(text, "alice@example.net") ||
		!strings.Contains(text, "totals: queued 0, sent 1, deferred 0, failed 1, bounced 1, unsubscribed 1, voted 1") {
		t.Errorf("ballots --status failed:\n%s", text)
	}
	if _, errOut, code := h.try("ballots", "MA-SEN", "--status", "lost"); code != 2 || !strings.Contains(errOut, "lost") {
		t.Errorf("--status lost: exit %d %q, want 2 naming the status", code, errOut)
	}

	// The staff digest names the ballots that did not reach members. Erin's
	// ballot stands in for one deferred over an hour (a state a loopback
	// server cannot age into).
	stop()
	stop = func() {}
	if _, err := db.Exec(`UPDATE outbox SET status = 'deferred', created_at = now() - interval '2 hours'
		WHERE kind = 'ballot' AND recipient = 'erin@example.net'`); err != nil {
		t.Fatal(err)
	}
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	before := len(h.sent())
	h.ballotd("digest", "send")
	var digest ballotOf
	for _, e := range h.sent()[before:] {
		if p := parseSent(t, e); strings.HasSuffix(p.Subject, "— ballotd digest") {
			digest = p
			digest.Body += htmlPart(string(e.Data))
		}
	}
	for _, w := range []string{"BALLOTS THAT DID NOT REACH MEMBERS", "bounced: 1 (bob@example.net)", "deferred: 1 (erin@example.net)",
		"failed: 1 (carol@example.net)", "Ballots that did not reach members</h2>"} {
		if !strings.Contains(digest.Body, w) {
			t.Errorf("digest lacks %q:\n%s", w, digest.Body)
		}
	}
	if strings.Contains(digest.Body, "alice@example.net") || strings.Contains(digest.Body, "dave@example.net") {
		t.Errorf("digest names a member whose ballot arrived:\n%s", digest.Body)
	}
}

func (h *harness) deliveries(args ...string) ballots.BallotDeliveries {
	h.t.Helper()
	var d ballots.BallotDeliveries
	out := h.ballotd(append([]string{"ballots", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		h.t.Fatalf("ballots --json: %v\n%s", err, out)
	}
	return d
}

func statusOf(d ballots.BallotDeliveries) map[string]string {
	m := map[string]string{}
	for _, b := range d.Ballots {
		m[b.Email] = b.Status
	}
	return m
}

// TestBallotsAfterResend: a member whose first ballot was refused gets it
// again on request, and `ballotd ballots` then shows the copy that reached
// them (sent, 250), not the refused one, and how many copies there are.
func TestBallotsAfterResend(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	refuse := true
	var mu sync.Mutex
	h.hub.SetRcptFault(func(rcpt string) *smtp.SMTPError {
		mu.Lock()
		defer mu.Unlock()
		if refuse && rcpt == "carol@example.net" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "mailbox full"}
		}
		return nil
	})
	h.openRace("alice@example.net,Alice,MA-07\ncarol@example.net,Carol,MA-05\n", "MA-SEN", "Ed Markey")
	stop := h.serve()
	defer stop()
	h.waitSent(1)
	carol := func() ballots.BallotDelivery {
		for _, b := range h.deliveries("MA-SEN").Ballots {
			if b.Email == "carol@example.net" {
				return b
			}
		}
		t.Fatal("carol has no ballot")
		return ballots.BallotDelivery{}
	}
	// carolWhen waits (bounded) for carol's ballot to reach status.
	carolWhen := func(status string) ballots.BallotDelivery {
		var c ballots.BallotDelivery
		testenv.Poll(30*time.Second, func() bool { c = carol(); return c.Status == status })
		return c
	}
	c := carolWhen(ballots.DeliveryFailed)
	if c.Status != ballots.DeliveryFailed || c.Copies != 1 || c.Code == nil || *c.Code != 550 {
		t.Fatalf("before the resend: %+v, want failed, 1 copy, 550", c)
	}
	if tl := h.tally(); tl.Reachable != 1 {
		t.Errorf("before the resend: reachable %d, want 1 (carol's ballot failed)", tl.Reachable)
	}

	mu.Lock()
	refuse = false
	mu.Unlock()
	h.reply("carol@example.net", "ballots+resend@example.org", "From: carol@example.net\nTo: ballots+resend@example.org\n"+
		"Subject: resend\nMessage-ID: <carol-resend@example.net>\n\nMy ballot never came.\n")
	if again := parseSent(t, h.waitSent(2)[1]); again.To != "carol@example.net" || again.Code == "" {
		t.Fatalf("second message: to %s code %q, want carol's ballot", again.To, again.Code)
	}
	if c = carolWhen(ballots.DeliverySent); c.Status != ballots.DeliverySent || c.Copies != 2 || c.Code == nil || *c.Code != 250 {
		t.Fatalf("after the resend: %+v, want sent, 2 copies, 250", c)
	}
	if tl := h.tally(); tl.Reachable != 2 {
		t.Errorf("after the resend: reachable %d, want 2 (the copy sent on request reached carol)", tl.Reachable)
	}
	if text := h.ballotd("ballots", "MA-SEN", "--status", "sent"); !regexp.MustCompile(`carol@example\.net\s+Carol\s+sent\s+250 .*\(sent again once on request\)`).MatchString(text) {
		t.Errorf("ballots --status sent:\n%s", text)
	}
}
