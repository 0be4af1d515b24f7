package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ballotd/ballotd/ballots"
)

func openStore(ctx context.Context, e *env) (*ballots.Store, Config, error) {
	cfg, err := loadConfig(e.getenv, need{})
	if err != nil {
		return nil, cfg, err
	}
	st, err := ballots.Open(ctx, cfg.DatabaseURL)
	return st, cfg, err
}

// flags returns a FlagSet that reports errors as usage errors.
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses flags wherever they stand among the arguments
// ("tally MA-SEN --json" as well as "tally --json MA-SEN") and returns the
// positional arguments. "--" ends the flags.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func jsonFlag(name string, args []string) (bool, []string, error) {
	fs := flags(name)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args)
	return *asJSON, pos, err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdMigrate(ctx context.Context, e *env) error {
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := ballots.Migrate(ctx, st.DB)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(e.stdout, "database is up to date")
	}
	for _, a := range applied {
		fmt.Fprintln(e.stdout, "applied", a)
	}
	return nil
}

func cmdImport(ctx context.Context, e *env, args []string) error {
	if len(args) != 2 || (args[0] != "groups" && args[0] != "members") {
		return usageError{"import: want import groups FILE.csv or import members FILE.csv"}
	}
	f, err := os.Open(args[1])
	if err != nil {
		return fmt.Errorf("import %s: %w", args[0], err)
	}
	defer f.Close()
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	var rep ballots.ImportReport
	if args[0] == "groups" {
		rep, err = st.ImportGroups(ctx, f)
	} else {
		rep, err = st.ImportMembers(ctx, f)
	}
	if err != nil {
		return err
	}
	for _, r := range rep.Rejected {
		fmt.Fprintf(e.stderr, "%s:%d: %s (row skipped)\n", args[1], r.Line, r.Problem)
	}
	fmt.Fprintf(e.stdout, "%s: %d rows: %d added, %d updated, %d unchanged, %d rejected\n",
		args[0], rep.Rows, rep.Added, rep.Updated, rep.Unchanged, len(rep.Rejected))
	return nil
}

func cmdWaveCreate(ctx context.Context, e *env, args []string) error {
	fs := flags("wave create")
	name := fs.String("name", "", "wave name")
	nc := fs.String("nominations-close", "", "RFC 3339 time")
	vo := fs.String("voting-open", "", "RFC 3339 time")
	vc := fs.String("voting-close", "", "RFC 3339 time")
	threshold := fs.Float64("threshold", 0.6, "support needed, a fraction")
	minTurnout := fs.Float64("min-turnout", 0, "turnout needed, a fraction")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	w := ballots.Wave{Name: strings.TrimSpace(*name), Threshold: *threshold, MinTurnout: *minTurnout}
	if w.Name == "" {
		return usageError{"wave create: --name is required"}
	}
	for _, t := range []struct {
		flag string
		v    string
		dst  *time.Time
	}{{"--nominations-close", *nc, &w.NominationsClose}, {"--voting-open", *vo, &w.VotingOpen}, {"--voting-close", *vc, &w.VotingClose}} {
		if t.v == "" {
			return usageError{fmt.Sprintf("wave create: %s is required", t.flag)}
		}
		v, err := time.Parse(time.RFC3339, t.v)
		if err != nil {
			return usageError{fmt.Sprintf("wave create: %s %q is not an RFC 3339 time such as 2026-03-01T09:00:00-05:00", t.flag, t.v)}
		}
		*t.dst = v
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	w, err = st.CreateWave(ctx, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wave %s created (voting %s to %s, threshold %g, minimum turnout %g)\n",
		w.Name, w.VotingOpen.Format(time.RFC3339), w.VotingClose.Format(time.RFC3339), w.Threshold, w.MinTurnout)
	return nil
}

func cmdWaves(ctx context.Context, e *env, args []string) error {
	asJSON, _, err := jsonFlag("waves", args)
	if err != nil {
		return err
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	ws, err := st.Waves(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, ws)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tNOMINATIONS CLOSE\tVOTING OPENS\tVOTING CLOSES\tTHRESHOLD\tMIN TURNOUT")
	for _, w := range ws {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g\t%g\n", w.Name, w.NominationsClose.Format(time.RFC3339),
			w.VotingOpen.Format(time.RFC3339), w.VotingClose.Format(time.RFC3339), w.Threshold, w.MinTurnout)
	}
	return tw.Flush()
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func cmdCandidateAdd(ctx context.Context, e *env, args []string) error {
	fs := flags("candidate add")
	race := fs.String("race", "", "race code")
	name := fs.String("name", "", "candidate name")
	bio := fs.String("bio", "", "bio shown on the ballot")
	wave := fs.String("wave", "", "wave name (default: the current wave)")
	var groups multi
	fs.Var(&groups, "group", "nominating group (repeatable)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *race == "" || *name == "" {
		return usageError{"candidate add: --race and --name are required"}
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.AddCandidate(ctx, *race, *wave, *name, *bio, groups)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "candidate %d: %s in %s, approved, nominated by %s\n", c.ID, c.Name, c.Race, orNone(c.Groups))
	return nil
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "(no group)"
	}
	return strings.Join(ss, ", ")
}

func cmdCandidates(ctx context.Context, e *env, args []string) error {
	asJSON, _, err := jsonFlag("candidates", args)
	if err != nil {
		return err
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := st.Candidates(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		type row struct {
			ballots.Candidate
			Number *int64 `json:"number"`
		}
		out := make([]row, len(cs))
		for i, c := range cs {
			out[i].Candidate = c
			if c.Number.Valid {
				n := c.Number.Int64
				out[i].Number = &n
			}
		}
		return printJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRACE\tNO.\tNAME\tSTATUS\tNOMINATED BY")
	for _, c := range cs {
		num := "-"
		if c.Number.Valid {
			num = fmt.Sprint(c.Number.Int64)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Race, num, c.Name, c.Status, orNone(c.Groups))
	}
	return tw.Flush()
}

func cmdRaces(ctx context.Context, e *env, args []string) error {
	asJSON, _, err := jsonFlag("races", args)
	if err != nil {
		return err
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	rs, err := st.Races(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, rs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RACE\tOFFICE\tWAVE\tSTATUS\tCANDIDATES\tBALLOTS\tVOTED\tCLOSES")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.Code, r.Office.Title(), r.Wave, r.Status,
			r.Candidates, r.Ballots, r.Voted, r.VotingClose.Format(time.RFC3339))
	}
	return tw.Flush()
}

func cmdRace(ctx context.Context, e *env, verb, code string) error {
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	if verb == "open" {
		n, err := st.OpenRace(ctx, code)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "race %s open: %d ballots queued\n", strings.ToUpper(code), n)
		return nil
	}
	t, err := st.CloseRace(ctx, code)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "race %s closed: %d of %d voted; %d announcements queued\n", t.Race, t.Voted, t.Eligible, t.Eligible)
	return writeTally(e.stdout, t)
}

func cmdTally(ctx context.Context, e *env, args []string) error {
	asJSON, rest, err := jsonFlag("tally", args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"tally: want tally CODE [--json]"}
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.TallyRace(ctx, rest[0])
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, t)
	}
	return writeTally(e.stdout, t)
}

func writeTally(w io.Writer, t ballots.Tally) error {
	fmt.Fprintf(w, "%s (%s): %d of %d eligible voted, turnout %.1f %%; endorsement needs %g %% support",
		t.Race, t.Status, t.Voted, t.Eligible, t.Turnout*100, t.Threshold*100)
	if t.MinTurnout > 0 {
		fmt.Fprintf(w, " and %g %% turnout", t.MinTurnout*100)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NO.\tCANDIDATE\tVOTES\tSUPPORT\tENDORSED")
	for _, c := range t.Candidates {
		endorsed := "no"
		if c.Endorsed {
			endorsed = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f %%\t%s\n", c.Number, c.Name, c.Votes, c.Support*100, endorsed)
	}
	return tw.Flush()
}

func cmdOutbox(ctx context.Context, e *env, args []string) error {
	fs := flags("outbox")
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("failures", 100, "failed rows to list")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := st.OutboxCounts(ctx)
	if err != nil {
		return err
	}
	fails, err := st.OutboxFailures(ctx, max(*limit, 0))
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, struct {
			Counts   []ballots.OutboxCount   `json:"counts"`
			Failures []ballots.OutboxFailure `json:"failures"`
		}{cs, fails})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSTATUS\tCOUNT")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", c.Kind, c.Status, c.Count)
	}
	if len(fails) > 0 {
		fmt.Fprintln(tw, "\nFAILED\tKIND\tCODE\tREPLY")
		for _, f := range fails {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", f.Recipient, f.Kind, f.Code, f.Reply)
		}
	}
	return tw.Flush()
}
