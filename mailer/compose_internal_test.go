package mailer

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// writeQP must decode back to the text (with CRLF line ends) and keep
// every encoded line within 76 characters.
func TestWriteQPRoundTrip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("abcdefghij", 20)
	cases := map[string]string{
		"empty":              "",
		"plain":              "Dear Alice,\nVote YES or NO.\n",
		"crlf":               "one\r\ntwo\r\n",
		"no final newline":   "one\ntwo",
		"equals":             "a=b == c\n",
		"utf-8":              "Zoë Ä — “quoted” 日本語\n",
		"trailing space":     "space at end \ntab at end\t\n",
		"long line":          long + "\n",
		"long utf-8":         strings.Repeat("ä", 100) + "\n",
		"long ends in space": strings.Repeat("x", 75) + " \n",
		"exactly 76":         strings.Repeat("y", 76) + "\n",
		"77 with equals":     strings.Repeat("y", 74) + "=zz\n",
		"lone CR":            "a\rb\n",
		"controls":           "bell\x07 del\x7f\n",
		"dot line":           ".\n..\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			writeQP(&buf, []byte(in))
			for _, l := range strings.Split(buf.String(), "\r\n") {
				if len(l) > 76 {
					t.Errorf("encoded line of %d characters: %q", len(l), l)
				}
				if strings.HasSuffix(l, " ") || strings.HasSuffix(l, "\t") {
					t.Errorf("encoded line ends in whitespace: %q", l)
				}
			}
			got, err := io.ReadAll(quotedprintable.NewReader(&buf))
			if err != nil {
				t.Fatalf("decode %q: %v", buf.String(), err)
			}
			want := strings.ReplaceAll(strings.ReplaceAll(in, "\r\n", "\n"), "\n", "\r\n")
			if string(got) != want {
				t.Errorf("round trip:\n got %q\nwant %q\n via %q", got, want, buf.String())
			}
		})
	}
}

// Random lines of plain, encoded and whitespace characters at every length
// around the 76-column limit round-trip and stay within it.
func TestWriteQPRandom(t *testing.T) {
	t.Parallel()
	alphabet := []string{"a", "b", " ", "\t", "=", "ä", "—", "\n", "\r\n", ".", "x"}
	seed := uint32(1)
	next := func(n int) int {
		seed = seed*1664525 + 1013904223
		return int(seed>>8) % n
	}
	for i := 0; i < 3000; i++ {
		var sb strings.Builder
		for k := next(260); k > 0; k-- {
			sb.WriteString(alphabet[next(len(alphabet))])
		}
		in := sb.String()
		var buf bytes.Buffer
		writeQP(&buf, []byte(in))
		for _, l := range strings.Split(buf.String(), "\r\n") {
			if len(l) > 76 || strings.HasSuffix(l, " ") || strings.HasSuffix(l, "\t") {
				t.Fatalf("input %q: bad encoded line %q", in, l)
			}
		}
		got, err := io.ReadAll(quotedprintable.NewReader(&buf))
		want := strings.ReplaceAll(strings.ReplaceAll(in, "\r\n", "\n"), "\n", "\r\n")
		if err != nil || string(got) != want {
			t.Fatalf("input %q: decoded %q (%v)", in, got, err)
		}
	}
}
