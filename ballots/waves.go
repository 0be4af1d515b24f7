package ballots

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

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
	err := s.db.GetContext(ctx, &w.ID, `INSERT INTO waves (name, nominations_close, voting_open, voting_close, threshold, min_turnout, hold_results)
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
	err := s.db.SelectContext(ctx, &ws, `SELECT id, name, nominations_close, voting_open, voting_close,
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
