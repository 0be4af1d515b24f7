package ballots

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Token kinds: the plus tag prefix each one travels under.
const (
	TokenBallot    = "v" // ballots+v-TOKEN@: a vote reply
	TokenBounce    = "b" // ballots+b-TOKEN@: the VERP envelope sender of an outbox row
	TokenMessageID = "m" // <TOKEN@domain>: the Message-ID of an outbox row
)

// ErrBadToken means a token did not decode or did not verify.
var ErrBadToken = errors.New("bad token")

const (
	tokenIDLen  = 6  // 48-bit row id
	tokenMACLen = 12 // 96 unforgeable bits
)

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Tokens makes and checks the unforgeable tokens ballotd puts in addresses
// and ballot bodies. A token is base32(mac ‖ id ⊕ mask) in lowercase, where
// mac = HMAC-SHA256(secret, kind ‖ id ‖ nonce)[:12] (96 unforgeable bits)
// and mask is derived from the secret and the mac, so the row id does not
// show (tokens look random and reveal no counts). Safe in a local part. Tokens are
// never stored: the database keeps only the per-row nonce, so a token can be
// recomputed from BALLOTD_SECRET and checked in constant time.
type Tokens struct {
	key []byte
	// hmacs pools keyed HMAC-SHA256 states: a message carries four
	// tokens, and keying a new HMAC for each costs more than the hashing.
	hmacs sync.Pool
}

// NewTokens returns Tokens keyed by secret, which must be at least 16 bytes.
func NewTokens(secret string) (*Tokens, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("secret: need at least 16 characters, got %d", len(secret))
	}
	k := sha256.Sum256([]byte("ballotd token key\x00" + secret))
	return &Tokens{key: k[:]}, nil
}

// sum is HMAC(secret, parts…), from a pooled keyed state.
func (t *Tokens) sum(parts ...[]byte) [sha256.Size]byte {
	h, ok := t.hmacs.Get().(hash.Hash)
	if ok {
		h.Reset()
	} else {
		h = hmac.New(sha256.New, t.key)
	}
	for _, p := range parts {
		h.Write(p)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	t.hmacs.Put(h)
	return out
}

var zero = []byte{0}

func (t *Tokens) mac(kind string, idb []byte, nonce []byte) []byte {
	sum := t.sum([]byte(kind), zero, idb, nonce)
	return sum[:tokenMACLen]
}

func encodeID(id int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	return b[8-tokenIDLen:]
}

// mask is the keystream that hides the id: HMAC(secret, "id" ‖ mac).
func (t *Tokens) mask(mac []byte) []byte {
	sum := t.sum(idLabel, mac)
	return sum[:tokenIDLen]
}

var idLabel = []byte("id\x00")

// Make returns the token of kind for row id with the row's nonce (nil when
// the row has none).
func (t *Tokens) Make(kind string, id int64, nonce []byte) string {
	idb := encodeID(id)
	mac := t.mac(kind, idb, nonce)
	buf := make([]byte, 0, tokenIDLen+tokenMACLen)
	buf = append(buf, mac...)
	for i, m := range t.mask(mac) {
		buf = append(buf, idb[i]^m)
	}
	return tokenEncoding.EncodeToString(buf)
}

// open decodes a token into its mac and id bytes.
func (t *Tokens) open(token string) (mac, idb []byte, ok bool) {
	raw, ok := decodeToken(token)
	if !ok {
		return nil, nil, false
	}
	mac, idb = raw[:tokenMACLen], raw[tokenMACLen:]
	for i, m := range t.mask(mac) {
		idb[i] ^= m
	}
	return mac, idb, true
}

// ID decodes the row id from a token without verifying it; Verify must
// follow once the row's nonce is known.
func (t *Tokens) ID(token string) (int64, error) {
	_, idb, ok := t.open(token)
	if !ok {
		return 0, ErrBadToken
	}
	var b [8]byte
	copy(b[8-tokenIDLen:], idb)
	return int64(binary.BigEndian.Uint64(b[:])), nil
}

// Verify reports whether token is the kind's token for its row with nonce,
// comparing in constant time.
func (t *Tokens) Verify(kind, token string, nonce []byte) bool {
	mac, idb, ok := t.open(token)
	if !ok {
		return false
	}
	return hmac.Equal(t.mac(kind, idb, nonce), mac)
}

// Open decodes and verifies a token whose row has no nonce (outbox rows).
func (t *Tokens) Open(kind, token string) (int64, error) {
	id, err := t.ID(token)
	if err != nil {
		return 0, err
	}
	if !t.Verify(kind, token, nil) {
		return 0, ErrBadToken
	}
	return id, nil
}

// decodeToken decodes a token, accepting only its one canonical spelling
// (any case): base32 leaves unused bits in the last character, and a token
// that differs there must not pass as the same token.
func decodeToken(token string) ([]byte, bool) {
	token = strings.ToLower(strings.TrimSpace(token))
	raw, err := tokenEncoding.DecodeString(token)
	if err != nil || len(raw) != tokenIDLen+tokenMACLen || tokenEncoding.EncodeToString(raw) != token {
		return nil, false
	}
	return raw, true
}
