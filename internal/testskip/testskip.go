// Package testskip records the tests a package skipped and why, so that
// its run ends with a line saying what did not run: a suite that needs
// something a fresh clone lacks (the mail corpus, real servers, a headless
// browser) must say so rather than pass in silence.
//
// It imports nothing of ours, so the tests of a package that ballots
// imports (templates) can use it; testenv's Skip and Main record here too.
package testskip

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
	mu sync.Mutex
	// skipped holds, by reason, the tests Skip skipped.
	skipped = map[string][]string{}
)

// Skip skips t for reason and records it for Summary.
func Skip(t testing.TB, reason string) {
	t.Helper()
	mu.Lock()
	skipped[reason] = append(skipped[reason], t.Name())
	mu.Unlock()
	t.Skip(reason)
}

// Summary writes one line per reason tests were skipped for, naming the
// package and the tests; nothing when none was.
func Summary(w io.Writer) {
	mu.Lock()
	defer mu.Unlock()
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

// Main runs a package's tests that need no database and ends with the
// summary, on the standard output and (since go test ./... shows a
// passing package's output only with -v) on the terminal.
func Main(m *testing.M) {
	code := m.Run()
	Summary(os.Stdout)
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		Summary(tty)
		tty.Close()
	}
	os.Exit(code)
}
