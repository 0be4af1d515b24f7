package testenv

import (
	"io"
	"testing"

	"github.com/ballotd/ballotd/internal/testskip"
)

// Skip skips t for reason and records it, so that Main ends the package's
// run with a summary line of what did not run and why: a suite that needs
// something a fresh clone lacks (the mail corpus, real servers) must say
// so rather than pass in silence (testskip).
func Skip(t testing.TB, reason string) {
	t.Helper()
	testskip.Skip(t, reason)
}

// summary writes one line per reason tests were skipped for, naming the
// package and the tests; nothing when none was.
func summary(w io.Writer) { testskip.Summary(w) }
