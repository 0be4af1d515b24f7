package mailauth_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/internal/authtest"
	"github.com/ballotd/ballotd/internal/mailauth"
	"github.com/ballotd/ballotd/internal/mailhub"
)

// A token is reused while it is valid, refreshed once it has expired, and
// refreshed when the server refused it (Forget).
func TestTokensReuseAndRefresh(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	long := authtest.Start(t, time.Hour)
	toks := long.Tokens()
	for i := range 3 {
		tok, err := toks.Token(ctx)
		if err != nil || tok.AccessToken != "token-1" {
			t.Fatalf("call %d: %v, %v; want token-1", i, tok, err)
		}
	}
	if n := long.Refreshes(); n != 1 {
		t.Errorf("%d refreshes for three calls with a valid token, want 1", n)
	}
	toks.Forget("token-0") // not the current one: no effect
	if tok, _ := toks.Token(ctx); tok.AccessToken != "token-1" {
		t.Errorf("after forgetting another token: %s, want token-1", tok.AccessToken)
	}
	toks.Forget("token-1")
	if tok, err := toks.Token(ctx); err != nil || tok.AccessToken != "token-2" || long.Refreshes() != 2 {
		t.Errorf("after Forget: %v, %v, %d refreshes; want token-2 from a second refresh", tok, err, long.Refreshes())
	}

	short := authtest.Start(t, 2*time.Second)
	toks = short.Tokens()
	if tok, err := toks.Token(ctx); err != nil || tok.AccessToken != "token-1" {
		t.Fatalf("%v, %v; want token-1", tok, err)
	}
	short.WaitExpired(t, "token-1")
	if tok, err := toks.Token(ctx); err != nil || tok.AccessToken != "token-2" || short.Refreshes() != 2 {
		t.Errorf("after expiry: %v, %v, %d refreshes; want token-2 from a second refresh", tok, err, short.Refreshes())
	}
}

// A refresh token the endpoint refuses is a *RefreshError naming the
// endpoint and its error code.
func TestTokensRefreshError(t *testing.T) {
	t.Parallel()
	p := authtest.Start(t, time.Hour)
	_, err := mailauth.NewTokens(p.TokenURL, p.ClientID, p.ClientSecret, "revoked").Token(t.Context())
	var re *mailauth.RefreshError
	if !errors.As(err, &re) || re.Code != "invalid_grant" || re.URL != p.TokenURL {
		t.Fatalf("got %#v, want a RefreshError with invalid_grant", err)
	}
	if want := "oauth2 token refresh failed at " + p.TokenURL + ": invalid_grant"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	_, err = mailauth.NewTokens(p.TokenURL, p.ClientID, "wrong secret", p.RefreshToken).Token(t.Context())
	if !errors.As(err, &re) || re.Code != "invalid_client" {
		t.Errorf("wrong client secret: %v, want invalid_client", err)
	}
}

// The initial responses are those of Google's XOAUTH2 and RFC 7628.
func TestBearerInitialResponse(t *testing.T) {
	t.Parallel()
	p := authtest.Start(t, time.Hour)
	toks := p.Tokens()
	for mech, want := range map[string]string{
		mailauth.XOAuth2:     "user=ballots@example.org\x01auth=Bearer token-1\x01\x01",
		mailauth.OAuthBearer: "n,a=ballots@example.org,\x01auth=Bearer token-1\x01\x01",
	} {
		c, err := mailauth.Auth{Mechanism: mech, Username: p.User, Tokens: toks}.Client(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if m, ir, err := c.Start(); m != mech || string(ir) != want || err != nil {
			t.Errorf("%s: Start() = %q, %q, %v; want %q", mech, m, ir, err, want)
		}
	}
}

// protocols authenticate one new connection to hub with a, over IMAP
// AUTHENTICATE and SMTP AUTH.
var protocols = map[string]func(ctx context.Context, hub *mailhub.Hub, a mailauth.Auth) error{
	"imap": func(ctx context.Context, hub *mailhub.Hub, a mailauth.Auth) error {
		c, err := imapclient.DialInsecure(hub.IMAPAddr, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := a.Authenticate(ctx, c.Authenticate); err != nil {
			return err
		}
		_, err = c.Select("INBOX", nil).Wait()
		return err
	},
	"smtp": func(ctx context.Context, hub *mailhub.Hub, a mailauth.Auth) error {
		c, err := smtp.Dial(hub.SMTPAddr)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := a.Authenticate(ctx, c.Auth); err != nil {
			return err
		}
		return c.Quit()
	},
}

// A token the server refuses before its expiry (revoked) is forgotten,
// refreshed once, and the exchange retried; a token refused again is a
// RefusedError with the server's status.
func TestAuthenticateRetriesRefusedToken(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{mailauth.OAuthBearer, mailauth.XOAuth2} {
		for proto, connect := range protocols {
			t.Run(mech+"/"+proto, func(t *testing.T) {
				ctx := t.Context()
				p := authtest.Start(t, time.Hour)
				hub := p.Hub(t, mailhub.Options{}, mech)
				a := mailauth.Auth{Mechanism: mech, Username: p.User, Tokens: p.Tokens()}
				if err := connect(ctx, hub, a); err != nil {
					t.Fatalf("first connection: %v", err)
				}
				p.Revoke("token-1")
				if err := connect(ctx, hub, a); err != nil {
					t.Fatalf("after revoking token-1: %v", err)
				}
				if got, want := p.Accepted(), []string{"token-1", "token-2"}; !slices.Equal(got, want) || p.Refreshes() != 2 {
					t.Errorf("server accepted %v after %d refreshes, want %v after 2", got, p.Refreshes(), want)
				}

				a.Username = "someone-else@example.org"
				err := connect(ctx, hub, a)
				var re *mailauth.RefusedError
				if !errors.As(err, &re) || re.Mechanism != mech {
					t.Fatalf("wrong account: %v, want a RefusedError", err)
				}
				if wantStatus := map[string]string{mailauth.OAuthBearer: "invalid_token", mailauth.XOAuth2: "401"}[mech]; re.Status != wantStatus {
					t.Errorf("status %q, want %q", re.Status, wantStatus)
				}
				if n := p.Refreshes(); n != 3 {
					t.Errorf("%d refreshes, want 3: one more for the refused token-2, once", n)
				}
			})
		}
	}
}

// PLAIN and LOGIN carry the password; a server offering only one of them
// accepts it, and refuses a wrong password.
func TestAuthenticatePassword(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{mailauth.Plain, mailauth.Login} {
		for proto, connect := range protocols {
			if proto == "imap" && mech == mailauth.Login {
				continue // IMAP logs in with its LOGIN command instead
			}
			t.Run(mech+"/"+proto, func(t *testing.T) {
				p := authtest.Start(t, time.Hour)
				hub := p.Hub(t, mailhub.Options{}, mech)
				a := mailauth.Auth{Mechanism: mech, Username: p.User, Password: p.Password}
				if err := connect(t.Context(), hub, a); err != nil {
					t.Errorf("right password: %v", err)
				}
				a.Password = "wrong"
				if err := connect(t.Context(), hub, a); err == nil {
					t.Errorf("wrong password accepted")
				}
				other := map[string]string{mailauth.Plain: mailauth.Login, mailauth.Login: mailauth.Plain}[mech]
				a.Mechanism, a.Password = other, p.Password
				if err := connect(t.Context(), hub, a); err == nil {
					t.Errorf("%s accepted by a server offering only %s", other, mech)
				}
			})
		}
	}
}
