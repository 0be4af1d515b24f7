package ballots_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
)

func TestRuleLines(t *testing.T) {
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
