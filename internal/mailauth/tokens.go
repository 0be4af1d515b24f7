package mailauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// Provider token endpoints, for BALLOTD_OAUTH_PROVIDER.
const (
	GoogleTokenURL = "https://oauth2.googleapis.com/token"
	// MicrosoftTokenURL is a format: the tenant ("common", "organizations"
	// or the directory's id or domain) goes in %s.
	MicrosoftTokenURL = "https://login.microsoftonline.com/%s/oauth2/v2.0/token"
)

// earlyExpiry is how long before its expiry a token is refreshed, so that
// it does not expire between the check and the server's: 10 seconds, or
// half the lifetime of a token issued for less than 20.
const earlyExpiry = 10 * time.Second

// Tokens hands out access tokens for one account: the last one while it is
// valid, else a new one from the token endpoint in exchange for the
// refresh token (RFC 6749 §6). A refresh token the endpoint rotates is
// kept for the next refresh. It is safe for concurrent use; concurrent
// callers share one refresh.
type Tokens struct {
	conf   oauth2.Config
	client *http.Client
	sem    chan struct{} // held while looking at or refreshing tok

	refresh string
	tok     *oauth2.Token
	early   time.Duration // how long before tok's expiry it is refreshed
}

// NewTokens returns the tokens of the account whose refresh token is
// refreshToken, refreshed at tokenURL as the OAuth2 client clientID
// (clientSecret may be empty for a public client).
func NewTokens(tokenURL, clientID, clientSecret, refreshToken string) *Tokens {
	return &Tokens{
		conf: oauth2.Config{
			ClientID: clientID, ClientSecret: clientSecret,
			// In the form: both Google and Microsoft take it, and the
			// default (auto-detect) sends a failing request twice.
			Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
		client:  &http.Client{Timeout: 30 * time.Second},
		sem:     make(chan struct{}, 1),
		refresh: refreshToken,
	}
}

// TokenURL returns the endpoint tokens are refreshed at.
func (s *Tokens) TokenURL() string { return s.conf.Endpoint.TokenURL }

// Token returns a current access token, refreshing it when the last one
// has expired or is about to. A failed refresh is a *RefreshError.
func (s *Tokens) Token(ctx context.Context) (*oauth2.Token, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("oauth2 token: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if s.tok != nil && (s.tok.Expiry.IsZero() || time.Until(s.tok.Expiry) > s.early) {
		return s.tok, nil
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	// A source made afresh from the refresh token alone refreshes at once;
	// the reuse is done here, with the caller's context for each refresh.
	tok, err := s.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: s.refresh}).Token()
	if err != nil {
		return nil, refreshError(s.conf.Endpoint.TokenURL, err)
	}
	if tok.AccessToken == "" {
		return nil, &RefreshError{URL: s.conf.Endpoint.TokenURL, Err: errors.New("the response has no access_token")}
	}
	if tok.RefreshToken != "" {
		s.refresh = tok.RefreshToken
	}
	s.tok, s.early = tok, min(earlyExpiry, time.Until(tok.Expiry)/2)
	return tok, nil
}

// Forget drops the access token if it is still the current one, so the
// next Token refreshes: the server refused it.
func (s *Tokens) Forget(accessToken string) {
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	if s.tok != nil && s.tok.AccessToken == accessToken {
		s.tok = nil
	}
}

// RefreshError is a failed request to the token endpoint.
type RefreshError struct {
	// URL is the token endpoint.
	URL string
	// Code and Description are the endpoint's OAuth2 error (RFC 6749
	// §5.2), such as "invalid_grant"; empty when it gave none.
	Code, Description string
	// Err is the underlying error.
	Err error
}

func refreshError(url string, err error) *RefreshError {
	e := &RefreshError{URL: url, Err: err}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e.Code, e.Description = re.ErrorCode, re.ErrorDescription
		if e.Code == "" && re.Response != nil {
			e.Code = re.Response.Status
		}
	}
	return e
}

// Error implements error.
func (e *RefreshError) Error() string {
	return "oauth2 token refresh failed at " + e.URL + ": " + e.Reason()
}

// Reason is what the endpoint said: its error code and description, or
// the underlying error.
func (e *RefreshError) Reason() string {
	switch {
	case e.Code != "" && e.Description != "":
		return e.Code + " (" + e.Description + ")"
	case e.Code != "":
		return e.Code
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *RefreshError) Unwrap() error { return e.Err }
