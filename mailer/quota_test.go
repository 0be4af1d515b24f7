package mailer_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/mailer"
)

// runUntil runs ob until cond holds (or fails the test after a minute),
// then stops it.
func runUntil(t *testing.T, ob *mailer.Outbox, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ob.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, time.Minute, cond, what)
}

// statusCount counts the outbox rows in status.
func statusCount(t *testing.T, st *ballots.Store, status string) int {
	t.Helper()
	var n int
	if err := testenv.DB(t, st).Get(&n, `SELECT count(*) FROM outbox WHERE status = $1`, status); err != nil {
		t.Fatal(err)
	}
	return n
}

// A daily quota is one for the relay, not for each replica: two outboxes
// on one database, draining side by side, send 20 of 30 in all; the rest
// wait, unsent and no attempt counted.
func TestDailyQuotaCountedAcrossTwoOutboxes(t *testing.T) {
	t.Parallel()
	st := openRaceOf(t, 30, func(int) string { return "example.net" })
	r := startRelay(t, &relay{})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		ob := outboxTo(st, r.addr, 2)
		ob.RelayName = "smtp.example:587"
		ob.Limits = mailer.NewLimits(0, nil)
		ob.Limits.Daily = 20
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ob.Drain(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := len(r.received()); got != 20 {
		t.Errorf("relay got %d messages; want the quota, 20", got)
	}
	sent, waiting := 0, 0
	for rcpt, s := range rowStates(t, st) {
		switch {
		case s.Status == ballots.OutboxSent && s.Attempts == 1:
			sent++
		case s.Status == ballots.OutboxQueued && s.Attempts == 0:
			waiting++
		default:
			t.Errorf("%s: %s after %d attempts; want sent once or queued untried", rcpt, s.Status, s.Attempts)
		}
	}
	if sent != 20 || waiting != 10 {
		t.Errorf("%d sent, %d waiting; want 20 and 10", sent, waiting)
	}
	// The rows a claim found over the quota come due when it frees, a
	// day after the first send (those never claimed keep their time).
	var later time.Time
	if err := testenv.DB(t, st).Get(&later, `SELECT max(next_attempt) FROM outbox WHERE status = 'queued'`); err != nil || time.Until(later) < 23*time.Hour {
		t.Errorf("the waiting rows come due at %v (%v); want when the quota frees, a day after the first send", later, err)
	}
}

// A domain's hourly limit holds, and the other domains are not held up
// by it.
func TestDomainHourlyLimitHolds(t *testing.T) {
	t.Parallel()
	st := openRaceOf(t, 20, func(i int) string {
		if i%2 == 0 {
			return "slow.example"
		}
		return "example.net"
	})
	r := startRelay(t, &relay{})
	ob := outboxTo(st, r.addr, 2)
	ob.Limits = mailer.NewLimits(0, nil)
	ob.Limits.DomainQuotas = map[string]ballots.DomainQuota{"slow.example": {Hourly: 4, Daily: 100}}
	if _, err := ob.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A second drain finds the hour used up too.
	if _, err := ob.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	bySlow := map[bool]int{}
	for rcpt, k := range r.received() {
		if k != 1 {
			t.Errorf("%s got %d copies", rcpt, k)
		}
		bySlow[strings.HasSuffix(rcpt, "@slow.example")]++
	}
	if bySlow[true] != 4 || bySlow[false] != 10 {
		t.Errorf("sent %d to slow.example and %d elsewhere; want 4 (its hourly limit) and all 10", bySlow[true], bySlow[false])
	}
	for rcpt, s := range rowStates(t, st) {
		if s.Status != ballots.OutboxSent && (s.Status != ballots.OutboxQueued || s.Attempts != 0) {
			t.Errorf("%s: %s after %d attempts; want sent, or queued untried", rcpt, s.Status, s.Attempts)
		}
	}
	var next time.Time
	if err := testenv.DB(t, st).Get(&next, `SELECT min(next_attempt) FROM outbox WHERE status = 'queued'`); err != nil || time.Until(next) < 55*time.Minute {
		t.Errorf("held rows due at %v (%v); want in about an hour", next, err)
	}
}

// 452 4.5.3 and 421 … rate slow the relay down: the rows they hit go
// back due with no attempt counted and none fails; in the end every
// recipient has one copy and every row one attempt.
func TestQuotaRepliesBackOffWithoutAttempts(t *testing.T) {
	t.Parallel()
	const n = 24
	st := openRaceOf(t, n, func(int) string { return "example.net" })
	var mu sync.Mutex
	refused := 0
	r := startRelay(t, &relay{
		onRcpt: func(k int, _ string) *smtp.SMTPError {
			if k >= 3 && k <= 8 {
				mu.Lock()
				refused++
				mu.Unlock()
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "daily sending quota exceeded"}
			}
			return nil
		},
		onMail: func(k int) (*smtp.SMTPError, bool) {
			if k == 15 {
				return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "rate limit exceeded, closing"}, true
			}
			return nil, false
		},
	})
	ob := outboxTo(st, r.addr, 3)
	ob.RelayBackoff = 20 * time.Millisecond
	ob.Poll = 20 * time.Millisecond
	runUntil(t, ob, "every row sent", func() bool { return statusCount(t, st, ballots.OutboxSent) == n })
	for rcpt, s := range rowStates(t, st) {
		if s.Attempts != 1 {
			t.Errorf("%s: %d attempts; a quota reply is not an attempt", rcpt, s.Attempts)
		}
	}
	for rcpt, k := range r.received() {
		if k != 1 {
			t.Errorf("%s got %d copies", rcpt, k)
		}
	}
	if len(r.received()) != n || refused != 6 {
		t.Errorf("relay got %d recipients after %d quota replies; want %d after 6", len(r.received()), refused, n)
	}
}

// A 452 quota reply that does not end: no row fails, none counts an
// attempt; each is deferred with the relay's reply on record.
func TestQuotaReplyForeverFailsNoRow(t *testing.T) {
	t.Parallel()
	st := openRaceOf(t, 4, func(int) string { return "example.net" })
	r := startRelay(t, &relay{onRcpt: func(int, string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "too many recipients today"}
	}})
	for i := 0; i < 4; i++ {
		// An outbox of its own for each drain, as after a restart: one
		// outbox's pause of the relay doubles at each refusal and would
		// soon be waited out for tens of seconds, which is not what this
		// test is about (TestQuotaRepliesBackOffWithoutAttempts is).
		ob := outboxTo(st, r.addr, 2)
		ob.MaxAttempts = 2
		ob.RelayBackoff = 10 * time.Millisecond
		if _, err := ob.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := testenv.DB(t, st).Exec(`UPDATE outbox SET next_attempt = now() WHERE status = 'deferred'`); err != nil {
			t.Fatal(err)
		}
	}
	for rcpt, s := range rowStates(t, st) {
		if s.Status == ballots.OutboxFailed || s.Attempts != 0 {
			t.Errorf("%s: %+v; want not failed, no attempt", rcpt, s)
		}
		if s.Status == ballots.OutboxDeferred && (s.Code != 452 || s.Reply != "452 4.5.3 too many recipients today" || s.Reason != ballots.ReasonThrottled) {
			t.Errorf("%s: %+v; want the quota reply on record", rcpt, s)
		}
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The first relay refuses connections, says 421, or says the account is
// suspended: the second sends everything, and no row counts the first's
// refusal as an attempt.
func TestFailOverToTheSecondRelay(t *testing.T) {
	t.Parallel()
	for name, first := range map[string]func(t *testing.T) string{
		"refuses connections": closedAddr,
		"421": func(t *testing.T) string {
			return startRelay(t, &relay{onMail: func(int) (*smtp.SMTPError, bool) {
				return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "service not available, closing"}, true
			}}).addr
		},
		"554 suspended": func(t *testing.T) string {
			return startRelay(t, &relay{onMail: func(int) (*smtp.SMTPError, bool) {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sending suspended for this account"}, false
			}}).addr
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const n = 12
			st := openRaceOf(t, n, func(int) string { return "example.net" })
			a, b := first(t), startRelay(t, &relay{})
			ob := outboxTo(st, b.addr, 2)
			ob.Poll = 20 * time.Millisecond
			ob.RelayBackoff = time.Hour // the first stays paused once it refused
			sender := func(addr string) func() mailer.Sender {
				return func() mailer.Sender {
					return mailer.NewSMTPSender(mailer.SMTPConfig{Addr: addr, HeloName: "example.org", Timeout: 10 * time.Second})
				}
			}
			ob.Relays = []*mailer.Relay{{Name: "first", NewSender: sender(a)}, {Name: "second", NewSender: sender(b.addr)}}
			runUntil(t, ob, "every row sent", func() bool { return statusCount(t, st, ballots.OutboxSent) == n })
			if got := len(b.received()); got != n {
				t.Errorf("second relay got %d; want all %d", got, n)
			}
			for rcpt, s := range rowStates(t, st) {
				if s.Attempts != 1 {
					t.Errorf("%s: %d attempts; want 1", rcpt, s.Attempts)
				}
			}
		})
	}
}

// The first relay's daily quota used up, the second takes the rest.
func TestFailOverWhenTheQuotaIsUsedUp(t *testing.T) {
	t.Parallel()
	const n = 15
	st := openRaceOf(t, n, func(int) string { return "example.net" })
	a, b := startRelay(t, &relay{}), startRelay(t, &relay{})
	ob := outboxTo(st, a.addr, 2)
	ob.Poll = 20 * time.Millisecond
	la := mailer.NewLimits(0, nil)
	la.Daily = 5
	ob.Relays = []*mailer.Relay{
		{Name: "a", Limits: la, NewSender: func() mailer.Sender {
			return mailer.NewSMTPSender(mailer.SMTPConfig{Addr: a.addr, HeloName: "example.org"})
		}},
		{Name: "b", NewSender: func() mailer.Sender {
			return mailer.NewSMTPSender(mailer.SMTPConfig{Addr: b.addr, HeloName: "example.org"})
		}},
	}
	runUntil(t, ob, "every row sent", func() bool { return statusCount(t, st, ballots.OutboxSent) == n })
	if len(a.received()) != 5 || len(b.received()) != 10 {
		t.Errorf("relays got %d and %d; want 5 (the first's quota) and 10", len(a.received()), len(b.received()))
	}
}

// waveRelay is a loopback relay as the acceptance run has it: it
// answers 452 4.5.3 once it has taken perWindow messages in a window, and
// 550 5.1.1 to the recipients bad says.
func waveRelay(t *testing.T, perWindow int, window time.Duration, bad func(rcpt string) bool) *relay {
	var mu sync.Mutex
	var start time.Time
	taken := 0
	return startRelay(t, &relay{onRcpt: func(_ int, rcpt string) *smtp.SMTPError {
		if bad(rcpt) {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "user unknown"}
		}
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(start) >= window {
			start, taken = now, 0
		}
		if taken >= perWindow {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "sending quota exceeded, try later"}
		}
		taken++
		return nil
	}})
}

// The acceptance run of issue 22, test-sized: a wave through a relay that
// says 452 4.5.3 after every 400 messages in a window and 550 5.1.1 for 1 %
// of recipients ends with every valid recipient sent exactly once, the 1 %
// failed with their enhanced code, no row over one attempt, and the
// per-domain report right.
func TestWaveThroughAQuotaRelay(t *testing.T) {
	t.Parallel()
	const n = 2000
	domains := []string{"gmail.com", "outlook.com", "yahoo.com", "example.net"}
	domain := func(i int) string { return domains[(i/3)%len(domains)] }
	st := openRaceOf(t, n, domain)
	bad := func(rcpt string) bool {
		var i int
		fmt.Sscanf(rcpt, "member%d@", &i)
		return i%100 == 0
	}
	// What the report should say, by domain class.
	wantSent, wantBounced := map[string]int{}, map[string]int{}
	for i := 1; i <= n; i++ {
		rcpt := fmt.Sprintf("member%d@%s", i, domain(i))
		if bad(rcpt) {
			wantBounced[ballots.DomainClass(rcpt)]++
		} else {
			wantSent[ballots.DomainClass(rcpt)]++
		}
	}
	r := waveRelay(t, 400, 500*time.Millisecond, bad)
	ob := outboxTo(st, r.addr, 4)
	ob.Batch = 200
	ob.Poll = 20 * time.Millisecond
	ob.RelayBackoff = 50 * time.Millisecond
	runUntil(t, ob, "every row settled", func() bool {
		return statusCount(t, st, ballots.OutboxSent)+statusCount(t, st, ballots.OutboxFailed) == n
	})
	got := r.received()
	for rcpt, s := range rowStates(t, st) {
		if s.Attempts != 1 {
			t.Errorf("%s: %d attempts; want 1", rcpt, s.Attempts)
		}
		if bad(rcpt) {
			if s.Status != ballots.OutboxFailed || s.Reply != "550 5.1.1 user unknown" || s.Reason != ballots.ReasonUnknownMailbox || got[rcpt] != 0 {
				t.Errorf("%s: %+v, received %d; want failed with 550 5.1.1", rcpt, s, got[rcpt])
			}
		} else if s.Status != ballots.OutboxSent || got[rcpt] != 1 {
			t.Errorf("%s: %s, received %d; want sent once", rcpt, s.Status, got[rcpt])
		}
	}
	d, err := st.DeliveryByDomain(context.Background(), "March")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Domains) != len(wantSent) {
		t.Errorf("report has %d domain classes; want %d", len(d.Domains), len(wantSent))
	}
	for _, dom := range d.Domains {
		if dom.Sent != wantSent[dom.Class] || dom.Bounced != wantBounced[dom.Class] || dom.Deferred != 0 || dom.Pending != 0 ||
			wantBounced[dom.Class] > 0 && (len(dom.Reasons) != 1 || dom.Reasons[0].Reason != ballots.ReasonUnknownMailbox) {
			t.Errorf("%s: %+v; want %d sent and %d bounced (unknown mailbox)", dom.Class, dom, wantSent[dom.Class], wantBounced[dom.Class])
		}
	}
	if d.Total.Sent != n-n/100 || d.Total.Bounced != n/100 {
		t.Errorf("total %+v; want %d sent, %d bounced", d.Total, n-n/100, n/100)
	}
}
