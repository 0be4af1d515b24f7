package mailer

import (
	"fmt"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/templates"
)

// resultsData is a closed race's results as the announcement and the
// held-results notice show them: the race as closed (Close is when it
// closed, which for a race closed by hand is before the wave's close), and
// the rule as applied, never the open race's rule.
func resultsData(sh ballots.RaceSheet, race templates.Race, name string) (templates.Announcement, error) {
	if sh.Tally == nil {
		return templates.Announcement{}, fmt.Errorf("race %s has no tally yet", sh.Race.Code)
	}
	closed := sh.Race.VotingClose
	if sh.Race.ClosedAt != nil {
		closed = *sh.Race.ClosedAt
	}
	race.Close = closed.In(ballots.StateZone(sh.Race.State))
	a := templates.Announcement{Name: name, Race: race, Applied: ballots.RuleAppliedLines(*sh.Tally, closed, sh.Race.State), Eligible: sh.Tally.Eligible, Voted: sh.Tally.Voted,
		Turnout: fmt.Sprintf("%.1f %%", sh.Tally.Turnout*100), Reachable: sh.Tally.Reachable, Unreachable: sh.Tally.Eligible - sh.Tally.Reachable,
		TurnoutReachable: fmt.Sprintf("%.1f %%", sh.Tally.TurnoutReachable*100)}
	for _, c := range sh.Tally.Candidates {
		a.Results = append(a.Results, templates.Result{Number: c.Number, Name: c.Name, Votes: c.Votes,
			Support: fmt.Sprintf("%.1f %%", c.Support*100), Endorsed: c.Endorsed, Applied: ballots.CandidateApplied(*sh.Tally, c)})
		if c.Endorsed {
			a.Endorsed = append(a.Endorsed, c.Name)
		}
	}
	return a, nil
}
