package ballots

import "testing"

// TestCanonicalReceipt: a receipt code typed in any case, with or without
// its dashes, with spaces or the quotes of the receipt's printf command, is
// the code as mailed, and so has the published hash; anything else is
// refused rather than guessed at.
func TestCanonicalReceipt(t *testing.T) {
	t.Parallel()
	for i := 0; i < 20; i++ {
		code := newReceipt()
		if got, ok := CanonicalReceipt(code); !ok || got != code {
			t.Fatalf("CanonicalReceipt(%q) = %q, %v: a mailed code is not its own canonical form", code, got, ok)
		}
	}
	for _, tc := range []struct{ typed, want string }{
		{"abcd-efgh-ijkl-mn23", "abcd-efgh-ijkl-mn23"},
		{"ABCD-EFGH-IJKL-MN23", "abcd-efgh-ijkl-mn23"},
		{"abcdefghijklmn23", "abcd-efgh-ijkl-mn23"},
		{"  Abcd efgh\tijkl mn23\n", "abcd-efgh-ijkl-mn23"},
		{"'abcd-efgh-ijkl-mn23'", "abcd-efgh-ijkl-mn23"},
		{"\u2018abcd\u2013efgh\u2013ijkl\u2013mn23\u2019", "abcd-efgh-ijkl-mn23"},
		{"abcd-efgh-ijkl-mn2", ""},   // too short
		{"abcd-efgh-ijkl-mn234", ""}, // too long
		{"abcd-efgh-ijkl-mn01", ""},  // 0 and 1 are not base32
		{"abcd-efgh-ijkl-mn2é", ""},  // not base32
		{"abcd.efgh.ijkl.mn23", ""},  // not a separator a receipt uses
		{"", ""},
	} {
		got, ok := CanonicalReceipt(tc.typed)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("CanonicalReceipt(%q) = %q, %v; want %q", tc.typed, got, ok, tc.want)
		}
	}
	if ReceiptHash("abcd-efgh-ijkl-mn23") == ReceiptHash("ABCD-EFGH-IJKL-MN23") {
		t.Error("the published hash does not depend on case: the page would not need the canonical form")
	}
}
