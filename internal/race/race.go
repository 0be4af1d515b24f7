// Package race reads the races national endorsements cover: offices,
// U.S. states and race codes (MA-SEN, MA-GOV, MA-07, AK-AL) with the
// House districts of each state. It is pure, so the message reader can
// check a nomination form without the store.
package race

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Office is the office a race elects.
type Office string

// The offices national endorsements cover (seed 002: federal and gubernatorial).
const (
	Senate   Office = "senate"
	Governor Office = "governor"
	House    Office = "house"
)

// Title is the office as a ballot shows it.
func (o Office) Title() string {
	switch o {
	case Senate:
		return "U.S. Senate"
	case Governor:
		return "Governor"
	case House:
		return "U.S. House"
	}
	return string(o)
}

// Code is a parsed race code: MA-SEN, MA-GOV, MA-07, AK-AL.
type Code struct {
	Code     string // canonical form, upper case, two-digit district
	State    string // postal code
	Office   Office
	District string // the canonical code for a House race, "" for state-wide races
}

var codeRE = regexp.MustCompile(`^([A-Za-z]{2})-(SEN|GOV|AL|[0-9]{1,2})$`)

// Parse parses and canonicalises a race code, case-insensitively
// ("ma-sen", "MA-Sen", "MA-7" all work).
func Parse(s string) (Code, error) {
	if rc, ok := houseFast(s); ok {
		return rc, nil
	}
	s = strings.ToUpper(strings.TrimSpace(s))
	m := codeRE.FindStringSubmatch(s)
	if m == nil {
		return Code{}, fmt.Errorf("race code %q: want STATE-SEN, STATE-GOV, STATE-NN or STATE-AL", s)
	}
	st := m[1]
	if _, ok := stateNames[st]; !ok {
		return Code{}, fmt.Errorf("race code %q: %s is not a state postal code", s, st)
	}
	switch m[2] {
	case "SEN":
		return Code{Code: st + "-SEN", State: st, Office: Senate}, nil
	case "GOV":
		return Code{Code: st + "-GOV", State: st, Office: Governor}, nil
	case "AL":
		c := st + "-AL"
		if err := checkDistrict(st, 0, true); err != nil {
			return Code{}, err
		}
		return Code{Code: c, State: st, Office: House, District: c}, nil
	}
	n, _ := strconv.Atoi(m[2])
	if n < 1 {
		return Code{}, fmt.Errorf("race code %q: district numbers start at 1", s)
	}
	if err := checkDistrict(st, n, false); err != nil {
		return Code{}, err
	}
	c := fmt.Sprintf("%s-%02d", st, n)
	return Code{Code: c, State: st, Office: House, District: c}, nil
}

// houseFast parses the usual form of a House district, a state postal
// code, a dash and one or two digits (MA-07, ma-7), without the regexp and
// fmt of Parse: a million-member import parses one per row. Any
// other form, and every error, is left to Parse.
func houseFast(s string) (Code, bool) {
	if len(s) < 4 || len(s) > 5 || s[2] != '-' {
		return Code{}, false
	}
	n := 0
	for _, c := range []byte(s[3:]) {
		if c < '0' || c > '9' {
			return Code{}, false
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 {
		return Code{}, false
	}
	st := strings.ToUpper(s[:2])
	if n > houseSeats[st] || houseSeats[st] == 1 {
		return Code{}, false // not a state, or not one of its districts: Parse says why
	}
	c := string([]byte{st[0], st[1], '-', '0' + byte(n/10), '0' + byte(n%10)})
	return Code{Code: c, State: st, Office: House, District: c}, true
}

// ParseDistrict parses a House district code (MA-07, AK-AL) as members and
// groups carry it.
func ParseDistrict(s string) (Code, error) {
	rc, err := Parse(s)
	if err != nil {
		return Code{}, err
	}
	if rc.Office != House {
		return Code{}, fmt.Errorf("district %q: want a House district such as MA-07 or AK-AL", s)
	}
	return rc, nil
}

// ParseState accepts a postal code or a full state name, case-insensitively.
func ParseState(s string) (string, error) {
	t := strings.TrimSpace(s)
	up := strings.ToUpper(t)
	if _, ok := stateNames[up]; ok {
		return up, nil
	}
	for code, name := range stateNames {
		if strings.EqualFold(name, t) {
			return code, nil
		}
	}
	return "", fmt.Errorf("state %q: not a US state postal code or name", s)
}

// StateName returns the full name of a postal code, or the code itself.
func StateName(code string) string {
	if n, ok := stateNames[code]; ok {
		return n
	}
	return code
}

var stateNames = map[string]string{
	"AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
	"CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
	"FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
	"IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
	"ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
	"MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
	"NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
	"NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
	"PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
	"TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
	"WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}
