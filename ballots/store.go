// Package ballots owns the domain of an endorsement vote and its store:
// groups and their leaders, members, waves, races, candidates, ballots,
// votes, tallies, the record of every inbound message and the outbox of
// every message to send. All SQL lives in this package, over PostgreSQL via
// sqlx and lib/pq; the schema is a set of embedded, numbered migrations.
//
// Every multi-step change runs in one transaction. Code that must enqueue
// mail as part of a change receives the *sqlx.Tx and calls Enqueue on it:
// there is no other way for a message to leave.
package ballots

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Errors callers branch on.
var (
	ErrNotFound   = errors.New("not found")
	ErrRaceState  = errors.New("race is not in the right state")
	ErrNoWave     = errors.New("no wave")
	ErrCandidates = errors.New("no approved candidate")
	// ErrOpening is a race another process is opening now.
	ErrOpening = errors.New("the race is being opened by another process")
)

// Store is the PostgreSQL store of everything ballotd records.
type Store struct {
	db  *sqlx.DB
	url string // what Open was given, for ListenOutbox's own connection
}

// OneRoundTrip returns the connection string dsn (a URL or key=value
// pairs) with lib/pq's binary_parameters on, unless dsn sets it: a
// statement with parameters is then sent in one round trip instead of two
// (a separate prepare). Every statement of a reply's transaction waits on
// its round trip, so this is most of the time handling a reply takes. It
// also sends []byte parameters in binary, which is right for bytea and
// text but not jsonb: JSON goes as a string.
func OneRoundTrip(dsn string) string {
	if strings.Contains(dsn, "binary_parameters") {
		return dsn
	}
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("binary_parameters", "yes")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn) + " binary_parameters=yes"
}

// Open connects to PostgreSQL at url and checks the connection.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := sqlx.Open("postgres", OneRoundTrip(url))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &Store{db: db, url: url}, nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// InTx runs fn in one transaction, committing if it returns nil.
func (s *Store) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Savepoint starts savepoint name in tx: Rollback undoes what tx did since,
// Release keeps it.
func Savepoint(ctx context.Context, tx *sqlx.Tx, name string) (Point, error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return Point{}, fmt.Errorf("savepoint %s: %w", name, err)
	}
	return Point{tx: tx, name: name}, nil
}

// Point is a savepoint of a transaction.
type Point struct {
	tx   *sqlx.Tx
	name string
}

// Rollback undoes what the transaction did since the savepoint.
func (p Point) Rollback(ctx context.Context) error {
	if _, err := p.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+p.name); err != nil {
		return fmt.Errorf("rollback to savepoint %s: %w", p.name, err)
	}
	return p.Release(ctx)
}

// Release keeps what the transaction did since the savepoint.
func (p Point) Release(ctx context.Context) error {
	if _, err := p.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+p.name); err != nil {
		return fmt.Errorf("release savepoint %s: %w", p.name, err)
	}
	return nil
}

// Transient reports whether err is one that trying again later may not
// meet: the database away or restarting, the connection lost, a deadlock
// or serialization failure, resources short, or ctx ended. Anything else
// (a constraint, a bad value, a bug) fails the same way every time.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, sql.ErrTxDone) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch pe.Code.Class() {
		case "08", "40", "53", "57", "58", "XX":
			return true
		}
		return false
	}
	return false
}
