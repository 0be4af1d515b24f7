package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

var (
	skipMu sync.Mutex
	// skipped holds, by reason, the tests Skip skipped.
	skipped = map[string][]string{}
)

// Skip skips t for reason and records it, so that Main ends the package's
// run with a summary line of what did not run and why: a suite that needs
// something a fresh clone lacks (the mail corpus, real servers) must say
// so rather than pass in silence.
func Skip(t testing.TB, reason string) {
	t.Helper()
	skipMu.Lock()
	skipped[reason] = append(skipped[reason], t.Name())
	skipMu.Unlock()
	t.Skip(reason)
}

// summary writes one line per reason tests were skipped for, naming the
// package and the tests; nothing when none was.
func summary(w io.Writer) {
	skipMu.Lock()
	defer skipMu.Unlock()
	reasons := make([]string, 0, len(skipped))
	for r := range skipped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	for _, r := range reasons {
		names := skipped[r]
		sort.Strings(names)
		fmt.Fprintf(w, "testenv: %s: SKIPPED %d tests: %s (%s)\n", pkg, len(names), r, strings.Join(names, ", "))
	}
}
