package mailauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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

	refresh    string
	configured string // the refresh token the configuration gave
	tok        *oauth2.Token
	early      time.Duration // how long before tok's expiry it is refreshed

	// store keeps a rotated refresh token across restarts (nil: memory
	// only); origin names the configured token its chain started from.
	store    RefreshStore
	origin   string
	restored bool
	logger   *slog.Logger
}

// RefreshStore keeps an account's latest refresh token across restarts:
// a provider that rotates refresh tokens (Microsoft sends a new one with
// every refresh) may let the configured one expire while the daemon runs
// on its successors. origin names the configured token a chain started
// from, so that configuring a new token starts afresh.
type RefreshStore interface {
	LoadRefresh(ctx context.Context, origin string) (string, error)
	SaveRefresh(ctx context.Context, origin, token string) error
}

// Keep makes s keep its refresh token in store: the latest one stored for
// the configured token is used instead of it, and each rotated one is
// saved. A store that fails is logged to logger and s goes on in memory.
func (s *Tokens) Keep(store RefreshStore, logger *slog.Logger) {
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	if logger == nil {
		logger = slog.Default()
	}
	sum := sha256.Sum256([]byte(s.configured))
	s.store, s.origin, s.restored, s.logger = store, hex.EncodeToString(sum[:16]), false, logger
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
		refresh: refreshToken, configured: refreshToken, logger: slog.Default(),
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
	if s.store != nil && !s.restored {
		switch latest, err := s.store.LoadRefresh(ctx, s.origin); {
		case err != nil:
			s.logger.Warn("oauth2: the stored refresh token cannot be read; using the configured one", "err", err)
		case latest != "":
			s.refresh = latest
		}
		s.restored = true
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	// A source made afresh from the refresh token alone refreshes at once;
	// the reuse is done here, with the caller's context for each refresh.
	tok, err := s.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: s.refresh}).Token()
	for _, alt := range s.alternatives(ctx, err) {
		s.logger.Warn("oauth2: refresh token refused; trying the "+alt.what+" one", "err", err)
		s.refresh = alt.token
		if tok, err = s.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: s.refresh}).Token(); err == nil {
			break
		}
	}
	if err != nil {
		return nil, refreshError(s.conf.Endpoint.TokenURL, err)
	}
	if tok.AccessToken == "" {
		return nil, &RefreshError{URL: s.conf.Endpoint.TokenURL, Err: errors.New("the response has no access_token")}
	}
	if tok.RefreshToken != "" && tok.RefreshToken != s.refresh {
		s.refresh = tok.RefreshToken
		if s.store != nil {
			if err := s.store.SaveRefresh(ctx, s.origin, s.refresh); err != nil {
				s.logger.Warn("oauth2: the rotated refresh token could not be stored; it is kept in memory only", "err", err)
			}
		}
	}
	s.tok, s.early = tok, min(earlyExpiry, time.Until(tok.Expiry)/2)
	return tok, nil
}

// alternatives are the refresh tokens to try when the one in use was
// refused (err): the stored one, which another replica may have rotated
// since, then the configured one; none when err is nil or the refresh was
// not refused.
func (s *Tokens) alternatives(ctx context.Context, err error) []struct{ what, token string } {
	var re *oauth2.RetrieveError
	if err == nil || !errors.As(err, &re) {
		return nil
	}
	var alts []struct{ what, token string }
	tried := map[string]bool{s.refresh: true}
	if s.store != nil {
		if stored, lerr := s.store.LoadRefresh(ctx, s.origin); lerr == nil && stored != "" && !tried[stored] {
			alts = append(alts, struct{ what, token string }{"stored", stored})
			tried[stored] = true
		}
	}
	if !tried[s.configured] {
		alts = append(alts, struct{ what, token string }{"configured", s.configured})
	}
	return alts
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
