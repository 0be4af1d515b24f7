package token

import (
	"strings"
	"testing"
)

// FuzzToken checks the token decoder never panics and accepts only the
// one canonical token of a row.
func FuzzToken(f *testing.F) {
	toks, err := NewKey("fuzzing secret, long enough")
	if err != nil {
		f.Fatal(err)
	}
	nonce := []byte("0123456789abcdef")
	good := toks.Make(Ballot, 42, nonce)
	f.Add(good, true)
	f.Add(strings.ToUpper(good), true)
	f.Add(good[:len(good)-1]+"b", true)
	f.Add(toks.Make(MessageID, 1<<47, nil), false)
	f.Add("", false)
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)
	f.Add("\x00\xff 7777777777777777777777777777", true)
	f.Fuzz(func(t *testing.T, tok string, withNonce bool) {
		n := nonce
		if !withNonce {
			n = nil
		}
		id, idErr := toks.ID(tok)
		for _, kind := range []string{Ballot, Bounce, MessageID} {
			if !toks.Verify(kind, tok, n) {
				continue
			}
			if idErr != nil {
				t.Fatalf("%q verifies as %s but ID fails: %v", tok, kind, idErr)
			}
			if want := toks.Make(kind, id, n); want != strings.ToLower(strings.TrimSpace(tok)) {
				t.Fatalf("%q verifies as %s but the token of row %d is %q", tok, kind, id, want)
			}
		}
		if oid, err := toks.Open(MessageID, tok); err == nil && toks.Make(MessageID, oid, nil) != strings.ToLower(strings.TrimSpace(tok)) {
			t.Fatalf("Open accepted non-canonical %q", tok)
		}
	})
}
