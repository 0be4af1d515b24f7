package ballots

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// schedulerLock is the advisory lock key the acting scheduler holds.
const schedulerLock = 0x7363686564 // "sched"

// Scheduler runs waves from their schedules inside `ballotd serve`. Every
// replica runs one; exactly one acts: the one holding a session-level
// advisory lock on a dedicated connection. When the holder dies its session
// ends, the lock is released, and another replica takes over at its next
// tick. Each step is also idempotent in the database (row locks, recorded
// steps), so even two actors could not repeat a mail.
type Scheduler struct {
	Store        *Store
	Staff        []string      // vetting notices and digests go here
	Tick         time.Duration // how often to look, default 5s
	RemindBefore time.Duration // reminder lead time before the close, default 24h
	DigestEvery  time.Duration // staff digest interval, 0 for none
	Logger       *slog.Logger
	Enqueued     func() // called after a step enqueued mail (wakes the outbox)
	// Ticked, when set, is called after every tick with whether this
	// scheduler led and the steps it took (metrics and health).
	Ticked func(leading bool, rep StepReport)
	// Retain is the retention period (BALLOTD_RETAIN, see Store.Prune):
	// the leader prunes once a day; 0 keeps everything.
	Retain time.Duration

	conn *sql.Conn // the connection holding the lock, nil when not leading
	// pruneDue is when this scheduler, leading, prunes next (zero: at its
	// first tick as leader).
	pruneDue time.Time
}

// Run ticks until ctx ends, acting while it leads.
func (s *Scheduler) Run(ctx context.Context) {
	if s.Tick <= 0 {
		s.Tick = 5 * time.Second
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	defer s.resign()
	t := time.NewTicker(s.Tick)
	defer t.Stop()
	for {
		s.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Leading reports whether this scheduler held the lock at its last tick.
func (s *Scheduler) Leading() bool { return s.conn != nil }

func (s *Scheduler) tick(ctx context.Context) {
	if !s.lead(ctx) {
		if s.Ticked != nil {
			s.Ticked(false, StepReport{})
		}
		return
	}
	rep, err := s.Store.RunDueSteps(ctx, s.Staff, s.RemindBefore)
	if s.Ticked != nil {
		s.Ticked(true, rep)
	}
	if err != nil && ctx.Err() == nil {
		s.Logger.Error("scheduled step failed", "err", err)
	}
	if rep.Any() {
		s.Logger.Info("scheduled steps taken", "vetting", rep.Vetting, "opened", rep.Opened, "reminded", rep.Reminded, "questionnaire_reminders", rep.Questionnaires,
			"closed", rep.Closed, "enqueued", rep.Enqueued)
	}
	enqueued := rep.Enqueued > 0
	if s.DigestEvery > 0 && len(s.Staff) > 0 {
		d, sent, err := s.Store.SendDigest(ctx, s.Staff, s.DigestEvery)
		switch {
		case err != nil && ctx.Err() == nil:
			s.Logger.Error("staff digest failed", "err", err)
		case sent:
			s.Logger.Info("staff digest enqueued", "to", s.Staff, "results", len(d.Results), "vetting", len(d.Vetting), "problems", len(d.Problems))
			enqueued = true
		}
	}
	if enqueued && s.Enqueued != nil {
		s.Enqueued()
	}
	s.prune(ctx)
}

// lead takes the lock if no one holds it, or checks the session holding it
// is alive; it reports whether this scheduler leads.
func (s *Scheduler) lead(ctx context.Context) bool {
	if s.conn != nil {
		if err := s.conn.PingContext(ctx); err == nil {
			var one int
			if err = s.conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err == nil {
				return true
			}
		}
		if ctx.Err() != nil {
			return false
		}
		// The session is gone, and its lock with it.
		s.Logger.Warn("scheduler lost its database session; no longer leading")
		s.conn.Close()
		s.conn = nil
	}
	conn, err := s.Store.db.Conn(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.Logger.Error("scheduler: connect", "err", err)
		}
		return false
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, schedulerLock).Scan(&got); err != nil {
		conn.Close()
		if ctx.Err() == nil {
			s.Logger.Error("scheduler: try lock", "err", fmt.Errorf("advisory lock: %w", err))
		}
		return false
	}
	if !got {
		conn.Close()
		return false
	}
	s.conn = conn
	s.Logger.Info("scheduler leading: this replica takes the scheduled steps")
	return true
}

// resign releases the lock on the way out.
func (s *Scheduler) resign() {
	if s.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, schedulerLock); err != nil {
		s.Logger.Warn("scheduler: unlock", "err", err)
	}
	s.conn.Close()
	s.conn = nil
}

// pruneEvery is how often the leading scheduler applies retention; after a
// failure it tries again after pruneRetry.
const (
	pruneEvery = 24 * time.Hour
	pruneRetry = time.Hour
)

// prune applies retention when it is due: a step of the leader's tick, so
// one replica prunes. A prune is idempotent: a new leader pruning again on
// its first tick changes nothing.
func (s *Scheduler) prune(ctx context.Context) {
	if s.Retain <= 0 || time.Now().Before(s.pruneDue) {
		return
	}
	rep, err := s.Store.Prune(ctx, s.Retain, false)
	if err != nil {
		if ctx.Err() == nil {
			s.Logger.Error("retention prune failed", "err", err)
		}
		s.pruneDue = time.Now().Add(pruneRetry)
		return
	}
	s.pruneDue = time.Now().Add(pruneEvery)
	if rep.Inbound.Rows > 0 || rep.Outbox.Rows > 0 {
		s.Logger.Info("retention pruned", "waves", rep.Waves, "inbound_messages", rep.Inbound.Rows, "inbound_bytes", rep.Inbound.Bytes,
			"outbox_rows", rep.Outbox.Rows, "outbox_bytes", rep.Outbox.Bytes)
	}
}
