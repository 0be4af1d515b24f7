package templates

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestResultsLink: the receipt and the announcement link the results page
// (its receipt check) when there is one, in the text and the HTML, and
// say nothing of it when BALLOTD_PUBLIC_URL is not set.
func TestResultsLink(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	race := Race{Code: "MA-07", Title: "U.S. House, Massachusetts district 7", Close: time.Date(2026, 3, 8, 22, 0, 0, 0, time.UTC),
		ThresholdPct: "60 %"}
	const url = "https://ballots.example.org/results"
	for _, tc := range []struct {
		kind string
		data func(url string) any
	}{
		{"receipt", func(url string) any {
			return Receipt{Name: "Alice", Race: race, Choice: "YES for Jane Doe", Receipt: "abcd-efgh-ijkl-mnop", Code: "c0de", ResultsURL: url}
		}},
		{"announcement", func(url string) any {
			return Announcement{Name: "Alice", Race: race, Eligible: 2, Voted: 1, Turnout: "50.0 %", Reachable: 2,
				Results: []Result{{Number: 1, Name: "Jane Doe", Votes: 1, Support: "100.0 %", Endorsed: true}}, Endorsed: []string{"Jane Doe"}, ResultsURL: url}
		}},
	} {
		var text, html bytes.Buffer
		if _, err := set.Render(tc.kind, tc.data(url), &text, &html); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text.String(), " "+url+"#check\n") || !strings.Contains(html.String(), `<a href="`+url+`#check">`) {
			t.Errorf("%s with a results page does not link it:\n%s\n%s", tc.kind, text.String(), html.String())
		}
		text.Reset()
		html.Reset()
		if _, err := set.Render(tc.kind, tc.data(""), &text, &html); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text.String(), "#check") || strings.Contains(html.String(), "#check") || strings.Contains(text.String(), "paste") {
			t.Errorf("%s without a results page mentions one:\n%s\n%s", tc.kind, text.String(), html.String())
		}
	}
}
