package ballots_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
)

func TestRuleLines(t *testing.T) {
	t.Parallel()
	close := time.Date(2026, 3, 3, 22, 0, 0, 0, time.UTC)
	tests := []struct {
		name                  string
		threshold, minTurnout float64
		state                 string
		want, not             []string
	}{
		{"seeds' rule", 0.6, 0, "MA",
			[]string{"60 % or more of the members who vote; exactly 60 % is enough", "NO or NONE counts as having voted",
				"latest reply before the close counts", "Tuesday 3 March 2026 at 5:00 pm EST (Massachusetts time)"},
			[]string{"unless at least"}},
		{"two thirds and a turnout floor", 0.6667, 0.25, "CA",
			[]string{"66.67 % or more", "exactly 66.67 % is enough", "unless at least 25 % of the eligible members vote",
				"2:00 pm PST (California time)"}, nil},
		{"half, Arizona without daylight saving", 0.5, 0.1, "AZ",
			[]string{"exactly 50 % is enough", "at least 10 %", "3:00 pm MST (Arizona time)"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Join(ballots.RuleLines(tt.threshold, tt.minTurnout, close, tt.state), "\n")
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("rule lacks %q:\n%s", w, text)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(text, n) {
					t.Errorf("rule has %q:\n%s", n, text)
				}
			}
		})
	}
}

func TestRuleApplied(t *testing.T) {
	t.Parallel()
	closed := time.Date(2026, 3, 1, 15, 30, 0, 0, time.UTC) // closed early, by hand
	tally := func(minTurnout float64, eligible, voted int, votes ...int) ballots.Tally {
		tl := ballots.Tally{Eligible: eligible, Voted: voted, Threshold: 0.6, MinTurnout: minTurnout}
		for i, v := range votes {
			tl.Candidates = append(tl.Candidates, ballots.CandidateResult{Number: i + 1, Votes: v})
		}
		ballots.Decide(&tl)
		return tl
	}
	tests := []struct {
		name string
		t    ballots.Tally
		want []string // one per candidate
		rule []string
	}{
		{"above", tally(0, 30, 20, 15, 5), []string{"endorsed: 75.0 % support, above the 60 % needed; 66.7 % turnout",
			"not endorsed: 25.0 % support, below the 60 % needed; 66.7 % turnout"},
			[]string{"needed the support of 60 % or more of the members who voted", "Voting closed Sunday 1 March 2026 at 10:30 am EST (Massachusetts time)."}},
		{"exactly", tally(0, 10, 10, 6), []string{"endorsed: 60.0 % support, exactly the 60 % needed; 100.0 % turnout"}, nil},
		{"turnout short", tally(0.3, 100, 20, 18), []string{"not endorsed: 90.0 % support, above the 60 % needed, but 20.0 % turnout, below the 30 % needed"},
			[]string{"unless at least 30 % of the eligible members voted; 20.0 % did, so no one could be endorsed."}},
		{"turnout met", tally(0.1, 100, 20, 18), []string{"endorsed: 90.0 % support, above the 60 % needed; 20.0 % turnout, at least the 10 % needed"},
			[]string{"20.0 % did, so the minimum was met."}},
		{"nobody voted", tally(0, 10, 0, 0), []string{"not endorsed: nobody voted"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, c := range tt.t.Candidates {
				if got := ballots.CandidateApplied(tt.t, c); got != tt.want[i] {
					t.Errorf("candidate %d: %q, want %q", c.Number, got, tt.want[i])
				}
			}
			rule := strings.Join(ballots.RuleAppliedLines(tt.t, closed, "MA"), "\n")
			for _, w := range tt.rule {
				if !strings.Contains(rule, w) {
					t.Errorf("rule lacks %q:\n%s", w, rule)
				}
			}
			for _, open := range []string{"you can", "closes", "until then", " counts"} {
				if strings.Contains(rule, open) {
					t.Errorf("the rule as applied says %q, open-race words:\n%s", open, rule)
				}
			}
		})
	}
}
