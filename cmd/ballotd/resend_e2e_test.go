package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/testenv"
)

// TestResendBallot: a member who lost their ballot mails ballots+resend@
// (or the plain address with "ballot" in the subject) and gets it again with
// the same code, and a reply to it counts; a stranger gets one neutral
// answer and no ballot; past ResendsPerDay the member gets the neutral
// answer only.
func TestResendBallot(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openRace("alice@example.net,Alice,MA-07\n", "MA-SEN", "Ed Markey")
	stop := h.serve()
	defer stop()
	first := parseSent(t, h.waitSent(1)[0])

	n := 0
	request := func(from, to, subject string) {
		n++
		h.reply(from, to, fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nMessage-ID: <req-%d@example.net>\n\nI lost my ballot, please send it again.\n", from, to, subject, n))
	}
	last := func(want int) ballotOf {
		t.Helper()
		s := h.waitSent(want)
		if len(s) != want {
			t.Fatalf("sent %d messages, want %d", len(s), want)
		}
		return parseSent(t, s[want-1])
	}

	request("alice@example.net", "ballots+resend@example.org", "resend")
	again := last(2)
	if again.To != "alice@example.net" || again.Code != first.Code || again.ReplyTo != first.ReplyTo || again.Subject != first.Subject {
		t.Fatalf("resent ballot: to %s code %s reply-to %s subject %q; want the first ballot's (%s, %s)",
			again.To, again.Code, again.ReplyTo, again.Subject, first.Code, first.ReplyTo)
	}
	h.reply("alice@example.net", again.ReplyTo, fmt.Sprintf("From: alice@example.net\nTo: %s\nSubject: Re: %s\nMessage-ID: <alice-vote@example.net>\n\nYES\n", again.ReplyTo, again.Subject))
	if r := last(3); !strings.HasPrefix(r.Subject, "Vote received") {
		t.Fatalf("after voting on the resent ballot: %q, want a receipt", r.Subject)
	}
	if tl := h.tally(); tl.Voted != 1 {
		t.Fatalf("tally voted = %d, want 1", tl.Voted)
	}

	// A stranger: one neutral answer, no ballot; a second request, nothing.
	request("mallory@example.com", "ballots@example.org", "my ballot")
	neutral := last(4)
	if neutral.To != "mallory@example.com" || !strings.Contains(strings.Join(strings.Fields(neutral.Body), " "), "If this address has an open ballot, it is on its way") ||
		neutral.Code != "" {
		t.Fatalf("stranger's answer: to %s, %q", neutral.To, neutral.Body)
	}

	// Alice: requests 2 and 3 of the day are served, the 4th gets the
	// neutral answer, worded exactly as the stranger's.
	request("alice@example.net", "ballots@example.org", "Ballot please")
	if b := last(5); b.Code != first.Code {
		t.Fatalf("request 2: %q, want the ballot", b.Subject)
	}
	request("alice@example.net", "ballots+resend@example.org", "resend")
	if b := last(6); b.Code != first.Code {
		t.Fatalf("request 3: %q, want the ballot", b.Subject)
	}
	request("alice@example.net", "ballots+resend@example.org", "my ballot")
	over := last(7)
	if over.Code != "" || over.Subject != neutral.Subject ||
		strings.ReplaceAll(over.Body, "alice@example.net", "") != strings.ReplaceAll(neutral.Body, "mallory@example.com", "") {
		t.Fatalf("request 4: %q\n%s\nwant the neutral answer\n%s", over.Subject, over.Body, neutral.Body)
	}
	// The stranger's second request: nothing more. Alice's 5th: nothing
	// (the neutral answer is once a day). Wait for both to be read.
	request("mallory@example.com", "ballots@example.org", "my ballot")
	request("alice@example.net", "ballots+resend@example.org", "resend")
	db := h.db()
	testenv.Poll(30*time.Second, func() bool {
		var done int
		if err := db.Get(&done, `SELECT count(*) FROM inbound_messages WHERE class = 'resend' AND processed_at IS NOT NULL`); err != nil {
			t.Fatal(err)
		}
		return done == 7
	})
	h.waitIdle() // whatever the two requests would send, it has sent
	var rows []struct {
		Key     string `db:"message_key"`
		Outcome string `db:"outcome"`
	}
	if err := db.Select(&rows, `SELECT message_key, outcome FROM inbound_messages WHERE class = 'resend' ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 {
		t.Fatalf("resend requests read = %+v, want 7", rows)
	}
	if s := h.sent(); len(s) != 7 {
		t.Fatalf("sent %d messages, want 7 (no more answers today)", len(s))
	}
}
