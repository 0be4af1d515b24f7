package ballots

import (
	"fmt"
	"strconv"
	"time"
	_ "time/tzdata" // the states' zones, whatever the host has installed
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
		local.Format("Monday 2 January 2006 at 3:04 pm MST"), StateName(state)))
	return lines
}
