package mailer_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// relay is a real go-smtp server on loopback whose behaviour at MAIL, RCPT
// and DATA a test scripts, for the faults mailhub cannot cause: a 421 that
// ends the session, a connection cut mid-DATA, a rejection after DATA.
type relay struct {
	addr string
	srv  *smtp.Server

	mu       sync.Mutex
	mails    int // MAIL commands seen
	rcpts    int // RCPT commands seen
	datas    int // DATA transfers seen
	sessions int
	got      map[string]int // recipient → messages accepted

	// Each hook sees the command's sequence number (from 1) and returns
	// the reply to give instead of 250, nil to accept. drop means cut the
	// connection with no reply.
	onMail func(n int) (err *smtp.SMTPError, drop bool)
	onRcpt func(n int, rcpt string) *smtp.SMTPError
	onData func(n int, rcpt string) (err *smtp.SMTPError, drop bool)
}

func startRelay(t *testing.T, r *relay) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr, r.got = ln.Addr().String(), map[string]int{}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		r.mu.Lock()
		r.sessions++
		r.mu.Unlock()
		return &relaySession{r: r, c: c}, nil
	}))
	r.srv.Domain = "relay.test"
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *relay) received() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

type relaySession struct {
	r    *relay
	c    *smtp.Conn
	rcpt string
}

func (s *relaySession) Reset()        { s.rcpt = "" }
func (s *relaySession) Logout() error { return nil }

func (s *relaySession) Mail(string, *smtp.MailOptions) error {
	s.r.mu.Lock()
	s.r.mails++
	n := s.r.mails
	s.r.mu.Unlock()
	if s.r.onMail == nil {
		return nil
	}
	err, drop := s.r.onMail(n)
	if drop {
		s.c.Close()
	}
	if err != nil {
		return err
	}
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	s.r.rcpts++
	n := s.r.rcpts
	s.r.mu.Unlock()
	if s.r.onRcpt != nil {
		if err := s.r.onRcpt(n, to); err != nil {
			return err
		}
	}
	s.rcpt = to
	return nil
}

func (s *relaySession) Data(rd io.Reader) error {
	s.r.mu.Lock()
	s.r.datas++
	n := s.r.datas
	s.r.mu.Unlock()
	if s.r.onData != nil {
		err, drop := s.r.onData(n, s.rcpt)
		if drop {
			s.c.Close()
			return &smtp.SMTPError{Code: 421, Message: "gone"}
		}
		if err != nil {
			io.Copy(io.Discard, rd)
			return err
		}
	}
	if _, err := io.Copy(io.Discard, rd); err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.got[s.rcpt]++
	s.r.mu.Unlock()
	return nil
}

// openRaceOf opens MA-SEN for n members, member1@… to memberN@… (the
// domain of member i is domain(i)), and returns the store.
func openRaceOf(t *testing.T, n int, domain func(i int) string) *ballots.Store {
	t.Helper()
	st := testenv.Store(t)
	openRaceIn(t, st, n, domain)
	return st
}

// openRaceIn is openRaceOf in the migrated store st.
func openRaceIn(t *testing.T, st *ballots.Store, n int, domain func(i int) string) {
	t.Helper()
	ctx := context.Background()
	var csv strings.Builder
	csv.WriteString("email,name,district\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&csv, "member%d@%s,Member %d,MA-0%d\n", i, domain(i), i, i%9+1)
	}
	if _, err := st.ImportMembers(ctx, strings.NewReader(csv.String())); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "March", NominationsClose: now, VotingOpen: now, VotingClose: now.Add(time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "Senator", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := st.OpenRace(ctx, "MA-SEN"); err != nil || got != n {
		t.Fatalf("open race: %d ballots, %v; want %d", got, err, n)
	}
}

func outboxTo(st *ballots.Store, addr string, workers int) *mailer.Outbox {
	toks, _ := token.NewKey("test-secret-0123456789")
	tpl, err := templates.Load("")
	if err != nil {
		panic(err)
	}
	return &mailer.Outbox{
		Store:    st,
		Renderer: &mailer.Renderer{Store: st, Templates: tpl, Tokens: toks, ID: mailer.Identity{Local: "ballots", Domain: "example.org", FromName: "Ballots"}},
		NewSender: func() mailer.Sender {
			return mailer.NewSMTPSender(mailer.SMTPConfig{Addr: addr, HeloName: "example.org", Timeout: 10 * time.Second})
		},
		Workers: workers,
		Batch:   7,
	}
}

// rowState is one outbox row's outcome on record.
type rowState struct {
	Recipient string `db:"recipient"`
	Status    string `db:"status"`
	Code      int    `db:"code"`
	Reply     string `db:"last_reply"`
	Attempts  int    `db:"attempts"`
	Reason    string `db:"reason"`
}

func rowStates(t *testing.T, st *ballots.Store) map[string]rowState {
	t.Helper()
	return rowStatesIn(t, testenv.DB(t, st))
}

// rowStatesIn is rowStates over a database of the test's own (a
// throwaway cluster), not one testenv.Store made.
func rowStatesIn(t *testing.T, db *sqlx.DB) map[string]rowState {
	t.Helper()
	var rows []rowState
	if err := db.Select(&rows, `SELECT recipient, status, coalesce(last_code, 0) AS code, last_reply, attempts, reason FROM outbox`); err != nil {
		t.Fatal(err)
	}
	out := map[string]rowState{}
	for _, r := range rows {
		out[r.Recipient] = r
	}
	return out
}

// drainUntilSettled drains, then brings deferred rows due again (what the
// clock would do) and drains again, until no row is deferred.
func drainUntilSettled(t *testing.T, ob *mailer.Outbox, st *ballots.Store, rounds int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < rounds; i++ {
		if _, err := ob.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		res, err := testenv.DB(t, st).Exec(`UPDATE outbox SET next_attempt = now() WHERE status = 'deferred'`)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return
		}
	}
	t.Fatalf("rows still deferred after %d rounds", rounds)
}

// A throttling relay: 451 for the first RCPTs, a 421 that ends a session,
// a connection cut in the middle of DATA. Every row ends sent, each
// recipient received exactly once, and the sender reconnected.
func TestThrottlingRelayEndsWithEverySent(t *testing.T) {
	t.Parallel()
	const n = 30
	st := openRaceOf(t, n, func(int) string { return "example.net" })
	r := startRelay(t, &relay{
		onRcpt: func(k int, _ string) *smtp.SMTPError {
			if k <= 5 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "throttled, try later"}
			}
			return nil
		},
		onMail: func(k int) (*smtp.SMTPError, bool) {
			if k == 9 || k == 17 {
				return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many messages, closing"}, true
			}
			return nil, false
		},
		onData: func(k int, _ string) (*smtp.SMTPError, bool) { return nil, k == 12 },
	})
	ob := outboxTo(st, r.addr, 3)

	// The first pass: the faults are on record as deferrals with their replies.
	if _, err := ob.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	codes := map[int]int{}
	for _, s := range rowStates(t, st) {
		if s.Status == ballots.OutboxDeferred {
			codes[s.Code]++
			if s.Reply == "" {
				t.Errorf("%s deferred with no reason on record", s.Recipient)
			}
		}
	}
	// The 421s are the relay's, not the recipients': the relay is paused
	// and their rows go again after the pause, in this drain already.
	if codes[451] != 5 || codes[0] > 1 {
		t.Errorf("deferred by reply code %v; want 5×451 and at most the cut connection", codes)
	}

	drainUntilSettled(t, ob, st, 10)
	got := r.received()
	for i := 1; i <= n; i++ {
		rcpt := fmt.Sprintf("member%d@example.net", i)
		s := rowStates(t, st)[rcpt]
		if s.Status != ballots.OutboxSent || s.Code != 250 {
			t.Errorf("%s: %s %d %q, want sent 250", rcpt, s.Status, s.Code, s.Reply)
		}
		if got[rcpt] != 1 {
			t.Errorf("%s received %d times, want once", rcpt, got[rcpt])
		}
	}
	r.mu.Lock()
	sessions := r.sessions
	r.mu.Unlock()
	if sessions < 3+3 {
		t.Errorf("%d SMTP sessions: the 421s and the cut connection should each have caused a reconnect", sessions)
	}
}

// A rejecting relay: 550 at RCPT for some recipients, 554 after DATA for
// another. Those rows fail with the relay's reply on record; the rest are
// sent; nothing is left in between.
func TestRejectingRelayRecordsEveryFailure(t *testing.T) {
	t.Parallel()
	const n = 12
	st := openRaceOf(t, n, func(i int) string {
		if i%4 == 0 {
			return "gone.example"
		}
		return "example.net"
	})
	r := startRelay(t, &relay{
		onRcpt: func(_ int, rcpt string) *smtp.SMTPError {
			if strings.HasSuffix(rcpt, "@gone.example") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user " + rcpt}
			}
			return nil
		},
		onData: func(_ int, rcpt string) (*smtp.SMTPError, bool) {
			if rcpt == "member5@example.net" {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message refused by policy"}, false
			}
			return nil, false
		},
	})
	ob := outboxTo(st, r.addr, 2)
	drainUntilSettled(t, ob, st, 3)
	states := rowStates(t, st)
	if len(states) != n {
		t.Fatalf("%d outbox rows, want %d", len(states), n)
	}
	for i := 1; i <= n; i++ {
		var rcpt string
		var want rowState
		switch {
		case i%4 == 0:
			rcpt = fmt.Sprintf("member%d@gone.example", i)
			want = rowState{Status: ballots.OutboxFailed, Code: 550, Reply: "550 5.1.1 no such user " + rcpt, Reason: ballots.ReasonUnknownMailbox}
		case i == 5:
			rcpt = "member5@example.net"
			want = rowState{Status: ballots.OutboxFailed, Code: 554, Reply: "554 5.7.1 message refused by policy", Reason: ballots.ReasonPolicy}
		default:
			rcpt = fmt.Sprintf("member%d@example.net", i)
			want = rowState{Status: ballots.OutboxSent, Code: 250}
		}
		s := states[rcpt]
		if s.Status != want.Status || s.Code != want.Code || (want.Reply != "" && s.Reply != want.Reply) || s.Reason != want.Reason {
			t.Errorf("%s: %s %d %q %q; want %s %d %q %q", rcpt, s.Status, s.Code, s.Reply, s.Reason, want.Status, want.Code, want.Reply, want.Reason)
		}
		if s.Attempts != 1 {
			t.Errorf("%s: %d attempts; a final answer needs no retry", rcpt, s.Attempts)
		}
	}
	fails, err := st.OutboxFailures(context.Background(), 100)
	if err != nil || len(fails) != n/4+1 {
		t.Fatalf("OutboxFailures = %d rows, %v; want %d", len(fails), err, n/4+1)
	}
}

// Rows claimed but not tried when the outbox stops go back to the queue
// with their attempt uncounted.
func TestReleaseReturnsUntriedRows(t *testing.T) {
	t.Parallel()
	st := openRaceOf(t, 3, func(int) string { return "example.net" })
	ctx := context.Background()
	rows, err := st.ClaimOutbox(ctx, 2, time.Hour)
	if err != nil || len(rows) != 2 {
		t.Fatalf("claim: %d rows, %v", len(rows), err)
	}
	if err := st.ReleaseOutbox(ctx, []ballots.Claimed{{ID: rows[0].ID, Claim: rows[0].Claim}, {ID: rows[1].ID, Claim: rows[1].Claim}}); err != nil {
		t.Fatal(err)
	}
	for rcpt, s := range rowStates(t, st) {
		if s.Status != ballots.OutboxQueued || s.Attempts != 0 {
			t.Errorf("%s: %s after %d attempts; want queued, 0", rcpt, s.Status, s.Attempts)
		}
	}
	if again, err := st.ClaimOutbox(ctx, 10, time.Hour); err != nil || len(again) != 3 {
		t.Errorf("claim after release: %d rows, %v; want all 3", len(again), err)
	}
}

// A claimer resumes after its cursor, and rows due behind it (released by
// a stopping worker) are found again from the start; Drain sends them all.
func TestClaimCursorFindsRowsBehindIt(t *testing.T) {
	t.Parallel()
	st := openRaceOf(t, 3, func(int) string { return "example.net" })
	ctx := context.Background()
	first, cur, err := st.ClaimOutboxAfter(ctx, ballots.ClaimCursor{}, 2, time.Hour)
	if err != nil || len(first) != 2 || cur.ID != first[1].ID {
		t.Fatalf("first claim: %d rows, cursor %+v, %v", len(first), cur, err)
	}
	if err := st.ReleaseOutbox(ctx, []ballots.Claimed{{ID: first[0].ID, Claim: first[0].Claim}}); err != nil {
		t.Fatal(err)
	}
	// The released row is due again now, i.e. after the cursor in time:
	// put it back to its place in the order, behind the cursor.
	if _, err := testenv.DB(t, st).Exec(`UPDATE outbox SET next_attempt = $1 WHERE id = $2`, first[0].NextAttempt, first[0].ID); err != nil {
		t.Fatal(err)
	}
	next, _, err := st.ClaimOutboxAfter(ctx, cur, 2, time.Hour)
	if err != nil || len(next) != 1 || next[0].ID == first[0].ID {
		t.Fatalf("claim after the cursor: %+v, %v; want only the third row", next, err)
	}
	again, _, err := st.ClaimOutboxAfter(ctx, ballots.ClaimCursor{}, 2, time.Hour)
	if err != nil || len(again) != 1 || again[0].ID != first[0].ID {
		t.Fatalf("claim from the start: %+v, %v; want the released row", again, err)
	}
}

// The running outbox, having sent everything else, still finds a row
// released later at its old place in the queue order (before the rows it
// claimed): the feeder goes back to the start when its cursor runs dry.
func TestRunSendsRowsReleasedBehindIt(t *testing.T) {
	t.Parallel()
	st := openRaceOf(t, 9, func(int) string { return "example.net" })
	r := startRelay(t, &relay{})
	ob := outboxTo(st, r.addr, 2) // batches of 7
	ob.Poll = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	// Hold the first row as a crashed worker would.
	held, err := st.ClaimOutbox(ctx, 1, time.Hour)
	if err != nil || len(held) != 1 {
		t.Fatal(held, err)
	}
	done := make(chan struct{})
	go func() { defer close(done); ob.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor := func(n int) {
		t.Helper()
		if !testenv.Poll(20*time.Second, func() bool { return len(r.received()) >= n }) {
			t.Fatalf("relay received %d of %d", len(r.received()), n)
		}
	}
	waitFor(8)
	// Give it back, due at its old place in the order: behind the cursor.
	if err := st.ReleaseOutbox(ctx, []ballots.Claimed{{ID: held[0].ID, Claim: held[0].Claim}}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.DB(t, st).Exec(`UPDATE outbox SET next_attempt = $1 WHERE id = $2`, held[0].NextAttempt, held[0].ID); err != nil {
		t.Fatal(err)
	}
	ob.Wake()
	waitFor(9)
}
