package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// secretWord is the password every case below carries; it must appear in
// no output.
const secretWord = "Hunter2Secret"

// No failing command prints a password or token: not a malformed
// DATABASE_URL (which names the setting, exit 2), not a key=value
// connection string, not a URL whose server does not answer, not the mail
// passwords or the OAuth2 secrets.
func TestNoSecretInAnyOutput(t *testing.T) {
	t.Parallel()
	mail := map[string]string{"BALLOTD_DOMAIN": "example.org", "BALLOTD_SECRET": "a-long-enough-" + secretWord,
		"BALLOTD_IMAP_ADDR": "127.0.0.1:1", "BALLOTD_IMAP_USER": "ballots@example.org", "BALLOTD_IMAP_PASSWORD": secretWord,
		"BALLOTD_SMTP_ADDR": "127.0.0.1:1", "BALLOTD_SMTP_USER": "ballots@example.org", "BALLOTD_SMTP_PASSWORD": secretWord}
	cases := []struct {
		name     string
		dbURL    string
		extra    map[string]string
		commands [][]string
		code     int
		oneLine  string // when set: stderr is this one line's start
	}{
		{"misspelt scheme", "postgress://ballotd:" + secretWord + "@db.example.org/ballotd", nil,
			[][]string{{"races"}, {"migrate"}, {"check"}, {"import", "members", "x.csv"}}, 2, "ballotd: DATABASE_URL is malformed"},
		{"key=value, word without =", "host=127.0.0.1 password " + secretWord, nil, [][]string{{"races"}, {"check"}}, 2, "ballotd: DATABASE_URL is malformed"},
		{"key=value, refused", "host=127.0.0.1 port=1 user=ballotd password=" + secretWord + " dbname=x sslmode=disable", nil,
			[][]string{{"races"}, {"migrate"}, {"check"}, {"status"}, {"send"}}, 1, ""},
		{"key=value, quoted", "host=127.0.0.1 port=1 password='" + secretWord + " x' dbname=x sslmode=disable", nil,
			[][]string{{"races"}, {"check"}}, 1, ""},
		{"URL, refused", "postgres://ballotd:" + secretWord + "@127.0.0.1:1/ballotd?sslmode=disable", nil,
			[][]string{{"races"}, {"migrate", "--status"}, {"check"}, {"status", "--json"}, {"tally", "MA-SEN"}}, 1, ""},
		{"URL, bad port", "postgres://ballotd:" + secretWord + "@127.0.0.1:99999999/ballotd", nil, [][]string{{"races"}, {"check"}}, 1, ""},
		{"oauth unused", "postgres://127.0.0.1:1/x", map[string]string{"BALLOTD_OAUTH_CLIENT_SECRET": secretWord}, [][]string{{"check"}}, 2, ""},
		{"bad short secret", "postgres://127.0.0.1:1/x", map[string]string{"BALLOTD_SECRET": secretWord[:6]}, [][]string{{"check"}}, 2, ""},
	}
	for _, c := range cases {
		for _, args := range c.commands {
			env := map[string]string{"DATABASE_URL": c.dbURL, "BALLOTD_LOG_FORMAT": "json"}
			for k, v := range mail {
				env[k] = v
			}
			for k, v := range c.extra {
				env[k] = v
			}
			code, out, errOut := runWith(env, args...)
			if code != c.code {
				t.Errorf("%s: ballotd %s: exit %d, want %d\nstdout: %s\nstderr: %s", c.name, strings.Join(args, " "), code, c.code, out, errOut)
			}
			if strings.Contains(out+errOut, secretWord) || strings.Contains(out+errOut, secretWord[:6]) {
				t.Errorf("%s: ballotd %s printed the secret:\nstdout: %s\nstderr: %s", c.name, strings.Join(args, " "), out, errOut)
			}
			if c.oneLine != "" && (strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, c.oneLine)) {
				t.Errorf("%s: ballotd %s: stderr %q; want one line starting %q", c.name, strings.Join(args, " "), errOut, c.oneLine)
			}
		}
	}
}

// The logger redacts secrets in messages, values and errors, and writes
// durations in seconds in JSON and human in text; BALLOTD_LOG_LEVEL
// filters.
func TestLoggerRedactsAndFormats(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := newLogger("json", "", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("connect postgres://u:"+secretWord+"@db/x", "dsn", "host=db password="+secretWord, "err", errors.New("token refused: Bearer "+secretWord+"xyz"), "took", 1500*time.Millisecond)
	log.Debug("not shown")
	got := buf.String()
	if strings.Contains(got, secretWord) || !strings.Contains(got, `"took":1.5`) || strings.Contains(got, "not shown") {
		t.Errorf("json log line: %s", got)
	}
	buf.Reset()
	log, err = newLogger("text", "debug", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("shown", "took", 1500*time.Millisecond)
	if got := buf.String(); !strings.Contains(got, "took=1.5s") || !strings.Contains(got, "shown") {
		t.Errorf("text log line: %s", got)
	}
	if _, err := newLogger("json", "loud", &buf); err == nil || !strings.Contains(err.Error(), "BALLOTD_LOG_LEVEL") {
		t.Errorf("BALLOTD_LOG_LEVEL=loud: %v; want an error naming it", err)
	}
	_ = slog.LevelDebug
}

// redact hides each form of secret and keeps what names no secret.
func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://u:pw@h/db":                                               "postgres://u:REDACTED@h/db",
		"postgress://u:pw@h/db":                                              "postgress://u:REDACTED@h/db",
		`parse "postgres://u:p@ss@h": bad`:                                   `parse "postgres://u:REDACTED@h": bad`,
		"host=h password=pw dbname=x":                                        "host=h password=REDACTED dbname=x",
		"host=h password='p w' dbname=x":                                     "host=h password=REDACTED dbname=x",
		`BALLOTD_IMAP_PASSWORD="pw" is malformed`:                            `BALLOTD_IMAP_PASSWORD=REDACTED is malformed`,
		"client_secret=abc&refresh_token=def&x=1":                            "client_secret=REDACTED&refresh_token=REDACTED&x=1",
		"Authorization: Bearer ya29.abcdefghij":                              "Authorization: Bearer REDACTED",
		`BALLOTD_OAUTH_TOKEN_URL="http://a/token" bad`:                       `BALLOTD_OAUTH_TOKEN_URL="http://a/token" bad`,
		"postgres://u@h/db":                                                  "postgres://u@h/db",
		`token endpoint said {"access_token": "ya29.x", "expires_in": 3599}`: `token endpoint said {"access_token": "REDACTED", "expires_in": 3599}`,
		"check BALLOTD_IMAP_USER and BALLOTD_IMAP_PASSWORD":                  "check BALLOTD_IMAP_USER and BALLOTD_IMAP_PASSWORD",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
