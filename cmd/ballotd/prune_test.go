package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// TestPruneAfterRetention: a wave closed longer ago than BALLOTD_RETAIN
// loses the raw bytes of its mail and the words its answers quoted, and
// keeps its votes, receipts and tally (a recount agrees); an open wave and
// a recently closed one keep everything; --dry-run changes nothing; a reply
// read again after the prune is still a duplicate; a pruned message cannot
// be replayed.
func TestPruneAfterRetention(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_RETAIN"] = "off" // serve's daily prune stays out of the way; the commands set it
	h.openRace("alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-02\ncarol@example.net,Carol,MA-05\n", "MA-SEN", "Ed Markey")
	db, err := sqlx.Open("postgres", h.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	stop := h.serve()
	march := map[string]ballotOf{}
	for _, e := range h.waitSent(3) {
		b := parseSent(t, e)
		march[b.To] = b
	}
	a, b := march["alice@example.net"], march["bob@example.net"]
	aliceReply := fmt.Sprintf("From: alice@example.net\nTo: %s\nSubject: Re: %s\nMessage-ID: <alice-march@example.net>\n\nYes\n\n> %s\n",
		a.ReplyTo, a.Subject, strings.ReplaceAll(a.Body, "\n", "\n> "))
	h.reply("alice@example.net", a.ReplyTo, aliceReply)
	h.reply("bob@example.net", b.ReplyTo, fmt.Sprintf("From: bob@example.net\nTo: %s\nSubject: Re: ballot\nMessage-ID: <bob-march-1@example.net>\n\nHmm, let me think about my private matters first.\n", b.ReplyTo))
	h.waitSent(5) // alice's receipt, bob's clarification (quoting him)
	h.reply("bob@example.net", b.ReplyTo, fmt.Sprintf("From: bob@example.net\nTo: %s\nSubject: Re: ballot\nMessage-ID: <bob-march-2@example.net>\n\nNO\n", b.ReplyTo))
	h.waitSent(6)
	h.ballotd("race", "close", "MA-SEN")
	h.waitSent(9) // the announcements
	stop()
	frozen := h.ballotd("tally", "MA-SEN", "--json")

	prune := func(args ...string) ballots.PruneReport {
		t.Helper()
		h.env["BALLOTD_RETAIN"] = "180"
		defer func() { h.env["BALLOTD_RETAIN"] = "off" }()
		var rep ballots.PruneReport
		out := h.ballotd(append([]string{"prune", "--json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("prune --json: %v\n%s", err, out)
		}
		return rep
	}
	type state struct {
		Messages, RawBytes, EmptyRaw, Votes, Outbox, Quotes int
	}
	snapshot := func() state {
		t.Helper()
		var s state
		err := db.QueryRow(`SELECT (SELECT count(*) FROM inbound_messages), (SELECT coalesce(sum(octet_length(raw)), 0) FROM inbound_messages),
			(SELECT count(*) FROM inbound_messages WHERE raw = ''), (SELECT count(*) FROM votes), (SELECT count(*) FROM outbox),
			(SELECT count(*) FROM outbox WHERE data ? 'quote')`).Scan(&s.Messages, &s.RawBytes, &s.EmptyRaw, &s.Votes, &s.Outbox, &s.Quotes)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Closed a moment ago: nothing is past retention.
	before := snapshot()
	if before.Messages != 3 || before.Votes != 2 || before.Quotes != 1 || before.EmptyRaw != 0 {
		t.Fatalf("after the March wave: %+v; want 3 messages, 2 votes, 1 clarification quoting", before)
	}
	if rep := prune(); len(rep.Waves) != 0 || rep.Inbound.Rows != 0 || rep.Outbox.Rows != 0 {
		t.Fatalf("prune right after the close: %+v; want nothing", rep)
	}

	// March closed 201 days ago; April is open now, with a vote.
	for _, q := range []string{
		`UPDATE waves SET nominations_close = nominations_close - interval '201 days', voting_open = voting_open - interval '201 days',
			voting_close = voting_close - interval '201 days' WHERE name = 'March'`,
		`UPDATE races SET opened_at = opened_at - interval '201 days', closed_at = closed_at - interval '201 days'`,
		`UPDATE inbound_messages SET received_at = received_at - interval '201 days'`,
		`UPDATE votes SET cast_at = cast_at - interval '201 days'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "April",
		"--nominations-close", now.Add(-time.Hour).Format(time.RFC3339),
		"--voting-open", now.Format(time.RFC3339),
		"--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-GOV", "--name", "Maura Healey", "--wave", "April")
	h.ballotd("race", "open", "MA-GOV")
	stop = h.serve()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	var aprilAlice ballotOf
	for _, e := range h.waitSent(12)[9:] {
		if p := parseSent(t, e); p.To == "alice@example.net" {
			aprilAlice = p
		}
	}
	h.reply("alice@example.net", aprilAlice.ReplyTo, fmt.Sprintf("From: alice@example.net\nTo: %s\nSubject: Re: %s\nMessage-ID: <alice-april@example.net>\n\nYES\n",
		aprilAlice.ReplyTo, aprilAlice.Subject))
	h.waitSent(13)
	var aprilRaw int64
	if err := db.Get(&aprilRaw, `SELECT octet_length(raw) FROM inbound_messages WHERE message_key LIKE '%alice-april%'`); err != nil {
		t.Fatal(err)
	}
	var marchRaw int64
	if err := db.Get(&marchRaw, `SELECT sum(octet_length(raw)) FROM inbound_messages WHERE message_key NOT LIKE '%alice-april%'`); err != nil {
		t.Fatal(err)
	}

	// A dry run says what would go and changes nothing.
	before = snapshot()
	dry := prune("--dry-run")
	if !dry.DryRun || fmt.Sprint(dry.Waves) != "[March]" || dry.Inbound.Rows != 3 || dry.Inbound.Bytes != marchRaw || dry.Outbox.Rows == 0 || dry.Outbox.Bytes == 0 {
		t.Fatalf("prune --dry-run = %+v; want March's 3 messages (%d bytes) and its answers", dry, marchRaw)
	}
	h.env["BALLOTD_RETAIN"] = "180d"
	text := h.ballotd("prune", "--dry-run")
	h.env["BALLOTD_RETAIN"] = "off"
	if !strings.Contains(text, "1 waves closed before") || !strings.Contains(text, ": March\n") ||
		!strings.Contains(text, fmt.Sprintf("would prune (dry run, nothing changed): raw bytes of 3 inbound messages (%s)", byteText(marchRaw))) {
		t.Errorf("prune --dry-run says:\n%s", text)
	}
	t.Logf("ballotd prune --dry-run:\n%s", text)
	if after := snapshot(); after != before {
		t.Fatalf("prune --dry-run changed the database: %+v, was %+v", after, before)
	}

	// The prune removes what the dry run said, and only that.
	rep := prune()
	if rep.DryRun || fmt.Sprint(rep.Waves) != "[March]" || rep.Inbound != dry.Inbound || rep.Outbox != dry.Outbox {
		t.Fatalf("prune = %+v; want what the dry run said: %+v", rep, dry)
	}
	t.Logf("pruned %d inbound messages (%d bytes) and %d outbox rows (%d bytes)", rep.Inbound.Rows, rep.Inbound.Bytes, rep.Outbox.Rows, rep.Outbox.Bytes)
	after := snapshot()
	if after.Messages != before.Messages || after.Votes != before.Votes || after.Outbox != before.Outbox ||
		after.EmptyRaw != 3 || after.RawBytes != int(aprilRaw) || after.Quotes != 0 {
		t.Fatalf("after the prune: %+v (was %+v); want every row kept, March's 3 messages empty, April's %d bytes kept, no quote", after, before, aprilRaw)
	}
	var receipts int
	if err := db.Get(&receipts, `SELECT count(*) FROM outbox WHERE data ? 'receipt'`); err != nil {
		t.Fatal(err)
	}
	if receipts != 3 {
		t.Errorf("%d outbox rows keep their receipt, want 3 (alice and bob in March, alice in April)", receipts)
	}
	if got := h.ballotd("tally", "MA-SEN", "--json"); got != frozen {
		t.Errorf("the frozen tally changed:\n%s\nwas\n%s", got, frozen)
	}
	if recount := h.ballotd("tally", "MA-SEN", "--recount", "--json"); recount != frozen {
		t.Errorf("a recount after the prune does not reproduce the frozen tally:\n%s\nwant\n%s", recount, frozen)
	}
	if again := prune(); again.Inbound.Rows != 0 || again.Outbox.Rows != 0 {
		t.Errorf("a second prune found more: %+v", again)
	}

	// Alice's March reply delivered again: its Message-ID is still known,
	// so it changes nothing and is not answered.
	h.reply("alice@example.net", a.ReplyTo, aliceReply)
	testenv.Eventually(t, 30*time.Second, func() bool { return allSeen(t, h) }, "the reply delivered again handled")
	if again := snapshot(); again != after {
		t.Errorf("a reply read again after the prune changed the database: %+v, was %+v", again, after)
	}

	// A pruned message cannot be replayed.
	var id int64
	if err := db.Get(&id, `SELECT id FROM inbound_messages WHERE message_key LIKE '%bob-march-1%'`); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := h.try("quarantine", "replay", fmt.Sprint(id)); code == 0 || !strings.Contains(errOut, "pruned") {
		t.Errorf("quarantine replay of a pruned message: exit %d, %q; want a failure saying it was pruned", code, errOut)
	}
	stop()
	stop = nil
}

// allSeen reports whether serve has handled every message in the ballot
// mailbox (it flags each \Seen after its transaction commits).
func allSeen(t *testing.T, h *harness) bool {
	t.Helper()
	msgs, err := h.hub.Inbox("ballots@example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if !strings.Contains(strings.Join(m.Flags, " "), `\Seen`) {
			return false
		}
	}
	return true
}

func TestParseRetain(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", 180 * 24 * time.Hour, false},
		{"off", 0, false},
		{"0", 0, false},
		{"30", 30 * 24 * time.Hour, false},
		{"30d", 30 * 24 * time.Hour, false},
		{"720h", 720 * time.Hour, false},
		{"-3", 0, true},
		{"soon", 0, true},
	} {
		got, err := parseRetain(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("parseRetain(%q) = %v, %v; want %v (error %v)", c.in, got, err, c.want, c.bad)
		}
	}
}
