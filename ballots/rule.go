package ballots

import (
	"fmt"
	"math"
	"strconv"
	"time"
	_ "time/tzdata" // the states' zones, whatever the host has installed

	"github.com/ballotd/ballotd/internal/race"
)

// stateZones is each state's IANA time zone: for the states that span two
// zones, the zone most of its people live in (the rule names it).
var stateZones = map[string]string{
	"AL": "America/Chicago", "AK": "America/Anchorage", "AZ": "America/Phoenix", "AR": "America/Chicago",
	"CA": "America/Los_Angeles", "CO": "America/Denver", "CT": "America/New_York", "DE": "America/New_York",
	"DC": "America/New_York", "FL": "America/New_York", "GA": "America/New_York", "HI": "Pacific/Honolulu",
	"ID": "America/Boise", "IL": "America/Chicago", "IN": "America/Indiana/Indianapolis", "IA": "America/Chicago",
	"KS": "America/Chicago", "KY": "America/New_York", "LA": "America/Chicago", "ME": "America/New_York",
	"MD": "America/New_York", "MA": "America/New_York", "MI": "America/Detroit", "MN": "America/Chicago",
	"MS": "America/Chicago", "MO": "America/Chicago", "MT": "America/Denver", "NE": "America/Chicago",
	"NV": "America/Los_Angeles", "NH": "America/New_York", "NJ": "America/New_York", "NM": "America/Denver",
	"NY": "America/New_York", "NC": "America/New_York", "ND": "America/Chicago", "OH": "America/New_York",
	"OK": "America/Chicago", "OR": "America/Los_Angeles", "PA": "America/New_York", "RI": "America/New_York",
	"SC": "America/New_York", "SD": "America/Chicago", "TN": "America/Chicago", "TX": "America/Chicago",
	"UT": "America/Denver", "VT": "America/New_York", "VA": "America/New_York", "WA": "America/Los_Angeles",
	"WV": "America/New_York", "WI": "America/Chicago", "WY": "America/Denver",
}

// StateZone returns the IANA time zone of a state's postal code, UTC for
// an unknown code.
func StateZone(state string) *time.Location {
	if name, ok := stateZones[state]; ok {
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	return time.UTC
}

// percent writes a fraction as a percentage without spurious decimals:
// 0.6 → "60 %", 0.675 → "67.5 %".
func percent(f float64) string {
	return strconv.FormatFloat(f*100, 'f', -1, 64) + " %"
}

// RuleLines is the endorsement rule in plain words, from the wave's own
// settings: the support needed (and that exactly the threshold is enough),
// that NO and NONE count as voting and support nobody, that the latest
// reply counts, the minimum turnout if there is one, and the close in the
// state's own time, as its members read a clock.
func RuleLines(threshold, minTurnout float64, close time.Time, state string) []string {
	th := percent(threshold)
	lines := []string{
		fmt.Sprintf("A candidate is endorsed with the support of %s or more of the members who vote; exactly %s is enough.", th, th),
		"Answering NO or NONE counts as having voted and supports no candidate.",
		"Only your latest reply before the close counts; you can change your vote until then.",
	}
	if minTurnout > 0 {
		lines = append(lines, fmt.Sprintf("No one is endorsed unless at least %s of the eligible members vote.", percent(minTurnout)))
	}
	local := close.In(StateZone(state))
	lines = append(lines, fmt.Sprintf("Voting closes %s (%s time).",
		local.Format("Monday 2 January 2006 at 3:04 pm MST"), race.StateName(state)))
	return lines
}

// RuleAppliedLines is the endorsement rule as it was applied to a closed
// race, in the past tense, for the announcement and the held-results
// notice: the support that was needed, how NO and NONE counted, that each
// member's latest reply before the close counted, the turnout against the
// minimum if there was one, and when voting closed (closed, the moment it
// did: a race closed early by hand closed then, not at the wave's
// scheduled time). It never tells anyone that they can still vote.
func RuleAppliedLines(t Tally, closed time.Time, state string) []string {
	th := percent(t.Threshold)
	lines := []string{
		fmt.Sprintf("A candidate needed the support of %s or more of the members who voted; exactly %s was enough.", th, th),
		"Answering NO or NONE counted as having voted and supported no candidate.",
		"Each member's latest reply before the close was the one counted.",
	}
	if t.MinTurnout > 0 {
		met := "so the minimum was met"
		if !ratioAtLeast(t.Voted, t.Eligible, t.MinTurnout) {
			met = "so no one could be endorsed"
		}
		lines = append(lines, fmt.Sprintf("No one could be endorsed unless at least %s of the eligible members voted; %s did, %s.",
			percent(t.MinTurnout), pct1(t.Turnout), met))
	}
	local := closed.In(StateZone(state))
	lines = append(lines, fmt.Sprintf("Voting closed %s (%s time).",
		local.Format("Monday 2 January 2006 at 3:04 pm MST"), race.StateName(state)))
	return lines
}

// CandidateApplied is the rule as applied to one candidate of a closed
// race, in one line: "endorsed: 76.6 % support, above the 60 % needed;
// 67.0 % turnout", or why not ("not endorsed: 40.0 % support, below the
// 60 % needed"; "… but 20.0 % turnout, below the 30 % needed"). The
// comparisons are the tally's own (ratioAtLeast), so the words never
// disagree with the decision.
func CandidateApplied(t Tally, c CandidateResult) string {
	verdict := "not endorsed"
	if c.Endorsed {
		verdict = "endorsed"
	}
	if t.Voted == 0 {
		return verdict + ": nobody voted"
	}
	th := percent(t.Threshold)
	var support string
	switch {
	case !ratioAtLeast(c.Votes, t.Voted, t.Threshold):
		support = "below the " + th + " needed"
	case int64(c.Votes)*10000 == int64(math.Round(t.Threshold*10000))*int64(t.Voted):
		support = "exactly the " + th + " needed"
	default:
		support = "above the " + th + " needed"
	}
	s := fmt.Sprintf("%s: %s support, %s", verdict, pct1(c.Support), support)
	if t.MinTurnout == 0 {
		return s + "; " + pct1(t.Turnout) + " turnout"
	}
	if ratioAtLeast(t.Voted, t.Eligible, t.MinTurnout) {
		return s + "; " + pct1(t.Turnout) + " turnout, at least the " + percent(t.MinTurnout) + " needed"
	}
	return s + ", but " + pct1(t.Turnout) + " turnout, below the " + percent(t.MinTurnout) + " needed"
}

// pct1 writes a measured fraction with one decimal, as the results show
// it: 0.766 → "76.6 %".
func pct1(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 1, 64) + " %"
}
