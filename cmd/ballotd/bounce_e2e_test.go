package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/testenv"
)

// TestEndToEndBounce sends ballots over SMTP, returns one as a mail server
// would (a DSN to the VERP envelope sender, through SMTP into the IMAP
// mailbox), and checks the member is marked bounced, gets no ballot in the
// next race, and that nothing answered the bounce.
func TestEndToEndBounce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openRace("alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-02\ncarol@example.net,Carol,MA-05\n", "MA-SEN", "Ed Markey")
	stop := h.serve()
	defer func() { stop() }()
	var bob string
	var msgID string
	for _, e := range h.waitSent(3) {
		if len(e.To) == 1 && e.To[0] == "bob@example.net" {
			bob = e.From
			msgID = parseSent(t, e).MessageID
		}
	}
	if !strings.HasPrefix(bob, "ballots+b-") {
		t.Fatalf("bob's ballot went out with envelope sender %q", bob)
	}
	dsn := fmt.Sprintf("From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\nTo: %s\n"+
		"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <bounce-1@mx.example.net>\nAuto-Submitted: auto-replied\n"+
		"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\n\n"+
		"--R\nContent-Type: text/plain\n\nThis is the mail system at host mx.example.net. Your message could not be delivered.\n\n"+
		"--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"+
		"Final-Recipient: rfc822; bob@example.net\nAction: failed\nStatus: 5.1.1\n"+
		"Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown\n\n"+
		"--R\nContent-Type: text/rfc822-headers\n\nTo: bob@example.net\nMessage-ID: %s\nSubject: Your ballot\n\n--R--\n", bob, msgID)
	h.reply("", bob, dsn)

	db := h.db()
	// A bounded wait for the daemon to read the mailbox.
	var status, bounceStatus string
	testenv.Poll(30*time.Second, func() bool {
		if err := db.QueryRow(`SELECT m.status, o.bounce_status FROM members m JOIN outbox o ON o.member_id = m.id
			WHERE m.email = 'bob@example.net' AND o.kind = 'ballot'`).Scan(&status, &bounceStatus); err != nil {
			t.Fatal(err)
		}
		return status == "bounced"
	})
	if status != "bounced" || bounceStatus != "5.1.1" {
		t.Fatalf("bob: status %q, ballot's bounce status %q; want bounced, 5.1.1", status, bounceStatus)
	}
	h.waitIdle() // whatever the bounce would send, it has sent
	stop()
	stop = func() {}
	if n := len(h.sent()); n != 3 {
		t.Fatalf("%d messages sent, want the 3 ballots only (a bounce is never answered)", n)
	}
	h.ballotd("candidate", "add", "--race", "MA-GOV", "--name", "Maura Healey")
	if out := h.ballotd("race", "open", "MA-GOV"); !strings.Contains(out, "2 ballots") {
		t.Fatalf("race open MA-GOV: %q, want 2 ballots (not bob)", out)
	}
}
