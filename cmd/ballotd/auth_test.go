package main

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/authtest"
	"github.com/ballotd/ballotd/internal/mailauth"
	"github.com/ballotd/ballotd/internal/mailhub"
)

// authHub starts a hub over TLS from the first byte (a certificate of ca)
// that authenticates only with the given mechanisms of p.
func authHub(t *testing.T, ca testCA, p *authtest.Provider, mechs ...string) *mailhub.Hub {
	return p.Hub(t, mailhub.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.server}}, ImplicitTLS: true}, mechs...)
}

// checkPrints runs `ballotd check` and compares its lines and exit status.
func checkPrints(t *testing.T, h *harness, code int, want ...string) {
	t.Helper()
	out, errOut, got := h.try("check")
	if got != code {
		t.Errorf("exit %d, want %d; stderr: %s", got, code, errOut)
	}
	if got, want := strings.TrimRight(out, "\n"), strings.Join(want, "\n"); got != want {
		t.Errorf("check printed\n%s\nwant\n%s", got, want)
	}
}

// oauthEnv points h's ballotd at hub over TLS, logging in with mech and
// the OAuth2 client and refresh token of p.
func oauthEnv(h *harness, ca testCA, p *authtest.Provider, hub *mailhub.Hub, mech string) {
	for k, v := range map[string]string{
		"BALLOTD_IMAP_ADDR": hub.IMAPAddr, "BALLOTD_SMTP_ADDR": hub.SMTPAddr, "BALLOTD_IMAP_TLS": "tls", "BALLOTD_SMTP_TLS": "tls",
		"BALLOTD_TLS_CA_FILE": h.file("ca.pem", string(ca.pem)), "BALLOTD_IMAP_PASSWORD": "",
		"BALLOTD_IMAP_AUTH": strings.ToLower(mech), "BALLOTD_SMTP_AUTH": strings.ToLower(mech), "BALLOTD_SMTP_USER": p.User,
		"BALLOTD_OAUTH_TOKEN_URL": p.TokenURL, "BALLOTD_OAUTH_CLIENT_ID": p.ClientID,
		"BALLOTD_OAUTH_CLIENT_SECRET": p.ClientSecret, "BALLOTD_OAUTH_REFRESH_TOKEN": p.RefreshToken,
	} {
		h.env[k] = v
	}
}

// TestRotatedRefreshTokenSurvivesRestart: a provider that rotates refresh
// tokens (each refresh answers with a new one, the old one dead) would
// leave a restarted ballotd with a configured token that no longer works;
// ballotd keeps the latest in the database, sealed, and goes on from it in
// the next process (check, then send), until the operator configures a
// new one.
func TestRotatedRefreshTokenSurvivesRestart(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	p := authtest.Start(t, time.Hour)
	p.Rotate = true
	hub := authHub(t, ca, p, mailauth.XOAuth2)
	h := newHarness(t)
	h.openRace("alice@example.net,Alice,MA-07\n", "MA-SEN", "Ed Markey")
	oauthEnv(h, ca, p, hub, mailauth.XOAuth2)
	db := "database  OK " + dbWhere(t, h.env["DATABASE_URL"]) + ", schema up to date"
	imapOK := "imap  OK " + hub.IMAPAddr + " (tls), authenticated with XOAUTH2 as ballots@example.org, mailbox INBOX selected, IDLE supported"
	smtpOK := "smtp  OK " + hub.SMTPAddr + " (tls), EHLO example.org, authenticated with XOAUTH2 as ballots@example.org, no mail sent"
	oauthOK := "oauth  OK access token issued by " + p.TokenURL + " (IMAP and SMTP use it)"
	stored := func() (n int, sealed []byte) {
		t.Helper()
		if err := h.db().QueryRow(`SELECT count(*), coalesce((array_agg(sealed ORDER BY updated_at DESC))[1], '') FROM oauth_refresh_tokens`).Scan(&n, &sealed); err != nil {
			t.Fatal(err)
		}
		return n, sealed
	}

	// The first process: the configured refresh-1 is used, and the
	// provider's refresh-rotated-1 is kept, sealed.
	checkPrints(t, h, 0, db, imapOK, smtpOK, oauthOK)
	if n, sealed := stored(); n != 1 || len(sealed) == 0 || strings.Contains(string(sealed), "refresh-") {
		t.Fatalf("after the first check: %d stored, sealed %q; want one, not in clear", n, sealed)
	}
	// The next processes: refresh-1 is dead at the provider; each goes on
	// from the stored token.
	checkPrints(t, h, 0, db, imapOK, smtpOK, oauthOK)
	if out := h.ballotd("send"); !strings.HasPrefix(out, "1 outbox rows handled") {
		t.Fatalf("send: %q", out)
	}
	if got := hub.Received(); len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != "alice@example.net" {
		t.Fatalf("the hub received %v, want alice's ballot", got)
	}
	if n := p.Refreshes(); n != 3 {
		t.Errorf("%d refreshes, want 3 (check, check, send)", n)
	}
	if n, _ := stored(); n != 1 {
		t.Errorf("%d chains stored, want 1", n)
	}

	// The operator consents again and configures the new token: it is
	// used, not the stored chain of the old one.
	h.env["BALLOTD_OAUTH_REFRESH_TOKEN"] = p.Grant()
	checkPrints(t, h, 0, db, imapOK, smtpOK, oauthOK)
	if n, _ := stored(); n != 2 {
		t.Errorf("%d chains stored, want 2 (the new token starts its own)", n)
	}
}

// TestCheckOAuth runs check against IMAP and SMTP servers over TLS that
// require OAUTHBEARER or XOAUTH2 with a token the test's endpoint issued:
// one refresh serves both; a refresh token the endpoint refuses, and a
// token for another account, say what to change.
func TestCheckOAuth(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	for _, mech := range []string{mailauth.OAuthBearer, mailauth.XOAuth2} {
		t.Run(mech, func(t *testing.T) {
			p := authtest.Start(t, time.Hour)
			hub := authHub(t, ca, p, mech)
			h := newHarness(t)
			h.ballotd("migrate")
			oauthEnv(h, ca, p, hub, mech)
			db := "database  OK " + dbWhere(t, h.env["DATABASE_URL"]) + ", schema up to date"
			checkPrints(t, h, 0, db,
				"imap  OK "+hub.IMAPAddr+" (tls), authenticated with "+mech+" as ballots@example.org, mailbox INBOX selected, IDLE supported",
				"smtp  OK "+hub.SMTPAddr+" (tls), EHLO example.org, authenticated with "+mech+" as ballots@example.org, no mail sent",
				"oauth  OK access token issued by "+p.TokenURL+" (IMAP and SMTP use it)")
			if got, want := p.Accepted(), []string{"token-1", "token-1"}; !slices.Equal(got, want) || p.Refreshes() != 1 {
				t.Errorf("servers accepted %v after %d refreshes, want %v after 1", got, p.Refreshes(), want)
			}

			h.env["BALLOTD_OAUTH_REFRESH_TOKEN"] = "revoked-refresh-token"
			refused := "FAILED: oauth2 token refresh failed at " + p.TokenURL + ": invalid_grant — get a new refresh token (BALLOTD_OAUTH_REFRESH_TOKEN)"
			checkPrints(t, h, 1, db, "imap  "+refused, "smtp  "+refused, "oauth  "+refused)
			h.env["BALLOTD_OAUTH_REFRESH_TOKEN"] = p.RefreshToken

			h.env["BALLOTD_IMAP_USER"], h.env["BALLOTD_SMTP_USER"] = "other@example.org", "other@example.org"
			scope := map[string]string{mailauth.OAuthBearer: "mail", mailauth.XOAuth2: "https://mail.google.com/"}[mech]
			checkPrints(t, h, 1, db,
				"imap  FAILED: AUTHENTICATE "+mech+" as other@example.org refused by "+hub.IMAPAddr+" (Authentication failed) — check that BALLOTD_IMAP_USER is the account BALLOTD_OAUTH_REFRESH_TOKEN was issued for, and that the token's scope covers IMAP (the server asks for \""+scope+"\")",
				"smtp  FAILED: AUTH "+mech+" as other@example.org refused by "+hub.SMTPAddr+" (535 Authentication failed) — check that BALLOTD_SMTP_USER is the account BALLOTD_OAUTH_REFRESH_TOKEN was issued for, and that the token's scope covers SMTP (the server asks for \""+scope+"\")",
				"oauth  OK access token issued by "+p.TokenURL+" (IMAP and SMTP use it)")
		})
	}
}

// TestCheckPasswordMechanisms runs check against an IMAP server offering
// only AUTHENTICATE PLAIN and an SMTP server offering only AUTH LOGIN.
func TestCheckPasswordMechanisms(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	p := authtest.Start(t, time.Hour)
	imapHub, smtpHub := authHub(t, ca, p, mailauth.Plain), authHub(t, ca, p, mailauth.Login)
	h := newHarness(t)
	h.ballotd("migrate")
	for k, v := range map[string]string{
		"BALLOTD_IMAP_ADDR": imapHub.IMAPAddr, "BALLOTD_SMTP_ADDR": smtpHub.SMTPAddr, "BALLOTD_IMAP_TLS": "tls", "BALLOTD_SMTP_TLS": "tls",
		"BALLOTD_TLS_CA_FILE": h.file("ca.pem", string(ca.pem)), "BALLOTD_IMAP_PASSWORD": p.Password,
		"BALLOTD_SMTP_USER": p.User, "BALLOTD_SMTP_PASSWORD": p.Password,
	} {
		h.env[k] = v
	}
	db := "database  OK " + dbWhere(t, h.env["DATABASE_URL"]) + ", schema up to date"
	for _, tc := range []struct {
		name string
		env  map[string]string
		code int
		want []string
	}{
		{"mechanisms set", map[string]string{"BALLOTD_IMAP_AUTH": "plain", "BALLOTD_SMTP_AUTH": "login"}, 0, []string{db,
			"imap  OK " + imapHub.IMAPAddr + " (tls), authenticated with PLAIN as ballots@example.org, mailbox INBOX selected, IDLE supported",
			"smtp  OK " + smtpHub.SMTPAddr + " (tls), EHLO example.org, authenticated with LOGIN as ballots@example.org, no mail sent",
		}},
		{"wrong password", map[string]string{"BALLOTD_IMAP_AUTH": "plain", "BALLOTD_SMTP_AUTH": "login", "BALLOTD_IMAP_PASSWORD": "wrong", "BALLOTD_SMTP_PASSWORD": "wrong"}, 1, []string{db,
			"imap  FAILED: AUTHENTICATE PLAIN as ballots@example.org refused by " + imapHub.IMAPAddr + " (Authentication failed) — check BALLOTD_IMAP_USER and BALLOTD_IMAP_PASSWORD",
			"smtp  FAILED: AUTH LOGIN as ballots@example.org refused by " + smtpHub.SMTPAddr + " (535 Authentication failed) — check BALLOTD_SMTP_USER and BALLOTD_SMTP_PASSWORD",
		}},
		{"defaults", nil, 1, []string{db,
			"imap  FAILED: login as ballots@example.org refused by " + imapHub.IMAPAddr + " (Authentication failed) — check BALLOTD_IMAP_USER and BALLOTD_IMAP_PASSWORD",
			"smtp  FAILED: AUTH as ballots@example.org refused by " + smtpHub.SMTPAddr + " (504 Unsupported authentication mechanism) — check BALLOTD_SMTP_USER and BALLOTD_SMTP_PASSWORD",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := map[string]string{}
			for k, v := range tc.env {
				saved[k], h.env[k] = h.env[k], v
			}
			defer func() {
				for k, v := range saved {
					h.env[k] = v
				}
			}()
			checkPrints(t, h, tc.code, tc.want...)
		})
	}
}

// TestRotatedRefreshTokenTwoReplicas: two serve replicas share one
// account; when one rotates the refresh token, the other's (now dead) is
// refused, and it goes on from the one stored in the database instead of
// failing.
func TestRotatedRefreshTokenTwoReplicas(t *testing.T) {
	t.Parallel()
	p := authtest.Start(t, 2*time.Second)
	p.Rotate = true
	h := newHarness(t)
	h.ballotd("migrate")
	store, err := ballots.NewRefreshTokens(h.db(), "a secret of the right length")
	if err != nil {
		t.Fatal(err)
	}
	replica := func() *mailauth.Tokens {
		tk := p.Tokens()
		tk.Keep(store, nil)
		return tk
	}
	a, b := replica(), replica()
	ctx := t.Context()
	tb, err := b.Token(ctx) // b: refresh-1 → refresh-rotated-1
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Token(ctx); err != nil { // a: the stored refresh-rotated-1 → refresh-rotated-2
		t.Fatalf("a: %v", err)
	}
	p.WaitExpired(t, tb.AccessToken)
	// b still holds refresh-rotated-1, which the provider no longer takes.
	tb2, err := b.Token(ctx)
	if err != nil {
		t.Fatalf("b after a rotated the token: %v", err)
	}
	if tb2.AccessToken == tb.AccessToken || p.Refreshes() != 3 {
		t.Errorf("b got %s after %d refreshes; want a new token after 3", tb2.AccessToken, p.Refreshes())
	}
}
