package ballots

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the advisory lock key that serialises concurrent
// migrations (two replicas starting at once).
const migrationLock = 0x62616c6c6f74 // "ballot"

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		if !ok || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_what.sql", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad version: %w", name, err)
		}
		body, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share a version", out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// The runner is this file rather than goose or tern: ballotd needs the
// migrations embedded, an advisory lock for replicas starting at once, and
// the guards below (an unknown or changed migration, one out of order); the
// libraries give some of that with more than ballotd uses, and a database
// already recorded by version and name here would have to move to their
// tables.

// Checksum is the SHA-256 of the migration's SQL, hex: recorded when it is
// applied, so that a migration edited afterwards is noticed.
func (m Migration) Checksum() string {
	sum := sha256.Sum256([]byte(m.SQL))
	return hex.EncodeToString(sum[:])
}

// MigrationState is one migration as the database and this binary see it.
type MigrationState struct {
	Version   int        `json:"version"`
	Name      string     `json:"name"`
	State     string     `json:"state"` // applied, pending, unknown (applied, not in this binary) or changed
	AppliedAt *time.Time `json:"applied_at,omitempty"`
	// Checksum is the recorded one ("" for a migration applied before
	// checksums were recorded: migrate records it).
	Checksum string `json:"checksum,omitempty"`
}

// Migration states.
const (
	MigrationApplied = "applied"
	MigrationPending = "pending"
	MigrationUnknown = "unknown"
	MigrationChanged = "changed"
)

// ErrSchemaNewer is a database with a migration this binary does not
// know: a newer ballotd migrated it.
var ErrSchemaNewer = errors.New("the schema is newer than this ballotd: upgrade it")

// SchemaError is a database this binary must not run on: a migration it
// does not know, one whose SQL changed since it was applied, or one
// pending below an applied one (out of order).
type SchemaError struct {
	Problems []string
	newer    bool
}

// Error implements error.
func (e *SchemaError) Error() string {
	msg := strings.Join(e.Problems, "; ")
	if e.newer {
		return ErrSchemaNewer.Error() + " (" + msg + ")"
	}
	return "schema: " + msg
}

// Is makes errors.Is(err, ErrSchemaNewer) true for an unknown migration.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaNewer && e.newer }

// querier is what reading the recorded migrations needs: a pool or one
// connection.
type querier interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// MigrationStatus lists every migration the binary embeds or the database
// records, in version order, with its state.
func MigrationStatus(ctx context.Context, db *sqlx.DB) ([]MigrationState, error) {
	return migrationStatus(ctx, db)
}

func migrationStatus(ctx context.Context, q querier) ([]MigrationState, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	var exists, hasSum bool
	if err := q.GetContext(ctx, &exists, `SELECT to_regclass('schema_migrations') IS NOT NULL`); err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	type row struct {
		Version   int            `db:"version"`
		Name      string         `db:"name"`
		AppliedAt time.Time      `db:"applied_at"`
		Checksum  sql.NullString `db:"checksum"`
	}
	var rows []row
	if exists {
		if err := q.GetContext(ctx, &hasSum, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
			WHERE table_name = 'schema_migrations' AND column_name = 'checksum' AND table_schema = current_schema())`); err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
		sum := "NULL::text"
		if hasSum {
			sum = "checksum"
		}
		if err := q.SelectContext(ctx, &rows, `SELECT version, name, applied_at, `+sum+` AS checksum FROM schema_migrations ORDER BY version`); err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
	}
	recorded := map[int]row{}
	for _, r := range rows {
		recorded[r.Version] = r
	}
	known := map[int]bool{}
	var out []MigrationState
	for _, m := range migs {
		known[m.Version] = true
		r, ok := recorded[m.Version]
		st := MigrationState{Version: m.Version, Name: m.Name, State: MigrationPending}
		if ok {
			at := r.AppliedAt
			st.AppliedAt, st.Checksum, st.State = &at, r.Checksum.String, MigrationApplied
			if r.Name != m.Name || r.Checksum.Valid && r.Checksum.String != m.Checksum() {
				st.State = MigrationChanged
			}
		}
		out = append(out, st)
	}
	for _, r := range rows {
		if !known[r.Version] {
			at := r.AppliedAt
			out = append(out, MigrationState{Version: r.Version, Name: r.Name, State: MigrationUnknown, AppliedAt: &at, Checksum: r.Checksum.String})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// CheckSchema returns the migrations the database has not applied yet,
// or a *SchemaError if this binary must not use it: a migration applied
// that it does not know (errors.Is ErrSchemaNewer), one whose SQL changed
// since it was applied, or one pending below an applied one.
func CheckSchema(ctx context.Context, db *sqlx.DB) ([]string, error) {
	states, err := migrationStatus(ctx, db)
	if err != nil {
		return nil, err
	}
	return judge(states)
}

// judge turns the states into the pending names or the problems.
func judge(states []MigrationState) ([]string, error) {
	var pending []string
	se := &SchemaError{}
	last := 0
	for _, s := range states {
		if s.State != MigrationPending {
			last = s.Version
		}
	}
	for _, s := range states {
		switch s.State {
		case MigrationPending:
			pending = append(pending, s.Name)
			if s.Version < last {
				se.Problems = append(se.Problems, fmt.Sprintf("migration %s is not applied but a later one is: it would run out of order (give it a number after the last applied one)", s.Name))
			}
		case MigrationUnknown:
			se.newer = true
			se.Problems = append(se.Problems, fmt.Sprintf("migration %s is applied but this ballotd does not know it", s.Name))
		case MigrationChanged:
			se.Problems = append(se.Problems, fmt.Sprintf("migration %s changed since it was applied (recorded checksum %.12s…, this ballotd's differs; a migration is never edited: add a new one)", s.Name, s.Checksum))
		}
	}
	if len(se.Problems) > 0 {
		return pending, se
	}
	return pending, nil
}

// Migrate applies every embedded migration not yet applied, each in its
// own transaction with its name and checksum, under an advisory lock. It is
// safe to run twice and from several processes at once. It refuses, and
// applies nothing, when CheckSchema finds a problem. A database that
// recorded its migrations before checksums were gets them recorded. It
// returns the names it applied.
func Migrate(ctx context.Context, db *sqlx.DB) ([]string, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
		ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text`); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	states, err := migrationStatus(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if _, err := judge(states); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	applied := map[int]bool{}
	for _, s := range states {
		applied[s.Version] = s.State == MigrationApplied
	}
	var names []string
	for _, m := range migs {
		if applied[m.Version] {
			// Recorded before checksums were: the name matched, so record it.
			if _, err := conn.ExecContext(ctx, `UPDATE schema_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL`, m.Version, m.Checksum()); err != nil {
				return names, fmt.Errorf("migrate %s: record checksum: %w", m.Name, err)
			}
			continue
		}
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			return names, fmt.Errorf("migrate %s: begin: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return names, fmt.Errorf("migrate %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, m.Version, m.Name, m.Checksum()); err != nil {
			tx.Rollback()
			return names, fmt.Errorf("migrate %s: record: %w", m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return names, fmt.Errorf("migrate %s: commit: %w", m.Name, err)
		}
		names = append(names, m.Name)
	}
	return names, nil
}

// PendingMigrations returns the names of the embedded migrations the
// database has not applied yet (all of them on an empty database), or the
// *SchemaError of CheckSchema.
func PendingMigrations(ctx context.Context, db *sqlx.DB) ([]string, error) {
	return CheckSchema(ctx, db)
}

// Migrate applies the embedded migrations the store's database has not
// applied yet and returns their names (see the function Migrate).
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	return Migrate(ctx, s.db)
}

// CheckSchema returns the migrations the store's database lacks, or a
// *SchemaError when its schema is newer or altered (see the function
// CheckSchema).
func (s *Store) CheckSchema(ctx context.Context) ([]string, error) {
	return CheckSchema(ctx, s.db)
}

// MigrationStatus lists every migration, embedded or applied, with its
// state in the store's database (see the function MigrationStatus).
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	return MigrationStatus(ctx, s.db)
}

// PendingMigrations returns the migrations the store's database has not
// applied yet (see the function PendingMigrations).
func (s *Store) PendingMigrations(ctx context.Context) ([]string, error) {
	return PendingMigrations(ctx, s.db)
}
