package mailer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Relay is one SMTP relay the outbox sends through. With several
// (Outbox.Relays), a row goes through the first, in order of preference,
// that is not paused (down, suspended, or backing off after a quota or
// rate reply) and has quota left for it: the next one takes over when one
// refuses connections, says 421 or that the account is suspended, or has
// used up its daily quota.
type Relay struct {
	// Name is how the relay is counted in the database (its quotas are
	// shared by every replica naming it alike) and reported: its address.
	Name      string
	NewSender func() Sender
	// Limits paces and bounds it; nil: no limit.
	Limits *Limits
}

// trouble is what a relay's refusal says about the relay rather than the
// recipient.
type trouble int

const (
	noTrouble trouble = iota
	// relayThrottled: over its rate or quota (452 4.5.3, 452 … quota,
	// 421 … rate, 454 Throttling failure): back off and try again.
	relayThrottled
	// relayDown: it cannot be reached or is closing (a failed connect,
	// TLS or greeting, 421), or refuses the sender for now.
	relayDown
	// relaySuspended: it refuses the account for good (a 5xx to AUTH or
	// MAIL FROM, or a reply saying the sending is suspended).
	relaySuspended
)

// errRelay marks an error of the relay's session rather than of one
// recipient: connecting, TLS, greeting, AUTH, and MAIL FROM (the envelope
// sender is the same for every message).
var errRelay = errors.New("relay")

// relayError wraps err as the relay's (errRelay), keeping its message.
type relayError struct{ err error }

func (e relayError) Error() string   { return e.err.Error() }
func (e relayError) Unwrap() []error { return []error{e.err, errRelay} }
func asRelayError(err error) error   { return relayError{err} }
func isRelayError(err error) bool    { return errors.Is(err, errRelay) }
func containsAny(s string, subs ...string) bool {
	s = strings.ToLower(s)
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// classifyTrouble says whether a failed send is the relay's trouble, and
// which. A refusal of one recipient (550 5.1.1, 451 greylisting, 452
// 4.2.2 mailbox full) is not: the row is deferred or failed as before.
func classifyTrouble(err error) trouble {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		if isRelayError(err) {
			return relayDown
		}
		// A connection lost in the middle of a transaction: the sender
		// reconnects for the next message; the row is deferred as before.
		return noTrouble
	}
	enhanced := se.EnhancedCode
	switch {
	case se.Code/100 == 4 && (enhanced == smtp.EnhancedCode{4, 5, 3} ||
		containsAny(se.Message, "quota", "rate limit", "rate exceeded", "sending rate", "throttling failure", "too many messages")):
		return relayThrottled
	case se.Code == 421:
		return relayDown
	case se.Code/100 == 5 && containsAny(se.Message, "suspend"):
		return relaySuspended
	case isRelayError(err) && se.Code/100 == 5:
		return relaySuspended
	case isRelayError(err):
		return relayDown
	}
	return noTrouble
}

// pauseFactor scales Outbox.RelayBackoff per trouble: a suspended account
// is not tried again within the minute.
var pauseFactor = map[trouble]time.Duration{relayThrottled: 1, relayDown: 2, relaySuspended: 60}

// maxPause caps a relay's pause.
const maxPause = time.Hour

// relayState is one relay at run time: its pause and in-flight rows.
type relayState struct {
	*Relay
	index int

	mu sync.Mutex
	// pausedUntil: no send starts before it; epoch counts the pauses set,
	// and step is the pause the next trouble sets.
	pausedUntil time.Time
	epoch       int
	step        time.Duration
	// fullUntil: the daily quota is used up until then (as the last
	// reservation found).
	fullUntil time.Time
	// lastTrouble is the last relay-level refusal, for the log.
	lastTrouble string
	// inflight counts rows handed to workers and not finished, in all
	// and by recipient domain.
	inflight       int
	inflightDomain map[string]int
}

// lastReply is the relay's last refusal, for the record of a row it
// could not take.
func (r *relayState) lastReply() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastTrouble
}

// usableAt reports whether the relay may be given rows at now, and else
// when it may.
func (r *relayState) usableAt(now time.Time) (bool, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := r.pausedUntil
	if r.fullUntil.After(at) {
		at = r.fullUntil
	}
	return !at.After(now), at
}

// pausedTill is when the relay's pause ends (zero or past: not paused)
// and the pause's epoch.
func (r *relayState) pausedTill() (time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pausedUntil, r.epoch
}

// troubled pauses the relay after a refusal of a send that was let go
// in pause epoch (waitRelay): for step, which doubles with each trouble up
// to maxPause. A refusal of a send let go before the current pause was
// set is the same episode (every worker meets it at once) and does not
// lengthen it.
// It reports whether it set a new pause.
func (r *relayState) troubled(t trouble, epoch int, base time.Duration, reply string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastTrouble = reply
	if epoch != r.epoch {
		return r.pausedUntil, false
	}
	r.epoch++
	first := base * pauseFactor[t]
	if r.step < first {
		r.step = min(first, maxPause)
	}
	r.pausedUntil = time.Now().Add(r.step)
	r.step = min(2*r.step, maxPause)
	return r.pausedUntil, true
}

// ok ends a relay's run of trouble: the next pause starts small again.
func (r *relayState) ok() {
	r.mu.Lock()
	r.step = 0
	r.mu.Unlock()
}

// full marks the relay's daily quota used up until until.
func (r *relayState) full(until time.Time) {
	r.mu.Lock()
	r.fullUntil = until
	r.mu.Unlock()
}

// take and done count rows in flight on the relay.
func (r *relayState) take(domain string) {
	r.mu.Lock()
	r.inflight++
	if r.inflightDomain == nil {
		r.inflightDomain = map[string]int{}
	}
	r.inflightDomain[domain]++
	r.mu.Unlock()
}

func (r *relayState) done(domain string) {
	r.mu.Lock()
	r.inflight--
	if r.inflightDomain[domain]--; r.inflightDomain[domain] <= 0 {
		delete(r.inflightDomain, domain)
	}
	r.mu.Unlock()
}

func (r *relayState) inFlight(domain string) (all, toDomain int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight, r.inflightDomain[domain]
}

// relays returns the outbox's relays at run time, made once: Relays, or
// the one relay of NewSender and Limits.
func (o *Outbox) relays() []*relayState {
	o.relaysOnce.Do(func() {
		rs := o.Relays
		if len(rs) == 0 {
			name := o.RelayName
			if name == "" {
				name = "relay"
			}
			rs = []*Relay{{Name: name, NewSender: o.NewSender, Limits: o.Limits}}
		}
		for i, r := range rs {
			o.relayStates = append(o.relayStates, &relayState{Relay: r, index: i})
		}
	})
	return o.relayStates
}

// usableRelays are the relays that may be given rows now, in order of
// preference, and, when none, the soonest time one may.
func (o *Outbox) usableRelays(now time.Time) ([]*relayState, time.Time) {
	var out []*relayState
	var soonest time.Time
	for _, r := range o.relays() {
		ok, at := r.usableAt(now)
		if ok {
			out = append(out, r)
		} else if soonest.IsZero() || at.Before(soonest) {
			soonest = at
		}
	}
	return out, soonest
}

// nextDue is when a row a relay refused should come due again: now when
// another relay can take it, else when the first relay may.
func (o *Outbox) nextDue(now time.Time) time.Time {
	if rs, soonest := o.usableRelays(now); len(rs) == 0 {
		return soonest
	}
	return now
}

// waitRelay waits for the relay's pause to end, if it ends before
// deadline, and returns the pause epoch the send goes in (troubled);
// false when it does not end in time (or ctx ends).
func waitRelay(ctx context.Context, r *relayState, deadline time.Time) (int, bool) {
	for {
		until, epoch := r.pausedTill()
		d := time.Until(until)
		if d <= 0 {
			return epoch, true
		}
		if until.After(deadline) {
			return epoch, false
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return epoch, false
		case <-t.C:
		}
	}
}
