// Package mailauth owns how ballotd proves who it is to its IMAP and SMTP
// servers: the SASL mechanisms it speaks (PLAIN, RFC 4616; LOGIN; XOAUTH2,
// Google's and Microsoft's bearer-token mechanism; OAUTHBEARER, RFC 7628)
// and the OAuth2 access tokens the last two carry, refreshed from a refresh
// token at the provider's token endpoint (RFC 6749 §6).
//
// The IMAP reader and the SMTP sender each build an Auth from their
// settings and call Authenticate around their protocol's AUTHENTICATE or
// AUTH command; both share one Tokens, since they log in to the same
// mailbox account.
package mailauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// The mechanisms, by their SASL names.
const (
	Plain       = sasl.Plain
	Login       = sasl.Login
	XOAuth2     = "XOAUTH2"
	OAuthBearer = sasl.OAuthBearer
)

// Auth is how to authenticate to one server.
type Auth struct {
	// Mechanism is one of Plain, Login, XOAuth2 and OAuthBearer.
	Mechanism string
	// Username is the login (the mailbox address for OAuth2).
	Username string
	// Password is for Plain and Login.
	Password string
	// Tokens hands out the access tokens of XOAuth2 and OAuthBearer.
	Tokens *Tokens
}

// OAuth reports whether the mechanism carries an OAuth2 access token.
func (a Auth) OAuth() bool {
	return a.Mechanism == XOAuth2 || a.Mechanism == OAuthBearer
}

// Client returns a SASL client for one exchange. For the OAuth2
// mechanisms it first gets a current access token, which may mean a
// request to the token endpoint (a *RefreshError when that fails).
func (a Auth) Client(ctx context.Context) (sasl.Client, error) {
	switch a.Mechanism {
	case Plain:
		return sasl.NewPlainClient("", a.Username, a.Password), nil
	case Login:
		return sasl.NewLoginClient(a.Username, a.Password), nil
	case XOAuth2, OAuthBearer:
		if a.Tokens == nil {
			return nil, fmt.Errorf("mailauth: %s for %s: no OAuth2 token source configured", a.Mechanism, a.Username)
		}
		tok, err := a.Tokens.Token(ctx)
		if err != nil {
			return nil, err
		}
		return &bearerClient{mech: a.Mechanism, user: a.Username, token: tok.AccessToken}, nil
	}
	return nil, fmt.Errorf("mailauth: unknown mechanism %q", a.Mechanism)
}

// Authenticate runs one authentication exchange: run sends the protocol's
// command with the SASL client it is given. When an OAuth2 server refuses
// the access token (it can expire early or be revoked), Authenticate forgets
// that token and runs the exchange once more with a newly refreshed one.
func (a Auth) Authenticate(ctx context.Context, run func(sasl.Client) error) error {
	c, err := a.Client(ctx)
	if err != nil {
		return err
	}
	err = run(c)
	bc, ok := c.(*bearerClient)
	if err == nil || !ok || bc.refusal == nil {
		return err
	}
	a.Tokens.Forget(bc.token)
	retry, rerr := a.Client(ctx)
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	if err := run(retry); err != nil {
		if r := retry.(*bearerClient).refusal; r != nil {
			return &RefusedError{Mechanism: a.Mechanism, Status: r.Status, Scope: r.Scope, Err: err}
		}
		return err
	}
	return nil
}

// RefusedError is an OAuth2 server's refusal of an access token, twice:
// the token as it was, and a newly refreshed one.
type RefusedError struct {
	// Mechanism is XOAuth2 or OAuthBearer.
	Mechanism string
	// Status and Scope are from the server's JSON error (RFC 7628 §3.2.2):
	// a status such as "invalid_token" (Google: "400" or "401") and the
	// scope the token needs.
	Status, Scope string
	// Err is the protocol's failure reply.
	Err error
}

// Error implements error.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s token refused (status %q, scope %q): %v", e.Mechanism, e.Status, e.Scope, e.Err)
}

// Unwrap returns the protocol's failure reply.
func (e *RefusedError) Unwrap() error { return e.Err }

// bearerClient is the client side of XOAUTH2 and OAUTHBEARER. Both send the
// token in the initial response; a server that refuses it sends a JSON
// error as a challenge, and the client answers with a dummy response so
// the server ends the exchange with its failure reply (RFC 7628 §3.2.3;
// XOAUTH2 takes an empty response). The refusal is kept for
// Authenticate's retry and for the error message.
type bearerClient struct {
	mech, user, token string
	refusal           *refusal
}

// refusal is the error an OAuth2 server sent as its challenge.
type refusal struct {
	Status string `json:"status"`
	Scope  string `json:"scope"`
}

// Start implements sasl.Client.
func (c *bearerClient) Start() (string, []byte, error) {
	if c.mech == XOAuth2 {
		return XOAuth2, []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
	}
	_, ir, err := sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: c.user, Token: c.token}).Start()
	return OAuthBearer, ir, err
}

// Next implements sasl.Client: the only challenge is the server's error.
func (c *bearerClient) Next(challenge []byte) ([]byte, error) {
	r := &refusal{}
	if err := json.Unmarshal(challenge, r); err != nil {
		r.Status = strings.TrimSpace(string(challenge))
	}
	c.refusal = r
	if c.mech == XOAuth2 {
		return []byte{}, nil
	}
	return []byte{0x01}, nil
}
