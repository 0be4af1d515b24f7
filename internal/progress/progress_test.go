package progress

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// Off a terminal, progress prints a plain line at most every p.every, and
// counts read with thousands separators.
func TestProgressLines(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	p := New(&b, "race open MA-SEN")
	p.OpenRace(50000, 0.25) // within the first five seconds: not shown
	p.every = 0
	p.OpenRace(1234567, 0.5)
	p.Done()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 1 || !regexp.MustCompile(`^race open MA-SEN: 1,234,567 ballots \(50 % of members read\), [\d,]+ ballots/s$`).MatchString(lines[0]) {
		t.Errorf("progress wrote %q; want one line with the count, the share and the rate", b.String())
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 12345: "12,345", -1234567: "-1,234,567"} {
		if got := Grouped(n); got != want {
			t.Errorf("Grouped(%d) = %q, want %q", n, got, want)
		}
	}
}
