// Package authtest owns the server side of mail authentication for tests: a
// fake OAuth2 provider (a token endpoint on loopback issuing short-lived
// access tokens for one account's refresh token, counting its refreshes)
// and the SASL servers a mailhub.Hub offers with it: XOAUTH2 and
// OAUTHBEARER accepting only the provider's unexpired, unrevoked tokens,
// PLAIN and LOGIN accepting one password.
package authtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/ballotd/ballotd/internal/mailauth"
	"github.com/ballotd/ballotd/internal/mailhub"
)

// Provider is a running fake OAuth2 provider for one account.
type Provider struct {
	// TokenURL is the token endpoint (http on loopback).
	TokenURL string
	// User is the account; ClientID, ClientSecret and RefreshToken are
	// what the endpoint accepts for it.
	User, ClientID, ClientSecret, RefreshToken string
	// Password is what PLAIN and LOGIN accept for User.
	Password string

	// Rotate makes the endpoint rotate refresh tokens strictly: each
	// refresh answers with a new refresh token and the one used stops
	// working (Microsoft sends a new one each time too, though it keeps
	// the old one valid until it expires).
	Rotate bool

	lifetime time.Duration
	mu       sync.Mutex
	current  string               // the refresh token the endpoint takes
	issued   map[string]time.Time // access token → expiry
	revoked  map[string]bool
	refresh  int
	accepted []string
}

// Start starts a provider whose access tokens expire after lifetime (whole
// seconds, as expires_in says); it stops when the test ends.
func Start(t testing.TB, lifetime time.Duration) *Provider {
	p := &Provider{
		User: "ballots@example.org", ClientID: "ballotd-test", ClientSecret: "client-secret",
		RefreshToken: "refresh-1", Password: "mailbox-password",
		lifetime: lifetime, issued: map[string]time.Time{}, revoked: map[string]bool{},
	}
	srv := httptest.NewServer(http.HandlerFunc(p.token))
	t.Cleanup(srv.Close)
	p.TokenURL = srv.URL + "/token"
	return p
}

// token is the endpoint: RFC 6749 §6, the refresh_token grant, with the
// client's credentials in the form.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, oauthErr string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": oauthErr})
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/token" || r.ParseForm() != nil:
		fail(http.StatusBadRequest, "invalid_request")
	case r.PostForm.Get("client_id") != p.ClientID || r.PostForm.Get("client_secret") != p.ClientSecret:
		fail(http.StatusUnauthorized, "invalid_client")
	case r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != p.currentRefresh():
		fail(http.StatusBadRequest, "invalid_grant")
	default:
		p.mu.Lock()
		p.refresh++
		tok := fmt.Sprintf("token-%d", p.refresh)
		p.issued[tok] = time.Now().Add(p.lifetime)
		answer := map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(p.lifetime / time.Second)}
		if p.Rotate {
			p.current = fmt.Sprintf("refresh-rotated-%d", p.refresh)
			answer["refresh_token"] = p.current
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer)
	}
}

// currentRefresh is the refresh token the endpoint takes now.
func (p *Provider) currentRefresh() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current == "" {
		return p.RefreshToken
	}
	return p.current
}

// Grant is a new consent by the account's owner: it returns a new refresh
// token, the only one the endpoint takes from now on.
func (p *Provider) Grant() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refresh++
	p.current = fmt.Sprintf("refresh-granted-%d", p.refresh)
	return p.current
}

// Refreshes returns how many tokens the endpoint has issued.
func (p *Provider) Refreshes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refresh
}

// Accepted returns the access tokens the SASL servers accepted, in order.
func (p *Provider) Accepted() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.accepted...)
}

// Expired reports whether tok has expired by the provider's clock.
func (p *Provider) Expired(tok string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !time.Now().Before(p.issued[tok])
}

// WaitExpired waits until tok has expired by the provider's clock.
func (p *Provider) WaitExpired(t testing.TB, tok string) {
	t.Helper()
	deadline := time.Now().Add(p.lifetime + 30*time.Second)
	for !p.Expired(tok) {
		if time.Now().After(deadline) {
			t.Fatalf("authtest: %s has not expired", tok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Revoke makes the servers refuse tok before it expires.
func (p *Provider) Revoke(tok string) {
	p.mu.Lock()
	p.revoked[tok] = true
	p.mu.Unlock()
}

// check accepts a bearer token for user: issued, unexpired, not revoked.
func (p *Provider) check(user, tok string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	exp, ok := p.issued[tok]
	if !ok || !time.Now().Before(exp) || p.revoked[tok] || !strings.EqualFold(user, p.User) {
		return false
	}
	p.accepted = append(p.accepted, tok)
	return true
}

// Hub starts a mail hub with opts that authenticates only with mechs of
// p; it stops when the test ends.
func (p *Provider) Hub(t testing.TB, opts mailhub.Options, mechs ...string) *mailhub.Hub {
	t.Helper()
	opts.SASL = p.SASL(mechs...)
	hub, err := mailhub.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	return hub
}

// Tokens returns a client's token source for p's account.
func (p *Provider) Tokens() *mailauth.Tokens {
	return mailauth.NewTokens(p.TokenURL, p.ClientID, p.ClientSecret, p.RefreshToken)
}

// SASL returns the hub authentication offering exactly mechs, from
// "PLAIN", "LOGIN", "XOAUTH2" and "OAUTHBEARER".
func (p *Provider) SASL(mechs ...string) *mailhub.SASL {
	return &mailhub.SASL{Mechanisms: mechs, NewServer: p.server}
}

var errAuthFailed = errors.New("authentication failed")

func (p *Provider) server(mech string, login func(string) error) sasl.Server {
	password := func(user, pass string) error {
		if !strings.EqualFold(user, p.User) || pass != p.Password {
			return errAuthFailed
		}
		return login(user)
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error { return password(user, pass) })
	case sasl.Login:
		return &loginServer{check: password}
	case sasl.OAuthBearer:
		return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if !p.check(o.Username, o.Token) {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer", Scope: "mail"}
			}
			if err := login(o.Username); err != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			return nil
		})
	case "XOAUTH2":
		return &xoauth2Server{p: p, login: login}
	}
	panic("authtest: no server for " + mech)
}

// xoauth2Server is the server side of XOAUTH2 as Google documents it: the
// initial response is "user=U\x01auth=Bearer T\x01\x01"; a refused token
// is answered with a JSON error challenge, then, after the client's empty
// response, the failure.
type xoauth2Server struct {
	p       *Provider
	login   func(string) error
	refused bool
}

// Next implements sasl.Server.
func (s *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if s.refused {
		return nil, true, errAuthFailed
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, tok string
	for _, f := range bytes.Split(resp, []byte{1}) {
		k, v, _ := strings.Cut(string(f), "=")
		switch k {
		case "user":
			user = v
		case "auth":
			tok, _ = strings.CutPrefix(v, "Bearer ")
		}
	}
	if s.p.check(user, tok) {
		return nil, true, s.login(user)
	}
	s.refused = true
	return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
}

// loginServer is the server side of LOGIN: the username as the initial
// response (or after an empty challenge), then the password after
// "Password:".
type loginServer struct {
	check       func(user, pass string) error
	user        string
	gotUsername bool
}

// Next implements sasl.Server.
func (s *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case resp == nil && !s.gotUsername:
		return []byte("Username:"), false, nil
	case !s.gotUsername:
		s.user, s.gotUsername = string(resp), true
		return []byte("Password:"), false, nil
	}
	return nil, true, s.check(s.user, string(resp))
}
