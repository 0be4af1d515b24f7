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

	conn *sql.Conn // the connection holding the lock, nil when not leading
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
		s.Logger.Info("scheduled steps taken", "vetting", rep.Vetting, "opened", rep.Opened, "reminded", rep.Reminded,
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
	conn, err := s.Store.DB.Conn(ctx)
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
