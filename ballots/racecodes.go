package ballots

import "github.com/ballotd/ballotd/internal/race"

// The race codes, offices and states are read by package race, which the
// message reader shares without the store; ballots and its callers keep
// these names for them.

// Office is the office a race elects.
type Office = race.Office

// The offices national endorsements cover (seed 002: federal and gubernatorial).
const (
	OfficeSenate   = race.Senate
	OfficeGovernor = race.Governor
	OfficeHouse    = race.House
)

// RaceCode is a parsed race code: MA-SEN, MA-GOV, MA-07, AK-AL.
type RaceCode = race.Code

// ParseRaceCode parses and canonicalises a race code, case-insensitively
// ("ma-sen", "MA-Sen", "MA-7" all work).
func ParseRaceCode(s string) (RaceCode, error) { return race.Parse(s) }

// ParseDistrict parses a House district code (MA-07, AK-AL) as members and
// groups carry it.
func ParseDistrict(s string) (RaceCode, error) { return race.ParseDistrict(s) }

// ParseState accepts a postal code or a full state name, case-insensitively.
func ParseState(s string) (string, error) { return race.ParseState(s) }

// StateName returns the full name of a postal code, or the code itself.
func StateName(code string) string { return race.StateName(code) }
