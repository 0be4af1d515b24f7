package ballots

import (
	"testing"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                     string
		eligible, voted          int
		votes                    []int
		threshold, minTurnout    float64
		wantEndorsed             []bool
		wantTurnout, wantSupport float64
	}{
		{"exactly 60% is enough", 10, 10, []int{6}, 0.6, 0, []bool{true}, 1, 0.6},
		{"just under 60% is not", 1000, 1000, []int{599}, 0.6, 0, []bool{false}, 1, 0.599},
		{"support is over those who voted, not eligible", 100, 10, []int{6}, 0.6, 0, []bool{true}, 0.1, 0.6},
		{"nobody voted", 50, 0, []int{0}, 0.6, 0, []bool{false}, 0, 0},
		{"min turnout missed", 100, 19, []int{19}, 0.6, 0.2, []bool{false}, 0.19, 1},
		{"min turnout met exactly", 100, 20, []int{20}, 0.6, 0.2, []bool{true}, 0.2, 1},
		{"two candidates, none reach", 10, 10, []int{5, 4}, 0.6, 0, []bool{false, false}, 1, 0.5},
		{"thirds: 2 of 3 is 66.7%", 3, 3, []int{2, 1}, 0.6, 0, []bool{true, false}, 1, 2.0 / 3},
		{"custom threshold 2/3", 3, 3, []int{2}, 0.6667, 0, []bool{false}, 1, 2.0 / 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tl := Tally{Eligible: c.eligible, Voted: c.voted, Threshold: c.threshold, MinTurnout: c.minTurnout}
			for i, v := range c.votes {
				tl.Candidates = append(tl.Candidates, CandidateResult{Number: i + 1, Votes: v})
			}
			Decide(&tl)
			if tl.Turnout != c.wantTurnout {
				t.Errorf("turnout = %v, want %v", tl.Turnout, c.wantTurnout)
			}
			if tl.Candidates[0].Support != c.wantSupport {
				t.Errorf("support = %v, want %v", tl.Candidates[0].Support, c.wantSupport)
			}
			for i, want := range c.wantEndorsed {
				if tl.Candidates[i].Endorsed != want {
					t.Errorf("candidate %d endorsed = %v, want %v", i+1, tl.Candidates[i].Endorsed, want)
				}
			}
		})
	}
}

// The fast path accepts exactly what net/mail accepts for plain addresses,
// and hands everything unusual to net/mail.
func TestParseEmail(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"Alice@Example.NET": "alice@example.net", "a.b+tag@mail.example.org": "a.b+tag@mail.example.org",
		"o'brien@example.com": "o'brien@example.com", "Ann Doe <ann@example.com>": "ann@example.com",
	}
	for in, want := range good {
		if got, err := ParseEmail(in); err != nil || got != want {
			t.Errorf("ParseEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "no-at", "@example.com", "a@", "a@@example.com", "a..b@example.com", ".a@example.com",
		"a@example..com", "a b@example.com", "a@exa mple.com", "a@b@example.com"} {
		if got, err := ParseEmail(in); err == nil {
			t.Errorf("ParseEmail(%q) = %q, accepted", in, got)
		}
	}
}

// TestOneRoundTrip: binary_parameters is added to either form of
// connection string, and an operator's own setting is left alone.
func TestOneRoundTrip(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://ballotd@db.example.org/ballotd":                          "postgres://ballotd@db.example.org/ballotd?binary_parameters=yes",
		"postgresql://u:p@127.0.0.1:5432/b?sslmode=disable":                  "postgresql://u:p@127.0.0.1:5432/b?binary_parameters=yes&sslmode=disable",
		"postgres://u@h/b?binary_parameters=no":                              "postgres://u@h/b?binary_parameters=no",
		"host=/run/postgresql dbname=ballotd":                                "host=/run/postgresql dbname=ballotd binary_parameters=yes",
		"host=127.0.0.1 dbname=ballotd binary_parameters=no sslmode=disable": "host=127.0.0.1 dbname=ballotd binary_parameters=no sslmode=disable",
	} {
		if got := OneRoundTrip(in); got != want {
			t.Errorf("OneRoundTrip(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSpreadsheetCell: a CSV cell a spreadsheet would run as a formula
// (OWASP: a leading = + - @, tab or carriage return) gets a leading single
// quote; any other cell is left as it is.
func TestSpreadsheetCell(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`=HYPERLINK("http://evil.example","x")`: `'=HYPERLINK("http://evil.example","x")`,
		"+1+cmd|' /C calc'!A0":                  "'+1+cmd|' /C calc'!A0",
		"-2+3":                                  "'-2+3",
		"@SUM(A1)":                              "'@SUM(A1)",
		"\t=1":                                  "'\t=1",
		"\r=1":                                  "'\r=1",
		"":                                      "",
		"Ed Markey":                             "Ed Markey",
		"a=b":                                   "a=b",
		"'quoted":                               "'quoted",
		"MA-07":                                 "MA-07",
	} {
		if got := SpreadsheetCell(in); got != want {
			t.Errorf("SpreadsheetCell(%q) = %q, want %q", in, got, want)
		}
	}
}
