package mailer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/ballotd/ballotd/mailer"
)

// countingWaiter counts the waits it lets through.
type countingWaiter struct{ n atomic.Int64 }

func (c *countingWaiter) Wait(context.Context) error { c.n.Add(1); return nil }

// Every message sent waits once on the global limit, and once on its
// domain's limit when that domain has one; other domains do not.
func TestLimitsWaitOncePerMessage(t *testing.T) {
	t.Parallel()
	const n = 20
	st := openRaceOf(t, n, func(i int) string {
		if i%4 == 0 {
			return "Slow.Example"
		}
		return "example.net"
	})
	r := startRelay(t, &relay{})
	ob := outboxTo(st, r.addr, 4)
	global, slow, other := &countingWaiter{}, &countingWaiter{}, &countingWaiter{}
	ob.Limits = &mailer.Limits{Global: global, Domains: map[string]mailer.Waiter{"slow.example": slow, "elsewhere.example": other}}
	if got, err := ob.Drain(context.Background()); err != nil || got != n {
		t.Fatalf("drain = %d, %v", got, err)
	}
	if len(r.received()) != n {
		t.Fatalf("relay received %d recipients, want %d", len(r.received()), n)
	}
	if g, s, o := global.n.Load(), slow.n.Load(), other.n.Load(); g != n || s != n/4 || o != 0 {
		t.Errorf("waits: global %d, slow.example %d, elsewhere %d; want %d, %d, 0", g, s, o, n, n/4)
	}
}

// The limiters NewLimits makes space messages exactly 1/rate apart with no
// burst: read off reservations on a fixed clock, not timed.
func TestNewLimitsSpacesExactly(t *testing.T) {
	t.Parallel()
	l := mailer.NewLimits(50, map[string]float64{"Gmail.com": 2, "ignored.example": 0})
	g, ok := l.Global.(*rate.Limiter)
	if !ok || g.Burst() != 1 || g.Limit() != 50 || l.PerSecond != 50 {
		t.Fatalf("global limiter %#v", l.Global)
	}
	d, ok := l.Domains["gmail.com"].(*rate.Limiter)
	if !ok || d.Burst() != 1 || len(l.Domains) != 1 {
		t.Fatalf("domain limiters %#v", l.Domains)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		lim  *rate.Limiter
		step time.Duration
	}{{g, 20 * time.Millisecond}, {d, 500 * time.Millisecond}} {
		c.lim.SetLimitAt(t0, c.lim.Limit()) // start the clock at t0 with a full bucket
		for i := 0; i < 5; i++ {
			res := c.lim.ReserveN(t0, 1)
			if want := time.Duration(i) * c.step; !res.OK() || res.DelayFrom(t0) != want {
				t.Errorf("message %d at rate %v: delay %v, want %v", i+1, c.lim.Limit(), res.DelayFrom(t0), want)
			}
		}
	}
	if un := mailer.NewLimits(0, nil); un.Global != nil || un.Domains != nil {
		t.Errorf("rate 0 should be unlimited: %+v", un)
	}
}
