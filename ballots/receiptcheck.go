package ballots

import "strings"

// CanonicalReceipt returns a receipt code in the form it was mailed and
// its hash published (newReceipt: four groups of four lower-case base32
// characters joined by dashes) from what a member typed: any case, with or
// without the dashes, with spaces or the quotes of the receipt's
// printf command around it. ok is false when what is left is not sixteen
// base32 characters. The results page's check (cmd/ballotd
// results_verify.js) applies the same rule in the browser.
func CanonicalReceipt(typed string) (code string, ok bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(typed) {
		switch {
		case r >= 'a' && r <= 'z', r >= '2' && r <= '7':
			b.WriteRune(r)
		case r == ' ', r == '\t', r == '\n', r == '\r', r == '\f', r == '\v', r == '\u00a0',
			r == '-', r >= '\u2010' && r <= '\u2015',
			r == '\'', r == '"', r == '\u2018', r == '\u2019', r == '\u201c', r == '\u201d':
		default:
			return "", false
		}
	}
	s := b.String()
	if len(s) != 16 {
		return "", false
	}
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16], true
}
