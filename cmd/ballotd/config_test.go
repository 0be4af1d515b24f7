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
	t.Parallel()
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
		{"bad imap auth", map[string]string{"BALLOTD_IMAP_AUTH": "cram-md5"}, "", []string{"serve"}, `BALLOTD_IMAP_AUTH="cram-md5" is malformed: want login, plain, xoauth2 or oauthbearer`},
		{"smtp auth, no user", map[string]string{"BALLOTD_SMTP_AUTH": "login"}, "", []string{"serve"}, "BALLOTD_SMTP_USER is not set (the SMTP login for BALLOTD_SMTP_AUTH=login)"},
		{"oauth, no token url", map[string]string{"BALLOTD_IMAP_AUTH": "xoauth2"}, "", []string{"serve"}, "BALLOTD_OAUTH_TOKEN_URL is not set (the provider's OAuth2 token endpoint, or BALLOTD_OAUTH_PROVIDER=google or microsoft)"},
		{"oauth, no client", map[string]string{"BALLOTD_IMAP_AUTH": "oauthbearer", "BALLOTD_OAUTH_PROVIDER": "google"}, "", []string{"serve"}, "BALLOTD_OAUTH_CLIENT_ID is not set"},
		{"oauth, no refresh token", map[string]string{"BALLOTD_IMAP_AUTH": "xoauth2", "BALLOTD_OAUTH_PROVIDER": "microsoft", "BALLOTD_OAUTH_CLIENT_ID": "id"}, "", []string{"serve"}, "BALLOTD_OAUTH_REFRESH_TOKEN is not set"},
		{"oauth, plain http", map[string]string{"BALLOTD_IMAP_AUTH": "xoauth2", "BALLOTD_OAUTH_TOKEN_URL": "http://auth.example.org/token"}, "", []string{"serve"}, `BALLOTD_OAUTH_TOKEN_URL="http://auth.example.org/token" is malformed: want an https URL`},
		{"bad provider", map[string]string{"BALLOTD_IMAP_AUTH": "xoauth2", "BALLOTD_OAUTH_PROVIDER": "yahoo"}, "", []string{"serve"}, `BALLOTD_OAUTH_PROVIDER="yahoo" is malformed: want google or microsoft`},
		{"tenant without microsoft", map[string]string{"BALLOTD_IMAP_AUTH": "xoauth2", "BALLOTD_OAUTH_PROVIDER": "google", "BALLOTD_OAUTH_TENANT": "contoso.com"}, "", []string{"serve"}, `BALLOTD_OAUTH_TENANT="contoso.com" is malformed: want unset unless BALLOTD_OAUTH_PROVIDER=microsoft`},
		{"oauth unused", map[string]string{"BALLOTD_OAUTH_REFRESH_TOKEN": "1//secret"}, "", []string{"serve"}, "BALLOTD_OAUTH_* is set, but neither BALLOTD_IMAP_AUTH nor BALLOTD_SMTP_AUTH is xoauth2 or oauthbearer"},
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

// BALLOTD_OAUTH_PROVIDER fills in the provider's token endpoint; IMAP and
// SMTP share one token source.
func TestOAuthProvider(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ provider, tenant, want string }{
		{"google", "", "https://oauth2.googleapis.com/token"},
		{"Microsoft", "", "https://login.microsoftonline.com/common/oauth2/v2.0/token"},
		{"microsoft", "contoso.onmicrosoft.com", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"},
	} {
		env := map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/none", "BALLOTD_IMAP_AUTH": "XOAUTH2", "BALLOTD_SMTP_AUTH": "oauthbearer",
			"BALLOTD_SMTP_USER": "ballots@example.org", "BALLOTD_OAUTH_PROVIDER": tc.provider, "BALLOTD_OAUTH_TENANT": tc.tenant,
			"BALLOTD_OAUTH_CLIENT_ID": "id", "BALLOTD_OAUTH_REFRESH_TOKEN": "refresh"}
		c, err := loadConfig(func(k string) string { return env[k] }, need{})
		if err != nil {
			t.Fatalf("%s: %v", tc.provider, err)
		}
		if c.IMAP.Tokens == nil || c.IMAP.Tokens != c.SMTP.Tokens || c.IMAP.Tokens.TokenURL() != tc.want {
			t.Errorf("%s %s: tokens %p, %p; want one source at %s", tc.provider, tc.tenant, c.IMAP.Tokens, c.SMTP.Tokens, tc.want)
		}
		if c.IMAP.Mechanism != "XOAUTH2" || c.SMTP.Mechanism != "OAUTHBEARER" {
			t.Errorf("mechanisms %q, %q; want XOAUTH2, OAUTHBEARER", c.IMAP.Mechanism, c.SMTP.Mechanism)
		}
	}
}
