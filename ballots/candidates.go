package ballots

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ballotd/ballotd/internal/race"
)

// Candidate is one person on a race's ballot.
type Candidate struct {
	ID     int64          `db:"id" json:"id"`
	RaceID int64          `db:"race_id" json:"-"`
	Race   string         `db:"race" json:"race"`
	Name   string         `db:"name" json:"name"`
	Bio    string         `db:"bio" json:"bio"`
	Status string         `db:"status" json:"status"`
	Number sql.NullInt64  `db:"number" json:"-"`
	Groups pq.StringArray `db:"groups" json:"groups"`
}

// AddCandidate adds an approved candidate to the race with code, creating
// the race in the current wave (or the named one) if it does not exist yet.
// Groups name the nominating groups, which must exist. It stands in for
// nominations by email.
func (s *Store) AddCandidate(ctx context.Context, code, wave, name, bio string, groups []string) (Candidate, error) {
	var c Candidate
	rc, err := race.Parse(code)
	if err != nil {
		return c, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return c, errors.New("candidate: name is empty")
	}
	err = s.InTx(ctx, func(tx *sqlx.Tx) error {
		waveID, err := currentWave(ctx, tx, wave)
		if err != nil {
			return err
		}
		var raceID int64
		var status string
		err = tx.QueryRowxContext(ctx, `INSERT INTO races (wave_id, code, office, state, district) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (wave_id, code) DO UPDATE SET code = EXCLUDED.code RETURNING id, status`,
			waveID, rc.Code, rc.Office, rc.State, rc.District).Scan(&raceID, &status)
		if err != nil {
			return fmt.Errorf("create race %s: %w", rc.Code, err)
		}
		if status != RaceDraft {
			return fmt.Errorf("race %s is %s; candidates can only be added before it opens: %w", rc.Code, status, ErrRaceState)
		}
		var groupIDs []int64
		var missing []string
		for _, g := range groups {
			var id int64
			err := tx.GetContext(ctx, &id, `SELECT id FROM groups WHERE lower(name) = lower($1)`, strings.TrimSpace(g))
			if errors.Is(err, sql.ErrNoRows) {
				missing = append(missing, g)
				continue
			}
			if err != nil {
				return fmt.Errorf("find group %q: %w", g, err)
			}
			groupIDs = append(groupIDs, id)
		}
		if len(missing) > 0 {
			return fmt.Errorf("unknown groups %q (import them first): %w", missing, ErrNotFound)
		}
		// Added by hand: staff vetted the candidate, questionnaire
		// included.
		err = tx.GetContext(ctx, &c.ID, `INSERT INTO candidates (race_id, name, bio, status, questionnaire) VALUES ($1, $2, $3, 'approved', 'passed')
			ON CONFLICT (race_id, lower(name)) DO UPDATE SET bio = CASE WHEN EXCLUDED.bio = '' THEN candidates.bio ELSE EXCLUDED.bio END,
			status = 'approved', questionnaire = 'passed' RETURNING id`, raceID, name, bio)
		if err != nil {
			return fmt.Errorf("add candidate %q to %s: %w", name, rc.Code, err)
		}
		for _, gid := range groupIDs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO candidate_groups (candidate_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, c.ID, gid); err != nil {
				return fmt.Errorf("link candidate %q to group %d: %w", name, gid, err)
			}
		}
		return tx.GetContext(ctx, &c, candidateSelect+` WHERE c.id = $1`, c.ID)
	})
	return c, err
}

// Candidates lists every candidate, by race and ballot number.
func (s *Store) Candidates(ctx context.Context) ([]Candidate, error) {
	var cs []Candidate
	if err := s.db.SelectContext(ctx, &cs, candidateSelect+` ORDER BY r.code, c.number NULLS LAST, c.id`); err != nil {
		return nil, fmt.Errorf("list candidates: %w", err)
	}
	return cs, nil
}

// onBallot is the SQL condition (on candidates c) of a candidate who goes
// on the ballot: approved by staff and, when the questionnaire step was
// on at their nomination, with a passed questionnaire (issue 20).
const onBallot = `c.status = 'approved' AND (NOT c.questionnaire_required OR c.questionnaire = 'passed')`

func approvedCandidates(ctx context.Context, q sqlx.QueryerContext, raceID int64) ([]Candidate, error) {
	var cs []Candidate
	err := sqlx.SelectContext(ctx, q, &cs, candidateSelect+` WHERE c.race_id = $1 AND `+onBallot+` ORDER BY c.number NULLS LAST, c.id`, raceID)
	if err != nil {
		return nil, fmt.Errorf("candidates of race %d: %w", raceID, err)
	}
	return cs, nil
}
