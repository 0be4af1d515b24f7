// Command ballotd runs endorsement votes by email: the daemon (serve) and
// the operator's CLI. main is wiring only: it parses the command line and
// the environment into a Config, builds the pieces, and runs them under one
// context cancelled on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/ballotd/ballotd/internal/progress"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command runs with: its streams and environment.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	// config is the settings file read, if any.
	config configSource
}

// usageError is a command line that is wrong: exit 2 with the usage.
type usageError struct{ msg string }

// Error implements error.
func (e usageError) Error() string { return e.msg }

const usage = `ballotd: endorsement votes by email

usage: ballotd [--config FILE] COMMAND ...

  ballotd migrate [--status]               apply database migrations (--status: list them, apply none)
  ballotd check [--timeout 15s] [--json]   check the configuration against PostgreSQL, IMAP and SMTP
                                           (login, mailbox, EHLO/STARTTLS/AUTH; no mail sent), and the
                                           OAuth2 token, DKIM key, templates and HTTP address when set;
                                           all at once
  ballotd serve [--migrate]                run the daemon: read the mailbox, send the outbox,
                                           serve one-click unsubscribe on BALLOTD_HTTP_ADDR
  ballotd dev                              serve with an embedded IMAP/SMTP mail hub on loopback
  ballotd demo [--keep]                    a self-driving run of a whole wave on the embedded hub
  ballotd import groups|members FILE.csv [--dry-run] [--sync [--max-remove 10%]] [--json]
                      [--encoding utf-8|latin1|windows-1252] [--rejects FILE]
                                           upsert groups (name,state,district,leader_email,leader_name)
                                           or members (email,name,district), streamed with COPY; every
                                           row is added, updated, unchanged, rejected or a duplicate
  ballotd wave create --name N --nominations-close T --voting-open T --voting-close T
                      [--threshold 0.6] [--min-turnout 0] [--hold-results]   (times in RFC 3339)
  ballotd waves [--json]
  ballotd candidate add --race CODE --name N [--bio TEXT] [--group NAME]... [--wave W] [--questionnaire]
  ballotd candidates [--json]               with questionnaire status and conflicts
  ballotd vet approve|reject ID [--reason TEXT]
  ballotd vet questionnaire ID received|passed|failed
  ballotd questionnaire show ID [--json]   a candidate's policy questionnaire and the campaign's answers
  ballotd races [--json]                   races with phase and next scheduled step
  ballotd race open|close CODE
  ballotd tally CODE [--json] [--recount]  (--recount: afresh from the votes, to check a frozen tally)
  ballotd ballots CODE [--json] [--status S]
                                           every eligible member's ballot: queued, sent, deferred,
                                           failed, bounced, unsubscribed or voted (when, never how)
  ballotd delivery [--wave W] [--json]     sent, deferred, bounced and complaints by recipient domain
                                           (gmail, microsoft, yahoo, icloud, other), top reasons
  ballotd results release CODE             announce a held wave's frozen results
  ballotd outbox [--json] [--failures 100] outbox rows by kind and status, and the failures
                                           (recipient, kind, SMTP code, reply)
  ballotd outbox --watch [--interval 2s] [--until-empty]
                                           the outbox by status, sent/deferred/failed a second and the
                                           ETA of what is queued, every interval (until empty, or Ctrl-C)
  ballotd status [--json]                  one screen: the current races' turnout, the outbox, the
                                           quarantine, and a running serve's /healthz (BALLOTD_ADMIN_ADDR)
  ballotd send                             send what the outbox holds now, then exit (exit 3 if
                                           rows were due and none could be sent)
  ballotd digest send                      send the staff digest now (if anything is new)
  ballotd export endorsements --format json|csv|html [--wave W]
                                           endorsed candidates and per-race receipt hashes
  ballotd bench send [--members 100000] [--conns 16] [--runs 1] [--batch N] [--cpuprofile FILE]
                                           time the outbox against a raw SMTP client on a loopback
                                           sink, in a scratch database (dropped after)
  ballotd bench quota [--members 100000] [--per-minute 20000] [--conns 16] [--batch N]
                                           a wave through a loopback relay that says 452 4.5.3 after
                                           N a minute and 550 5.1.1 to 1 %: verified, timed
  ballotd bench import [--rows 1000000]    time an import against psql \copy, in one run
  ballotd bench replies [--replies 5000]   time the mailbox reader handling replies against a raw
                                           reader that only fetches and stores them, in one run
  ballotd bench lmtp [--replies 5000] [--conns 4]
                                           time the LMTP door handling replies against a raw LMTP
                                           server that only stores them, in one run
  ballotd bench scale [--members 1000000] [--votes N] [--runs 3]
                                           time tally, status, ballots, the digest and /metrics on
                                           a race of a million ballots against bare counts, in one run
  ballotd quarantine list [--json]         messages kept for staff: unreadable, unmatched, unhandled
  ballotd quarantine replay ID             handle a stored message again (after a fix, or once its race opened)
  ballotd prune [--dry-run] [--json]       apply retention (BALLOTD_RETAIN) now: the raw mail of waves
                                           closed longer ago loses its bytes; votes and tallies stay
  ballotd version                          the version, VCS revision and Go version of this binary
                                           (also ballotd --version)
  ballotd help COMMAND                     the usage and flags of one command (also ballotd COMMAND --help)

configuration is by environment, over the settings in --config FILE or
BALLOTD_CONFIG (KEY=value lines, as contrib/ballotd.env.example): see README.md.
`

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	path, args, err := configFile(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "ballotd: %v\n", redact(err.Error()))
		return 2
	}
	// Help and version need no settings: they come before any is read.
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, usage)
		return 2
	case args[0] == "help" && len(args) > 1 && slices.Contains(commandNames, args[1]):
		args = []string{args[1], "--help"}
	case args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case args[0] == "--version" || args[0] == "-version":
		args = append([]string{"version"}, args[1:]...)
	}
	if !slices.Contains(commandNames, args[0]) {
		fmt.Fprintf(stderr, "ballotd: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if wantsHelp(args[1:]) {
		quiet := &env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		return runHelp(func(args []string) error { return dispatch(ctx, quiet, args) }, args, stdout, stderr)
	}
	var src configSource
	if path != "" {
		getenv, src, err = withConfigFile(path, getenv)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ballotd: %v\n", redact(err.Error()))
		return 2
	}
	stderr = redactingWriter{stderr}
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr, config: src}
	var lerr error
	if e.log, lerr = newLogger(getenv("BALLOTD_LOG_FORMAT"), getenv("BALLOTD_LOG_LEVEL"), stderr); lerr != nil {
		fmt.Fprintf(stderr, "ballotd: %v\n", lerr)
		return 2
	}
	return exitCode(dispatch(ctx, e, args), args[0], stderr)
}

// exitCode reports err, what command name returned, on stderr and returns
// the exit status: 0 for none, 2 for a setting or a command line that is
// wrong, an exitError's own, else 1.
func exitCode(err error, name string, stderr io.Writer) int {
	var ce configError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "ballotd: %s\n", redact(ce.msg))
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ballotd: %s\n\nusage:\n%s(ballotd %s --help shows its flags)\n", redact(ue.msg), commandUsage(name), name)
		return 2
	default:
		fmt.Fprintf(stderr, "ballotd: %v\n", redact(err.Error()))
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
}

// exitError is a failure with its own exit status (send: 3 when it could
// send nothing of what was due).
type exitError struct {
	err  error
	code int
}

// Error implements error.
func (e exitError) Error() string { return e.err.Error() }

// Unwrap returns the failure.
func (e exitError) Unwrap() error { return e.err }

// groupDefault is the subcommand a command group's help shows when asked
// without one (wave --help is wave create --help); groups of several
// subcommands show their usage lines.
var groupDefault = map[string]string{"wave": "create", "candidate": "add", "export": "endorsements", "results": "release", "digest": "send"}

// commands are the commands that take the rest of the command line as
// it is; dispatch handles the groups with a subcommand and version.
var commands = map[string]func(context.Context, *env, []string) error{
	"migrate": cmdMigrate, "check": cmdCheck, "serve": cmdServe, "dev": cmdDev, "demo": cmdDemo, "send": cmdSend,
	"import": cmdImport, "waves": cmdWaves, "candidates": cmdCandidates, "vet": cmdVet, "races": cmdRaces,
	"tally": cmdTally, "outbox": cmdOutbox, "status": cmdStatus, "digest": cmdDigest, "ballots": cmdBallots,
	"delivery": cmdDelivery, "export": cmdExport, "quarantine": cmdQuarantine, "prune": cmdPrune, "questionnaire": cmdQuestionnaire,
}

// dispatch runs the command args name.
func dispatch(ctx context.Context, e *env, args []string) error {
	sub := ""
	if len(args) > 1 {
		sub = args[1]
	}
	if d, ok := groupDefault[args[0]]; ok && wantsHelp(args[1:2]) {
		args = append([]string{args[0], d}, args[1:]...)
		sub = d
	}
	if cmd, ok := commands[args[0]]; ok {
		return cmd(ctx, e, args[1:])
	}
	switch args[0] {
	case "version":
		if err := noArgs(flags("version"), args[1:]); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, versionLine())
		return nil
	case "wave":
		if sub != "create" {
			return usageError{"wave: want wave create"}
		}
		return cmdWaveCreate(ctx, e, args[2:])
	case "candidate":
		if sub != "add" {
			return usageError{"candidate: want candidate add"}
		}
		return cmdCandidateAdd(ctx, e, args[2:])
	case "race":
		if sub != "open" && sub != "close" {
			return usageError{"race: want race open CODE or race close CODE"}
		}
		return cmdRace(ctx, e, sub, args[2:])
	case "bench":
		return cmdBench(ctx, e, sub, args[min(2, len(args)):])
	case "results":
		if sub != "release" {
			return usageError{"results: want results release CODE"}
		}
		return cmdResultsRelease(ctx, e, args[2:])
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// newLogger logs in BALLOTD_LOG_FORMAT: text or json; unset, text on a
// terminal (a person reads it) and JSON otherwise (journald, a collector).
// BALLOTD_LOG_LEVEL is debug, info (the default), warn or error. Durations
// are human (1.5s) in text and seconds (1.5) in JSON; a secret in a value
// (a URL's password, password=…) is redacted in both.
func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if level = strings.TrimSpace(level); level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return slog.New(slog.NewTextHandler(w, nil)), bad("BALLOTD_LOG_LEVEL", level, "debug, info, warn or error")
		}
	}
	opts := func(json bool) *slog.HandlerOptions {
		return &slog.HandlerOptions{Level: lv, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Value.Kind() {
			case slog.KindDuration:
				if json {
					a.Value = slog.Float64Value(a.Value.Duration().Seconds())
				}
			case slog.KindString:
				if v := a.Value.String(); v != redact(v) {
					a.Value = slog.StringValue(redact(v))
				}
			case slog.KindAny:
				if err, ok := a.Value.Any().(error); ok {
					a.Value = slog.StringValue(redact(err.Error()))
				}
			}
			return a
		}}
	}
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts(true))), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts(false))), nil
	case "":
		if progress.IsTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts(false))), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts(true))), nil
	}
	return slog.New(slog.NewTextHandler(w, opts(false))), bad("BALLOTD_LOG_FORMAT", format, "text or json (unset: text on a terminal, JSON otherwise)")
}
