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
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the PostgreSQL driver
)

// Errors callers branch on.
var (
	ErrNotFound   = errors.New("not found")
	ErrRaceState  = errors.New("race is not in the right state")
	ErrNoWave     = errors.New("no wave")
	ErrCandidates = errors.New("no approved candidate")
)

// Store is the PostgreSQL store of everything ballotd records.
type Store struct {
	DB *sqlx.DB
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
	return &Store{DB: db}, nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.DB.Close() }

// InTx runs fn in one transaction, committing if it returns nil.
func (s *Store) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.DB.BeginTxx(ctx, nil)
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

// Wave is one endorsement wave and its schedule.
type Wave struct {
	ID               int64     `db:"id" json:"id"`
	Name             string    `db:"name" json:"name"`
	NominationsClose time.Time `db:"nominations_close" json:"nominations_close"`
	VotingOpen       time.Time `db:"voting_open" json:"voting_open"`
	VotingClose      time.Time `db:"voting_close" json:"voting_close"`
	Threshold        float64   `db:"threshold" json:"threshold"`
	MinTurnout       float64   `db:"min_turnout" json:"min_turnout"`
	// HoldResults keeps the announcements until staff release them.
	HoldResults bool `db:"hold_results" json:"hold_results"`
}

// CreateWave records a new wave. Threshold and MinTurnout are fractions.
func (s *Store) CreateWave(ctx context.Context, w Wave) (Wave, error) {
	if w.Name == "" {
		return w, errors.New("wave: name is empty")
	}
	if w.Threshold <= 0 || w.Threshold > 1 {
		return w, fmt.Errorf("wave %s: threshold %v must be in (0, 1]", w.Name, w.Threshold)
	}
	if w.MinTurnout < 0 || w.MinTurnout > 1 {
		return w, fmt.Errorf("wave %s: minimum turnout %v must be in [0, 1]", w.Name, w.MinTurnout)
	}
	if w.NominationsClose.After(w.VotingOpen) || !w.VotingOpen.Before(w.VotingClose) {
		return w, fmt.Errorf("wave %s: want nominations close ≤ voting open < voting close", w.Name)
	}
	err := s.DB.GetContext(ctx, &w.ID, `INSERT INTO waves (name, nominations_close, voting_open, voting_close, threshold, min_turnout, hold_results)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		w.Name, w.NominationsClose, w.VotingOpen, w.VotingClose, w.Threshold, w.MinTurnout, w.HoldResults)
	if err != nil {
		return w, fmt.Errorf("create wave %s: %w", w.Name, err)
	}
	return w, nil
}

// Waves lists every wave, the latest first.
func (s *Store) Waves(ctx context.Context) ([]Wave, error) {
	var ws []Wave
	err := s.DB.SelectContext(ctx, &ws, `SELECT id, name, nominations_close, voting_open, voting_close,
		threshold::float8 AS threshold, min_turnout::float8 AS min_turnout, hold_results FROM waves ORDER BY voting_open DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list waves: %w", err)
	}
	return ws, nil
}

// currentWave is the wave a new race joins: the named one, else the one
// whose voting closes next among those not yet closed, else the latest.
func currentWave(ctx context.Context, q sqlx.QueryerContext, name string) (int64, error) {
	var id int64
	var err error
	if name != "" {
		err = sqlx.GetContext(ctx, q, &id, `SELECT id FROM waves WHERE name = $1`, name)
	} else {
		err = sqlx.GetContext(ctx, q, &id, `SELECT id FROM waves
			ORDER BY (voting_close > now()) DESC, CASE WHEN voting_close > now() THEN voting_close END ASC, voting_open DESC, id DESC LIMIT 1`)
	}
	if errors.Is(err, sql.ErrNoRows) {
		if name != "" {
			return 0, fmt.Errorf("wave %q: %w", name, ErrNotFound)
		}
		return 0, fmt.Errorf("create a wave first (ballotd wave create): %w", ErrNoWave)
	}
	if err != nil {
		return 0, fmt.Errorf("find wave: %w", err)
	}
	return id, nil
}
