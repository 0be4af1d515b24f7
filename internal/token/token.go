// Package token makes and checks the unforgeable row tokens ballotd puts in
// addresses (ballots+v-TOKEN@), Message-IDs and ballot bodies, and names
// their kinds. It is pure: ballots, inbound and mailer share it, and it
// holds no state beyond the key derived from BALLOTD_SECRET.
package token

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

// Token kinds: the plus tag prefix each one travels under. The kind is
// also part of the MAC, so a token of one kind never passes as another.
const (
	Ballot    = "v" // ballots+v-TOKEN@: a vote reply
	Bounce    = "b" // ballots+b-TOKEN@: the VERP envelope sender of an outbox row
	MessageID = "m" // <TOKEN@domain>: the Message-ID of an outbox row

	Confirm     = "c" // ballots+c-TOKEN@: confirms a sign-up (member id)
	Unsubscribe = "u" // ballots+u-TOKEN@ and /unsubscribe?t=TOKEN (member id)
	Staff       = "s" // ballots+s-TOKEN@: staff commands (outbox id of the notice)
	// Questionnaire is a campaign's reply to the policy questionnaire
	// (ballots+q-TOKEN@; candidate id).
	Questionnaire = "q"
	// Change confirms a change to an existing member (the id of its
	// member_changes row). It travels under the c tag too
	// (ballots+c-TOKEN@); its own kind in the MAC keeps it apart from a
	// sign-up confirmation.
	Change = "c-change"
)

// ErrInvalid means a token did not decode or did not verify.
var ErrInvalid = errors.New("bad token")

const (
	idLen  = 6  // 48-bit row id
	macLen = 12 // 96 unforgeable bits
)

var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Key makes and checks the unforgeable tokens ballotd puts in addresses
// and ballot bodies. A token is base32(mac ‖ id ⊕ mask) in lowercase, where
// mac = HMAC-SHA256(secret, kind ‖ id ‖ nonce)[:12] (96 unforgeable bits)
// and mask is derived from the secret and the mac, so the row id does not
// show (tokens look random and reveal no counts). Safe in a local part. Tokens are
// never stored: the database keeps only the per-row nonce, so a token can be
// recomputed from BALLOTD_SECRET and checked in constant time.
type Key struct {
	key []byte
	// hmacs pools keyed HMAC-SHA256 states: a message carries four
	// tokens, and keying a new HMAC for each costs more than the hashing.
	hmacs sync.Pool
}

// NewKey returns the Key derived from secret, which must be at least 16 bytes.
func NewKey(secret string) (*Key, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("secret: need at least 16 characters, got %d", len(secret))
	}
	k := sha256.Sum256([]byte("ballotd token key\x00" + secret))
	return &Key{key: k[:]}, nil
}

// sum is HMAC(secret, parts…), from a pooled keyed state.
func (t *Key) sum(parts ...[]byte) [sha256.Size]byte {
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

func (t *Key) mac(kind string, idb []byte, nonce []byte) []byte {
	sum := t.sum([]byte(kind), zero, idb, nonce)
	return sum[:macLen]
}

func encodeID(id int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	return b[8-idLen:]
}

// mask is the keystream that hides the id: HMAC(secret, "id" ‖ mac).
func (t *Key) mask(mac []byte) []byte {
	sum := t.sum(idLabel, mac)
	return sum[:idLen]
}

var idLabel = []byte("id\x00")

// Make returns the token of kind for row id with the row's nonce (nil when
// the row has none).
func (t *Key) Make(kind string, id int64, nonce []byte) string {
	idb := encodeID(id)
	mac := t.mac(kind, idb, nonce)
	buf := make([]byte, 0, idLen+macLen)
	buf = append(buf, mac...)
	for i, m := range t.mask(mac) {
		buf = append(buf, idb[i]^m)
	}
	return encoding.EncodeToString(buf)
}

// open decodes a token into its mac and id bytes.
func (t *Key) open(token string) (mac, idb []byte, ok bool) {
	raw, ok := decode(token)
	if !ok {
		return nil, nil, false
	}
	mac, idb = raw[:macLen], raw[macLen:]
	for i, m := range t.mask(mac) {
		idb[i] ^= m
	}
	return mac, idb, true
}

// ID decodes the row id from a token without verifying it; Verify must
// follow once the row's nonce is known.
func (t *Key) ID(token string) (int64, error) {
	_, idb, ok := t.open(token)
	if !ok {
		return 0, ErrInvalid
	}
	var b [8]byte
	copy(b[8-idLen:], idb)
	return int64(binary.BigEndian.Uint64(b[:])), nil
}

// Verify reports whether token is the kind's token for its row with nonce,
// comparing in constant time.
func (t *Key) Verify(kind, token string, nonce []byte) bool {
	mac, idb, ok := t.open(token)
	if !ok {
		return false
	}
	return hmac.Equal(t.mac(kind, idb, nonce), mac)
}

// Open decodes and verifies a token whose row has no nonce (outbox rows).
func (t *Key) Open(kind, token string) (int64, error) {
	id, err := t.ID(token)
	if err != nil {
		return 0, err
	}
	if !t.Verify(kind, token, nil) {
		return 0, ErrInvalid
	}
	return id, nil
}

// decode decodes a token, accepting only its one canonical spelling
// (any case): base32 leaves unused bits in the last character, and a token
// that differs there must not pass as the same token.
func decode(token string) ([]byte, bool) {
	token = strings.ToLower(strings.TrimSpace(token))
	raw, err := encoding.DecodeString(token)
	if err != nil || len(raw) != idLen+macLen || encoding.EncodeToString(raw) != token {
		return nil, false
	}
	return raw, true
}
