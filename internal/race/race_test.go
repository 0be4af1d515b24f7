package race

import "testing"

func TestParseRaceCode(t *testing.T) {
	good := map[string]Code{
		"MA-SEN": {Code: "MA-SEN", State: "MA", Office: Senate},
		"ma-sen": {Code: "MA-SEN", State: "MA", Office: Senate},
		"MA-Sen": {Code: "MA-SEN", State: "MA", Office: Senate},
		"MA-GOV": {Code: "MA-GOV", State: "MA", Office: Governor},
		"MA-07":  {Code: "MA-07", State: "MA", Office: House, District: "MA-07"},
		"ma-7":   {Code: "MA-07", State: "MA", Office: House, District: "MA-07"},
		"AK-AL":  {Code: "AK-AL", State: "AK", Office: House, District: "AK-AL"},
		"Ny-10":  {Code: "NY-10", State: "NY", Office: House, District: "NY-10"},
		" ma-7 ": {Code: "MA-07", State: "MA", Office: House, District: "MA-07"},
	}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MA", "XX-SEN", "MA-00", "MA-0", "XX-07", "M1-07", "1A-07", "MA-7a", "MA-123", "MA-PRES", "MA SEN", "MA-SEN; DROP TABLE races"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
	if _, err := ParseDistrict("MA-SEN"); err == nil {
		t.Error("ParseDistrict accepted a Senate race")
	}
	for in, want := range map[string]string{"MA": "MA", "ma": "MA", "Massachusetts": "MA", "new york": "NY"} {
		if got, err := ParseState(in); err != nil || got != want {
			t.Errorf("ParseState(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
