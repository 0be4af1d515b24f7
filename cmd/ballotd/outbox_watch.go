package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/progress"
)

// outboxTotals is the outbox by status at one moment.
type outboxTotals struct {
	Queued   int `json:"queued"`
	Sending  int `json:"sending"`
	Deferred int `json:"deferred"`
	Sent     int `json:"sent"`
	Failed   int `json:"failed"`
	// PutOff counts every try so far that did not finish its row: put off
	// by a 4xx reply or a network error (or lost with a crashed worker).
	// Unlike Deferred, which rows leave again, it only grows.
	PutOff int `json:"-"`
}

// totalsOf adds up OutboxCounts by status.
func totalsOf(cs []ballots.OutboxCount) outboxTotals {
	var t outboxTotals
	finished := 0 // rows whose last try finished them, or is under way
	for _, c := range cs {
		switch c.Status {
		case ballots.OutboxQueued:
			t.Queued += c.Count
		case ballots.OutboxSending:
			// A row's attempts count sends recorded: one being sent has
			// not counted this one yet.
			t.Sending += c.Count
		case ballots.OutboxDeferred:
			t.Deferred += c.Count
		case ballots.OutboxSent:
			t.Sent += c.Count
			finished += c.Count
		case ballots.OutboxFailed:
			t.Failed += c.Count
			finished += c.Count
		}
		t.PutOff += c.Attempts
	}
	t.PutOff -= finished
	return t
}

// pending is what is still to be sent.
func (t outboxTotals) pending() int { return t.Queued + t.Sending + t.Deferred }

// outboxPace is how the outbox moved between two samples.
type outboxPace struct {
	Sent, Deferred, Failed float64 // a second
	// ETA is when the queued rows (and those being sent) will be done at
	// the rate rows were finished (sent or failed): 0 when none is left,
	// -1 when some are left and nothing is moving.
	ETA time.Duration
}

// paceOf compares the outbox at t0 and, elapsed later, at t1.
func paceOf(t0, t1 outboxTotals, elapsed time.Duration) outboxPace {
	p := outboxPace{ETA: -1}
	left := t1.Queued + t1.Sending
	if left == 0 {
		p.ETA = 0
	}
	if elapsed <= 0 {
		return p
	}
	per := func(a, b int) float64 { return float64(max(b-a, 0)) / elapsed.Seconds() }
	p.Sent, p.Deferred, p.Failed = per(t0.Sent, t1.Sent), per(t0.PutOff, t1.PutOff), per(t0.Failed, t1.Failed)
	if done := p.Sent + p.Failed; left > 0 && done > 0 {
		p.ETA = time.Duration(float64(left) / done * float64(time.Second)).Round(time.Second)
	}
	return p
}

// eta writes an ETA: "3m12s", or "—" when nothing is moving.
func eta(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	return d.String()
}

// watchLine is one line of outbox --watch.
func watchLine(at time.Time, t outboxTotals, p outboxPace) string {
	return fmt.Sprintf("%s outbox: %d queued, %d sending, %d deferred, %d sent, %d failed; %.1f sent/s, %.1f deferred/s, %.1f failed/s; ETA %s",
		at.Format("15:04:05"), t.Queued, t.Sending, t.Deferred, t.Sent, t.Failed, p.Sent, p.Deferred, p.Failed, eta(p.ETA))
}

// watchOutbox shows the outbox every interval until ctx ends, or, with
// untilEmpty, until nothing is queued, being sent or deferred.
func watchOutbox(ctx context.Context, st *ballots.Store, w io.Writer, interval time.Duration, untilEmpty bool) error {
	p := progress.New(w, "outbox")
	defer p.Done()
	var prev outboxTotals
	var prevAt time.Time
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		cs, err := st.OutboxCounts(ctx)
		if ctx.Err() != nil {
			return nil // SIGTERM or Ctrl-C: the watch is over
		}
		if err != nil {
			return fmt.Errorf("outbox --watch: %w", err)
		}
		now, cur := time.Now(), totalsOf(cs)
		var elapsed time.Duration
		if !prevAt.IsZero() {
			elapsed = now.Sub(prevAt)
		}
		empty := untilEmpty && cur.pending() == 0
		p.Show(watchLine(now, cur, paceOf(prev, cur, elapsed)), true)
		if empty {
			return nil
		}
		prev, prevAt = cur, now
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
