package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A missing or malformed setting stops the command with one line that
// names it, and exit status 2 (DESIGN.md, "Configuration").
func TestConfigErrorsNameTheSetting(t *testing.T) {
	full := map[string]string{
		"DATABASE_URL": "postgres://127.0.0.1:1/none?sslmode=disable", "BALLOTD_DOMAIN": "example.org",
		"BALLOTD_SECRET": "a-long-enough-secret", "BALLOTD_IMAP_ADDR": "127.0.0.1:1", "BALLOTD_IMAP_USER": "ballots@example.org",
		"BALLOTD_SMTP_ADDR": "127.0.0.1:1",
	}
	cases := []struct {
		name    string
		set     map[string]string
		unset   string
		command []string
		want    string
	}{
		{"no database", nil, "DATABASE_URL", []string{"races"}, "DATABASE_URL is not set"},
		{"no domain", nil, "BALLOTD_DOMAIN", []string{"serve"}, "BALLOTD_DOMAIN is not set"},
		{"no secret", nil, "BALLOTD_SECRET", []string{"serve"}, "BALLOTD_SECRET is not set"},
		{"no imap", nil, "BALLOTD_IMAP_ADDR", []string{"serve"}, "BALLOTD_IMAP_ADDR is not set"},
		{"no smtp", nil, "BALLOTD_SMTP_ADDR", []string{"serve"}, "BALLOTD_SMTP_ADDR is not set"},
		{"short secret", map[string]string{"BALLOTD_SECRET": "short"}, "", []string{"serve"}, "BALLOTD_SECRET="},
		{"bad domain", map[string]string{"BALLOTD_DOMAIN": "ballots@example.org"}, "", []string{"serve"}, `BALLOTD_DOMAIN="ballots@example.org" is malformed`},
		{"bad tls", map[string]string{"BALLOTD_SMTP_TLS": "yes"}, "", []string{"serve"}, `BALLOTD_SMTP_TLS="yes" is malformed: want none, starttls or tls`},
		{"bad address", map[string]string{"BALLOTD_IMAP_ADDR": "imap.example.org"}, "", []string{"serve"}, `BALLOTD_IMAP_ADDR="imap.example.org" is malformed: want host:port`},
		{"bad staff", map[string]string{"BALLOTD_STAFF": "staff@example.org, not an address"}, "", []string{"serve"}, "BALLOTD_STAFF="},
		{"bad poll", map[string]string{"BALLOTD_IMAP_POLL": "soon"}, "", []string{"serve"}, `BALLOTD_IMAP_POLL="soon" is malformed`},
		{"bad conns", map[string]string{"BALLOTD_SMTP_CONNS": "0"}, "", []string{"serve"}, `BALLOTD_SMTP_CONNS="0" is malformed`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range full {
				env[k] = v
			}
			for k, v := range c.set {
				env[k] = v
			}
			delete(env, c.unset)
			var out, errOut bytes.Buffer
			code := run(context.Background(), c.command, func(k string) string { return env[k] }, &out, &errOut)
			lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line containing %q", code, errOut.String(), c.want)
			}
		})
	}
}
