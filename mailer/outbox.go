package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/templates"
)

// Outbox sends what the outbox holds. One feeder claims due rows in
// batches (FOR UPDATE SKIP LOCKED, so replicas share the work) and hands
// them to Workers goroutines, each with its own Sender (one persistent
// connection), which render and send them; one recorder writes the
// outcomes back in batches. Claiming and recording run beside the sending,
// so the database never stalls an SMTP connection. A row is never dropped:
// it is sent, deferred to a later attempt, failed with the reason on
// record, or (at shutdown, not yet tried) released back to the queue.
type Outbox struct {
	Store     *ballots.Store
	Renderer  *Renderer
	NewSender func() Sender
	Workers   int           // default 4
	Batch     int           // rows claimed (and results recorded) at once, default 500
	Lease     time.Duration // how long a claim holds a row, default 5 minutes
	Poll      time.Duration // wait when nothing is due, default 500ms
	// MaxAttempts is when a temporary failure becomes final, default 12.
	MaxAttempts int
	// Retry is the wait before the first retry of a temporary failure,
	// default DefaultRetry; each later wait doubles (see Backoff).
	Retry time.Duration
	// RecordTimeout bounds one try to write results or releases back,
	// default 5 seconds; a write is tried recordTries times with a growing
	// pause between, then given up and logged, so a dead database holds
	// a shutdown for well under a minute.
	RecordTimeout time.Duration
	// Limits, when set, paces sending: one global rate shared by every
	// worker, and optional per-recipient-domain rates.
	Limits *Limits
	// Relays, when set, are the relays to send through in order of
	// preference, each with its own limits (relays.go); unset, the one
	// relay is NewSender's, with Limits, counted as RelayName ("relay"
	// when unset).
	Relays    []*Relay
	RelayName string
	// RelayBackoff is the first pause of a relay that says it is over
	// its rate or quota (doubling while it keeps saying so, up to an
	// hour; twice as long for a relay down, sixty times for a suspended
	// account), default 1 second.
	RelayBackoff time.Duration
	Logger       *slog.Logger
	// Sent, when set, is called after every SMTP attempt with its error
	// (nil: accepted) and how long it took (metrics).
	Sent func(err error, took time.Duration)
	// Finished, when set, is called with each row's outcome as it is
	// decided, with the row's kind and its recipient's domain class
	// (ballots.DomainClass): metrics.
	Finished func(kind templates.Kind, domainClass string, res ballots.SendResult)

	wake chan struct{}
	once sync.Once

	relaysOnce     sync.Once
	relayStates    []*relayState
	gb             giveBacks
	relaysRecorded time.Time
	// freed tells a feeder waiting for rows in flight to finish that one has.
	freed chan struct{}
}

func (o *Outbox) defaults() {
	o.once.Do(func() {
		if o.Workers <= 0 {
			o.Workers = 4
		}
		if o.Batch <= 0 {
			o.Batch = 500
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
		if o.Retry <= 0 {
			o.Retry = DefaultRetry
		}
		if o.RecordTimeout <= 0 {
			o.RecordTimeout = 5 * time.Second
		}
		if o.Logger == nil {
			o.Logger = slog.Default()
		}
		if o.RelayBackoff <= 0 {
			o.RelayBackoff = time.Second
		}
		o.wake = make(chan struct{}, 1)
		o.freed = make(chan struct{}, 1)
	})
}

// Wake tells an idle feeder to look for rows now (after an enqueue).
func (o *Outbox) Wake() {
	o.defaults()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx is done. Rows a worker is sending when ctx ends are
// finished and recorded; claimed rows not yet tried are released to the
// queue, so a shutdown neither resends nor delays anything.
func (o *Outbox) Run(ctx context.Context) error {
	o.defaults()
	_, err := o.pump(ctx, false)
	return err
}

// Drain sends until nothing is due and returns the number of rows handled
// (sent, deferred or failed; a row tried again after a relay's pause
// counts once); for the CLI, the benchmark and tests.
func (o *Outbox) Drain(ctx context.Context) (int, error) {
	o.defaults()
	return o.pump(ctx, true)
}

func closeSender(s Sender) {
	if c, ok := s.(interface{ Close() error }); ok {
		c.Close()
	}
}

// pump runs the feeder, the workers and the recorder until ctx ends or,
// when drain is set, until a claim finds nothing due.
func (o *Outbox) pump(ctx context.Context, drain bool) (int, error) {
	rows := make(chan claimedRow, 2*o.Batch)
	results := make(chan ballots.SendResult, 4*o.Batch)
	var (
		mu       sync.Mutex
		released []ballots.Claimed
		feedErr  error
	)
	release := func(rs ...ballots.OutboxRow) {
		mu.Lock()
		for _, r := range rs {
			released = append(released, ballots.Claimed{ID: r.ID, Claim: r.Claim})
		}
		mu.Unlock()
	}

	o.recordRelays(ctx)
	// Feeder.
	go func() {
		defer close(rows)
		backoff := o.Poll
		var cur ballots.ClaimCursor
		for ctx.Err() == nil {
			relays, size, wait := o.feedable(drain)
			if size == 0 {
				if wait < 0 {
					return
				}
				o.idle(ctx, wait)
				continue
			}
			// The lease is counted from before the claim, so a holder's
			// view of it never outlasts the database's.
			until := time.Now().Add(o.Lease)
			batch, next, err := o.Store.ClaimOutboxAfter(ctx, cur, size, o.Lease)
			if err == nil && len(batch) < size && cur != (ballots.ClaimCursor{}) {
				// Short after the cursor: look again from the start of the queue.
				cur = ballots.ClaimCursor{}
				if len(batch) == 0 {
					continue
				}
			} else if err == nil {
				cur = next
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if drain {
					feedErr = err
					return
				}
				o.Logger.Error("outbox claim failed", "err", err)
				backoff = min(backoff*2, 30*time.Second)
			} else {
				backoff = o.Poll
			}
			var admitted []claimedRow
			if err == nil && len(batch) > 0 {
				o.flushGiveBacks(ctx)
				if admitted, err = o.admit(ctx, relays, batch, until); err != nil {
					if drain {
						feedErr = err
						return
					}
					o.Logger.Error("outbox reservation failed", "err", err)
					backoff = min(backoff*2, 30*time.Second)
				}
			}
			if len(batch) == 0 || len(admitted) == 0 && err != nil {
				if drain && err == nil {
					return
				}
				select {
				case <-ctx.Done():
				case <-o.wake:
				case <-time.After(backoff):
				}
				continue
			}
			for i, c := range admitted {
				select {
				case rows <- c:
				case <-ctx.Done():
					for _, c := range admitted[i:] {
						release(c.OutboxRow)
						o.finished(c)
					}
					return
				}
			}
		}
	}()

	// Workers.
	var wg sync.WaitGroup
	for i := 0; i < o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			senders := make([]Sender, len(o.relays()))
			defer func() {
				for _, s := range senders {
					if s != nil {
						closeSender(s)
					}
				}
			}()
			var buf bytes.Buffer
			for c := range rows {
				if ctx.Err() != nil {
					release(c.OutboxRow)
					o.finished(c)
					continue
				}
				if senders[c.relay.index] == nil {
					senders[c.relay.index] = c.relay.NewSender()
				}
				res, ok := o.sendOne(ctx, senders[c.relay.index], c, &buf)
				o.finished(c)
				if !ok {
					release(c.OutboxRow)
					continue
				}
				if res.ID != 0 {
					if o.Finished != nil {
						o.Finished(c.Kind, ballots.DomainClass(c.Recipient), res)
					}
					results <- res
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	// Recorder: results are recorded even after ctx ends, so a shutdown
	// does not leave sent rows to be sent again after their lease.
	rctx := context.WithoutCancel(ctx)
	total := 0
	// A drain counts rows, not tries: a row the relay put off (a pause
	// waited out) and tried again is one row handled.
	var counted map[int64]bool
	if drain {
		counted = map[int64]bool{}
	}
	pending := make([]ballots.SendResult, 0, o.Batch)
	// Once a write has been given up on and the drain is shutting down,
	// the database is taken to be gone: the writes still trying end at
	// their next try, and later ones are tried once, so a shutdown with
	// the database dead takes one round of tries, not one for every batch
	// of results.
	gaveUp := false
	tries := func() int {
		if gaveUp && ctx.Err() != nil {
			return 1
		}
		return recordTries
	}
	flush := func() {
		if len(pending) == 0 {
			return
		}
		// A try given up on may still be running: it gets its own copy.
		batch := slices.Clone(pending)
		changed, err := o.retry(rctx, "record send results", tries, func(ctx context.Context) (int, error) {
			return o.Store.RecordResults(ctx, batch)
		})
		if err != nil {
			// The rows stay sending until their lease ends and go out
			// again then, with the same Message-ID.
			gaveUp = true
			o.Logger.Error("record send results: given up", "rows", len(pending), "err", err)
		} else if changed < len(pending) {
			o.Logger.Warn("send results of rows claimed again by another holder not recorded",
				"rows", len(pending)-changed)
		}
		for _, r := range pending {
			if counted == nil || !counted[r.ID] {
				total++
			}
			if counted != nil {
				counted[r.ID] = true
			}
		}
		pending = pending[:0]
	}
	tick := time.NewTicker(recordInterval)
	defer tick.Stop()
loop:
	for {
		select {
		case res, ok := <-results:
			if !ok {
				break loop
			}
			pending = append(pending, res)
			if len(pending) >= recordEvery {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
	flush()
	o.flushGiveBacks(rctx)
	if len(released) > 0 {
		_, err := o.retry(rctx, "release claimed rows", tries, func(ctx context.Context) (int, error) {
			return 0, o.Store.ReleaseOutbox(ctx, released)
		})
		if err != nil {
			o.Logger.Error("release claimed rows: given up; they go out when their lease ends", "rows", len(released), "err", err)
		}
	}
	return total, feedErr
}

// claimedRow is a claimed row and when, by this process's clock, its
// lease ends.
type claimedRow struct {
	ballots.OutboxRow
	until time.Time
	// relay is the relay the row was given to; bucket the minute its
	// send was reserved in, quotaDomain its domain when that relay counts
	// it (a domain quota), for giving the reservation back unsent.
	relay       *relayState
	bucket      time.Time
	quotaDomain string
}

// recordTries is how often a write of results or releases is tried.
const recordTries = 5

// retry runs write up to tries() times (asked after each try), each under
// RecordTimeout, pausing 250 ms, 500 ms, 1 s, 2 s between tries, and returns the last
// result. A try whose write does not return within RecordTimeout and a
// second is given up on (and left to finish or fail in the background):
// the driver cannot always end a query on time, as when the network
// drops every packet and the cancel request cannot reach the server.
func (o *Outbox) retry(ctx context.Context, what string, tries func() int, write func(context.Context) (int, error)) (int, error) {
	type result struct {
		n   int
		err error
	}
	pause := 250 * time.Millisecond
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, o.RecordTimeout)
		done := make(chan result, 1)
		go func() {
			defer cancel()
			n, err := write(tctx)
			done <- result{n, err}
		}()
		var r result
		t := time.NewTimer(o.RecordTimeout + time.Second)
		select {
		case r = <-done:
		case <-t.C:
			r.err = fmt.Errorf("no answer from the database within %s", o.RecordTimeout)
		}
		t.Stop()
		if r.err == nil || try >= tries() {
			return r.n, r.err
		}
		o.Logger.Warn(what+": will try again", "try", try, "err", r.err)
		t = time.NewTimer(pause)
		<-t.C
		pause *= 2
	}
}

// sendOne renders, paces and sends one row. It reports false when ctx
// ended while waiting for the rate limit: the row was not tried. A result
// with ID 0 means the row was not tried because its lease ran out while it
// waited: it is someone else's to send now (or this claimer's again,
// under a new claim), and neither its state nor its attempts change.
func (o *Outbox) sendOne(ctx context.Context, s Sender, c claimedRow, buf *bytes.Buffer) (ballots.SendResult, bool) {
	row := c.OutboxRow
	res := ballots.SendResult{ID: row.ID, Claim: row.Claim}
	attempt := row.Attempts + 1
	// Too late to send under this claim, before or after waiting for the
	// limits: the row may be claimed again already, and a send now could
	// be a second one. Checked first too, so that a row that waited out
	// its lease in the queue is neither rendered nor takes a turn of the
	// limits.
	late := func() bool { return time.Until(c.until) < leaseMargin(o.Lease) }
	if late() {
		o.giveBack(c)
		return ballots.SendResult{}, true
	}
	msg, err := o.Renderer.Render(ctx, row, buf)
	if err != nil {
		o.giveBack(c)
		res.Reply, res.Reason = "render: "+err.Error(), ballots.ReasonOther
		if errors.Is(err, ErrTransient) && attempt < o.MaxAttempts {
			// The data could not be loaded now (a database outage): later.
			res.Status, res.Next = ballots.OutboxDeferred, time.Now().Add(RetryBackoff(o.Retry, attempt))
			o.Logger.Warn("outbox render deferred", "id", row.ID, "kind", row.Kind, "err", err)
			return res, true
		}
		// A message whose template or data is wrong will not render next
		// time either.
		res.Status = ballots.OutboxFailed
		o.Logger.Error("outbox render failed", "id", row.ID, "kind", row.Kind, "err", err)
		return res, true
	}
	if err := c.relay.Limits.Wait(ctx, msg.To); err != nil {
		o.giveBack(c)
		return res, false
	}
	epoch, ok := waitRelay(ctx, c.relay, c.until.Add(-leaseMargin(o.Lease)))
	if !ok {
		o.giveBack(c)
		if ctx.Err() != nil {
			return res, false
		}
		// Paused beyond this claim's lease: back to the queue, unsent.
		res.Status, res.NotAttempt, res.Next = ballots.OutboxDeferred, true, o.nextDue(time.Now())
		res.Reply, res.Reason = "relay "+c.relay.Name+" paused: "+c.relay.lastReply(), ballots.ReasonThrottled
		return res, true
	}
	if late() {
		o.Logger.Debug("outbox lease ran out waiting for the limits; left for a new claim", "id", row.ID)
		o.giveBack(c)
		return ballots.SendResult{}, true
	}
	start := time.Now()
	err = s.Send(ctx, msg.From, msg.To, msg.Data)
	if o.Sent != nil {
		o.Sent(err, time.Since(start))
	}
	if err == nil {
		c.relay.ok()
		res.Status, res.Code, res.Reply = ballots.OutboxSent, 250, "ok"
		return res, true
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		// The reply as the server gave it, RFC 3463 enhanced code and all:
		// "550 5.1.1 user unknown".
		res.Code, res.Reply = se.Code, ballots.FormatReply(se.Code, se.EnhancedCode, se.Message)
		res.Reason = ballots.ClassifyFailure(se.Code, ballots.ParseEnhanced(res.Reply), se.Message)
		if se.Code/100 == 5 && classifyTrouble(err) == noTrouble {
			res.Status = ballots.OutboxFailed
			return res, true
		}
	} else {
		res.Reply, res.Reason = err.Error(), ballots.ClassifyFailure(0, "", err.Error())
	}
	if t := classifyTrouble(err); t != noTrouble {
		// The relay's trouble, not the recipient's: pause the relay, and
		// the row goes back due (to the next relay, or this one after
		// the pause) with no attempt counted.
		if until, fresh := c.relay.troubled(t, epoch, o.RelayBackoff, res.Reply); fresh {
			o.Logger.Warn("relay refused; pausing it", "relay", c.relay.Name, "until", until, "reply", res.Reply)
		}
		o.giveBack(c)
		res.Status, res.NotAttempt, res.Next = ballots.OutboxDeferred, true, o.nextDue(time.Now())
		return res, true
	}
	if attempt >= o.MaxAttempts {
		res.Status = ballots.OutboxFailed
		res.Reply = fmt.Sprintf("gave up after %d attempts: %s", attempt, res.Reply)
		return res, true
	}
	res.Status, res.Next = ballots.OutboxDeferred, time.Now().Add(RetryBackoff(o.Retry, attempt))
	return res, true
}

// leaseMargin is how much of its lease a row must have left to be sent:
// a tenth of the lease, at most 30 seconds, time for one SMTP transaction.
func leaseMargin(lease time.Duration) time.Duration {
	return min(lease/10, 30*time.Second)
}

// A result is recorded within recordInterval or once recordEvery results
// are waiting, whichever comes first. What is sent but not yet recorded when
// the process dies is sent again (same Message-ID) after its lease: these
// bound that window. Measured at 50,000 ballots on 16 connections: 100 ms /
// 500 results gave ~120 resends per kill -9 and ~7,000 msg/s; 25 ms / 100
// gave ~26 and 7–11 % fewer msg/s; this is between the two.
const (
	recordInterval = 50 * time.Millisecond
	recordEvery    = 250
)

// DefaultRetry is the wait before the first retry of a temporary failure
// when Outbox.Retry is not set.
const DefaultRetry = 10 * time.Second

// Backoff is the wait before attempt n+1 after n failed ones: exponential
// from DefaultRetry, capped at an hour, with ±20 % jitter so that a
// throttled batch does not come back all at once.
func Backoff(attempts int) time.Duration {
	return RetryBackoff(DefaultRetry, attempts)
}

// RetryBackoff is Backoff with first as the first wait.
func RetryBackoff(first time.Duration, attempts int) time.Duration {
	d := first << min(max(attempts-1, 0), 9)
	if d > time.Hour || d <= 0 {
		d = time.Hour
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5*2)) - d/5
	return d + jitter
}
