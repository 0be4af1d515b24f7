package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/testenv"
)

// TestLogsNeverCarryAVote: the daemon logs one line per message handled
// (Message-ID, class, outcome, race) and never how anyone voted: not the
// choice, not the candidate, not the words of the reply.
func TestLogsNeverCarryAVote(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_LOG_FORMAT"] = "json"
	h.ballotd("migrate")
	h.ballotd("import", "members", h.file("members.csv", "email,name,district\n"+
		"alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\ncarol@example.net,Carol,MA-07\n"))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "March", "--nominations-close", now.Add(-time.Hour).Format(time.RFC3339),
		"--voting-open", now.Format(time.RFC3339), "--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-SEN", "--name", "Ed Markey")
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Jordan Rivera")
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Samira Okafor")
	h.ballotd("race", "open", "MA-SEN")
	h.ballotd("race", "open", "MA-07")
	stop, logs := h.serveLogged()
	defer stop()

	answers := map[string]string{ // recipient and race → the reply's first line
		"alice@example.net MA-SEN": "Yes, gladly",
		"bob@example.net MA-SEN":   "No thank you",
		"alice@example.net MA-07":  "Samira Okafor",
		"bob@example.net MA-07":    "1",
		"carol@example.net MA-07":  "NONE of them",
	}
	n := 0
	// Six ballots (three members, two races): wait for all of them, not
	// the first five, or one the test answers may not be there yet.
	for _, e := range h.waitSent(6) {
		b := parseSent(t, e)
		race := "MA-07"
		if strings.Contains(b.Subject, "MA-SEN") {
			race = "MA-SEN"
		}
		answer, ok := answers[b.To+" "+race]
		if !ok {
			continue
		}
		n++
		h.reply(b.To, b.ReplyTo, fmt.Sprintf("From: %s\nTo: %s\nSubject: Re: %s\nMessage-ID: <log-%d@example.net>\n\n%s\n", b.To, b.ReplyTo, b.Subject, n, answer))
	}
	if n != len(answers) {
		t.Fatalf("replied to %d ballots, want %d", n, len(answers))
	}
	h.waitSent(6 + len(answers)) // the receipts: every vote was handled
	// The log line follows the commit, which the receipt may overtake: a
	// bounded wait for the last one.
	var text string
	testenv.Poll(30*time.Second, func() bool {
		text = logs()
		return strings.Count(text, `"msg":"message handled"`) >= len(answers)
	})

	handled := 0
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if rec["msg"] == "message handled" {
			handled++
			for _, k := range []string{"message_id", "class", "outcome", "race"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("message handled without %s: %s", k, line)
				}
			}
		}
		for k, v := range rec {
			s := strings.ToLower(fmt.Sprint(v))
			for _, never := range []string{"yes", "no thank", "samira", "okafor", "jordan", "rivera", "markey", "none of them", "gladly", "choice"} {
				if strings.Contains(s, never) || strings.Contains(strings.ToLower(k), "choice") {
					t.Errorf("a log line carries %q (%s=%v): %s", never, k, v, line)
				}
			}
		}
	}
	if handled < len(answers) {
		t.Errorf("%d 'message handled' lines, want at least %d", handled, len(answers))
	}
}
