package ballots

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/lib/pq"
)

// The data of `ballotd bench` (internal/bench): generated members, the
// counts that verify a run, and the raw-message tables of the baselines
// the benchmarks compare ballotd with. Nothing else uses them.

// AddBenchMembers inserts n generated members in Massachusetts,
// memberN@bench.example, every tenth with a non-ASCII name, spread over
// MA-01 … MA-09, in one statement.
func (s *Store) AddBenchMembers(ctx context.Context, n int) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO members (email, name, state, district)
		SELECT 'member' || g || '@bench.example',
		       CASE WHEN g % 10 = 0 THEN 'Zoë Member ' ELSE 'Member ' END || g,
		       'MA', 'MA-0' || (g % 9 + 1)
		FROM generate_series(1, $1) g`, n); err != nil {
		return fmt.Errorf("create members: %w", err)
	}
	return nil
}

// AnalyzeMembers refreshes the planner's statistics of members, as after
// a large import.
func (s *Store) AnalyzeMembers(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, "ANALYZE members"); err != nil {
		return fmt.Errorf("analyze members: %w", err)
	}
	return nil
}

// AnalyzeBallots refreshes the planner's statistics of ballots and the
// outbox, as after a race opens with many members.
func (s *Store) AnalyzeBallots(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, "ANALYZE ballots; ANALYZE outbox"); err != nil {
		return fmt.Errorf("analyze ballots and outbox: %w", err)
	}
	return nil
}

// CountBallots returns how many of ids name a ballot.
func (s *Store) CountBallots(ctx context.Context, ids []int64) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM ballots WHERE id = ANY($1)`, pq.Array(ids)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count ballots: %w", err)
	}
	return n, nil
}

// CountSent returns how many outbox rows are sent.
func (s *Store) CountSent(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE status = 'sent'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sent mail: %w", err)
	}
	return n, nil
}

// BenchBallot is a ballot with what a reply to it needs: its id and nonce
// (for its token) and its member's address.
type BenchBallot struct {
	ID    int64  `db:"id"`
	Nonce []byte `db:"nonce"`
	Email string `db:"email"`
}

// BenchBallots lists every ballot, in id order, with its member's address.
func (s *Store) BenchBallots(ctx context.Context) ([]BenchBallot, error) {
	var rows []BenchBallot
	if err := s.db.SelectContext(ctx, &rows, `SELECT b.id, uuid_send(b.nonce) AS nonce, m.email
		FROM ballots b JOIN members m ON m.id = b.member_id ORDER BY b.id`); err != nil {
		return nil, fmt.Errorf("list ballots: %w", err)
	}
	return rows, nil
}

// CreateRawMessages creates bench_raw, where a baseline reader stores the
// raw messages it takes: keyed by their IMAP UID when byUID, else by a
// serial id.
func (s *Store) CreateRawMessages(ctx context.Context, byUID bool) error {
	ddl := `CREATE TABLE bench_raw (id bigserial PRIMARY KEY, raw bytea NOT NULL)`
	if byUID {
		ddl = `CREATE TABLE bench_raw (uid bigint PRIMARY KEY, raw bytea NOT NULL)`
	}
	if _, err := s.db.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("create bench_raw: %w", err)
	}
	return nil
}

// StoreRawMessage stores raw in bench_raw (made by CreateRawMessages;
// uid 0 for the serial-keyed table) in a transaction of its own, as a
// durable reader must before it acknowledges a message.
func (s *Store) StoreRawMessage(ctx context.Context, uid int64, raw []byte) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store raw message: %w", err)
	}
	if uid == 0 {
		_, err = tx.ExecContext(ctx, `INSERT INTO bench_raw (raw) VALUES ($1)`, raw)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO bench_raw (uid, raw) VALUES ($1, $2)`, uid, raw)
	}
	if err != nil {
		tx.Rollback()
		return fmt.Errorf("store raw message: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store raw message: %w", err)
	}
	return nil
}

// PsqlCopy is bench import's baseline, the least any importer must do:
// it creates bench_copy, a table keyed on the email, with psql (the
// client at path psql), then loads the members CSV file into it with
// psql's \copy, and returns how long the load took.
func PsqlCopy(ctx context.Context, psql, dbURL, file string) (time.Duration, error) {
	if out, err := exec.CommandContext(ctx, psql, dbURL, "-qc", "CREATE TABLE bench_copy (email text PRIMARY KEY, name text, district text)").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("psql: %v: %s", err, out)
	}
	t0 := time.Now()
	if out, err := exec.CommandContext(ctx, psql, dbURL, "-qc", `\copy bench_copy FROM '`+file+`' WITH (FORMAT csv, HEADER true)`).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("psql \\copy: %v: %s", err, out)
	}
	return time.Since(t0), nil
}
