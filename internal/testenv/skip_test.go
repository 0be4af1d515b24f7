package testenv

import (
	"bytes"
	"strings"
	"testing"
)

// The summary says, per reason, how many tests were skipped and which.
func TestSkipSummary(t *testing.T) {
	skipMu.Lock()
	saved := skipped
	skipped = map[string][]string{"no corpus": {"TestB", "TestA"}}
	skipMu.Unlock()
	defer func() { skipMu.Lock(); skipped = saved; skipMu.Unlock() }()
	var b bytes.Buffer
	summary(&b)
	if got := b.String(); !strings.HasSuffix(got, ": SKIPPED 2 tests: no corpus (TestA, TestB)\n") || !strings.HasPrefix(got, "testenv: testenv: ") {
		t.Errorf("summary %q", got)
	}
}
