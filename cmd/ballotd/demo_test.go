package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/testenv"
)

// The demo drives a whole wave and checks ballotd's tally against the
// replies it sent itself; the test runs it small and reads its output.
func TestDemoRunsAWave(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// The demo makes its own database and drops it at exit: on a server
	// of its own, so the drop waits for no checkpoint of the test server.
	h.env["DATABASE_URL"] = testenv.ScratchServerURL(t)
	out := filepath.Join(t.TempDir(), "demo")
	stdout := h.ballotd("demo", "--members", "60", "--out", out)
	for _, want := range []string{"[9/9] announcements", "[4/9] nominations", "[5/9] vetting", "MA-SEN (closed)", "MA-07 (closed)", "verified: ballotd's tally equals"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	// One of each kind of mail the demo makes ballotd send, saved and listed.
	for _, f := range []string{"nomination-confirmation.eml", "nomination-problems.eml", "vetting-notice.eml", "staff-answer.eml",
		"ballot.eml", "receipt.eml", "clarification.eml", "reminder.eml", "announcement.eml", "digest-voting.eml", "digest.eml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("demo did not write %s: %v", f, err)
		}
		if !strings.Contains(stdout, "\n  "+f+" ") {
			t.Errorf("demo's where-to-look lines do not list %s:\n%s", f, stdout)
		}
	}
	for _, f := range []string{"endorsements.html", "results.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("demo did not write %s: %v", f, err)
		}
	}
	// Subjects end with the organisation (" — Indivisible"), so they are
	// encoded: read them decoded.
	if b, err := os.ReadFile(filepath.Join(out, "reminder.eml")); err != nil {
		t.Errorf("reminder.eml: %v", err)
	} else if m, err := message.Parse(b); err != nil || !strings.HasPrefix(m.Subject, "Reminder") {
		t.Errorf("reminder.eml is not a reminder: %v", err)
	}
	// Staff saw turnout while the vote was open (the chart), and the results after.
	if b, err := os.ReadFile(filepath.Join(out, "digest-voting.eml")); err != nil || !strings.Contains(string(b), "Content-Type: image/png") {
		t.Errorf("digest-voting.eml has no turnout chart: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "digest.eml")); err != nil || !strings.Contains(string(b), "Ed Markey") || strings.Contains(string(b), "image/png") {
		t.Errorf("digest.eml is not the results digest: %v", err)
	}
	// The demo's organisation sends the mail, ends the subjects and the
	// footer says why the member gets it and how to stop.
	if b, err := os.ReadFile(filepath.Join(out, "ballot.eml")); err != nil {
		t.Error(err)
	} else if m, err := message.Parse(b); err != nil || !strings.HasPrefix(m.Subject, "Your ballot: ") || !strings.HasSuffix(m.Subject, " — Indivisible") ||
		!strings.Contains(m.Text, "You get this because you are a member of Indivisible in MA-") ||
		!strings.Contains(m.Text, "To stop getting these: send any email to ballots+u-") {
		t.Errorf("ballot.eml: subject %q, %v; text:\n%s", m.Subject, err, m.Text)
	}
	page, err := os.ReadFile(filepath.Join(out, "endorsements.html"))
	if !strings.Contains(string(page), "<title>Indivisible: endorsed candidates</title>") {
		t.Error("endorsement page is not titled with the demo's organisation")
	}
	if err != nil || !strings.Contains(string(page), "Ed Markey") || !strings.Contains(string(page), "Indivisible Mass Coalition: Our coordinating board voted to endorse him.") {
		t.Errorf("endorsement page does not name the endorsed candidate with the groups' reasons: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res []struct {
		Race     string `json:"race"`
		Eligible int    `json:"eligible"`
		Voted    int    `json:"voted"`
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res) != 2 || res[0].Eligible != 60 || res[0].Voted == 0 {
		t.Fatalf("results.json = %+v, %v", res, err)
	}
}
