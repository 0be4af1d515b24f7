package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/internal/testenv"
)

// TestSettingsList: the list a settings file is checked against is exactly
// what the code reads, and contrib/ballotd.env.example documents every
// setting and is itself a configuration serve accepts.
func TestSettingsList(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "configfile.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(BALLOTD_[A-Z_]+|DATABASE_URL)"`).FindAllSubmatch(b, -1) {
			read[string(m[1])] = true
		}
	}
	delete(read, "BALLOTD_CONFIG") // names the file; not a setting in it
	if len(read) < 20 {
		t.Fatalf("found only %d settings in the source", len(read))
	}
	for k := range read {
		if !slices.Contains(settings, k) {
			t.Errorf("the code reads %s but settings does not list it: a config file naming it would be refused", k)
		}
	}
	// The further relays' settings are made for each relay number.
	relayN := regexp.MustCompile(`^BALLOTD_SMTP_[2-9]_`)
	relays, err := os.ReadFile("relays.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range settings {
		if relayN.MatchString(k) && strings.Contains(string(relays), `"BALLOTD_SMTP_%d_"`) {
			continue
		}
		if !read[k] {
			t.Errorf("settings lists %s but the code never reads it", k)
		}
	}

	example, err := os.ReadFile("../../contrib/ballotd.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range settings {
		if !regexp.MustCompile(`(?m)^#?` + k + `=`).Match(example) {
			t.Errorf("contrib/ballotd.env.example does not document %s", k)
		}
	}
	env, err := parseSettings(bytes.NewReader(example))
	if err != nil {
		t.Fatalf("the example is not a settings file: %v", err)
	}
	if _, err := loadConfig(func(k string) string { return env[k] }, need{mail: true}); err != nil {
		t.Errorf("the example does not load: %v", err)
	}
}

// TestParseSettings: the file format (systemd's EnvironmentFile) and the
// exact line each mistake in it gets.
func TestParseSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, file string
		want       map[string]string
		err        string
	}{
		{"plain", "# comment\n\nBALLOTD_DOMAIN=example.org\r\nBALLOTD_FROM=Endorsement ballots\n",
			map[string]string{"BALLOTD_DOMAIN": "example.org", "BALLOTD_FROM": "Endorsement ballots"}, ""},
		{"quotes, export, BOM, spaces", "\ufeffexport BALLOTD_FROM=\"Ballots \\\"2026\\\"\"\n  BALLOTD_SECRET = 'a=b#c'  \n; old style comment\n",
			map[string]string{"BALLOTD_FROM": `Ballots "2026"`, "BALLOTD_SECRET": "a=b#c"}, ""},
		{"empty value", "BALLOTD_STAFF=\n", map[string]string{"BALLOTD_STAFF": ""}, ""},
		{"typo", "BALLOTD_DOMAIN=example.org\nBALLOTD_IMAP_PASWORD=secret\n", nil,
			"line 2: BALLOTD_IMAP_PASWORD is not a ballotd setting (did you mean BALLOTD_IMAP_PASSWORD?)"},
		{"lower case", "ballotd_domain=example.org\n", nil,
			"line 1: ballotd_domain is not a ballotd setting (did you mean BALLOTD_DOMAIN?)"},
		{"stranger", "PATH=/usr/bin\n", nil, "line 1: PATH is not a ballotd setting (see contrib/ballotd.env.example)"},
		{"no equals", "BALLOTD_DOMAIN example.org\n", nil, `line 1: want NAME=value, got "BALLOTD_DOMAIN example.org"`},
		{"twice", "BALLOTD_DOMAIN=a.org\nBALLOTD_DOMAIN=b.org\n", nil, "line 2: BALLOTD_DOMAIN is set twice"},
		{"bad quotes", `BALLOTD_FROM="a\q"` + "\n", nil, "line 1: BALLOTD_FROM: malformed double-quoted value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseSettings(strings.NewReader(c.file))
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestConfigFile: a command runs from the settings in --config FILE or
// BALLOTD_CONFIG, the environment wins over the file, and a bad file stops
// every command with one line naming the file and the line (exit 2).
func TestConfigFile(t *testing.T) {
	t.Parallel()
	dbURL := testenv.DatabaseURL(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.env", "DATABASE_URL="+dbURL+"\n")
	wrongDB := write("wrongdb.env", "DATABASE_URL=postgres://127.0.0.1:1/none?sslmode=disable\n")
	typo := write("typo.env", "DATABASE_URL="+dbURL+"\nBALLOTD_DOMIAN=example.org\n")

	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		stderr  string // a prefix of stderr
		stdoutS string // a substring of stdout
	}{
		{"flag", []string{"--config", good, "migrate"}, nil, 0, "", ""},
		{"flag=", []string{"--config=" + good, "races"}, nil, 0, "", ""},
		{"environment variable", []string{"races"}, map[string]string{"BALLOTD_CONFIG": good}, 0, "", ""},
		{"environment wins", []string{"--config", wrongDB, "races"}, map[string]string{"DATABASE_URL": dbURL}, 0, "", ""},
		{"file used", []string{"--config", wrongDB, "races"}, nil, 1, "ballotd: ", ""},
		{"typo", []string{"--config", typo, "races"}, nil, 2,
			"ballotd: config file " + typo + ": line 2: BALLOTD_DOMIAN is not a ballotd setting (did you mean BALLOTD_DOMAIN?)\n", ""},
		{"missing file", []string{"--config", filepath.Join(dir, "none.env"), "races"}, nil, 2,
			"ballotd: config file: open " + filepath.Join(dir, "none.env") + ": no such file or directory\n", ""},
		{"flag without path", []string{"--config"}, nil, 2, "ballotd: --config: want the path of a settings file", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(t.Context(), c.args, func(k string) string { return c.env[k] }, &out, &errOut)
			if code != c.code || !strings.HasPrefix(errOut.String(), c.stderr) || (c.stderr != "" && c.code == 2 && strings.HasSuffix(c.stderr, "\n") && errOut.String() != c.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr %q", code, errOut.String(), c.code, c.stderr)
			}
		})
	}
}
