package ballots

import (
	"context"
	"fmt"
	"math"

	"github.com/jmoiron/sqlx"
)

// Tally is a race's result: DESIGN.md's rule applied to the latest counted
// vote of each voter.
type Tally struct {
	Race     string  `json:"race"`
	Status   string  `json:"status"`
	Eligible int     `json:"eligible"`
	Voted    int     `json:"voted"`
	Turnout  float64 `json:"turnout"`
	// Reachable is eligible minus the members whose ballot could not be
	// delivered (see unreachableBallots); TurnoutReachable = voted ÷
	// reachable. The rule uses Turnout, over eligible.
	Reachable        int               `json:"reachable"`
	TurnoutReachable float64           `json:"turnout_reachable"`
	Threshold        float64           `json:"threshold"`
	MinTurnout       float64           `json:"min_turnout"`
	Candidates       []CandidateResult `json:"candidates"`
}

// CandidateResult is one candidate's line in a tally.
type CandidateResult struct {
	Number   int     `json:"number"`
	Name     string  `json:"name"`
	Votes    int     `json:"votes"`
	Support  float64 `json:"support"`
	Endorsed bool    `json:"endorsed"`
}

// ratioAtLeast reports whether num/den ≥ frac, exactly at the boundary:
// frac is a fraction with at most four decimals (the schema's numeric(5,4)),
// so the comparison is done in integers (60 of 100 is 60 %, and enough).
func ratioAtLeast(num, den int, frac float64) bool {
	if den == 0 {
		return false
	}
	bp := int64(math.Round(frac * 10000))
	return int64(num)*10000 >= bp*int64(den)
}

// Decide applies the endorsement rule to raw counts: turnout = voted ÷
// eligible; each candidate's support = votes ÷ voted; endorsed iff support ≥
// threshold and turnout ≥ minTurnout. With nobody voting, nobody is endorsed.
func Decide(t *Tally) {
	t.Turnout = 0
	if t.Eligible > 0 {
		t.Turnout = float64(t.Voted) / float64(t.Eligible)
	}
	t.TurnoutReachable = 0
	if t.Reachable > 0 {
		t.TurnoutReachable = float64(t.Voted) / float64(t.Reachable)
	}
	turnoutOK := t.Voted > 0 && (t.MinTurnout == 0 || ratioAtLeast(t.Voted, t.Eligible, t.MinTurnout))
	for i := range t.Candidates {
		c := &t.Candidates[i]
		c.Support = 0
		if t.Voted > 0 {
			c.Support = float64(c.Votes) / float64(t.Voted)
		}
		c.Endorsed = turnoutOK && ratioAtLeast(c.Votes, t.Voted, t.Threshold)
	}
}

// standingCounts counts race $1's standing votes (standing_votes, kept by
// a trigger on votes) by choice and candidate: one pass over one row per
// voter.
const standingCounts = `SELECT choice, coalesce(candidate_id, 0) AS candidate_id, count(*) AS n
	FROM standing_votes WHERE race_id = $1 GROUP BY choice, candidate_id`

// historyCounts counts the same from the vote history: each ballot's
// latest vote, found afresh.
const historyCounts = `SELECT choice, coalesce(candidate_id, 0) AS candidate_id, count(*) AS n
	FROM (SELECT DISTINCT ON (v.ballot_id) v.choice, v.candidate_id
		FROM votes v JOIN ballots b ON b.id = v.ballot_id
		WHERE b.race_id = $1
		ORDER BY v.ballot_id, v.cast_at DESC, v.id DESC) latest
	GROUP BY choice, candidate_id`

// countVotes counts the race's votes as they stand: each ballot's latest
// vote (its standing vote); a YES or a candidate choice supports that
// candidate, NO and NONE support nobody but count as voting.
func countVotes(ctx context.Context, q sqlx.QueryerContext, r Race) (Tally, error) {
	return countFrom(ctx, q, r, standingCounts)
}

// countFrom is countVotes with the latest votes counted by counts
// (standingCounts or historyCounts).
func countFrom(ctx context.Context, q sqlx.QueryerContext, r Race, counts string) (Tally, error) {
	t := Tally{Race: r.Code, Status: r.Status, Threshold: r.Threshold, MinTurnout: r.MinTurnout}
	err := sqlx.GetContext(ctx, q, &t.Eligible, `SELECT count(*) FROM ballots WHERE race_id = $1`, r.ID)
	if err != nil {
		return t, fmt.Errorf("tally %s: eligible: %w", r.Code, err)
	}
	var unreachable int
	if err = sqlx.GetContext(ctx, q, &unreachable, unreachableCount, r.ID); err != nil {
		return t, fmt.Errorf("tally %s: reachable: %w", r.Code, err)
	}
	t.Reachable = t.Eligible - unreachable
	var cands []struct {
		ID int64 `db:"id"`
		CandidateResult
	}
	err = sqlx.SelectContext(ctx, q, &cands, `SELECT c.id, coalesce(c.number, 0) AS number, c.name FROM candidates c
		WHERE c.race_id = $1 AND `+onBallot+` ORDER BY c.number NULLS LAST, c.id`, r.ID)
	if err != nil {
		return t, fmt.Errorf("tally %s: candidates: %w", r.Code, err)
	}
	var rows []struct {
		Choice    string `db:"choice"`
		Candidate int64  `db:"candidate_id"`
		N         int    `db:"n"`
	}
	if err = sqlx.SelectContext(ctx, q, &rows, counts, r.ID); err != nil {
		return t, fmt.Errorf("tally %s: votes: %w", r.Code, err)
	}
	support := map[int64]int{}
	for _, row := range rows {
		t.Voted += row.N
		if row.Choice == ChoiceYes || row.Choice == ChoiceCandidate {
			support[row.Candidate] += row.N
		}
	}
	t.Candidates = make([]CandidateResult, len(cands))
	for i, c := range cands {
		t.Candidates[i] = c.CandidateResult
		t.Candidates[i].Votes = support[c.ID]
	}
	Decide(&t)
	return t, nil
}

func freezeTally(ctx context.Context, tx *sqlx.Tx, raceID int64, t Tally) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO tallies (race_id, eligible, voted, turnout, threshold, min_turnout, reachable)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, raceID, t.Eligible, t.Voted, t.Turnout, t.Threshold, t.MinTurnout, t.Reachable); err != nil {
		return fmt.Errorf("freeze tally %s: %w", t.Race, err)
	}
	for _, c := range t.Candidates {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tally_candidates (race_id, candidate_id, votes, support, endorsed)
			SELECT $1, id, $3, $4, $5 FROM candidates WHERE race_id = $1 AND number = $2`,
			raceID, c.Number, c.Votes, c.Support, c.Endorsed); err != nil {
			return fmt.Errorf("freeze tally %s #%d: %w", t.Race, c.Number, err)
		}
	}
	return nil
}

// TallyRace returns the race's tally: the frozen result once it has closed,
// else the count as it stands now.
func (s *Store) TallyRace(ctx context.Context, code string) (Tally, error) {
	r, err := raceByCode(ctx, s.db, code, "")
	if err != nil {
		return Tally{}, err
	}
	return tallyOf(ctx, s.db, r)
}

func tallyOf(ctx context.Context, q sqlx.QueryerContext, r Race) (Tally, error) {
	if r.Status != RaceClosed {
		return countVotes(ctx, q, r)
	}
	t := Tally{Race: r.Code, Status: r.Status}
	err := q.QueryRowxContext(ctx, `SELECT eligible, voted, turnout::float8, threshold::float8, min_turnout::float8, coalesce(reachable, eligible)
		FROM tallies WHERE race_id = $1`, r.ID).
		Scan(&t.Eligible, &t.Voted, &t.Turnout, &t.Threshold, &t.MinTurnout, &t.Reachable)
	if err != nil {
		return t, notFound(err, "tally of "+r.Code)
	}
	if t.Reachable > 0 {
		t.TurnoutReachable = float64(t.Voted) / float64(t.Reachable)
	}
	err = sqlx.SelectContext(ctx, q, &t.Candidates, `SELECT c.number, c.name, tc.votes, tc.support::float8 AS support, tc.endorsed
		FROM tally_candidates tc JOIN candidates c ON c.id = tc.candidate_id WHERE tc.race_id = $1 ORDER BY c.number`, r.ID)
	if err != nil {
		return t, fmt.Errorf("tally of %s: %w", r.Code, err)
	}
	return t, nil
}

// Recount counts the race's votes afresh from the vote history, ignoring
// any frozen tally: for a closed race it must reproduce the frozen numbers
// (no vote is recorded after the close), which is how they are checked.
func (s *Store) Recount(ctx context.Context, code string) (Tally, error) {
	r, err := raceByCode(ctx, s.db, code, "")
	if err != nil {
		return Tally{}, err
	}
	return countFrom(ctx, s.db, r, historyCounts)
}
