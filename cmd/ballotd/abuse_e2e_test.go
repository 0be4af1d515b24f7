package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// The abuse of issue 17 over the real daemon, IMAP and SMTP (the hub) and
// PostgreSQL: forged mail must not make ballotd mail strangers in bulk,
// move a member, or act on commands its mail server did not authenticate.

// waitHandled waits until ballotd has handled n inbound messages (a
// bounded wait for the reader, not a timing assertion). The bound is wide:
// reading the 4 MB nomination of the sign-up flood takes serve some 15 s of
// CPU (inbound.isQuoteHeader's pattern on every line), which on a loaded
// machine running the other tests beside it can be a minute or more.
func (h *harness) waitHandled(n int) {
	h.t.Helper()
	db := h.db()
	var got int
	handled := testenv.Poll(3*time.Minute, func() bool {
		if err := db.Get(&got, `SELECT count(*) FROM inbound_messages WHERE processed_at IS NOT NULL`); err != nil {
			h.t.Fatal(err)
		}
		return got >= n
	})
	if !handled {
		h.t.Fatalf("ballotd handled %d messages, want %d", got, n)
	}
}

// outboxRows is how many rows the outbox holds (every mail ballotd ever
// decided to send).
func (h *harness) outboxRows() int {
	h.t.Helper()
	var n int
	if err := h.db().Get(&n, `SELECT count(*) FROM outbox`); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// TestAbuseEndToEndSignUpFlood: a 4 MB form and 40 sign-ups forged in
// strangers' names (10 from one victim, 30 from invented addresses) send
// no more than the hourly cap of strangers, the victim no more than the
// daily cap, each answer a few KB; what was held back is counted in the
// staff digest.
func TestAbuseEndToEndSignUpFlood(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_STRANGER_ANSWERS_PER_HOUR"] = "10"
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	h.ballotd("migrate")
	h.ballotd("import", "members", h.file("members.csv", "email,name,district\nalice@example.net,Alice,MA-07\n"))
	stop := h.serve()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	h.reply("victim@elsewhere.example", "ballots+nominate@example.org", "From: victim@elsewhere.example\nTo: ballots+nominate@example.org\n"+
		"Subject: Nomination\nMessage-ID: <huge@evil.example>\n\nGroup: Nobody\nCandidate: X\n"+strings.Repeat("Lorem ipsum dolor sit amet.\n", 4<<20/28))
	for i := range 10 {
		h.reply("victim@elsewhere.example", "ballots+join@example.org", fmt.Sprintf("From: victim@elsewhere.example\nTo: ballots+join@example.org\n"+
			"Subject: join\nMessage-ID: <v%d@evil.example>\n\nName: Click http://evil.example now\nDistrict: MA-07\n", i))
	}
	for i := range 30 {
		from := fmt.Sprintf("invented%d@nowhere.example", i)
		h.reply(from, "ballots+join@example.org", fmt.Sprintf("From: %s\nTo: ballots+join@example.org\nSubject: join\nMessage-ID: <i%d@evil.example>\n\nDistrict: MA-07\n", from, i))
	}
	h.waitHandled(41)
	sent := h.waitSent(10)
	if n := h.outboxRows(); n != 10 {
		t.Fatalf("ballotd decided to send %d mails, want the cap of 10", n)
	}
	toVictim := 0
	for _, e := range sent {
		if len(e.Data) > 24<<10 {
			t.Errorf("a %d-byte answer to %v", len(e.Data), e.To)
		}
		if parseSent(t, e).To == "victim@elsewhere.example" {
			toVictim++
		}
	}
	if toVictim != 3 { // the form's problems and two sign-up confirmations
		t.Errorf("mails to the victim = %d, want 3", toVictim)
	}
	var pending int
	if err := h.db().Get(&pending, `SELECT count(*) FROM members WHERE status = 'pending'`); err != nil || pending != 8 {
		t.Errorf("pending members = %d (%v), want 8: the victim and the 7 invented addresses mailed", pending, err)
	}
	stop()
	stop = nil
	d := h.digest(", 31 answers held back by the rate limit")
	if !strings.Contains(d.Body, "31 answers held back by the rate limit") {
		t.Errorf("the digest does not count the 31 answers held back:\n%s", d.Body)
	}
}

// TestAbuseEndToEndMemberTakeover: a sign-up forged from an active
// member's address does not move them; their registered address is asked
// to confirm the change, stated old -> new, and only its reply applies it.
func TestAbuseEndToEndMemberTakeover(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ballotd("migrate")
	h.ballotd("import", "members", h.file("members.csv", "email,name,district\nalice@example.net,Alice Adams,MA-07\n"))
	stop := h.serve()
	defer stop()
	member := func() (name, district string) {
		t.Helper()
		if err := h.db().QueryRow(`SELECT name, district FROM members WHERE email = 'alice@example.net'`).Scan(&name, &district); err != nil {
			t.Fatal(err)
		}
		return
	}
	h.reply("alice@example.net", "ballots+join@example.org", "From: Alice <alice@example.net>\nTo: ballots+join@example.org\nSubject: join\n"+
		"Message-ID: <forged-1@evil.example>\n\nName: Mallory\nDistrict: NY-10\n")
	ask := parseSent(t, h.waitSent(1)[0])
	if ask.To != "alice@example.net" || ask.Subject != "Confirm the change to your sign-up" || !strings.HasPrefix(ask.ReplyTo, "ballots+c-") ||
		!strings.Contains(ask.Body, "Dear Alice Adams,") || !strings.Contains(ask.Body, "Alice Adams -> Mallory") || !strings.Contains(ask.Body, "MA-07 -> NY-10") {
		t.Fatalf("want a confirmation request stating the change, got %+v", ask)
	}
	if n, d := member(); n != "Alice Adams" || d != "MA-07" {
		t.Fatalf("alice was changed without confirming: %q %s", n, d)
	}
	h.reply("alice@example.net", ask.ReplyTo, fmt.Sprintf("From: alice@example.net\nTo: %s\nSubject: Re: %s\nMessage-ID: <yes-1@example.net>\n\nyes\n", ask.ReplyTo, ask.Subject))
	welcome := parseSent(t, h.waitSent(2)[1])
	if welcome.To != "alice@example.net" || !strings.Contains(welcome.Body, "NY-10") {
		t.Fatalf("want the welcome to NY-10, got %+v", welcome)
	}
	if n, d := member(); n != "Mallory" || d != "NY-10" {
		t.Fatalf("after her confirmation alice is %q %s", n, d)
	}
}

// TestAbuseEndToEndForgedCommands: with BALLOTD_AUTHSERV_ID set, a staff
// APPROVE, a leader's WITHDRAW, a member's change and a stranger's
// nomination are not acted on without a pass from the trusted server
// (no Authentication-Results, a fail, or another server's pass): kept in
// quarantine, a notice to registered addresses only. With a pass, the
// command runs.
func TestAbuseEndToEndForgedCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	h.env["BALLOTD_AUTHSERV_ID"] = "mx.example.org"
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("groups.csv", "name,state,district,leader_email,leader_name\n"+
		"Indivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n"))
	h.ballotd("import", "members", h.file("members.csv", "email,name,district\nalice@example.net,Alice,MA-07\n"))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "Spring",
		"--nominations-close", now.Add(time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(time.Hour).Format(time.RFC3339),
		"--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	stop := h.serve()
	defer stop()
	const (
		pass       = "Authentication-Results: mx.example.org; dkim=pass header.d=somerville.example; dmarc=pass header.from=somerville.example\n"
		fail       = "Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=evil.example; dmarc=fail header.from=example.org\n"
		forgedPass = "Authentication-Results: evil.example; dmarc=pass header.from=example.net\n"
		form       = "Group: Indivisible Somerville\nCandidate: Ayanna Pressley\nOffice: House\nDistrict: MA-07\nLocal endorsement: yes\nReason for endorsement:\nShe fights.\n"
	)
	h.reply("lead@somerville.example", "ballots+nominate@example.org", pass+"From: lead@somerville.example\nTo: ballots+nominate@example.org\n"+
		"Subject: nomination\nMessage-ID: <n1@somerville.example>\n\n"+form)
	notice := sentTo(t, parseAll(t, h, 2), "staff@example.org")[0]
	var candidates []struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	status := func() string {
		t.Helper()
		if err := json.Unmarshal([]byte(h.ballotd("candidates", "--json")), &candidates); err != nil || len(candidates) != 1 {
			t.Fatalf("candidates: %+v %v", candidates, err)
		}
		return candidates[0].Status
	}
	status()
	approve := fmt.Sprintf("APPROVE %d", candidates[0].ID)
	forged := []struct{ from, to, raw string }{
		{"staff@example.org", notice.ReplyTo, "From: staff@example.org\nTo: " + notice.ReplyTo + "\nSubject: Re: vet\nMessage-ID: <s1@evil.example>\n\n" + approve + "\n"},
		{"staff@example.org", notice.ReplyTo, fail + "From: staff@example.org\nTo: " + notice.ReplyTo + "\nSubject: Re: vet\nMessage-ID: <s2@evil.example>\n\n" + approve + "\n"},
		{"lead@somerville.example", "ballots+nominate@example.org", forgedPass + "From: lead@somerville.example\nTo: ballots+nominate@example.org\nSubject: Re: nomination\nMessage-ID: <w1@evil.example>\n\nWITHDRAW 1\n"},
		{"alice@example.net", "ballots+join@example.org", fail + "From: alice@example.net\nTo: ballots+join@example.org\nSubject: join\nMessage-ID: <j1@evil.example>\n\nDistrict: NY-10\n"},
		{"mallory@evil.example", "ballots+nominate@example.org", "From: mallory@evil.example\nTo: ballots+nominate@example.org\nSubject: nomination\nMessage-ID: <n2@evil.example>\n\n" + form},
	}
	for _, f := range forged {
		h.reply(f.from, f.to, f.raw)
	}
	h.waitHandled(1 + len(forged))
	// Notices: staff two (one per command), the leader and alice one each; none to the stranger.
	sent := parseAll(t, h, 2+4)
	if n := h.outboxRows(); n != 2+4 {
		t.Fatalf("ballotd decided to send %d mails, want the 2 answers to the nomination and 4 notices", n)
	}
	for addr, want := range map[string]int{"staff@example.org": 3, "lead@somerville.example": 2, "alice@example.net": 1, "mallory@evil.example": 0} {
		if got := sentTo(t, sent, addr); len(got) != want {
			t.Errorf("%s got %d mails, want %d", addr, len(got), want)
		}
	}
	for _, n := range sent[2:] {
		if n.Subject != "A message in your name was not acted on" {
			t.Errorf("notice to %s: %q", n.To, n.Subject)
		}
	}
	if s := status(); s != "nominated" {
		t.Fatalf("candidate is %s after forged commands, want nominated", s)
	}
	var district string
	if err := h.db().Get(&district, `SELECT district FROM members WHERE email = 'alice@example.net'`); err != nil || district != "MA-07" {
		t.Fatalf("alice's district %s (%v)", district, err)
	}
	var qs []ballots.QuarantineEntry
	if err := json.Unmarshal([]byte(h.ballotd("quarantine", "list", "--json")), &qs); err != nil {
		t.Fatal(err)
	}
	if len(qs) != len(forged) {
		t.Fatalf("quarantine holds %d, want the %d forged messages", len(qs), len(forged))
	}
	for _, q := range qs {
		if q.Outcome != "unauthenticated" {
			t.Errorf("quarantined %d: %s", q.ID, q.Outcome)
		}
	}
	// The real staff, authenticated.
	h.reply("staff@example.org", notice.ReplyTo, "Authentication-Results: mx.example.org; dmarc=pass header.from=example.org\n"+
		"From: staff@example.org\nTo: "+notice.ReplyTo+"\nSubject: Re: vet\nMessage-ID: <s3@example.org>\n\n"+approve+"\n")
	if ans := parseAll(t, h, 7)[6]; !strings.Contains(ans.Body, "is approved") {
		t.Fatalf("want the APPROVE answered, got %+v", ans)
	}
	if s := status(); s != "approved" {
		t.Fatalf("candidate is %s, want approved", s)
	}
}

// TestStrangerAnswersConfig: BALLOTD_STRANGER_ANSWERS_PER_HOUR is a
// count; 0 means none (the processor's negative), unset the default.
func TestStrangerAnswersConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		value string
		want  int
		ok    bool
	}{{"", 0, true}, {"10", 10, true}, {"0", -1, true}, {"-3", 0, false}, {"many", 0, false}} {
		env := map[string]string{"DATABASE_URL": "postgres://x", "BALLOTD_STRANGER_ANSWERS_PER_HOUR": c.value}
		cfg, err := loadConfig(func(k string) string { return env[k] }, need{})
		if (err == nil) != c.ok || err == nil && cfg.StrangerAnswers != c.want {
			t.Errorf("%q: %d, %v; want %d, ok=%v", c.value, cfg.StrangerAnswers, err, c.want, c.ok)
		}
	}
}
