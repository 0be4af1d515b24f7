package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
)

// Outbox sends what the outbox holds: Workers goroutines, each with its own
// Sender (one persistent connection), claim batches of due rows, render and
// send them, and record every row's outcome. A row is never dropped: it is
// sent, deferred to a later attempt, or failed with the reason on record.
type Outbox struct {
	Store     *ballots.Store
	Renderer  *Renderer
	NewSender func() Sender
	Workers   int           // default 4
	Batch     int           // rows claimed at once per worker, default 50
	Lease     time.Duration // how long a claim holds a row, default 5 minutes
	Poll      time.Duration // wait when nothing is due, default 500ms
	// MaxAttempts is when a temporary failure becomes final, default 12.
	MaxAttempts int
	Logger      *slog.Logger

	wake chan struct{}
	once sync.Once
}

func (o *Outbox) defaults() {
	o.once.Do(func() {
		if o.Workers <= 0 {
			o.Workers = 4
		}
		if o.Batch <= 0 {
			o.Batch = 50
		}
		if o.Lease <= 0 {
			o.Lease = 5 * time.Minute
		}
		if o.Poll <= 0 {
			o.Poll = 500 * time.Millisecond
		}
		if o.MaxAttempts <= 0 {
			o.MaxAttempts = 12
		}
		if o.Logger == nil {
			o.Logger = slog.Default()
		}
		o.wake = make(chan struct{}, 1)
	})
}

// Wake tells an idle worker to look for rows now (after an enqueue).
func (o *Outbox) Wake() {
	o.defaults()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx is done. Rows a worker holds when ctx ends are
// finished first (their results recorded) where possible; anything left
// goes back to the queue when its lease expires.
func (o *Outbox) Run(ctx context.Context) error {
	o.defaults()
	var wg sync.WaitGroup
	for i := 0; i < o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.work(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Drain sends until nothing is due and returns the number of rows handled;
// for the CLI and tests.
func (o *Outbox) Drain(ctx context.Context) (int, error) {
	o.defaults()
	s := o.NewSender()
	defer closeSender(s)
	var buf bytes.Buffer
	total := 0
	for {
		n, err := o.round(ctx, s, &buf)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

func closeSender(s Sender) {
	if c, ok := s.(interface{ Close() error }); ok {
		c.Close()
	}
}

func (o *Outbox) work(ctx context.Context) {
	s := o.NewSender()
	defer closeSender(s)
	var buf bytes.Buffer
	backoff := o.Poll
	for ctx.Err() == nil {
		n, err := o.round(ctx, s, &buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			o.Logger.Error("outbox round failed", "err", err)
		}
		if n > 0 && err == nil {
			backoff = o.Poll
			continue
		}
		if err != nil {
			backoff = min(backoff*2, 30*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-o.wake:
		case <-time.After(backoff):
		}
	}
}

// round claims one batch, sends it and records the results.
func (o *Outbox) round(ctx context.Context, s Sender, buf *bytes.Buffer) (int, error) {
	rows, err := o.Store.ClaimOutbox(ctx, o.Batch, o.Lease)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	results := make([]ballots.SendResult, 0, len(rows))
	// Results are recorded even if ctx ends mid-batch, so a shutdown does not
	// leave sent rows to be sent again after their lease.
	defer func() {
		if err := o.Store.RecordResults(context.WithoutCancel(ctx), results); err != nil {
			o.Logger.Error("record send results", "rows", len(results), "err", err)
		}
	}()
	for _, row := range rows {
		if ctx.Err() != nil {
			break
		}
		results = append(results, o.sendOne(ctx, s, row, buf))
	}
	return len(rows), nil
}

func (o *Outbox) sendOne(ctx context.Context, s Sender, row ballots.OutboxRow, buf *bytes.Buffer) ballots.SendResult {
	res := ballots.SendResult{ID: row.ID}
	msg, err := o.Renderer.Render(ctx, row, buf)
	if err != nil {
		// A message that cannot be rendered will not render next time either.
		res.Status, res.Reply = ballots.OutboxFailed, "render: "+err.Error()
		o.Logger.Error("outbox render failed", "id", row.ID, "kind", row.Kind, "err", err)
		return res
	}
	err = s.Send(ctx, msg.From, msg.To, msg.Data)
	if err == nil {
		res.Status, res.Code, res.Reply = ballots.OutboxSent, 250, "ok"
		return res
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		res.Code, res.Reply = se.Code, fmt.Sprintf("%d %s", se.Code, se.Message)
		if se.Code/100 == 5 {
			res.Status = ballots.OutboxFailed
			return res
		}
	} else {
		res.Reply = err.Error()
	}
	if row.Attempts >= o.MaxAttempts {
		res.Status = ballots.OutboxFailed
		res.Reply = fmt.Sprintf("gave up after %d attempts: %s", row.Attempts, res.Reply)
		return res
	}
	res.Status, res.Next = ballots.OutboxDeferred, time.Now().Add(Backoff(row.Attempts))
	return res
}

// Backoff is the wait before attempt n+1 after n failed ones: exponential
// from 10 seconds, capped at an hour, with ±20 % jitter so that a throttled
// batch does not come back all at once.
func Backoff(attempts int) time.Duration {
	d := 10 * time.Second << min(max(attempts-1, 0), 9)
	if d > time.Hour {
		d = time.Hour
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5*2)) - d/5
	return d + jitter
}
