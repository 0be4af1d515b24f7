package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
)

// The outbox's pace between two samples: rates of the rows that moved, and
// the ETA of what is queued at the rate rows finish.
func TestOutboxPace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                   string
		t0, t1                 outboxTotals
		elapsed                time.Duration
		sent, deferred, failed float64
		eta                    string
	}{
		{"sending", outboxTotals{Queued: 1000, Sent: 100}, outboxTotals{Queued: 800, Sent: 300}, 2 * time.Second, 100, 0, 0, "8s"},
		{"sending and failing", outboxTotals{Queued: 10000, Sending: 16}, outboxTotals{Queued: 9200, Sending: 16, Sent: 780, Failed: 20, PutOff: 40}, 4 * time.Second,
			195, 10, 5, "46s"},
		{"an hour to go", outboxTotals{Queued: 36001}, outboxTotals{Queued: 36000, Sent: 1}, time.Second, 1, 0, 0, "10h0m0s"},
		{"minutes", outboxTotals{Queued: 2000}, outboxTotals{Queued: 1920, Sent: 10}, 2 * time.Second, 5, 0, 0, "6m24s"},
		{"nothing moving", outboxTotals{Queued: 50, Deferred: 3, PutOff: 9}, outboxTotals{Queued: 50, Deferred: 3, PutOff: 9}, 2 * time.Second, 0, 0, 0, "—"},
		{"only deferring", outboxTotals{Queued: 50}, outboxTotals{Queued: 40, Deferred: 10, PutOff: 10}, 2 * time.Second, 0, 5, 0, "—"},
		{"deferred rows sent later", outboxTotals{Deferred: 10, PutOff: 10}, outboxTotals{Sent: 10, PutOff: 10}, time.Second, 10, 0, 0, "0s"},
		{"all sent", outboxTotals{Sent: 500}, outboxTotals{Sent: 500}, 2 * time.Second, 0, 0, 0, "0s"},
		{"first sample", outboxTotals{}, outboxTotals{Queued: 7, Sent: 3}, 0, 0, 0, 0, "—"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := paceOf(tc.t0, tc.t1, tc.elapsed)
			if p.Sent != tc.sent || p.Deferred != tc.deferred || p.Failed != tc.failed || eta(p.ETA) != tc.eta {
				t.Errorf("pace %+v (ETA %s); want %v sent/s, %v deferred/s, %v failed/s, ETA %s", p, eta(p.ETA), tc.sent, tc.deferred, tc.failed, tc.eta)
			}
		})
	}
}

// totalsOf counts the tries put off from the attempts of rows: every
// attempt but the one that finished a row (a row being sent has not
// counted its current try yet).
func TestOutboxTotals(t *testing.T) {
	t.Parallel()
	got := totalsOf([]ballots.OutboxCount{
		{Kind: "ballot", Status: ballots.OutboxQueued, Count: 5},
		{Kind: "ballot", Status: ballots.OutboxSending, Count: 2, Attempts: 3},      // three put off before
		{Kind: "ballot", Status: ballots.OutboxDeferred, Count: 4, Attempts: 6},     // six put off
		{Kind: "ballot", Status: ballots.OutboxSent, Count: 10, Attempts: 12},       // two put off
		{Kind: "receipt", Status: ballots.OutboxSent, Count: 3, Attempts: 3},        // none
		{Kind: "ballot", Status: ballots.OutboxFailed, Count: 1, Attempts: 8},       // seven put off
		{Kind: "announcement", Status: ballots.OutboxQueued, Count: 1, Attempts: 0}, // none
	})
	want := outboxTotals{Queued: 6, Sending: 2, Deferred: 4, Sent: 13, Failed: 1, PutOff: 18}
	if got != want || got.pending() != 12 {
		t.Errorf("totals %+v (pending %d); want %+v (pending 12)", got, got.pending(), want)
	}
}

// lineBuffer is a stdout that tests read while a command writes to it.
type lineBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	once  sync.Once
	first chan struct{} // closed at the first write
}

func newLineBuffer() *lineBuffer { return &lineBuffer{first: make(chan struct{})} }

// Write implements io.Writer.
func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.once.Do(func() { close(l.first) })
	return l.b.Write(p)
}

func (l *lineBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.b.String(), "\n"), "\n")
}

var watchLineRE = regexp.MustCompile(`^\d\d:\d\d:\d\d outbox: (\d+) queued, (\d+) sending, (\d+) deferred, (\d+) sent, (\d+) failed; ` +
	`\d+\.\d sent/s, \d+\.\d deferred/s, \d+\.\d failed/s; ETA (—|(\d+h)?(\d+m)?\d+s)$`)

// outbox --watch off a terminal prints a line every interval while serve
// sends; with --until-empty it ends by itself once everything is sent,
// and without it, when its context ends (SIGTERM's path).
func TestOutboxWatchUntilEmpty(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openRace("alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-02\ncarol@example.net,Carol,MA-05\n", "MA-SEN", "Ed Markey")
	getenv := func(k string) string { return h.env[k] }
	watch := func(ctx context.Context, out *lineBuffer, args ...string) chan int {
		done := make(chan int, 1)
		go func() {
			var errOut bytes.Buffer
			code := run(ctx, append([]string{"outbox", "--watch", "--interval", "100ms"}, args...), getenv, out, &errOut)
			if code != 0 {
				t.Errorf("outbox --watch %v: exit %d: %s", args, code, errOut.String())
			}
			done <- code
		}()
		select {
		case <-out.first:
		case <-done:
			t.Fatal("outbox --watch ended before its first line")
		case <-time.After(30 * time.Second):
			t.Fatal("outbox --watch printed nothing in 30s")
		}
		return done
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := newLineBuffer()
	done := watch(ctx, out, "--until-empty")
	// The first line is drawn before serve starts: all three queued.
	if first := out.lines()[0]; !strings.Contains(first, " 3 queued, 0 sending, 0 deferred, 0 sent, 0 failed; ") || !strings.HasSuffix(first, "ETA —") {
		t.Errorf("first line %q; want 3 queued, nothing sent, ETA —", first)
	}
	stop := h.serve()
	defer stop()
	<-done
	if ctx.Err() != nil {
		t.Fatal("outbox --watch --until-empty did not end by itself once the outbox was empty")
	}
	lines := out.lines()
	for _, l := range lines {
		if !watchLineRE.MatchString(l) {
			t.Errorf("line %q is not a watch line", l)
		}
	}
	last := lines[len(lines)-1]
	if m := watchLineRE.FindStringSubmatch(last); m == nil || m[1] != "0" || m[2] != "0" || m[3] != "0" || m[4] != "3" || m[5] != "0" || m[6] != "0s" {
		t.Errorf("last line %q; want 0 queued, 3 sent, ETA 0s", last)
	}
	if got := len(h.sent()); got != 3 {
		t.Errorf("serve sent %d ballots, want 3", got)
	}

	// Without --until-empty the watch goes on until its context ends.
	ctx2, cancel2 := context.WithCancel(context.Background())
	out2 := newLineBuffer()
	done2 := watch(ctx2, out2)
	cancel2()
	select {
	case <-done2:
	case <-time.After(30 * time.Second):
		t.Fatal("outbox --watch did not end within 30s of its context ending")
	}

	if _, errOut, code := h.try("outbox", "--until-empty"); code != 2 || !strings.Contains(errOut, "--watch") {
		t.Errorf("outbox --until-empty without --watch: exit %d, %q; want a usage error", code, errOut)
	}
}
