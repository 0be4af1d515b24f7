package main

import (
	"context"
	"fmt"

	"github.com/ballotd/ballotd/internal/report"
)

// cmdResultsRelease announces a held race's frozen results.
func cmdResultsRelease(ctx context.Context, e *env, args []string) error {
	pos, err := exactArgs(flags("results release"), args, 1, "results release CODE")
	if err != nil {
		return err
	}
	code := pos[0]
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.ReleaseResults(ctx, code)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "race %s: results released; announcements queued to its %d members and the nominating groups' leaders\n", t.Race, t.Eligible)
	return report.Tally(e.stdout, t)
}
