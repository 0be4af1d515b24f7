package inbound

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

func TestReplayAfterFixCountsOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "alice@example.net")
	raw := w.reply("alice@example.net", "v-"+tok, "Re: ballot", "YES")
	// A processor configured for the wrong domain cannot read the reply: it
	// is quarantined.
	good := w.p
	w.p = &Processor{Store: w.st, Tokens: w.toks, Box: message.Mailbox{Local: "ballots", Domain: "wrong.example"}}
	res := w.handle(raw)
	if res.Outcome != OutcomeQuarantined {
		t.Fatalf("misconfigured: outcome %q, want quarantined", res.Outcome)
	}
	qs, err := w.st.Quarantine(w.ctx)
	if err != nil || len(qs) != 1 || qs[0].ID != res.InboundID || qs[0].From != "alice@example.net" {
		t.Fatalf("quarantine = %+v, %v", qs, err)
	}
	// Fixed: replay counts the vote, and takes it out of quarantine.
	w.p = good
	for i := range 3 {
		rr, err := w.p.Replay(w.ctx, res.InboundID)
		if err != nil {
			t.Fatal(err)
		}
		if rr.Outcome != OutcomeCounted {
			t.Fatalf("replay %d: outcome %q, want counted", i, rr.Outcome)
		}
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=1" {
		t.Fatalf("tally after 3 replays = %s", got)
	}
	if n := w.count(`SELECT count(*) FROM votes`); n != 1 {
		t.Fatalf("votes = %d, want 1", n)
	}
	if n := w.answers(templates.KindReceipt); n != 1 {
		t.Fatalf("receipts = %d, want 1", n)
	}
	qs, _ = w.st.Quarantine(w.ctx)
	if len(qs) != 0 {
		t.Fatalf("still quarantined: %+v", qs)
	}
	if _, err := w.p.Replay(w.ctx, 99999); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("replay of a missing id: %v", err)
	}
}

// dsn is an RFC 3464 report addressed to to, about the outbox row whose
// Message-ID is msgID.
func dsn(to, msgID, status, diag string) []byte {
	return []byte("From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n" +
		"To: " + to + "\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Message-ID: <dsn-" + status + "-" + msgID + "@mx.example.net>\r\nAuto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n" +
		"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n" +
		"Final-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: " + status + "\r\n" +
		"Diagnostic-Code: smtp; " + diag + "\r\n" +
		"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: ballots@example.org\r\nTo: bob@example.net\r\n" +
		"Message-ID: <" + msgID + ">\r\nSubject: Your ballot\r\n" +
		"--B--\r\n")
}

func TestBouncesMapBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var oid, member int64
	if err := w.db.QueryRow(`SELECT o.id, o.member_id FROM outbox o JOIN members m ON m.id = o.member_id
		WHERE m.email = 'bob@example.net' ORDER BY o.id LIMIT 1`).Scan(&oid, &member); err != nil {
		t.Fatal(err)
	}
	verp := "ballots+b-" + w.toks.Make(token.Bounce, oid, nil) + "@example.org"
	msgID := w.toks.Make(token.MessageID, oid, nil) + "@example.org"

	// Soft, found by the returned Message-ID only (sent to the bare address).
	res := w.handle(dsn("ballots@example.org", msgID, "4.2.2", "452 4.2.2 Mailbox full"))
	if res.Class != message.ClassBounce || res.Outcome != OutcomeBounced {
		t.Fatalf("soft bounce: %+v", res)
	}
	st, err := ballots.MemberBounceState(w.ctx, w.db, member)
	if err != nil || st.Status != "active" || st.SoftBounces != 1 {
		t.Fatalf("after a soft bounce: %+v, %v", st, err)
	}
	// Hard, through the VERP address.
	res = w.handle(dsn(verp, "other@elsewhere.example", "5.1.1", "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown"))
	if res.Outcome != OutcomeBounced {
		t.Fatalf("hard bounce: %+v", res)
	}
	st, _ = ballots.MemberBounceState(w.ctx, w.db, member)
	if st.Status != "bounced" {
		t.Fatalf("after a hard bounce: %+v", st)
	}
	var status, diag string
	var hard bool
	if err := w.db.QueryRow(`SELECT bounce_status, bounce_diagnostic, bounce_hard FROM outbox WHERE id = $1`, oid).Scan(&status, &diag, &hard); err != nil {
		t.Fatal(err)
	}
	if status != "5.1.1" || !hard || !strings.Contains(diag, "User unknown") {
		t.Fatalf("outbox bounce columns = %q %q %v", status, diag, hard)
	}
	// A forged VERP token and an unknown Message-ID map to nothing.
	forged := "ballots+b-" + w.toks.Make(token.Ballot, oid, nil) + "@example.org"
	res = w.handle(dsn(forged, "nothing@example.org", "5.1.1", "550 unknown"))
	if res.Outcome != OutcomeIgnored {
		t.Fatalf("forged bounce: %+v", res)
	}
	// Nothing was ever answered, and a bounced member gets no more ballots.
	if n := w.count(`SELECT count(*) FROM outbox WHERE kind <> 'ballot'`); n != 0 {
		t.Fatalf("%d answers to bounces", n)
	}
	if _, err := w.st.AddCandidate(w.ctx, "MA-GOV", "", "Maura Healey", "", nil); err != nil {
		t.Fatal(err)
	}
	if n, err := w.st.OpenRace(w.ctx, "MA-GOV"); err != nil || n != 3 {
		t.Fatalf("open MA-GOV = %d, %v; want 3 (not bob)", n, err)
	}
}

func TestAnswerLimit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "alice@example.net")
	for i := range 50 {
		res := w.handle(w.reply("alice@example.net", "v-"+tok, "Re: ballot", fmt.Sprintf("maybe %d", i)))
		if res.Outcome != OutcomeUnclear {
			t.Fatalf("reply %d: %q", i, res.Outcome)
		}
	}
	if n := w.answers(templates.KindClarify); n != 1 {
		t.Fatalf("clarifications = %d, want 1", n)
	}
	// The outcome is still recorded, with why nothing was sent.
	if n := w.count(`SELECT count(*) FROM inbound_messages WHERE outcome = 'unclear' AND detail LIKE '%already answered today%'`); n != 49 {
		t.Fatalf("limited outcomes = %d, want 49", n)
	}
	// A changed vote gets its receipt; the same vote again does not, so the
	// last receipt always names the vote that stands.
	for _, ans := range []string{"YES", "YES", "NO", "NO", "YES"} {
		if res := w.handle(w.reply("alice@example.net", "v-"+tok, "Re: ballot", ans)); res.Outcome != OutcomeCounted {
			t.Fatalf("%s: %q", ans, res.Outcome)
		}
	}
	if n := w.answers(templates.KindReceipt); n != 3 {
		t.Fatalf("receipts = %d, want 3 (YES, NO, YES)", n)
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=1" {
		t.Fatalf("tally = %s, want alice's latest YES", got)
	}
}

func TestNoAnswerToMachines(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cases := []struct {
		name string
		raw  string
	}{
		{"empty sender", "To: ballots@example.org\r\nSubject: hello\r\nMessage-ID: <e1@x>\r\n\r\nhi\r\n"},
		{"mailer-daemon", "From: MAILER-DAEMON@mx.example.net\r\nTo: ballots@example.org\r\nSubject: hello\r\nMessage-ID: <e2@x>\r\n\r\nhi\r\n"},
		{"postmaster", "From: postmaster@example.net\r\nTo: ballots@example.org\r\nSubject: hello\r\nMessage-ID: <e3@x>\r\n\r\nhi\r\n"},
		{"no-reply", "From: no-reply@example.net\r\nTo: ballots@example.org\r\nSubject: hello\r\nMessage-ID: <e4@x>\r\n\r\nhi\r\n"},
		{"our own address", "From: ballots+join@example.org\r\nTo: ballots@example.org\r\nSubject: hello\r\nMessage-ID: <e5@x>\r\n\r\nhi\r\n"},
		{"null return path", "Return-Path: <>\r\nFrom: someone@example.net\r\nTo: ballots@example.org\r\nSubject: hello\r\nMessage-ID: <e6@x>\r\n\r\nhi\r\n"},
		{"auto-reply", "From: someone@example.net\r\nTo: ballots@example.org\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\nMessage-ID: <e7@x>\r\n\r\naway\r\n"},
		{"bounce", string(dsn("ballots@example.org", "x@y", "5.1.1", "550 no"))},
	}
	for _, c := range cases {
		res := w.handle([]byte(c.raw))
		if res.Outcome == "" {
			t.Errorf("%s: no outcome", c.name)
		}
	}
	if n := w.count(`SELECT count(*) FROM outbox WHERE kind <> 'ballot'`); n != 0 {
		t.Fatalf("%d answers to machines", n)
	}
	// A person writing to the bare address gets one "could not match" answer.
	w.handle([]byte("From: person@example.net\r\nTo: ballots@example.org\r\nSubject: hello\r\nMessage-ID: <p1@x>\r\n\r\nhi\r\n"))
	w.handle([]byte("From: person@example.net\r\nTo: ballots@example.org\r\nSubject: hello again\r\nMessage-ID: <p2@x>\r\n\r\nhi\r\n"))
	if n := w.answers(templates.KindUnmatched); n != 1 {
		t.Fatalf("unmatched answers = %d, want 1", n)
	}
}

func TestSenderAuthenticity(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.p.AuthservID = "mx.example.org, mx2.example.org"
	cases := []struct {
		name    string
		headers []string
		want    string
	}{
		{"dmarc pass", []string{"Authentication-Results: mx.example.org; dmarc=pass header.from=example.net"}, OutcomeCounted},
		{"dmarc fail", []string{"Authentication-Results: mx.example.org; dkim=pass header.d=example.net; dmarc=fail header.from=example.net"}, OutcomeUnauthenticated},
		{"no dmarc, dkim pass aligned", []string{"Authentication-Results: mx.example.org; dkim=pass header.d=example.net; spf=fail smtp.mailfrom=x@evil.example"}, OutcomeCounted},
		{"no dmarc, spf pass aligned", []string{"Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=alice@example.net"}, OutcomeCounted},
		{"no dmarc, dkim pass of another domain", []string{"Authentication-Results: mx.example.org; dkim=pass header.d=evil.example; spf=softfail smtp.mailfrom=x@evil.example"}, OutcomeUnauthenticated},
		{"forged pass from another server above the trusted fail", []string{
			"Authentication-Results: evil.example; dmarc=pass header.from=example.net",
			"Authentication-Results: mx.example.org; dmarc=fail header.from=example.net"}, OutcomeUnauthenticated},
		{"only another server's results", []string{"Authentication-Results: mx.example.net; dmarc=pass header.from=example.net"}, OutcomeUnauthenticated},
		{"no results", nil, OutcomeUnauthenticated},
		{"trusted fail on top, a forged pass under the same id below", []string{
			"Authentication-Results: mx.example.org; dmarc=fail header.from=example.net",
			"Authentication-Results: mx.example.org; dmarc=pass header.from=example.net"}, OutcomeUnauthenticated},
		{"Gmail-style comments", []string{"Authentication-Results: mx.example.org;\r\n       dkim=pass header.i=@example.net header.s=s1 header.b=abc;\r\n" +
			"       spf=pass (example.org: domain of alice@example.net designates 192.0.2.1 as permitted sender) smtp.mailfrom=alice@example.net;\r\n" +
			"       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.net"}, OutcomeCounted},
		{"second of a list of trusted ids", []string{"Authentication-Results: MX2.example.org; dmarc=pass header.from=example.net"}, OutcomeCounted},
	}
	_, tok := w.ballot("MA-07", "alice@example.net")
	for _, c := range cases {
		res := w.handle(w.reply("alice@example.net", "v-"+tok, "Re: ballot", "YES", c.headers...))
		if res.Outcome != c.want {
			t.Errorf("%s: outcome %q, want %q", c.name, res.Outcome, c.want)
		}
	}
	// The notices went to the registered address, never counted.
	if n := w.count(`SELECT count(*) FROM outbox WHERE kind = 'unauthenticated' AND recipient = 'alice@example.net'`); n != 1 {
		t.Fatalf("notices = %d, want 1 (rate-limited)", n)
	}
	if n := w.count(`SELECT count(*) FROM votes`); n != 5 {
		t.Fatalf("votes = %d, want 5", n)
	}
	// Kept for staff: after a configuration fix, a replay counts them.
	qs, err := w.st.Quarantine(w.ctx)
	if err != nil || len(qs) != 6 {
		t.Fatalf("quarantined = %d, %v; want the 6 unauthenticated", len(qs), err)
	}
	msgs := w.rendered(templates.KindUnauthenticated)
	if len(msgs) != 1 || msgs[0].To != "alice@example.net" || !bytes.Contains(msgs[0].Data, []byte("authentication failed")) ||
		!bytes.Contains(msgs[0].Data, []byte("Auto-Submitted: auto-replied")) {
		t.Fatalf("notice = %d messages: %.600s", len(msgs), msgs)
	}
}

// A replayed vote is cast when it arrived: it does not overtake the vote
// the voter sent after it.
func TestReplayDoesNotOvertakeLaterVote(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "alice@example.net")
	good := w.p
	w.p = &Processor{Store: w.st, Tokens: w.toks, Box: message.Mailbox{Local: "ballots", Domain: "wrong.example"}}
	early := w.handle(w.reply("alice@example.net", "v-"+tok, "Re: ballot", "YES"))
	if early.Outcome != OutcomeQuarantined {
		t.Fatalf("early: %q", early.Outcome)
	}
	w.p = good
	if res := w.handle(w.reply("alice@example.net", "v-"+tok, "Re: ballot", "NO")); res.Outcome != OutcomeCounted {
		t.Fatalf("later NO: %q", res.Outcome)
	}
	if res, err := w.p.Replay(w.ctx, early.InboundID); err != nil || res.Outcome != OutcomeCounted {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=0" {
		t.Fatalf("tally = %s, want alice's later NO", got)
	}
	if n := w.count(`SELECT count(*) FROM votes`); n != 2 {
		t.Fatalf("votes = %d, want 2 in the history", n)
	}
	if n := w.answers(templates.KindReceipt); n != 1 {
		t.Fatalf("receipts = %d, want 1 (none for the superseded replay)", n)
	}
}
