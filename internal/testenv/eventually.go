package testenv

import (
	"testing"
	"time"
)

// PollInterval is how often Eventually and Poll check their condition.
const PollInterval = 10 * time.Millisecond

// Eventually waits until cond returns true, checking it every PollInterval,
// and fails the test (t.Fatalf, saying what it waited for) if it has not
// within timeout: a bounded wait for something asynchronous, not a timing
// assertion, so timeouts are generous. what says what is awaited ("every
// ballot sent").
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("not within %v: %s", timeout, what)
	}
}

// Poll is Eventually for a caller that handles the timeout itself (to say
// more about what it saw, or to go on): it reports whether cond returned
// true within timeout.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}
