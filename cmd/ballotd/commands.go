package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/progress"
	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/internal/report"
)

// openStore opens the database of DATABASE_URL for a command, refusing
// one this binary must not use (see usableSchema).
func openStore(ctx context.Context, e *env) (*ballots.Store, Config, error) {
	st, cfg, err := openDatabase(ctx, e)
	if err != nil {
		return nil, cfg, err
	}
	if err := usableSchema(ctx, st); err != nil {
		st.Close()
		return nil, cfg, err
	}
	return st, cfg, nil
}

// openDatabase opens the database of DATABASE_URL, whatever its schema.
func openDatabase(ctx context.Context, e *env) (*ballots.Store, Config, error) {
	cfg, err := loadConfig(e.getenv, need{})
	if err != nil {
		return nil, cfg, err
	}
	st, err := ballots.Open(ctx, cfg.DatabaseURL)
	return st, cfg, err
}

// usableSchema refuses a database with a migration this binary does not
// know, one changed since it was applied, one out of order, or one with
// migrations still to apply.
func usableSchema(ctx context.Context, st *ballots.Store) error {
	pending, err := st.CheckSchema(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("the database has %d migrations not applied (%s) — run ballotd migrate first", len(pending), strings.Join(pending, ", "))
	}
	return nil
}

// migrateStatus prints each migration and its state, and fails if the
// database is one this binary must not use.
func migrateStatus(ctx context.Context, e *env, st *ballots.Store) error {
	states, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MIGRATION\tSTATE\tAPPLIED\tCHECKSUM")
	for _, s := range states {
		at, sum := "-", "-"
		if s.AppliedAt != nil {
			at = s.AppliedAt.UTC().Format(time.RFC3339)
		}
		if s.Checksum != "" {
			sum = s.Checksum[:min(12, len(s.Checksum))]
		} else if s.AppliedAt != nil {
			sum = "(not recorded yet: ballotd migrate records it)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.State, at, sum)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = st.CheckSchema(ctx)
	return err
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
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpError{fs}
			}
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

// listing runs a listing command: --json prints what fetch loads (shaped
// by asJSON when set), else table writes it as aligned columns.
func listing[T any](ctx context.Context, e *env, name string, args []string,
	fetch func(context.Context, *ballots.Store, Config) (T, error), table func(*tabwriter.Writer, T), asJSON func(T) any) error {
	wantJSON, pos, err := jsonFlag(name, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", name, pos[0])}
	}
	st, cfg, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := fetch(ctx, st, cfg)
	if err != nil {
		return err
	}
	if wantJSON {
		if asJSON != nil {
			return printJSON(e.stdout, asJSON(v))
		}
		return printJSON(e.stdout, v)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	table(tw, v)
	return tw.Flush()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdMigrate(ctx context.Context, e *env, args []string) error {
	fs := flags("migrate")
	status := fs.Bool("status", false, "list each migration, applied (when) or pending, and apply none")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	st, _, err := openDatabase(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	if *status {
		return migrateStatus(ctx, e, st)
	}
	applied, err := st.Migrate(ctx)
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
	fs := flags("import")
	dryRun := fs.Bool("dry-run", false, "members: report what would change (with --sync, who would be removed), change nothing")
	sync := fs.Bool("sync", false, "members: mark members missing from the file as removed")
	maxRemove := fs.String("max-remove", "10%", "with --sync: the largest share of a state's members it may remove")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	encoding := fs.String("encoding", "utf-8", "the file's encoding: utf-8, latin1 or windows-1252")
	rejects := fs.String("rejects", "", "write the rejected rows, with their line and problem, to this CSV `FILE`")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[0] != "groups" && pos[0] != "members") {
		return usageError{"import: want import groups FILE.csv or import members FILE.csv [--dry-run] [--sync] [--json]"}
	}
	share, err := parseShare(*maxRemove)
	if err != nil {
		return usageError{"import: --max-remove: " + err.Error()}
	}
	decode, err := decoder(*encoding)
	if err != nil {
		return usageError{"import: --encoding: " + err.Error()}
	}
	if pos[0] == "groups" && (*dryRun || *sync) {
		return usageError{"import groups: --dry-run and --sync are for members"}
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	f, err := os.Open(pos[1])
	if err != nil {
		return fmt.Errorf("import %s: %w", pos[0], err)
	}
	defer f.Close()
	in := decode(f)
	var full ballots.MemberReport
	if pos[0] == "groups" {
		full.ImportReport, err = st.ImportGroups(ctx, in)
	} else {
		var size int64
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		p := progress.New(e.stderr, "import members")
		full, err = st.ImportMemberList(ctx, in, ballots.MemberImport{DryRun: *dryRun, Sync: *sync, MaxRemove: share, Progress: p.ImportRows(size)})
		p.Done()
	}
	if err != nil {
		return err
	}
	if *rejects != "" {
		if err := writeRejects(*rejects, full.ImportReport); err != nil {
			return fmt.Errorf("import %s: --rejects: %w", pos[0], err)
		}
	}
	return printImport(e, pos, full, *asJSON)
}

// printImport prints what an import did: each rejected row and each
// duplicate by line (stderr), and one line accounting for every row.
func printImport(e *env, pos []string, rep ballots.MemberReport, asJSON bool) error {
	for _, r := range rep.Rejected {
		fmt.Fprintf(e.stderr, "%s:%d: %s (row skipped)\n", pos[1], r.Line, r.Problem)
	}
	for _, d := range rep.DuplicateRows {
		fmt.Fprintf(e.stderr, "%s:%s: %s on %d rows; line %d counts\n", pos[1], joinInts(d.Lines), d.Email, len(d.Lines), d.Lines[len(d.Lines)-1])
	}
	if rep.SyncRefused != "" {
		fmt.Fprintf(e.stderr, "%s: a real run would refuse the sync: %s\n", pos[1], rep.SyncRefused)
	}
	if asJSON {
		out := struct {
			ballots.MemberReport
			RejectedCount int `json:"rejected_count"`
		}{rep, len(rep.Rejected)}
		if out.DuplicateRows == nil {
			out.DuplicateRows = []ballots.Duplicate{}
		}
		if out.Rejected == nil {
			out.Rejected = []ballots.RowError{}
		}
		return printJSON(e.stdout, out)
	}
	prefix := pos[0]
	if rep.DryRun {
		prefix += " (dry run, nothing changed)"
	}
	fmt.Fprintf(e.stdout, "%s: %d rows = %d added + %d updated + %d unchanged + %d rejected", prefix, rep.Rows, rep.Added, rep.Updated, rep.Unchanged, len(rep.Rejected))
	if pos[0] == "members" {
		fmt.Fprintf(e.stdout, " + %d duplicates (the last row of each email counts)", rep.Duplicates)
	}
	if rep.Separator != "" && rep.Separator != "," {
		fmt.Fprintf(e.stdout, "; separated by %s", rep.Separator)
	}
	fmt.Fprintln(e.stdout)
	switch {
	case rep.Removed > 0 && rep.DryRun:
		fmt.Fprintf(e.stdout, "%d members would be removed (not in the file):\n", rep.Removed)
		for _, m := range rep.Sample {
			fmt.Fprintf(e.stdout, "  %s\n", m)
		}
	case rep.Removed > 0:
		fmt.Fprintf(e.stdout, "%d members removed (not in the file), e.g. %s\n", rep.Removed, strings.Join(rep.Sample, ", "))
	}
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
	hold := fs.Bool("hold-results", false, "hold results for staff release before announcing")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	w := ballots.Wave{Name: strings.TrimSpace(*name), Threshold: *threshold, MinTurnout: *minTurnout, HoldResults: *hold}
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
	return listing(ctx, e, "waves", args, func(ctx context.Context, st *ballots.Store, _ Config) ([]ballots.Wave, error) {
		return st.Waves(ctx)
	}, func(tw *tabwriter.Writer, ws []ballots.Wave) {
		fmt.Fprintln(tw, "WAVE\tNOMINATIONS CLOSE\tVOTING OPENS\tVOTING CLOSES\tTHRESHOLD\tMIN TURNOUT")
		for _, w := range ws {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g\t%g\n", w.Name, w.NominationsClose.Format(time.RFC3339),
				w.VotingOpen.Format(time.RFC3339), w.VotingClose.Format(time.RFC3339), w.Threshold, w.MinTurnout)
		}
	}, nil)
}

// multi is a repeatable string flag.
type multi []string

// String implements flag.Value.
func (m *multi) String() string { return strings.Join(*m, ",") }

// Set implements flag.Value: each use of the flag adds one value.
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func cmdCandidateAdd(ctx context.Context, e *env, args []string) error {
	fs := flags("candidate add")
	race := fs.String("race", "", "race code")
	name := fs.String("name", "", "candidate name")
	bio := fs.String("bio", "", "bio shown on the ballot")
	wave := fs.String("wave", "", "wave name (default: the current wave)")
	var groups multi
	fs.Var(&groups, "group", "nominating group (repeatable)")
	needsQ := fs.Bool("questionnaire", false, "the candidate still has to pass the policy questionnaire (default: counted as passed)")
	if err := noArgs(fs, args); err != nil {
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
	q := "questionnaire passed"
	if *needsQ {
		if err := st.RequireQuestionnaire(ctx, c.ID); err != nil {
			return err
		}
		q = "on the ballot once the questionnaire passes (vet questionnaire " + fmt.Sprint(c.ID) + " passed)"
	}
	fmt.Fprintf(e.stdout, "candidate %d: %s in %s, approved, %s, nominated by %s\n", c.ID, c.Name, c.Race, q, orNone(c.Groups))
	return nil
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "(no group)"
	}
	return strings.Join(ss, ", ")
}

func cmdCandidates(ctx context.Context, e *env, args []string) error {
	return listing(ctx, e, "candidates", args, func(ctx context.Context, st *ballots.Store, _ Config) ([]ballots.Vetting, error) {
		return st.VettingList(ctx)
	}, func(tw *tabwriter.Writer, cs []ballots.Vetting) {
		fmt.Fprintln(tw, "ID\tRACE\tNO.\tNAME\tSTATUS\tQUESTIONNAIRE\tNOMINATED BY\tCONFLICTS")
		for _, c := range cs {
			num := "-"
			if c.Number.Valid {
				num = fmt.Sprint(c.Number.Int64)
			}
			conflicts := "-"
			if len(c.Conflicts) > 0 {
				conflicts = strings.Join(c.Conflicts, "; ")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Race, num, c.Name, c.Status, c.Questionnaire, orNone(c.Groups), conflicts)
		}
	}, func(cs []ballots.Vetting) any {
		type row struct {
			ballots.Vetting
			Number *int64 `json:"number"`
		}
		out := make([]row, len(cs))
		for i, c := range cs {
			out[i].Vetting = c
			if c.Number.Valid {
				n := c.Number.Int64
				out[i].Number = &n
			}
		}
		return out
	})
}

func cmdRaces(ctx context.Context, e *env, args []string) error {
	return listing(ctx, e, "races", args, func(ctx context.Context, st *ballots.Store, cfg Config) ([]ballots.RacePhase, error) {
		return st.RacePhases(ctx, cfg.RemindBefore)
	}, func(tw *tabwriter.Writer, rs []ballots.RacePhase) {
		fmt.Fprintln(tw, "RACE\tOFFICE\tWAVE\tSTATUS\tCANDIDATES\tBALLOTS\tVOTED\tCLOSES\tNEXT")
		for _, r := range rs {
			next := "-"
			if r.NextAt != nil {
				next = r.NextStep + " at " + r.NextAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.Code, r.Office.Title(), r.Wave, r.Phase,
				r.Candidates, r.Ballots, r.Voted, r.VotingClose.Format(time.RFC3339), next)
		}
	}, nil)
}

func cmdRace(ctx context.Context, e *env, verb string, args []string) error {
	pos, err := exactArgs(flags("race "+verb), args, 1, "race "+verb+" CODE")
	if err != nil {
		return err
	}
	code := pos[0]
	st, cfg, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	if verb == "open" {
		if rc, err := race.Parse(code); err == nil {
			code = rc.Code
		}
		p := progress.New(e.stderr, "race open "+code)
		n, err := st.OpenRaceProgress(ctx, code, p.OpenRace)
		p.Done()
		if errors.Is(err, ballots.ErrRaceState) {
			// Opening an open race is what the operator wanted: say so.
			if r, rerr := st.Race(ctx, code); rerr == nil && r.Status == ballots.RaceOpen {
				fmt.Fprintf(e.stdout, "race %s is already open (%d ballots)\n", code, r.Ballots)
				return nil
			}
		}
		if err != nil {
			return err
		}
		took := p.Elapsed()
		fmt.Fprintf(e.stdout, "race %s open: %s ballots queued in %s (%s ballots/s)\n",
			code, progress.Grouped(n), took.Round(time.Millisecond), progress.Grouped(int(float64(n)/took.Seconds())))
		return nil
	}
	t, err := st.CloseRace(ctx, code, cfg.Staff...)
	if err != nil {
		return err
	}
	if r, err := st.Race(ctx, code); err == nil && r.HoldResults {
		fmt.Fprintf(e.stdout, "race %s closed: %d of %d voted; results held: staff (%d) notified; send them with ballotd results release %s\n",
			t.Race, t.Voted, t.Eligible, len(cfg.Staff), t.Race)
		return report.Tally(e.stdout, t)
	}
	fmt.Fprintf(e.stdout, "race %s closed: %d of %d voted; %d announcements queued\n", t.Race, t.Voted, t.Eligible, t.Eligible)
	return report.Tally(e.stdout, t)
}

func cmdTally(ctx context.Context, e *env, args []string) error {
	fs := flags("tally")
	asJSONFlag := fs.Bool("json", false, "print JSON")
	recount := fs.Bool("recount", false, "count afresh from the votes, ignoring the frozen tally")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	asJSON := *asJSONFlag
	if len(rest) != 1 {
		return usageError{"tally: want tally CODE [--json] [--recount]"}
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := st.TallyRace(ctx, rest[0])
	if *recount {
		t, err = st.Recount(ctx, rest[0])
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, t)
	}
	return report.Tally(e.stdout, t)
}

func cmdOutbox(ctx context.Context, e *env, args []string) error {
	fs := flags("outbox")
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("failures", 100, "failed rows to list")
	watch := fs.Bool("watch", false, "show the outbox by status, its pace and ETA every --interval")
	interval := fs.Duration("interval", 2*time.Second, "with --watch: how often to look")
	untilEmpty := fs.Bool("until-empty", false, "with --watch: stop once nothing is queued, being sent or deferred")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *watch && (*asJSON || *interval <= 0) || !*watch && *untilEmpty {
		return usageError{"outbox: --watch takes --interval (above 0) and --until-empty, not --json"}
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	if *watch {
		return watchOutbox(ctx, st, e.stdout, *interval, *untilEmpty)
	}
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
