package ballots

import (
	"regexp"
	"strings"
	"testing"
)

func TestTokensRoundTrip(t *testing.T) {
	t.Parallel()
	toks, err := NewTokens("0123456789abcdef-secret")
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("0123456789abcdef")
	tok := toks.Make(TokenBallot, 123456789, nonce)
	if !regexp.MustCompile(`^[a-z2-7]+$`).MatchString(tok) {
		t.Fatalf("token %q is not lowercase base32", tok)
	}
	if got := len(tok) * 5; got < tokenMACLen*8 {
		t.Fatalf("token carries %d bits, want at least 96 of MAC", got)
	}
	id, err := toks.ID(tok)
	if err != nil || id != 123456789 {
		t.Fatalf("ID(%q) = %d, %v; want 123456789", tok, id, err)
	}
	if !toks.Verify(TokenBallot, tok, nonce) {
		t.Fatal("a token does not verify")
	}
	if !toks.Verify(TokenBallot, strings.ToUpper(tok), nonce) {
		t.Fatal("tokens must match case-insensitively")
	}
	cases := map[string]struct {
		kind, tok string
		nonce     []byte
	}{
		"other kind":   {TokenBounce, tok, nonce},
		"other nonce":  {TokenBallot, tok, []byte("fedcba9876543210")},
		"truncated":    {TokenBallot, tok[:len(tok)-1], nonce},
		"altered":      {TokenBallot, tok[:len(tok)-1] + flip(tok[len(tok)-1]), nonce},
		"not base32":   {TokenBallot, "0189" + tok[4:], nonce},
		"empty":        {TokenBallot, "", nonce},
		"other secret": {TokenBallot, mustTokens(t, "another-secret-of-16").Make(TokenBallot, 123456789, nonce), nonce},
	}
	for name, c := range cases {
		if toks.Verify(c.kind, c.tok, c.nonce) {
			t.Errorf("%s: forged token verified", name)
		}
	}
	if _, err := NewTokens("short"); err == nil {
		t.Error("a short secret was accepted")
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func mustTokens(t *testing.T, s string) *Tokens {
	toks, err := NewTokens(s)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func TestParseRaceCode(t *testing.T) {
	t.Parallel()
	good := map[string]RaceCode{
		"MA-SEN": {Code: "MA-SEN", State: "MA", Office: OfficeSenate},
		"ma-sen": {Code: "MA-SEN", State: "MA", Office: OfficeSenate},
		"MA-Sen": {Code: "MA-SEN", State: "MA", Office: OfficeSenate},
		"MA-GOV": {Code: "MA-GOV", State: "MA", Office: OfficeGovernor},
		"MA-07":  {Code: "MA-07", State: "MA", Office: OfficeHouse, District: "MA-07"},
		"ma-7":   {Code: "MA-07", State: "MA", Office: OfficeHouse, District: "MA-07"},
		"AK-AL":  {Code: "AK-AL", State: "AK", Office: OfficeHouse, District: "AK-AL"},
		"Ny-10":  {Code: "NY-10", State: "NY", Office: OfficeHouse, District: "NY-10"},
		" ma-7 ": {Code: "MA-07", State: "MA", Office: OfficeHouse, District: "MA-07"},
	}
	for in, want := range good {
		got, err := ParseRaceCode(in)
		if err != nil || got != want {
			t.Errorf("ParseRaceCode(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MA", "XX-SEN", "MA-00", "MA-0", "XX-07", "M1-07", "1A-07", "MA-7a", "MA-123", "MA-PRES", "MA SEN", "MA-SEN; DROP TABLE races"} {
		if _, err := ParseRaceCode(in); err == nil {
			t.Errorf("ParseRaceCode(%q) accepted", in)
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

// Consecutive rows get tokens that share nothing visible: the id is masked.
func TestTokensHideTheID(t *testing.T) {
	t.Parallel()
	toks := mustTokens(t, "0123456789abcdef-secret")
	a, b := toks.Make(TokenBallot, 1, nil), toks.Make(TokenBallot, 2, nil)
	common := 0
	for common < len(a) && a[common] == b[common] {
		common++
	}
	if common > 3 || strings.HasPrefix(a, "aaaa") {
		t.Fatalf("tokens of rows 1 and 2 share a %d-character prefix: %s %s", common, a, b)
	}
	for _, id := range []int64{0, 1, 2, 1 << 40} {
		tok := toks.Make(TokenBounce, id, nil)
		if got, err := toks.Open(TokenBounce, tok); err != nil || got != id {
			t.Errorf("Open(Make(%d)) = %d, %v", id, got, err)
		}
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

// TestTokensAreStable: a token is a function of the secret, the kind, the
// id and the nonce only, and never changes between versions of ballotd:
// ballots in members' inboxes must keep working after an upgrade. These
// were made by the first release.
func TestTokensAreStable(t *testing.T) {
	t.Parallel()
	toks, err := NewTokens("0123456789abcdef-secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind  string
		id    int64
		nonce string
		want  string
	}{
		{"v", 1, "0123456789abcdef", "llfekrjgfut7psqda6nfxlpppofw6"},
		{"v", 123456789, "\x00\xff\x10", "x4s2fergh7523dwyis5xrrc2minxw"},
		{"b", 42, "", "fvjxlwxsakrwhtrtn52pnvsae7xwa"},
		{"m", 1099511627776, "", "ppqk5rlj4sqz7t6ap7psifqftx6we"},
		{"u", 7, "", "du2e4b6yzz74nqorxzyno2s2l4urm"},
	} {
		var nonce []byte
		if c.nonce != "" {
			nonce = []byte(c.nonce)
		}
		// Twice: the second from a pooled HMAC state.
		for range 2 {
			if got := toks.Make(c.kind, c.id, nonce); got != c.want {
				t.Errorf("Make(%s, %d, %q) = %s, want %s", c.kind, c.id, c.nonce, got, c.want)
			}
		}
		if !toks.Verify(c.kind, c.want, nonce) {
			t.Errorf("Verify(%s, %s) = false", c.kind, c.want)
		}
	}
}

// BenchmarkTokenMake is one token; a message carries four.
func BenchmarkTokenMake(b *testing.B) {
	toks, err := NewTokens("0123456789abcdef-secret")
	if err != nil {
		b.Fatal(err)
	}
	nonce := []byte("0123456789abcdef")
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		toks.Make(TokenBallot, i, nonce)
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
