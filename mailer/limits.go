package mailer

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/time/rate"
)

// Limits paces sending: Global is one rate shared by every worker of this
// process (a replica's share of the relay's limit), Domains optional rates
// per recipient domain (lowercase). Each limiter has a burst of one, so a
// rate of r messages a second means one message every 1/r seconds, never
// a burst above it. A nil limiter means unlimited.
type Limits struct {
	Global  *rate.Limiter
	Domains map[string]*rate.Limiter
}

// NewLimits returns limits of perSecond messages a second overall (0 for
// unlimited) and perDomain[domain] for each listed recipient domain.
func NewLimits(perSecond float64, perDomain map[string]float64) *Limits {
	l := &Limits{}
	if perSecond > 0 {
		l.Global = rate.NewLimiter(rate.Limit(perSecond), 1)
	}
	for d, r := range perDomain {
		if r <= 0 {
			continue
		}
		if l.Domains == nil {
			l.Domains = map[string]*rate.Limiter{}
		}
		l.Domains[strings.ToLower(d)] = rate.NewLimiter(rate.Limit(r), 1)
	}
	return l
}

// Wait blocks until a message to rcpt may go: first its domain's limit (so
// a slow domain does not hold a global slot), then the global one.
func (l *Limits) Wait(ctx context.Context, rcpt string) error {
	if l == nil {
		return nil
	}
	if lim := l.Domains[domainOf(rcpt)]; lim != nil {
		if err := lim.Wait(ctx); err != nil {
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

// perSecond is the global rate, 0 when unlimited.
func (l *Limits) perSecond() float64 {
	if l == nil || l.Global == nil {
		return 0
	}
	return float64(l.Global.Limit())
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}
