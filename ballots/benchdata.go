package ballots

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
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

// CountBallots returns how many of ids name a ballot of the race with code
// (in any wave).
func (s *Store) CountBallots(ctx context.Context, code string, ids []int64) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM ballots b JOIN races r ON r.id = b.race_id
		WHERE b.id = ANY($1) AND r.code = $2`, pq.Array(ids), code).Scan(&n); err != nil {
		return 0, fmt.Errorf("count ballots of %s: %w", code, err)
	}
	return n, nil
}

// CountSent returns how many outbox rows of the race with code (in any
// wave) are sent.
func (s *Store) CountSent(ctx context.Context, code string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox o JOIN races r ON r.id = o.race_id
		WHERE o.status = 'sent' AND r.code = $1`, code).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sent mail of %s: %w", code, err)
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

// AddBenchRace creates what `ballotd bench scale` measures on: a wave
// voting now, the open Senate race MA-SEN with two approved candidates,
// one ballot for each member (in id order), its ballot mail marked sent
// (every thousandth failed, the next one bounced hard) and votes votes,
// each cast on ballot (g-1) mod ballots + 1 in cast order: 60 % for
// candidate 1, 20 % for candidate 2, 20 % NONE. All set-wise, in one
// transaction; it returns the race's code.
func (s *Store) AddBenchRace(ctx context.Context, votes int) (string, error) {
	const code = "MA-SEN"
	steps := []struct{ what, sql string }{
		{"wave", `INSERT INTO waves (name, nominations_close, voting_open, voting_close)
			VALUES ('bench', now() - interval '2 days', now() - interval '1 day', now() + interval '1 day')`},
		{"race", `INSERT INTO races (wave_id, code, office, state, status, opened_at)
			SELECT id, '` + code + `', 'senate', 'MA', 'open', now() - interval '1 day' FROM waves WHERE name = 'bench'`},
		{"candidates", `INSERT INTO candidates (race_id, name, status, number)
			SELECT r.id, 'Candidate ' || n, 'approved', n FROM races r, generate_series(1, 2) n WHERE r.code = '` + code + `'`},
		{"ballots", `INSERT INTO ballots (race_id, member_id)
			SELECT r.id, m.id FROM races r, members m WHERE r.code = '` + code + `' ORDER BY m.id`},
		{"outbox", `INSERT INTO outbox (kind, recipient, member_id, ballot_id, race_id, status, attempts, sent_at, last_code,
				bounce_hard, bounce_status)
			SELECT 'ballot', m.email, m.id, b.id, b.race_id,
			       CASE WHEN b.id % 1000 = 0 THEN 'failed' ELSE 'sent' END, 1, now(),
			       CASE WHEN b.id % 1000 = 0 THEN 550 ELSE 250 END,
			       b.id % 1000 = 1, CASE WHEN b.id % 1000 = 1 THEN '5.1.1' ELSE '' END
			FROM ballots b JOIN members m ON m.id = b.member_id ORDER BY b.id`},
		{"inbound", `INSERT INTO inbound_messages (message_key, raw, class, outcome, processed_at)
			SELECT 'bench-' || g, '\x'::bytea, 'vote', 'counted', now() FROM generate_series(1, $1) g`},
		{"votes", `WITH n AS (SELECT count(*) AS n, min(id) AS lo FROM ballots),
			c AS (SELECT min(c.id) AS c1, max(c.id) AS c2 FROM candidates c)
			INSERT INTO votes (ballot_id, inbound_id, choice, candidate_id, receipt, cast_at)
			SELECT n.lo + (g - 1) % n.n, i.id,
			       CASE WHEN g % 10 < 8 THEN 'candidate' ELSE 'none' END,
			       CASE WHEN g % 10 < 6 THEN c.c1 WHEN g % 10 < 8 THEN c.c2 END,
			       'bench-' || g, now() - interval '1 day' + g * interval '1 millisecond'
			FROM n, c, generate_series(1, $1) g JOIN inbound_messages i ON i.message_key = 'bench-' || g`},
	}
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, st := range steps {
			var err error
			if strings.Contains(st.sql, "$1") {
				_, err = tx.ExecContext(ctx, st.sql, votes)
			} else {
				_, err = tx.ExecContext(ctx, st.sql)
			}
			if err != nil {
				return fmt.Errorf("bench race: %s: %w", st.what, err)
			}
		}
		return nil
	})
	return code, err
}

// VacuumBench vacuums and analyzes the tables of `ballotd bench scale`,
// as autovacuum does after a large insert, so that the plans measured are
// the ones a settled database gets.
func (s *Store) VacuumBench(ctx context.Context) error {
	for _, t := range []string{"members", "ballots", "outbox", "inbound_messages", "votes", "standing_votes", "candidates", "races"} {
		if _, err := s.db.ExecContext(ctx, "VACUUM ANALYZE "+t); err != nil {
			return fmt.Errorf("vacuum %s: %w", t, err)
		}
	}
	return nil
}

// RawVoteCount is bench scale's reference for a tally: the least any
// count of the race's votes must do, one pass over every vote grouped by
// candidate (no latest-vote rule, no join). It returns the votes seen.
func (s *Store) RawVoteCount(ctx context.Context) (int, error) {
	var ns []int
	if err := s.db.SelectContext(ctx, &ns, `SELECT count(*) FROM votes GROUP BY candidate_id`); err != nil {
		return 0, fmt.Errorf("raw vote count: %w", err)
	}
	total := 0
	for _, n := range ns {
		total += n
	}
	return total, nil
}

// RawOutboxCount is bench scale's reference for what reads the outbox
// and ballots whole: one pass over the outbox grouped by status. It
// returns the rows seen.
func (s *Store) RawOutboxCount(ctx context.Context) (int, error) {
	var ns []int
	if err := s.db.SelectContext(ctx, &ns, `SELECT count(*) FROM outbox GROUP BY status`); err != nil {
		return 0, fmt.Errorf("raw outbox count: %w", err)
	}
	total := 0
	for _, n := range ns {
		total += n
	}
	return total, nil
}

// BackendPIDs returns the process ids of the PostgreSQL sessions connected
// to this store's database, for a benchmark to read the CPU time the
// server spent for it (when the server runs on the same machine).
func (s *Store) BackendPIDs(ctx context.Context) ([]int, error) {
	var pids []int
	if err := s.db.SelectContext(ctx, &pids, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`); err != nil {
		return nil, fmt.Errorf("list database sessions: %w", err)
	}
	return pids, nil
}
