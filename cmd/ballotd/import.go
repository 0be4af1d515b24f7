package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/text/encoding/charmap"

	"github.com/ballotd/ballotd/ballots"
)

// decoder returns what turns a file in the named encoding into UTF-8:
// utf-8 as it is (a row that is not UTF-8 is then rejected by its line),
// latin1 (ISO 8859-1) and windows-1252, the encodings old exports and Excel
// on Windows write.
func decoder(name string) (func(io.Reader) io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "utf-8", "utf8":
		return func(r io.Reader) io.Reader { return r }, nil
	case "latin1", "latin-1", "iso-8859-1", "iso8859-1":
		return charmap.ISO8859_1.NewDecoder().Reader, nil
	case "windows-1252", "cp1252":
		return charmap.Windows1252.NewDecoder().Reader, nil
	}
	return nil, fmt.Errorf("%q: want utf-8, latin1 or windows-1252", name)
}

// parseShare reads a share such as 10% (or 10) as a fraction, 0.10.
func parseShare(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("%q: want a percentage from 0%% to 100%%, such as 10%%", s)
	}
	if v == 0 {
		return 1e-9, nil // no removal at all: 0 would mean the default
	}
	return v / 100, nil
}

// writeRejects writes the rejected rows to path as CSV, for fixing in a
// spreadsheet and importing again: the line, the problem, then the row's
// fields under the file's own header (a row that could not be split is
// one field).
func writeRejects(path string, rep ballots.ImportReport) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(append([]string{"line", "problem"}, rep.Header...))
	for _, r := range rep.Rejected {
		row := append([]string{strconv.Itoa(r.Line), r.Problem}, r.Fields...)
		for len(row) < 2+len(rep.Header) {
			row = append(row, "") // every row as wide as the header, for a spreadsheet
		}
		w.Write(row)
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}

// joinInts writes line numbers as "3,9,12".
func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
