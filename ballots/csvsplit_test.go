package ballots

import (
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// FuzzSplitLine: on one ASCII line, splitLine reads what encoding/csv
// reads (with TrimLeadingSpace, as the importer used it), and refuses what
// it refuses; a quote left open is reported as such rather than as a row.
func FuzzSplitLine(f *testing.F) {
	for _, s := range []string{`a,b,c`, `a@x.net,"Doe, Ann",MA-07`, `a,"b""c",d`, ` a, "b" ,c`, `a,"b`, `a,b"c,d`, `a,"b"c,d`,
		`"",,""`, `a;"b;c";d`, `a, "b",  "c"`, `"a"`, `a,""""`, "a\t\"b\"\tc"} {
		f.Add(s, byte(','))
		f.Add(s, byte(';'))
		f.Add(s, byte('\t'))
	}
	f.Fuzz(func(t *testing.T, line string, sepByte byte) {
		sep := rune(sepByte)
		if !slices.Contains(separators, sep) || line == "" || strings.ContainsAny(line, "\r\n") || strings.TrimSpace(line) == "" {
			return
		}
		for i := 0; i < len(line); i++ {
			if line[i] >= 0x80 || line[i] < 0x20 && line[i] != '\t' {
				return
			}
		}
		// encoding/csv's TrimLeadingSpace eats a tab separator too
		// ("even if the field delimiter, Comma, is white space"); splitLine
		// keeps the empty fields. With tabs, compare without it.
		trimSpace := sep != '\t'
		if !trimSpace && (strings.Contains(line, " \"") || strings.Contains(line, "\t\t\"")) {
			return
		}
		cr := csv.NewReader(strings.NewReader(line))
		cr.Comma, cr.FieldsPerRecord, cr.TrimLeadingSpace = sep, -1, trimSpace
		want, werr := cr.Read()
		got, closed, gerr := splitLine(line, sep, nil)
		var perr *csv.ParseError
		switch {
		case werr == io.EOF:
			return
		case errors.As(werr, &perr) && errors.Is(perr.Err, csv.ErrQuote) && !closed:
			return // a quote open to the end of the line: both say so
		case werr != nil:
			if gerr == nil && closed {
				t.Fatalf("%q: encoding/csv refuses it (%v); splitLine read %q", line, werr, got)
			}
			return
		}
		if gerr != nil || !closed {
			t.Fatalf("%q: encoding/csv reads %q; splitLine: %v (closed %v)", line, want, gerr, closed)
		}
		trim := func(fs []string) []string {
			out := make([]string, len(fs))
			for i, f := range fs {
				out[i] = strings.TrimSpace(f)
			}
			return out
		}
		if !slices.Equal(trim(got), trim(want)) {
			t.Fatalf("%q: splitLine %q, encoding/csv %q", line, got, want)
		}
	})
}
