package ballots

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// RefreshTokens keeps the mailbox account's latest OAuth2 refresh token
// in the database, sealed with a key derived from BALLOTD_SECRET, so that a
// token the provider rotated survives a restart (mailauth.RefreshStore).
type RefreshTokens struct {
	db   *sqlx.DB
	aead cipher.AEAD
}

// NewRefreshTokens returns the store of refresh tokens in db, sealed under
// secret.
func NewRefreshTokens(db *sqlx.DB, secret string) (*RefreshTokens, error) {
	key := sha256.Sum256([]byte("ballotd oauth refresh token\x00" + secret))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("refresh tokens: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("refresh tokens: %w", err)
	}
	return &RefreshTokens{db: db, aead: aead}, nil
}

// LoadRefresh returns the latest refresh token of the chain started by
// the configured token origin names, or "" if there is none. A token sealed
// under another BALLOTD_SECRET is an error.
func (r *RefreshTokens) LoadRefresh(ctx context.Context, origin string) (string, error) {
	var sealed []byte
	err := r.db.GetContext(ctx, &sealed, `SELECT sealed FROM oauth_refresh_tokens WHERE origin = $1`, origin)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load refresh token: %w", err)
	}
	n := r.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("load refresh token: stored value is too short")
	}
	plain, err := r.aead.Open(nil, sealed[:n], sealed[n:], []byte(origin))
	if err != nil {
		return "", errors.New("load refresh token: cannot unseal it (was BALLOTD_SECRET changed?)")
	}
	return string(plain), nil
}

// SaveRefresh stores token as the latest of the chain origin names.
func (r *RefreshTokens) SaveRefresh(ctx context.Context, origin, token string) error {
	nonce := make([]byte, r.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("save refresh token: %w", err)
	}
	sealed := r.aead.Seal(nonce, nonce, []byte(token), []byte(origin))
	if _, err := r.db.ExecContext(ctx, `INSERT INTO oauth_refresh_tokens (origin, sealed) VALUES ($1, $2)
		ON CONFLICT (origin) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()`, origin, sealed); err != nil {
		return fmt.Errorf("save refresh token: %w", err)
	}
	return nil
}

// RefreshTokens returns the store of OAuth2 refresh tokens in the store's
// database, encrypted under a key derived from secret (see
// NewRefreshTokens).
func (s *Store) RefreshTokens(secret string) (*RefreshTokens, error) {
	return NewRefreshTokens(s.db, secret)
}
