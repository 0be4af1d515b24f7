package testenv

import (
	"testing"
	"time"
)

// PollInterval is how often Eventually checks its condition.
const PollInterval = 10 * time.Millisecond

// Eventually waits until cond returns true, checking it every PollInterval,
// and fails the test (t.Fatalf, naming what) if it has not within timeout:
// a bounded wait for something asynchronous, not a timing assertion, so
// timeouts are generous. what says what is awaited ("every ballot sent").
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	if err := EventuallyErr(timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}); err != nil {
		t.Fatalf("not within %v: %s", timeout, what)
	}
}

// EventuallyNil is Eventually with a condition that says why it does not
// hold yet: it waits until cond returns nil, and fails the test with
// cond's last error if it has not within timeout.
func EventuallyNil(t testing.TB, timeout time.Duration, cond func() error, what string) {
	t.Helper()
	if err := EventuallyErr(timeout, cond); err != nil {
		t.Fatalf("not within %v: %s: %v", timeout, what, err)
	}
}

// EventuallyErr waits until cond returns nil, checking it every
// PollInterval, and returns its last error if that has not happened within
// timeout; for waits outside a test's goroutine, which must not call
// t.Fatal.
func EventuallyErr(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(PollInterval)
	}
}

type notYet struct{}

func (notYet) Error() string { return "condition false" }

var errNotYet error = notYet{}
