package mailer_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/pgtemp"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/mailer"
)

// A holder whose lease ran out, and whose rows another claimer took since,
// records nothing: the current holder's outcome stands, and the claims
// themselves counted no attempt.
func TestStaleHolderCannotFinishAReclaimedRow(t *testing.T) {
	t.Parallel()
	st := openRaceOf(t, 2, func(int) string { return "example.net" })
	ctx := context.Background()
	// A lease already over when the claim commits: the next claim takes
	// the rows as a crashed or slow holder's.
	stale, err := st.ClaimOutbox(ctx, 10, -time.Second)
	if err != nil || len(stale) != 2 {
		t.Fatalf("first claim: %d rows, %v", len(stale), err)
	}
	current, err := st.ClaimOutbox(ctx, 10, time.Hour)
	if err != nil || len(current) != 2 {
		t.Fatalf("second claim: %d rows, %v; want the 2 whose lease ran out", len(current), err)
	}
	for i := range current {
		if current[i].ID != stale[i].ID || current[i].Claim == stale[i].Claim || current[i].Attempts != 0 {
			t.Fatalf("claims %+v then %+v; want the same rows under new claims, no attempt counted", stale[i], current[i])
		}
	}
	// The stale holder's results and release change nothing.
	var late []ballots.SendResult
	for _, r := range stale {
		late = append(late, ballots.SendResult{ID: r.ID, Claim: r.Claim, Status: ballots.OutboxFailed, Code: 550, Reply: "550 5.1.1 stale"})
	}
	if n, err := st.RecordResults(ctx, late); err != nil || n != 0 {
		t.Fatalf("stale holder's results: %d rows changed, %v; want 0", n, err)
	}
	if err := st.ReleaseOutbox(ctx, []ballots.Claimed{{ID: stale[0].ID, Claim: stale[0].Claim}}); err != nil {
		t.Fatal(err)
	}
	for rcpt, s := range rowStates(t, st) {
		if s.Status != ballots.OutboxSending || s.Attempts != 0 || s.Reply != "" {
			t.Errorf("%s after the stale holder wrote: %+v; want still sending under the current claim", rcpt, s)
		}
	}
	// The current holder's results are recorded, as one attempt.
	var now []ballots.SendResult
	for _, r := range current {
		now = append(now, ballots.SendResult{ID: r.ID, Claim: r.Claim, Status: ballots.OutboxSent, Code: 250, Reply: "ok"})
	}
	if n, err := st.RecordResults(ctx, now); err != nil || n != 2 {
		t.Fatalf("current holder's results: %d rows changed, %v; want 2", n, err)
	}
	for rcpt, s := range rowStates(t, st) {
		if s.Status != ballots.OutboxSent || s.Attempts != 1 || s.Reply != "ok" {
			t.Errorf("%s: %+v; want sent after 1 attempt", rcpt, s)
		}
	}
}

// signalHandler is a slog handler that closes a channel at the first
// record with a given message.
type signalHandler struct {
	slog.Handler
	msg  string
	once *sync.Once
	seen chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h signalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

// The database goes away between a send and its record (stopped while the
// relay holds the message, connections cut) and comes back only once a
// write of results has failed: the write is tried again and succeeds, so
// every recipient gets exactly one copy and every row ends sent.
func TestDatabaseLostBetweenSendAndRecord(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		testenv.Skip(t, "-short: starts its own PostgreSQL")
	}
	ctx := context.Background()
	const n = 30
	cl, st, r, paused := pausingCluster(t, n, 10)
	db := testenv.Open(t, cl.URL)
	failed := make(chan struct{})
	ob := outboxTo(st, r.addr, 2)
	ob.Poll = 20 * time.Millisecond
	ob.RecordTimeout = 2 * time.Second
	ob.Logger = slog.New(signalHandler{Handler: slog.Default().Handler(), msg: "record send results: will try again", once: &sync.Once{}, seen: failed})

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ob.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	<-paused
	select {
	case <-failed:
	case <-time.After(time.Minute):
		t.Fatal("no write of results failed while the database was away")
	}
	if err := cl.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	// Rows whose rendering met the outage were deferred (10 s and more):
	// bring them due, as the clock would.
	deadline := time.Now().Add(time.Minute)
	for {
		counts, err := st.OutboxCounts(ctx)
		sent := 0
		for _, c := range counts {
			if c.Status == ballots.OutboxSent {
				sent += c.Count
			}
		}
		if err == nil && sent == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %+v (%v); want all %d sent", counts, err, n)
		}
		db.Exec(`UPDATE outbox SET next_attempt = now() WHERE status = 'deferred'`)
		ob.Wake()
		time.Sleep(20 * time.Millisecond)
	}
	got := r.received()
	if len(got) != n {
		t.Errorf("relay got mail for %d recipients; want %d", len(got), n)
	}
	for rcpt, k := range got {
		if k != 1 {
			t.Errorf("%s received %d copies; want 1", rcpt, k)
		}
	}
}

// Bounces reported after the send and abuse complaints count in the
// delivery report by domain, with the bounce's reason.
func TestDeliveryByDomainCountsBouncesAndComplaints(t *testing.T) {
	t.Parallel()
	st := openRaceOf(t, 3, func(int) string { return "gmail.com" })
	r := startRelay(t, &relay{})
	if _, err := outboxTo(st, r.addr, 1).Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	if err := testenv.DB(t, st).Select(&ids, `SELECT id FROM outbox ORDER BY id`); err != nil || len(ids) != 3 {
		t.Fatal(ids, err)
	}
	for i, b := range []ballots.BounceInput{
		{OutboxID: ids[0], Hard: true, Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 The email account that you tried to reach does not exist"},
		{OutboxID: ids[1], Complaint: true},
	} {
		err := st.InTx(context.Background(), func(tx *sqlx.Tx) error {
			_, err := ballots.RecordBounce(context.Background(), tx, b)
			return err
		})
		if err != nil {
			t.Fatalf("bounce %d: %v", i, err)
		}
	}
	d, err := st.DeliveryByDomain(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Domains) != 1 {
		t.Fatalf("domains %+v; want gmail only", d.Domains)
	}
	g := d.Domains[0]
	if g.Class != ballots.DomainGmail || g.Sent != 2 || g.Bounced != 1 || g.Complaints != 1 || g.Deferred != 0 ||
		len(g.Reasons) != 1 || g.Reasons[0] != (ballots.ReasonCount{Reason: ballots.ReasonUnknownMailbox, Count: 1}) {
		t.Errorf("gmail %+v; want 2 sent, 1 bounced (unknown_mailbox), 1 complaint", g)
	}
}

// The database dies between a send and its record and does not come back
// before a shutdown: the writes of results are given up after their tries,
// Run returns, and nothing was sent twice; once the database is back,
// every row is sent or still waiting to be (after its lease), none lost.
func TestShutdownWithTheDatabaseDead(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		testenv.Skip(t, "-short: starts its own PostgreSQL")
	}
	ctx := context.Background()
	const n = 20
	cl, st, r, paused := pausingCluster(t, n, 5)
	gaveUp := make(chan struct{})
	ob := outboxTo(st, r.addr, 2)
	ob.Poll = 20 * time.Millisecond
	ob.RecordTimeout = 500 * time.Millisecond
	ob.Logger = slog.New(signalHandler{Handler: slog.Default().Handler(), msg: "record send results: given up", once: &sync.Once{}, seen: gaveUp})

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ob.Run(runCtx) }()
	<-paused
	select {
	case <-gaveUp:
	case <-time.After(2 * time.Minute):
		t.Fatal("the write of results was not given up")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return with the database dead")
	}
	if err := cl.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	db := testenv.Open(t, cl.URL)
	got := r.received()
	for rcpt, k := range got {
		if k != 1 {
			t.Errorf("%s received %d copies; want 1", rcpt, k)
		}
	}
	states := rowStatesIn(t, db)
	if len(states) != n {
		t.Fatalf("%d rows; want %d", len(states), n)
	}
	for rcpt, s := range states {
		switch {
		case s.Status == ballots.OutboxFailed:
			t.Errorf("%s: failed (%s); a dead database fails no row", rcpt, s.Reply)
		case s.Status == ballots.OutboxSent && got[rcpt] != 1:
			t.Errorf("%s: sent on record, received %d times", rcpt, got[rcpt])
		}
	}
}

// Rows claimed together behind a per-domain limit slower than their lease
// (the 784 of 786 rows sent with attempts = 2): a row whose lease
// ran out while it waited is not sent under that claim but claimed again,
// so every recipient gets one copy and every row ends sent after one
// attempt.
func TestRowsOutlivingTheirLeaseAreSentOnceAfterOneAttempt(t *testing.T) {
	t.Parallel()
	const n = 24
	st := openRaceOf(t, n, func(int) string { return "slow.example" })
	r := startRelay(t, &relay{})
	ob := outboxTo(st, r.addr, 2)
	ob.Batch = n
	// The lease is long enough that a send on a loaded machine ends well
	// within the margin a worker keeps (lease/10 = 200 ms); with 500 ms
	// (a 50 ms margin) a slow send outlived its lease and went twice.
	ob.Lease = 2 * time.Second
	ob.Poll = 20 * time.Millisecond
	ob.Limits = mailer.NewLimits(0, map[string]float64{"slow.example": 5}) // 4.8 s for all, over twice the lease
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ob.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		counts, err := st.OutboxCounts(ctx)
		sent := 0
		for _, c := range counts {
			if c.Status == ballots.OutboxSent {
				sent += c.Count
			}
		}
		if err == nil && sent == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %+v (%v); want all %d sent", counts, err, n)
		}
	}
	got := r.received()
	if len(got) != n {
		t.Errorf("relay got mail for %d recipients; want %d", len(got), n)
	}
	for rcpt, k := range got {
		if k != 1 {
			t.Errorf("%s received %d copies; want 1", rcpt, k)
		}
	}
	for rcpt, s := range rowStates(t, st) {
		if s.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts; want 1", rcpt, s.Status, s.Attempts)
		}
	}
}

// pausingCluster starts a throwaway PostgreSQL with a race of n ballots
// open on it and a relay that pauses that server once it has taken the
// k-th message (which is accepted after it: its result meets no
// database); paused is closed then. The cluster and store end with t.
func pausingCluster(t *testing.T, n, k int) (*pgtemp.Cluster, *ballots.Store, *relay, chan struct{}) {
	t.Helper()
	ctx := context.Background()
	cl, err := pgtemp.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Stop() })
	st, err := ballots.Open(ctx, cl.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	openRaceIn(t, st, n, func(int) string { return "example.net" })
	paused := make(chan struct{})
	r := startRelay(t, &relay{onData: func(i int, _ string) (*smtp.SMTPError, bool) {
		if i == k {
			if err := cl.Pause(ctx); err != nil {
				t.Errorf("pause: %v", err)
			}
			close(paused)
		}
		return nil, false
	}})
	return cl, st, r, paused
}
