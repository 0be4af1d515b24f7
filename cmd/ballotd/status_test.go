package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/testenv"
)

// ballotd status: the current races with eligible, voted and turnout, the
// outbox by status, the quarantine, and serve's /healthz when it runs (and
// why not when it does not). race open says how many ballots, how fast.
func TestStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openRace("alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\ncarol@example.net,Carol,MA-02\n", "MA-SEN", "Ed Markey")
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Jordan Rivera")
	if out := h.ballotd("race", "open", "ma-7"); !regexp.MustCompile(`^race MA-07 open: 2 ballots queued in \S+ \([\d,]+ ballots/s\)\n$`).MatchString(out) {
		t.Errorf("race open ma-7 said %q; want the count, the time and the rate", out)
	}

	out := h.ballotd("status")
	for _, want := range []string{
		"outbox:     5 queued, 0 sending, 0 deferred, 0 sent, 0 failed; oldest unsent: ",
		"quarantine: 0 messages kept for staff\n",
		"database:   OK\n",
		"serve:      BALLOTD_ADMIN_ADDR not set\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	raceLine(t, out, "MA-SEN", "open", 3, 0, "0.0 %")
	if !regexp.MustCompile(`(?m)^sending:    .+: 5 to send; none went out in the last 10 minutes$`).MatchString(out) {
		t.Errorf("status does not say the wave's ballots wait, none sent yet:\n%s", out)
	}

	addr := closedPort(t)
	h.env["BALLOTD_ADMIN_ADDR"] = addr
	if out := h.ballotd("status"); !strings.Contains(out, "serve:      not reachable at "+addr) {
		t.Errorf("status with nothing on %s:\n%s", addr, out)
	}

	stop := h.serve()
	sent := h.waitSent(5)
	vote := func(email, race, answer string) {
		for _, e := range sent {
			if b := parseSent(t, e); b.To == email && strings.Contains(b.Subject, race) {
				h.reply(email, b.ReplyTo, fmt.Sprintf("From: %s\nTo: %s\nSubject: Re: %s\nMessage-ID: <%s-%s@example.net>\n\n%s\n", email, b.ReplyTo, b.Subject, race, strings.Split(email, "@")[0], answer))
				return
			}
		}
		t.Fatalf("no %s ballot for %s", race, email)
	}
	vote("alice@example.net", "MA-SEN", "YES")
	vote("carol@example.net", "MA-SEN", "NO")
	vote("bob@example.net", "MA-07", "YES")
	// Someone writes to the bare address: quarantined, answered once.
	h.reply("person@example.net", "ballots@example.org", "From: person@example.net\nTo: ballots@example.org\nSubject: hello\nMessage-ID: <hello@example.net>\n\nhi\n")
	h.waitSent(9) // three receipts and the answer
	var s struct {
		Races []struct {
			Race            string
			Status          string
			Eligible, Voted int
			Turnout         float64
		}
		Outbox struct {
			Queued, Sending, Deferred, Sent, Failed int
		}
		Quarantine int
		Database   string
		Serve      struct {
			Addr   string
			Health *struct {
				OK       bool
				Database string
				IMAP     string
			}
		}
	}
	// The hub has the message a moment before the outbox records it sent.
	testenv.Poll(30*time.Second, func() bool {
		if err := json.Unmarshal([]byte(h.ballotd("status", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		return s.Outbox.Sent == 9
	})
	if s.Outbox.Queued != 0 || s.Outbox.Sending != 0 || s.Outbox.Deferred != 0 || s.Outbox.Sent != 9 || s.Outbox.Failed != 0 {
		t.Errorf("status --json outbox %+v; want 9 sent, nothing else", s.Outbox)
	}
	got := map[string]string{}
	for _, r := range s.Races {
		got[r.Race] = fmt.Sprintf("%s %d/%d %.4f", r.Status, r.Voted, r.Eligible, r.Turnout)
	}
	if len(got) != 2 || got["MA-SEN"] != "open 2/3 0.6667" || got["MA-07"] != "open 1/2 0.5000" {
		t.Errorf("status --json races %v; want MA-SEN 2 of 3 voted, MA-07 1 of 2", got)
	}
	if s.Quarantine != 1 || s.Database != "ok" || s.Serve.Addr != addr || s.Serve.Health == nil || !s.Serve.Health.OK || s.Serve.Health.IMAP != "ok" {
		t.Errorf("status --json: quarantine %d, database %q, serve %+v; want 1, ok, serve's healthz ok", s.Quarantine, s.Database, s.Serve)
	}

	out = h.ballotd("status")
	raceLine(t, out, "MA-SEN", "open", 3, 2, "66.7 %")
	raceLine(t, out, "MA-07", "open", 2, 1, "50.0 %")
	for _, want := range []string{
		"outbox:     0 queued, 0 sending, 0 deferred, 9 sent, 0 failed; oldest unsent: none\n",
		"quarantine: 1 message kept for staff (ballotd quarantine list)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	serveRE := regexp.MustCompile(`(?m)^serve:      OK at ` + regexp.QuoteMeta(addr) + `: database ok; IMAP ok, last poll \d+s ago; SMTP ok; scheduler leader (yes|no)$`)
	if !serveRE.MatchString(out) {
		t.Errorf("status has no line of serve's health:\n%s", out)
	}

	stop()
	if out := h.ballotd("status"); !strings.Contains(out, "serve:      not reachable at "+addr) {
		t.Errorf("status after serve stopped:\n%s", out)
	}
}

// raceLine checks the status table's line of race.
func raceLine(t *testing.T, out, race, state string, eligible, voted int, turnout string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + race + `\s+March\s+` + state + `\s+` + fmt.Sprint(eligible) + `\s+` + fmt.Sprint(voted) + `\s+` +
		regexp.QuoteMeta(turnout) + `\s+\d{4}-\d\d-\d\dT`)
	if !re.MatchString(out) {
		t.Errorf("status has no line %s %s %d eligible, %d voted, turnout %s:\n%s", race, state, eligible, voted, turnout, out)
	}
}
