package main

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/ballotd/ballotd/internal/devdb"
)

// minSecretBits is the least estimated entropy of BALLOTD_SECRET that
// passes without a warning: ballot codes carry 96 bits of MAC, and a key
// far weaker than that is the easier thing to guess.
const minSecretBits = 80

// knownSecrets are secrets published with ballotd, which anyone can read:
// the dev and demo secret in this package, and the example value of
// contrib/ballotd.env.example. Tokens keyed by them can be forged.
var knownSecrets = map[string]string{
	devSecret:                           "the public dev secret of ballotd dev and demo",
	"change-me-to-a-long-random-string": "the example of contrib/ballotd.env.example",
}

// secretBits estimates the entropy of s in bits, the lesser of two views:
// each character worth log2 of the alphabet its classes span (lowercase,
// uppercase, digits, other), except one that repeats the one before or
// continues a run (abc, 123, 987), worth 1 bit; and the Shannon entropy of
// its character counts times its length. Either catches what the other
// misses: aaaaaaaa, 0123456789abcdef, abababab.
func secretBits(s string) float64 {
	rs := []rune(s)
	if len(rs) == 0 {
		return 0
	}
	var lower, upper, digit, other bool
	counts := map[rune]int{}
	for _, r := range rs {
		counts[r]++
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		default:
			other = true
		}
	}
	pool := 0
	for _, c := range []struct {
		in   bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 33}} {
		if c.in {
			pool += c.size
		}
	}
	per := math.Log2(float64(pool))
	byClass := 0.0
	for i, r := range rs {
		predictable := i > 0 && (r == rs[i-1] || r == rs[i-1]+1 || r == rs[i-1]-1)
		if predictable {
			byClass++
		} else {
			byClass += per
		}
	}
	shannon := 0.0
	for _, n := range counts {
		p := float64(n) / float64(len(rs))
		shannon -= p * math.Log2(p)
	}
	return min(byClass, shannon*float64(len(rs)))
}

// weakSecret says what is wrong with secret as BALLOTD_SECRET, or "" when
// nothing is: a published one, or one of too little estimated entropy.
func weakSecret(secret string) string {
	if what, ok := knownSecrets[strings.TrimSpace(secret)]; ok {
		return "BALLOTD_SECRET is " + what + ": anyone can forge ballot codes with it"
	}
	if bits := secretBits(secret); bits < minSecretBits {
		return fmt.Sprintf("BALLOTD_SECRET is weak (about %.0f bits of entropy, want at least %d): a guessed key forges ballot codes", bits, minSecretBits)
	}
	return ""
}

// warnWeakSecret logs, loudly, that BALLOTD_SECRET is published or weak,
// and what to do (check and serve, at every start).
func warnWeakSecret(e *env, cfg Config) {
	if cfg.Secret == "" {
		return
	}
	if why := weakSecret(cfg.Secret); why != "" {
		e.log.Warn("WEAK SECRET: " + why + " — set a long random one, e.g. openssl rand -base64 32 (changing it voids the ballots already sent; do it between waves)")
	}
}

// guardDevSecret refuses to run dev or demo with the public devSecret
// (BALLOTD_SECRET unset, or set to it) on the database at url unless dev or
// demo made it (it carries devdb.Mark): a real list keyed by a published
// secret would let anyone forge its ballot codes.
func guardDevSecret(ctx context.Context, getenv func(string) string, url string) error {
	if s := getenv("BALLOTD_SECRET"); s != "" && s != devSecret {
		return nil
	}
	name, marked, err := devdb.Identify(ctx, url)
	if err != nil {
		return fmt.Errorf("database %s: %w", redactURL(url), err)
	}
	if marked {
		return nil
	}
	other := "unset DATABASE_URL to let dev make its own database"
	if getenv("DATABASE_URL") == "" {
		other = fmt.Sprintf("if an older dev made it, drop it (dropdb %s) and dev makes a new one", name)
	}
	return configError{fmt.Sprintf("BALLOTD_SECRET: will not key database %q with the public dev secret: dev and demo did not make it, "+
		"so it may hold real members; set BALLOTD_SECRET to a long random string (openssl rand -base64 32), or %s", name, other)}
}

// redactURL hides the user and password of a database URL.
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}
