package race

import "fmt"

// houseSeats is each state's number of seats in the U.S. House of
// Representatives under the apportionment after the 2020 census (in force
// from the 118th Congress, 2023): 435 in all. A state with one seat elects
// it at large: its only district is STATE-AL (AK, DE, ND, SD, VT, WY). DC
// elects a non-voting delegate at large, DC-AL.
var houseSeats = map[string]int{
	"AL": 7, "AK": 1, "AZ": 9, "AR": 4, "CA": 52, "CO": 8, "CT": 5, "DE": 1, "DC": 1, "FL": 28,
	"GA": 14, "HI": 2, "ID": 2, "IL": 17, "IN": 9, "IA": 4, "KS": 4, "KY": 6, "LA": 6, "ME": 2,
	"MD": 8, "MA": 9, "MI": 13, "MN": 8, "MS": 4, "MO": 8, "MT": 2, "NE": 3, "NV": 4, "NH": 2,
	"NJ": 12, "NM": 3, "NY": 26, "NC": 14, "ND": 1, "OH": 15, "OK": 5, "OR": 6, "PA": 17, "RI": 2,
	"SC": 7, "SD": 1, "TN": 9, "TX": 38, "UT": 4, "VT": 1, "VA": 11, "WA": 10, "WV": 2, "WI": 8,
	"WY": 1,
}

// checkDistrict refuses a House district the state does not have: a number
// above its seats, a number in an at-large state, -AL in a state of
// several districts.
func checkDistrict(state string, n int, atLarge bool) error {
	seats, ok := houseSeats[state]
	if !ok {
		return nil // not a state: ParseRaceCode says so
	}
	name := StateName(state)
	switch {
	case seats == 1 && !atLarge:
		return fmt.Errorf("district %s-%02d: %s elects its one representative at large: %s-AL", state, n, name, state)
	case seats > 1 && atLarge:
		return fmt.Errorf("district %s-AL: %s has %d districts, %s-01 to %s-%02d, none at large", state, name, seats, state, state, seats)
	case !atLarge && n > seats:
		return fmt.Errorf("district %s-%02d: %s has %d districts, %s-01 to %s-%02d", state, n, name, seats, state, state, seats)
	}
	return nil
}
