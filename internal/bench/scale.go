package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ballotd/ballotd/ballots"
)

// scaleOp is one operation bench scale times, with the raw reference its
// ratio is taken against ("" for none).
type scaleOp struct {
	name, ref string
	run       func(context.Context, *ballots.Store, string) error
}

// scaleOps are the operations of issue 23 item 4, each what the command
// of the same name asks of the database.
var scaleOps = []scaleOp{
	{"raw: count(*) of votes GROUP BY candidate", "", func(ctx context.Context, st *ballots.Store, _ string) error {
		_, err := st.RawVoteCount(ctx)
		return err
	}},
	{"raw: count(*) of outbox GROUP BY status", "", func(ctx context.Context, st *ballots.Store, _ string) error {
		_, err := st.RawOutboxCount(ctx)
		return err
	}},
	{"tally CODE", "raw: count(*) of votes GROUP BY candidate", func(ctx context.Context, st *ballots.Store, code string) error {
		_, err := st.TallyRace(ctx, code)
		return err
	}},
	{"recount CODE", "raw: count(*) of votes GROUP BY candidate", func(ctx context.Context, st *ballots.Store, code string) error {
		_, err := st.Recount(ctx, code)
		return err
	}},
	{"status", "raw: count(*) of outbox GROUP BY status", statusOp},
	{"ballots CODE --status failed", "raw: count(*) of outbox GROUP BY status", func(ctx context.Context, st *ballots.Store, code string) error {
		_, err := st.Deliveries(ctx, code, ballots.DeliveryFailed)
		return err
	}},
	{"digest (build)", "raw: count(*) of outbox GROUP BY status", func(ctx context.Context, st *ballots.Store, _ string) error {
		_, err := st.DigestNow(ctx)
		return err
	}},
	{"/metrics (database part)", "raw: count(*) of outbox GROUP BY status", metricsOp},
}

// statusOp asks what `ballotd status` asks: the races with their counts,
// the outbox by status, the backlog's age and the quarantine.
func statusOp(ctx context.Context, st *ballots.Store, _ string) error {
	if _, err := st.Races(ctx); err != nil {
		return err
	}
	if _, err := st.OutboxStatusCounts(ctx); err != nil {
		return err
	}
	return metricsOp(ctx, st, "")
}

// metricsOp asks what a /metrics scrape asks of the database: the
// health read (the oldest unsent row and the quarantine, from partial
// indexes); the outbox is counted as the work happens, not per scrape.
func metricsOp(ctx context.Context, st *ballots.Store, _ string) error {
	_, err := st.ReadHealth(ctx)
	return err
}

// Scale runs `ballotd bench scale`: in a scratch database it creates
// o.Members members, an open race with a ballot for each, its ballot
// mail sent, and o.Votes votes, then times each operation of scaleOps
// o.Runs times and prints the medians with their ratio to the raw
// reference measured in the same run.
func Scale(ctx context.Context, o Options, w io.Writer) error {
	dbURL, cleanup, err := o.Database(ctx, "ballotd_bench_scale")
	if err != nil {
		return err
	}
	defer cleanup()
	st, err := ballots.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	t0 := time.Now()
	code, err := buildScale(ctx, st, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "bench scale: %d members, %d ballots and sent ballot mails, %d votes in race %s; built in %.1f s\n",
		o.Members, o.Members, o.Votes, code, time.Since(t0).Seconds())
	medians := map[string]time.Duration{}
	for _, op := range scaleOps {
		m, err := medianOf(ctx, st, code, op, o.Runs)
		if err != nil {
			return fmt.Errorf("bench scale: %s: %w", op.name, err)
		}
		medians[op.name] = m
		ratio := ""
		if ref := medians[op.ref]; op.ref != "" && ref > 0 {
			ratio = fmt.Sprintf("  %6.1f× the %s", m.Seconds()/ref.Seconds(), op.ref[len("raw: "):])
		}
		fmt.Fprintf(w, "%-44s %8.3f s%s\n", op.name, m.Seconds(), ratio)
	}
	fmt.Fprintf(w, "(medians of %d runs each)\n", o.Runs)
	t, err := verifyScale(ctx, st, code, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "verified: %d eligible, %d voted, candidate 1 %d, candidate 2 %d (each ballot's latest vote)\n",
		t.Eligible, t.Voted, t.Candidates[0].Votes, t.Candidates[1].Votes)
	return nil
}

// buildScale fills the scratch database and settles it as autovacuum would.
func buildScale(ctx context.Context, st *ballots.Store, o Options) (string, error) {
	if err := st.AddBenchMembers(ctx, o.Members); err != nil {
		return "", err
	}
	code, err := st.AddBenchRace(ctx, o.Votes)
	if err != nil {
		return "", err
	}
	return code, st.VacuumBench(ctx)
}

// medianOf runs op runs times and returns the median time.
func medianOf(ctx context.Context, st *ballots.Store, code string, op scaleOp, runs int) (time.Duration, error) {
	ts := make([]time.Duration, 0, runs)
	for range runs {
		t := time.Now()
		if err := op.run(ctx, st, code); err != nil {
			return 0, err
		}
		ts = append(ts, time.Since(t))
	}
	slices.Sort(ts)
	return ts[len(ts)/2], nil
}

// verifyScale checks the tally counts what was cast: each ballot's
// latest vote, vote g falling on ballot (g-1) mod members + 1 and going to
// candidate 1 when g mod 10 < 6, to candidate 2 when < 8, else NONE.
func verifyScale(ctx context.Context, st *ballots.Store, code string, o Options) (ballots.Tally, error) {
	t, err := st.TallyRace(ctx, code)
	if err != nil {
		return t, err
	}
	voted, first, second := min(o.Votes, o.Members), 0, 0
	for j := 1; j <= voted; j++ {
		switch g := j + o.Members*((o.Votes-j)/o.Members); {
		case g%10 < 6:
			first++
		case g%10 < 8:
			second++
		}
	}
	if t.Eligible != o.Members || t.Voted != voted || len(t.Candidates) != 2 ||
		t.Candidates[0].Votes != first || t.Candidates[1].Votes != second {
		return t, fmt.Errorf("bench scale: tally says %d eligible, %d voted, %+v; want %d, %d, %d and %d votes",
			t.Eligible, t.Voted, t.Candidates, o.Members, voted, first, second)
	}
	return t, nil
}
