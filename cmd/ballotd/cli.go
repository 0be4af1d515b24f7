package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// The command line is the stdlib flag package, one FlagSet per command:
// the commands are few, their flags plain, and flag's behaviour (-x and
// --x alike, -h and --help as ErrHelp) is what an operator expects. What it
// lacks, per-command help that never acts and flags after the positional
// arguments, is the little code below and in parseFlags.

// helpError is `CMD --help`: the command stopped at its flags and asks for
// its usage to be printed (stdout, exit 0).
type helpError struct{ fs *flag.FlagSet }

// Error implements error.
func (helpError) Error() string { return "help requested" }

// wantsHelp reports whether the arguments of a command ask for help: -h,
// -help or --help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// commandNames are the top-level commands, in the order of usage.
var commandNames = []string{"migrate", "check", "serve", "dev", "demo", "import", "wave", "waves", "candidate",
	"candidates", "vet", "questionnaire", "races", "race", "tally", "ballots", "delivery", "results", "outbox", "status", "send", "digest",
	"export", "bench", "quarantine", "prune", "version"}

// commandUsage is the part of usage about the top-level command name: its
// lines, with their continuation lines.
func commandUsage(name string) string {
	var b strings.Builder
	in := false
	sc := bufio.NewScanner(strings.NewReader(usage))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "  ballotd "+name+" ") || line == "  ballotd "+name:
			in = true
		case in && strings.HasPrefix(line, "       ") && strings.TrimSpace(line) != "":
		default:
			in = false
		}
		if in {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// printHelp writes name's usage and fs's flags; a nil fs is a command
// group asked for help without its subcommand.
func printHelp(w io.Writer, name string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage:\n%s", commandUsage(name))
	n := 0
	if fs != nil {
		fs.VisitAll(func(*flag.Flag) { n++ })
	}
	switch {
	case fs == nil:
		fmt.Fprintf(w, "\nballotd %s SUBCOMMAND --help shows a subcommand's flags.\n", name)
	case n == 0:
		fmt.Fprintf(w, "\n%s takes no flags.\n", fs.Name())
	default:
		fmt.Fprintf(w, "\nflags of %s:\n", fs.Name())
		fs.VisitAll(func(f *flag.Flag) {
			arg, help := flag.UnquoteUsage(f)
			line := "  --" + f.Name
			if arg != "" {
				line += " " + arg
			}
			if d := f.DefValue; d != "" && d != "false" && d != "0" {
				help += " (default " + d + ")"
			}
			fmt.Fprintf(w, "%-28s %s\n", line, help)
		})
	}
	fmt.Fprintln(w, "\nsettings come from the environment or --config FILE (see README.md); help needs none.")
}

// runHelp prints the help of the command args name, without running it:
// the command is called with getenv returning nothing, and every command
// parses its flags before it reads a setting or touches anything, so it
// stops there with a helpError (or, for a command group asked without its
// subcommand, a usageError). Anything else is a command that went past its
// flags: a bug, reported as such.
func runHelp(dispatchHelp func([]string) error, args []string, stdout, stderr io.Writer) int {
	err := dispatchHelp(args)
	var he helpError
	var ue usageError
	switch {
	case errors.As(err, &he):
		printHelp(stdout, args[0], he.fs)
		return 0
	case errors.As(err, &ue):
		printHelp(stdout, args[0], nil)
		return 0
	}
	fmt.Fprintf(stderr, "ballotd: internal error: %s --help did not stop at its flags (%v)\n", args[0], err)
	return 70
}

// noArgs parses the flags of a command that takes no positional
// arguments, refusing any.
func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), pos[0])}
	}
	return nil
}

// exactArgs parses the flags of a command and returns its n positional
// arguments, refusing more or fewer; want describes them.
func exactArgs(fs *flag.FlagSet, args []string, n int, want string) ([]string, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) > n:
		return nil, usageError{fmt.Sprintf("%s: unexpected argument %q (want %s)", fs.Name(), pos[n], want)}
	case len(pos) < n:
		return nil, usageError{fmt.Sprintf("%s: want %s", fs.Name(), want)}
	}
	return pos, nil
}

// buildVersion describes this binary from its build information: the
// module version (a tag, or a pseudo-version), the VCS revision and time
// when built from a checkout, and the Go version.
func buildVersion() (version, revision, goVersion string) {
	version, revision, goVersion = "(devel)", "", runtime.Version()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	goVersion = bi.GoVersion
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && revision != "" {
		revision += "+modified"
	}
	return
}

// versionLine is what `ballotd version` prints.
func versionLine() string {
	v, rev, gov := buildVersion()
	line := "ballotd " + v
	if rev != "" {
		line += " (" + rev + ")"
	}
	return line + " " + gov + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// buildInfo is the ballotd_build_info gauge: 1, labelled with this
// binary's version, VCS revision and Go version.
func buildInfo() prometheus.Collector {
	v, rev, gov := buildVersion()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ballotd_build_info",
		Help: "Always 1; the labels say which ballotd this is."}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(v, rev, gov).Set(1)
	return g
}
