package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/internal/testenv"
)

// helpCommands is every command and subcommand, as an operator types it.
var helpCommands = [][]string{
	{"migrate"}, {"check"}, {"serve"}, {"dev"}, {"demo"}, {"import"}, {"wave"}, {"wave", "create"}, {"waves"},
	{"candidate"}, {"candidate", "add"}, {"candidates"}, {"vet"}, {"vet", "approve"}, {"races"}, {"race"},
	{"race", "open"}, {"race", "close"}, {"tally"}, {"ballots"}, {"results"}, {"results", "release"}, {"outbox"},
	{"status"}, {"send"}, {"digest"}, {"digest", "send"}, {"export"}, {"export", "endorsements"}, {"bench"},
	{"bench", "send"}, {"bench", "import"}, {"bench", "replies"}, {"bench", "lmtp"}, {"bench", "scale"}, {"quarantine"}, {"quarantine", "list"},
	{"quarantine", "replay"}, {"version"},
}

// runWith runs ballotd with exactly the settings in env.
func runWith(env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// tablesIn lists the tables of the database at url: what a command that
// must not act could have created.
func tablesIn(t *testing.T, url string) []string {
	t.Helper()
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	if err := db.SelectContext(context.Background(), &names, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	return names
}

// Every command's --help and -h prints that command's usage and flags to
// stdout and exits 0, with no settings at all and against an unmigrated
// database, and never acts: the database stays empty (migrate --help does
// not migrate).
func TestHelpOnEveryCommandNeverActs(t *testing.T) {
	t.Parallel()
	url := testenv.DatabaseURL(t)
	for _, settings := range []map[string]string{nil, {"DATABASE_URL": url, "BALLOTD_CONFIG": "/nonexistent/ballotd.env"}} {
		for _, cmd := range helpCommands {
			for _, h := range []string{"--help", "-h"} {
				args := append(append([]string{}, cmd...), h)
				code, out, errOut := runWith(settings, args...)
				if code != 0 || errOut != "" {
					t.Errorf("ballotd %s: exit %d, stderr %q; want 0 and nothing", strings.Join(args, " "), code, errOut)
				}
				if !strings.HasPrefix(out, "usage:\n  ballotd "+cmd[0]) {
					t.Errorf("ballotd %s: stdout does not start with the command's usage:\n%s", strings.Join(args, " "), out)
				}
			}
		}
	}
	// The flags are the command's own.
	for cmd, flag := range map[string]string{"import": "--rejects FILE", "migrate": "--status", "serve": "--migrate", "outbox": "--until-empty"} {
		if _, out, _ := runWith(nil, cmd, "--help"); !strings.Contains(out, flag) {
			t.Errorf("ballotd %s --help does not show %s:\n%s", cmd, flag, out)
		}
	}
	if _, out, _ := runWith(nil, "help", "tally"); !strings.Contains(out, "--recount") {
		t.Errorf("ballotd help tally does not show --recount:\n%s", out)
	}
	if tables := tablesIn(t, url); len(tables) != 0 {
		t.Errorf("after every --help the database has tables %v; want none", tables)
	}
}

// An unknown flag or a stray argument exits 2 naming it, before anything
// happens: send --dry-run does not send, migrate with a stray word does not
// migrate.
func TestUnknownFlagsAndArgumentsExit2(t *testing.T) {
	t.Parallel()
	url := testenv.DatabaseURL(t)
	env := map[string]string{"DATABASE_URL": url, "BALLOTD_DOMAIN": "example.org", "BALLOTD_SECRET": "a-long-enough-secret",
		"BALLOTD_IMAP_ADDR": "127.0.0.1:1", "BALLOTD_IMAP_USER": "u", "BALLOTD_SMTP_ADDR": "127.0.0.1:1"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"send", "--dry-run"}, "-dry-run"},
		{[]string{"migrate", "now"}, `"now"`},
		{[]string{"migrate", "--force"}, "-force"},
		{[]string{"serve", "--migrat"}, "-migrat"},
		{[]string{"check", "everything"}, `"everything"`},
		{[]string{"races", "MA-SEN"}, `"MA-SEN"`},
		{[]string{"race", "open", "MA-SEN", "MA-07"}, `"MA-07"`},
		{[]string{"race", "open"}, "race open CODE"},
		{[]string{"tally", "MA-SEN", "--jsn"}, "-jsn"},
		{[]string{"import", "members", "m.csv", "--sinc"}, "-sinc"},
		{[]string{"outbox", "--watch", "extra"}, `"extra"`},
		{[]string{"results", "release", "MA-SEN", "now"}, `"now"`},
		{[]string{"quarantine", "replay", "1", "2"}, `"2"`},
		{[]string{"digest", "send", "--all"}, "-all"},
		{[]string{"version", "--short"}, "-short"},
		{[]string{"frobnicate"}, `"frobnicate"`},
	}
	for _, c := range cases {
		code, out, errOut := runWith(env, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("ballotd %s: exit %d, stdout %q, stderr %q; want exit 2 naming %s", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
	if tables := tablesIn(t, url); len(tables) != 0 {
		t.Errorf("the refused commands left tables %v; want none", tables)
	}
}

// ballotd version and --version print the version from the build
// information, with the Go version, and need no settings.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errOut := runWith(nil, args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "ballotd ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("ballotd %s: exit %d, stdout %q, stderr %q", args[0], code, out, errOut)
		}
	}
}
