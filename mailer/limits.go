package mailer

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/time/rate"

	"github.com/ballotd/ballotd/ballots"
)

// Waiter blocks until one more message may go; *rate.Limiter is one.
type Waiter interface {
	Wait(ctx context.Context) error
}

// Limits paces sending: Global is one rate shared by every worker of this
// process (a replica's share of the relay's limit), Domains optional rates
// per recipient domain (lowercase). The limiters NewLimits makes have a
// burst of one, so a rate of r messages a second means one message every
// 1/r seconds, never a burst above it. A nil Waiter means unlimited.
type Limits struct {
	Global  Waiter
	Domains map[string]Waiter
	// PerSecond is the global rate (0: unlimited); the outbox claims fewer
	// rows at once when it is low, so that claimed rows do not outlive
	// their lease waiting for their turn.
	PerSecond float64
	// DomainRates are the per-domain rates Domains wait on, messages a
	// second: the outbox takes no more rows of a domain than its rate
	// sends within their lease.
	DomainRates map[string]float64
	// Daily is the relay's quota in any 24 hours (0: none), and
	// DomainQuotas per recipient domain (lowercase) in any hour and day:
	// counted in the database, so that every replica sending through the
	// relay shares them (ballots.ReserveSends).
	Daily        int
	DomainQuotas map[string]ballots.DomainQuota
}

// NewLimits returns limits of perSecond messages a second overall (0 for
// unlimited) and perDomain[domain] for each listed recipient domain.
func NewLimits(perSecond float64, perDomain map[string]float64) *Limits {
	l := &Limits{}
	if perSecond > 0 {
		l.Global, l.PerSecond = rate.NewLimiter(rate.Limit(perSecond), 1), perSecond
	}
	for d, r := range perDomain {
		if r <= 0 {
			continue
		}
		if l.Domains == nil {
			l.Domains = map[string]Waiter{}
		}
		l.Domains[strings.ToLower(d)] = rate.NewLimiter(rate.Limit(r), 1)
		if l.DomainRates == nil {
			l.DomainRates = map[string]float64{}
		}
		l.DomainRates[strings.ToLower(d)] = r
	}
	return l
}

// Wait blocks until a message to rcpt may go: first its domain's limit (so
// a slow domain does not hold a global slot), then the global one. It is
// called exactly once per message sent.
func (l *Limits) Wait(ctx context.Context, rcpt string) error {
	if l == nil {
		return nil
	}
	if w := l.Domains[domainOf(rcpt)]; w != nil {
		if err := w.Wait(ctx); err != nil {
			return fmt.Errorf("rate limit for %s: %w", domainOf(rcpt), err)
		}
	}
	if l.Global != nil {
		if err := l.Global.Wait(ctx); err != nil {
			return fmt.Errorf("rate limit: %w", err)
		}
	}
	return nil
}

func (l *Limits) perSecond() float64 {
	if l == nil {
		return 0
	}
	return l.PerSecond
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}
