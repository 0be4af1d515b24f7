package mailer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ballotd/ballotd/ballots"
)

// quota returns the relay's quotas as the store counts them.
func (l *Limits) quota() ballots.SendQuota {
	if l == nil {
		return ballots.SendQuota{}
	}
	return ballots.SendQuota{Daily: l.Daily, Domains: l.DomainQuotas}
}

func (l *Limits) domainRate(d string) float64 {
	if l == nil {
		return 0
	}
	return l.DomainRates[d]
}

// inFlightWindow is how long rows may wait in this process for their
// turn under a rate: half of what a lease leaves after the margin a
// worker keeps, so that no claimed row outlives its lease in the queue.
func (o *Outbox) inFlightWindow() time.Duration {
	return (o.Lease - leaseMargin(o.Lease)) / 2
}

// claimSizeFor is how many rows to claim for relay r: Batch, less when
// r's rate would not send them (and the rows it has in flight) within
// inFlightWindow; 0 when it has as many in flight as it can send then.
func (o *Outbox) claimSizeFor(r *relayState) int {
	n := o.Batch
	if rate := r.Limits.perSecond(); rate > 0 {
		all, _ := r.inFlight("")
		n = min(n, int(rate*o.inFlightWindow().Seconds())-all)
		if n <= 0 && all == 0 {
			n = 1
		}
	}
	return max(n, 0)
}

// admit gives the rows of a claimed batch to the relays, in order of
// preference: to each what its per-domain rates can send within
// inFlightWindow (beside what it has in flight) and what its quotas,
// reserved in the database, let go now. A row no relay takes now is
// postponed, unsent and no attempt counted, to when a limit should let it
// go. until is the claim's lease end.
func (o *Outbox) admit(ctx context.Context, relays []*relayState, batch []ballots.OutboxRow, until time.Time) ([]claimedRow, error) {
	now := time.Now()
	next := make([]time.Time, len(batch)) // when a row no relay takes may go
	pending := make([]int, len(batch))
	for i := range batch {
		pending[i] = i
	}
	var out []claimedRow
	window := o.inFlightWindow().Seconds()
	for _, r := range relays {
		if len(pending) == 0 {
			break
		}
		var ask, rest []int
		var domains []string
		room := o.claimSizeFor(r)
		asked, over := map[string]int{}, map[string]int{}
		for _, i := range pending {
			d := domainOf(batch[i].Recipient)
			if len(ask) >= room {
				rest = append(rest, i)
				continue
			}
			if rate := r.Limits.domainRate(d); rate > 0 {
				_, flying := r.inFlight(d)
				if budget := int(rate*window) - flying; asked[d] >= budget && !(flying == 0 && asked[d] == 0) {
					// Its turn under the domain's rate comes after the
					// rows ahead of it.
					over[d]++
					ahead := flying + asked[d] + over[d]
					next[i] = later(next[i], now.Add(time.Duration(float64(ahead)/rate*float64(time.Second))))
					rest = append(rest, i)
					continue
				}
				asked[d]++
			}
			ask, domains = append(ask, i), append(domains, d)
		}
		res, err := o.Store.ReserveSends(ctx, r.Name, r.Limits.quota(), domains)
		if err != nil && !r.Limits.quota().Limited() {
			// Only counting (for the pace): the rows go, uncounted.
			o.Logger.Warn("count sends: not counted", "relay", r.Name, "rows", len(ask), "err", err)
			res, err = ballots.Reservation{Admitted: make([]bool, len(ask))}, nil
			for k := range res.Admitted {
				res.Admitted[k] = true
			}
		}
		if err != nil {
			return out, o.postponeOnError(ctx, batch, pending, err)
		}
		if !res.RelayFullUntil.IsZero() {
			r.full(res.RelayFullUntil)
			o.Logger.Warn("relay's daily quota used up", "relay", r.Name, "until", res.RelayFullUntil)
		}
		q := r.Limits.quota()
		for k, i := range ask {
			d := domains[k]
			if !res.Admitted[k] {
				if at, ok := res.DomainFullUntil[d]; ok {
					next[i] = later(next[i], at)
				} else {
					next[i] = later(next[i], res.RelayFullUntil)
				}
				rest = append(rest, i)
				continue
			}
			c := claimedRow{OutboxRow: batch[i], until: until, relay: r, bucket: res.Bucket}
			if _, ok := q.Domains[d]; ok {
				c.quotaDomain = d
			}
			r.take(d)
			out = append(out, c)
		}
		pending = rest
	}
	if len(pending) > 0 {
		ps := make([]ballots.Postponed, len(pending))
		for k, i := range pending {
			at := next[i]
			if at.IsZero() {
				at = now.Add(time.Second)
			}
			ps[k] = ballots.Postponed{Claimed: ballots.Claimed{ID: batch[i].ID, Claim: batch[i].Claim}, Next: at}
		}
		if err := o.Store.PostponeOutbox(ctx, ps); err != nil {
			// They go out when their lease ends, unsent until then.
			o.Logger.Error("postpone rows over the limits", "rows", len(ps), "err", err)
		}
	}
	return out, nil
}

// postponeOnError hands back, due now, the rows of a batch not yet given
// to a relay when a reservation failed (the database is away: the feeder
// backs off), and returns the error.
func (o *Outbox) postponeOnError(ctx context.Context, batch []ballots.OutboxRow, pending []int, err error) error {
	ps := make([]ballots.Postponed, len(pending))
	for k, i := range pending {
		ps[k] = ballots.Postponed{Claimed: ballots.Claimed{ID: batch[i].ID, Claim: batch[i].Claim}, Next: time.Now()}
	}
	_, perr := o.retry(ctx, "hand back rows after a failed reservation", func() int { return recordTries }, func(ctx context.Context) (int, error) {
		return 0, o.Store.PostponeOutbox(ctx, ps)
	})
	if perr != nil {
		o.Logger.Error("hand back rows after a failed reservation", "rows", len(ps), "err", perr)
	}
	return fmt.Errorf("reserve sends: %w", err)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// giveBacks collects the reservations of rows not sent, to be taken back
// from the counts at the next claim (or when the outbox stops).
type giveBacks struct {
	mu sync.Mutex
	m  map[ballots.SendCount]int // N zero in the key
}

// giveBack takes c's reservation back: the row was not sent (its lease
// ran out, the outbox stopped, the relay refused it).
func (o *Outbox) giveBack(c claimedRow) {
	if c.relay == nil || c.bucket.IsZero() {
		return
	}
	o.gb.mu.Lock()
	defer o.gb.mu.Unlock()
	if o.gb.m == nil {
		o.gb.m = map[ballots.SendCount]int{}
	}
	o.gb.m[ballots.SendCount{Relay: c.relay.Name, Bucket: c.bucket}]++
	if c.quotaDomain != "" {
		o.gb.m[ballots.SendCount{Relay: c.relay.Name, Domain: c.quotaDomain, Bucket: c.bucket}]++
	}
}

// flushGiveBacks writes the collected give-backs; on failure they are
// kept for the next try.
func (o *Outbox) flushGiveBacks(ctx context.Context) {
	o.gb.mu.Lock()
	m := o.gb.m
	o.gb.m = nil
	o.gb.mu.Unlock()
	if len(m) == 0 {
		return
	}
	cs := make([]ballots.SendCount, 0, len(m))
	for k, n := range m {
		k.N = n
		cs = append(cs, k)
	}
	if err := o.Store.GiveBackSends(ctx, cs); err != nil {
		o.Logger.Warn("give back unsent reservations: will try again", "err", err)
		o.gb.mu.Lock()
		if o.gb.m == nil {
			o.gb.m = map[ballots.SendCount]int{}
		}
		for k, n := range m {
			o.gb.m[k] += n
		}
		o.gb.mu.Unlock()
	}
}

// recordRelays records the relays' limits for status and the digest,
// and prunes old counts, once an hour at most.
func (o *Outbox) recordRelays(ctx context.Context) {
	o.gb.mu.Lock()
	due := time.Since(o.relaysRecorded) > time.Hour
	if due {
		o.relaysRecorded = time.Now()
	}
	o.gb.mu.Unlock()
	if !due {
		return
	}
	var ls []ballots.RelayLimits
	for _, r := range o.relays() {
		ls = append(ls, ballots.RelayLimits{Relay: r.Name, PerSecond: r.Limits.perSecond(), Daily: r.Limits.quota().Daily})
	}
	if err := o.Store.RecordRelays(ctx, ls); err != nil {
		o.Logger.Warn("record the relays' limits", "err", err)
	}
	if err := o.Store.PruneSendCounts(ctx); err != nil {
		o.Logger.Warn("prune send counts", "err", err)
	}
}

// feedable says what the feeder may claim now: the usable relays and how
// many rows they can take (Batch at most). When none (size 0), wait is
// how long to idle before looking again, or negative when a drain should
// stop: every relay's daily quota is used up, or every relay paused for
// longer than drainWaitMax.
func (o *Outbox) feedable(drain bool) (relays []*relayState, size int, wait time.Duration) {
	now := time.Now()
	relays, soonest := o.usableRelays(now)
	if len(relays) == 0 {
		wait := max(time.Until(soonest), time.Millisecond)
		if drain && (o.allFull(now) || wait > drainWaitMax) {
			return nil, 0, -1
		}
		return nil, 0, wait
	}
	for _, r := range relays {
		size += o.claimSizeFor(r)
	}
	return relays, min(size, o.Batch), o.Poll
}

// drainWaitMax is the longest pause of every relay a drain waits out;
// a longer one ends it, the rows due after the pause.
const drainWaitMax = 5 * time.Second

// allFull reports whether every relay's daily quota is used up.
func (o *Outbox) allFull(now time.Time) bool {
	for _, r := range o.relays() {
		r.mu.Lock()
		full := r.fullUntil.After(now)
		r.mu.Unlock()
		if !full {
			return false
		}
	}
	return true
}

// idle waits up to d, or until ctx ends, an enqueue wakes the outbox, or
// a row in flight finishes.
func (o *Outbox) idle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-o.wake:
	case <-o.freed:
	case <-t.C:
	}
}

// finished counts a row handed to a worker as no longer in flight.
func (o *Outbox) finished(c claimedRow) {
	c.relay.done(domainOf(c.Recipient))
	select {
	case o.freed <- struct{}{}:
	default:
	}
}
