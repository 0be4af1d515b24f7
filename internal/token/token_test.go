package token

import (
	"regexp"
	"strings"
	"testing"
)

func TestTokensRoundTrip(t *testing.T) {
	toks, err := NewKey("0123456789abcdef-secret")
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("0123456789abcdef")
	tok := toks.Make(Ballot, 123456789, nonce)
	if !regexp.MustCompile(`^[a-z2-7]+$`).MatchString(tok) {
		t.Fatalf("token %q is not lowercase base32", tok)
	}
	if got := len(tok) * 5; got < macLen*8 {
		t.Fatalf("token carries %d bits, want at least 96 of MAC", got)
	}
	id, err := toks.ID(tok)
	if err != nil || id != 123456789 {
		t.Fatalf("ID(%q) = %d, %v; want 123456789", tok, id, err)
	}
	if !toks.Verify(Ballot, tok, nonce) {
		t.Fatal("a token does not verify")
	}
	if !toks.Verify(Ballot, strings.ToUpper(tok), nonce) {
		t.Fatal("tokens must match case-insensitively")
	}
	cases := map[string]struct {
		kind, tok string
		nonce     []byte
	}{
		"other kind":   {Bounce, tok, nonce},
		"other nonce":  {Ballot, tok, []byte("fedcba9876543210")},
		"truncated":    {Ballot, tok[:len(tok)-1], nonce},
		"altered":      {Ballot, tok[:len(tok)-1] + flip(tok[len(tok)-1]), nonce},
		"not base32":   {Ballot, "0189" + tok[4:], nonce},
		"empty":        {Ballot, "", nonce},
		"other secret": {Ballot, mustKey(t, "another-secret-of-16").Make(Ballot, 123456789, nonce), nonce},
	}
	for name, c := range cases {
		if toks.Verify(c.kind, c.tok, c.nonce) {
			t.Errorf("%s: forged token verified", name)
		}
	}
	if _, err := NewKey("short"); err == nil {
		t.Error("a short secret was accepted")
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func mustKey(t *testing.T, s string) *Key {
	toks, err := NewKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// Consecutive rows get tokens that share nothing visible: the id is masked.
func TestTokensHideTheID(t *testing.T) {
	toks := mustKey(t, "0123456789abcdef-secret")
	a, b := toks.Make(Ballot, 1, nil), toks.Make(Ballot, 2, nil)
	common := 0
	for common < len(a) && a[common] == b[common] {
		common++
	}
	if common > 3 || strings.HasPrefix(a, "aaaa") {
		t.Fatalf("tokens of rows 1 and 2 share a %d-character prefix: %s %s", common, a, b)
	}
	for _, id := range []int64{0, 1, 2, 1 << 40} {
		tok := toks.Make(Bounce, id, nil)
		if got, err := toks.Open(Bounce, tok); err != nil || got != id {
			t.Errorf("Open(Make(%d)) = %d, %v", id, got, err)
		}
	}
}

// TestTokensAreStable: a token is a function of the secret, the kind, the
// id and the nonce only, and never changes between versions of ballotd:
// ballots in members' inboxes must keep working after an upgrade. These
// were made by the first release.
func TestTokensAreStable(t *testing.T) {
	toks, err := NewKey("0123456789abcdef-secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind  string
		id    int64
		nonce string
		want  string
	}{
		{"v", 1, "0123456789abcdef", "llfekrjgfut7psqda6nfxlpppofw6"},
		{"v", 123456789, "\x00\xff\x10", "x4s2fergh7523dwyis5xrrc2minxw"},
		{"b", 42, "", "fvjxlwxsakrwhtrtn52pnvsae7xwa"},
		{"m", 1099511627776, "", "ppqk5rlj4sqz7t6ap7psifqftx6we"},
		{"u", 7, "", "du2e4b6yzz74nqorxzyno2s2l4urm"},
	} {
		var nonce []byte
		if c.nonce != "" {
			nonce = []byte(c.nonce)
		}
		// Twice: the second from a pooled HMAC state.
		for range 2 {
			if got := toks.Make(c.kind, c.id, nonce); got != c.want {
				t.Errorf("Make(%s, %d, %q) = %s, want %s", c.kind, c.id, c.nonce, got, c.want)
			}
		}
		if !toks.Verify(c.kind, c.want, nonce) {
			t.Errorf("Verify(%s, %s) = false", c.kind, c.want)
		}
	}
}

// BenchmarkTokenMake is one token; a message carries four.
func BenchmarkTokenMake(b *testing.B) {
	toks, err := NewKey("0123456789abcdef-secret")
	if err != nil {
		b.Fatal(err)
	}
	nonce := []byte("0123456789abcdef")
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		toks.Make(Ballot, i, nonce)
	}
}
