package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/internal/testenv"
)

// ballotd outbox lists the counts and every failure with its SMTP reply.
func TestOutboxCommandShowsFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openRace("alice@example.net,Alice,MA-07\nbob@gone.example,Bob,MA-02\n", "MA-SEN", "Ed Markey")
	h.hub.SetRcptFault(func(rcpt string) *smtp.SMTPError {
		if strings.HasSuffix(rcpt, "@gone.example") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
		}
		return nil
	})
	h.ballotd("send")

	var got struct {
		Counts []struct {
			Kind, Status string
			Count        int
		}
		Failures []struct {
			Recipient, Kind, Reply string
			Code                   int
		}
	}
	if err := json.Unmarshal([]byte(h.ballotd("outbox", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, c := range got.Counts {
		counts[c.Kind+"/"+c.Status] = c.Count
	}
	if counts["ballot/sent"] != 1 || counts["ballot/failed"] != 1 {
		t.Errorf("counts %v; want one ballot sent and one failed", counts)
	}
	if len(got.Failures) != 1 || got.Failures[0].Recipient != "bob@gone.example" || got.Failures[0].Kind != "ballot" ||
		got.Failures[0].Code != 550 || got.Failures[0].Reply != "550 5.1.1 mailbox unavailable" {
		t.Errorf("failures %+v; want bob@gone.example's 550 with its reply", got.Failures)
	}
	text := h.ballotd("outbox")
	for _, want := range []string{"FAILED", "bob@gone.example", "550 5.1.1 mailbox unavailable"} {
		if !strings.Contains(text, want) {
			t.Errorf("outbox listing lacks %q:\n%s", want, text)
		}
	}
}

// bench send runs end to end on a small list and verifies its own count,
// with ballotd sending by BDAT and, with --no-chunking, by DATA.
func TestBenchSendSmall(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["DATABASE_URL"] = testenv.ScratchServerURL(t) // its scratch database, made and dropped there
	for _, c := range []struct{ flag, how string }{{"--no-chunking=false", "sends by BDAT"}, {"--no-chunking", "sends by pipelined DATA"}} {
		out := h.ballotd("bench", "send", "--members", "300", "--conns", "3", c.flag)
		for _, want := range []string{c.how, "ballotd send", "raw go-smtp client", "ratio ballotd/raw", "peak memory", "verified                   300 members"} {
			if !strings.Contains(out, want) {
				t.Errorf("bench output (%s) lacks %q:\n%s", c.flag, want, out)
			}
		}
	}
}

// bench replies runs end to end on a small mailbox and verifies that every
// reply was handled and counted (a YES or NO each, as it sent them).
func TestBenchRepliesSmall(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["DATABASE_URL"] = testenv.ScratchServerURL(t) // its scratch database, made and dropped there
	out := h.ballotd("bench", "replies", "--replies", "60")
	for _, want := range []string{"raw reader", "ballotd reader", "ratio ballotd / raw", "verified: 60 handled, tally voted 60, Ed Markey 40 YES of 60"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
}

// bench scale runs end to end on a small race, more votes than members
// (some ballots vote twice), and checks the tally counts each ballot's
// latest vote.
func TestBenchScaleSmall(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["DATABASE_URL"] = testenv.ScratchServerURL(t) // its scratch database, made and dropped there
	out := h.ballotd("bench", "scale", "--members", "2000", "--votes", "2500", "--runs", "1")
	for _, want := range []string{"tally CODE", "recount CODE", "status", "ballots CODE --status failed", "digest (build)",
		"/metrics", "verified: 2000 eligible, 2000 voted, candidate 1 1200, candidate 2 400"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
}

// send exits 3 when rows were due and none could be sent (the relay is
// down: every row deferred), and 0 once they go.
func TestSendExitsNonZeroWhenNothingWasSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openRace("alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-02\n", "MA-SEN", "Ed Markey")
	relay := h.env["BALLOTD_SMTP_ADDR"]
	h.env["BALLOTD_SMTP_ADDR"] = closedPort(t)
	out, errOut, code := h.try("send")
	if code != 3 || !strings.HasPrefix(out, "2 outbox rows handled: 0 sent, 2 deferred or failed") || !strings.Contains(errOut, "send: none of the 2 rows due could be sent") {
		t.Errorf("send with the relay down: exit %d, stdout %q, stderr %q; want 3", code, out, errOut)
	}
	h.env["BALLOTD_SMTP_ADDR"] = relay
	if _, err := h.db().Exec(`UPDATE outbox SET next_attempt = now()`); err != nil { // the backoff, over
		t.Fatal(err)
	}
	if out, errOut, code := h.try("send"); code != 0 || !strings.HasPrefix(out, "2 outbox rows handled: 2 sent") {
		t.Errorf("send with the relay back: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
