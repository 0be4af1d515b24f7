package testskip

import (
	"bytes"
	"strings"
	"testing"
)

// The summary says, per reason, how many tests were skipped and which.
func TestSkipSummary(t *testing.T) {
	mu.Lock()
	saved := skipped
	skipped = map[string][]string{"no corpus": {"TestB", "TestA"}}
	mu.Unlock()
	defer func() { mu.Lock(); skipped = saved; mu.Unlock() }()
	var b bytes.Buffer
	Summary(&b)
	if got := b.String(); !strings.HasSuffix(got, ": SKIPPED 2 tests: no corpus (TestA, TestB)\n") || !strings.HasPrefix(got, "testenv: testskip: ") {
		t.Errorf("summary %q", got)
	}
}
