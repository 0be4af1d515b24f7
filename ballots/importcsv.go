package ballots

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ballotd/ballotd/internal/race"
)

// RowError is one rejected row of an import, by its line in the file.
type RowError struct {
	Line    int    `json:"line"`
	Problem string `json:"problem"`
	// Fields are the row as read (one field holding the raw line when it
	// could not be split), for a rejects file to fix it from.
	Fields []string `json:"-"`
}

// ImportReport counts what an import did. Rejected rows are skipped; good
// rows are kept. Every data row of the file is in exactly one count:
// Rows = Added + Updated + Unchanged + len(Rejected) (+ Duplicates for
// members). A row is a line, except when a quoted field spans lines.
type ImportReport struct {
	Rows      int        `json:"rows"`
	Added     int        `json:"added"`
	Updated   int        `json:"updated"`
	Unchanged int        `json:"unchanged"`
	Rejected  []RowError `json:"rejected"`
	// Separator is the field separator the header was read with: "," or
	// what the file named (sep=;) or used instead (; or a tab).
	Separator string `json:"separator"`
	// Header is the file's header row, for a rejects file.
	Header []string `json:"-"`
}

// fatalRow is an error that ends an import instead of rejecting one row:
// the database failed, so the transaction cannot go on.
type fatalRow struct{ error }

// csvRow is one row of a CSV being read: its fields by column name. It is
// only valid during the call it is passed to.
type csvRow struct {
	rec []string
	col map[string]int
}

// get returns the field of the named column, trimmed, or "" if the row is
// short.
func (r csvRow) get(name string) string {
	if i, ok := r.col[name]; ok && i < len(r.rec) {
		return strings.TrimSpace(r.rec[i])
	}
	return ""
}

// maxSpan is how many lines a quoted field may span; a quote left open
// longer is an unterminated quote.
const maxSpan = 10

// lineReader reads a file line by line, numbering them, with lines to read
// again after an unterminated quote put back in front.
type lineReader struct {
	br    *bufio.Reader
	n     int // the number of the last line read from br
	again []numbered
}

// numbered is one line of the file and its number.
type numbered struct {
	text string
	n    int
}

// next returns the next line without its line ending (LF or CR LF), and
// false at the end of the file.
func (lr *lineReader) next() (numbered, bool, error) {
	if len(lr.again) > 0 {
		l := lr.again[0]
		lr.again = lr.again[1:]
		return l, true, nil
	}
	b, err := lr.br.ReadString('\n')
	if err != nil && err != io.EOF {
		return numbered{}, false, err
	}
	if b == "" && err == io.EOF {
		return numbered{}, false, nil
	}
	lr.n++
	b = strings.TrimSuffix(b, "\n")
	b = strings.TrimSuffix(b, "\r")
	return numbered{b, lr.n}, true, nil
}

// splitLine splits one line on sep, quotes and all (RFC 4180, as
// encoding/csv reads it with TrimLeadingSpace); closed is false when a
// quoted field is left open at the end of the line.
func splitLine(line string, sep rune, dst []string) ([]string, bool, error) {
	dst = dst[:0]
	if !strings.ContainsRune(line, '"') {
		for {
			i := strings.IndexRune(line, sep)
			if i < 0 {
				return append(dst, line), true, nil
			}
			dst = append(dst, line[:i])
			line = line[i+utf8.RuneLen(sep):]
		}
	}
	return splitQuoted(line, sep, dst)
}

// splitQuoted splits text holding quotes into one record, which may span
// lines inside a quoted field. closed is false when a quote is still open
// at the end of text.
func splitQuoted(text string, sep rune, dst []string) ([]string, bool, error) {
	dst = dst[:0]
	sepLen := utf8.RuneLen(sep)
	i := 0
	for {
		for i < len(text) && (text[i] == ' ' || text[i] == '\t') && rune(text[i]) != sep {
			i++
		}
		if i < len(text) && text[i] == '"' {
			var b strings.Builder
			start := i + 1
			i = start
			for {
				q := strings.IndexByte(text[i:], '"')
				if q < 0 {
					return nil, false, nil
				}
				b.WriteString(text[i : i+q])
				i += q + 1
				if i < len(text) && text[i] == '"' { // "" is a quote
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			dst = append(dst, b.String())
			switch {
			case i == len(text):
				return dst, true, nil
			case strings.HasPrefix(text[i:], string(sep)):
				i += sepLen
				continue
			case text[i] == '\n':
				return nil, true, errors.New(`a quoted field closes and the row goes on after a line break`)
			}
			return nil, true, fmt.Errorf(`column %d: extraneous or missing " in quoted-field`, i+1)
		}
		end := strings.IndexRune(text[i:], sep)
		field := text[i:]
		if end >= 0 {
			field = text[i : i+end]
		}
		if q := strings.IndexByte(field, '"'); q >= 0 {
			return nil, true, fmt.Errorf(`column %d: bare " in non-quoted-field`, i+q+1)
		}
		if strings.IndexByte(field, '\n') >= 0 {
			return nil, true, errors.New(`a quoted field closes and the row goes on after a line break`)
		}
		dst = append(dst, field)
		if end < 0 {
			return dst, true, nil
		}
		i += end + sepLen
	}
}

// separators are the field separators tried, in order, when the header
// does not name the wanted columns with the one in use.
var separators = []rune{',', ';', '\t', '|'}

// sepName names a separator for a person.
func sepName(r rune) string {
	if r == '\t' {
		return "tab"
	}
	return string(r)
}

// csvRows reads a CSV with a header naming at least the want columns (in
// any order, case-insensitive) and calls fn with each row and its line
// number. A row fn rejects is recorded and skipped, and so is a row that
// cannot be read: not UTF-8, or a quote left open (reported at the line it
// opens; the lines after it are read again on their own). A BOM, CR LF line
// ends and Excel's "sep=;" first line are understood; a header that is not
// comma-separated is read with the separator it uses (; tab |). Blank lines
// are not rows.
func csvRows(r io.Reader, want []string, rep *ImportReport, fn func(line int, row csvRow) error) error {
	lr := &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
	first, ok, err := lr.next()
	if err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if !ok {
		return errors.New("read header: the file is empty")
	}
	if strings.HasPrefix(first.text, "\xff\xfe") || strings.HasPrefix(first.text, "\xfe\xff") {
		return errors.New("the file is UTF-16 (Excel's \"Unicode text\"): save it as CSV UTF-8")
	}
	first.text = strings.TrimPrefix(first.text, "\ufeff")
	sep := ','
	if v, ok := strings.CutPrefix(strings.ToLower(first.text), "sep="); ok {
		r, size := utf8.DecodeRuneInString(v)
		if size == 0 || size != len(v) || r == '"' {
			return fmt.Errorf("line %d: %q: want sep= and one separator character, such as sep=;", first.n, first.text)
		}
		sep = r
		if first, ok, err = lr.next(); err != nil || !ok {
			return fmt.Errorf("read header: no header after line %d's sep=", first.n)
		}
	}
	if !utf8.ValidString(first.text) {
		return fmt.Errorf("header (line %d) is not UTF-8: save the file as UTF-8, or pass --encoding latin1 or windows-1252", first.n)
	}
	header, col, err := readHeader(first.text, sep, want)
	if err != nil && sep == ',' {
		for _, alt := range separators[1:] {
			if h, c, aerr := readHeader(first.text, alt, want); aerr == nil {
				header, col, err, sep = h, c, nil, alt
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("header (line %d): %w", first.n, err)
	}
	rep.Separator, rep.Header = sepName(sep), header
	reject := func(line int, problem string, fields []string) {
		rep.Rows++
		rep.Rejected = append(rep.Rejected, RowError{Line: line, Problem: problem, Fields: append([]string(nil), fields...)})
	}
	var rec []string
	for {
		l, ok, err := lr.next()
		if err != nil {
			return fmt.Errorf("read line %d: %w", lr.n+1, err)
		}
		if !ok {
			return nil
		}
		if strings.TrimSpace(l.text) == "" {
			continue
		}
		if !utf8.ValidString(l.text) {
			bad := 0
			for bad < len(l.text) {
				r, size := utf8.DecodeRuneInString(l.text[bad:])
				if r == utf8.RuneError && size == 1 {
					break
				}
				bad += size
			}
			reject(l.n, fmt.Sprintf("not UTF-8 (byte 0x%02X at column %d): save the file as UTF-8, or pass --encoding latin1 or windows-1252", l.text[bad], bad+1),
				[]string{strings.ToValidUTF8(l.text, "\uFFFD")})
			continue
		}
		var closed bool
		rec, closed, err = splitLine(l.text, sep, rec)
		if err != nil {
			reject(l.n, fmt.Sprintf("malformed quotes (%v)", err), []string{l.text})
			continue
		}
		if !closed {
			rec, err = spanning(lr, l, sep, len(header))
			if err != nil {
				return err
			}
			if rec == nil {
				reject(l.n, `unterminated quote: a quoted field opens on this line and does not close (the lines after it are read on their own)`, []string{l.text})
				continue
			}
		}
		rep.Rows++
		if err := fn(l.n, csvRow{rec: rec, col: col}); err != nil {
			var f fatalRow
			if errors.As(err, &f) {
				return f.error
			}
			rep.Rejected = append(rep.Rejected, RowError{Line: l.n, Problem: err.Error(), Fields: append([]string(nil), rec...)})
		}
	}
}

// readHeader splits the header line on sep and maps its column names,
// checking that the want columns are there.
func readHeader(text string, sep rune, want []string) ([]string, map[string]int, error) {
	header, _, err := splitLine(text, sep, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed quotes (%v)", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, w := range want {
		if _, ok := col[w]; !ok {
			msg := fmt.Sprintf("missing column %q (want %s, separated by commas)", w, strings.Join(want, ","))
			for _, alt := range separators {
				if alt != sep && strings.ContainsRune(text, alt) {
					msg += fmt.Sprintf("; the header holds %q: a file separated by %s needs the columns %s", sepName(alt), sepName(alt), strings.Join(want, string(alt)))
					break
				}
			}
			return nil, nil, errors.New(msg)
		}
	}
	return header, col, nil
}

// spanning reads the record whose quoted field opened on line first and
// goes on over the next lines. It returns nil when the quote is left open
// for maxSpan lines or to the end of the file, or when closing it would
// take in a line that reads as a row of its own (a stray quote swallowing
// rows): then the lines read past first are put back to be read again.
func spanning(lr *lineReader, first numbered, sep rune, columns int) ([]string, error) {
	text := first.text
	var taken []numbered
	giveBack := func() {
		lr.again = append(taken, lr.again...)
	}
	for len(taken) < maxSpan {
		l, ok, err := lr.next()
		if err != nil {
			return nil, fmt.Errorf("read line %d: %w", lr.n+1, err)
		}
		if !ok {
			break
		}
		taken = append(taken, l)
		if columns > 1 && strings.Count(l.text, string(sep)) >= columns-1 && !strings.Contains(l.text, `"`) || !utf8.ValidString(l.text) {
			break // a row of its own: the quote above it is a stray one
		}
		text += "\n" + l.text
		rec, closed, err := splitQuoted(text, sep, nil)
		if !closed {
			continue
		}
		if err != nil || len(rec) > columns {
			break
		}
		return rec, nil
	}
	giveBack()
	return nil, nil
}

// plainAddress reports whether s is a bare address made only of the
// characters nearly every real address uses (letters, digits, . _ % + -),
// with a dotted domain: the fast path of a million-row import. Anything
// else goes through net/mail.
func plainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.IndexByte(s[at+1:], '@') >= 0 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") ||
		!strings.Contains(domain, ".") || domain[0] == '.' || domain[len(domain)-1] == '.' || strings.Contains(domain, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '@', c == '-':
		case (c == '_' || c == '%' || c == '+') && i < at:
		default:
			return false
		}
	}
	return true
}

// ParseEmail returns the bare address of s, lowercased, or an error naming
// what is wrong.
func ParseEmail(s string) (string, error) {
	if s == "" {
		return "", errors.New("email is empty")
	}
	if plainAddress(s) {
		return strings.ToLower(s), nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil || !strings.Contains(a.Address, "@") {
		return "", fmt.Errorf("email %q is not an address", s)
	}
	return strings.ToLower(a.Address), nil
}

// ImportGroups upserts groups and their leaders from CSV with the columns
// name,state,district,leader_email,leader_name (one row per leader; district
// empty for a state-wide group). Idempotent: a second import of the same
// file changes nothing.
func (s *Store) ImportGroups(ctx context.Context, r io.Reader) (ImportReport, error) {
	var rep ImportReport
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		return csvRows(r, []string{"name", "state", "district", "leader_email"}, &rep, func(line int, row csvRow) error {
			name := cleanText(row.get("name"))
			if name == "" {
				return errors.New("name is empty")
			}
			state, err := race.ParseState(row.get("state"))
			if err != nil {
				return err
			}
			district := ""
			if row.get("district") != "" {
				d, err := race.ParseDistrict(row.get("district"))
				if err != nil {
					return err
				}
				if d.State != state {
					return fmt.Errorf("district %s is not in state %s", d.Code, state)
				}
				district = d.Code
			}
			email, err := ParseEmail(row.get("leader_email"))
			if err != nil {
				return fmt.Errorf("leader_email: %w", err)
			}
			var gid int64
			var groupInserted []bool
			err = tx.SelectContext(ctx, &groupInserted, `INSERT INTO groups (name, state, district) VALUES ($1, $2, $3)
				ON CONFLICT ((lower(name))) DO UPDATE SET state = EXCLUDED.state, district = EXCLUDED.district, updated_at = now()
				WHERE (groups.state, groups.district) IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.district)
				RETURNING (xmax = 0)`, name, state, district)
			if err == nil {
				err = tx.GetContext(ctx, &gid, `SELECT id FROM groups WHERE lower(name) = lower($1)`, name)
			}
			var leaderInserted []bool
			if err == nil {
				err = tx.SelectContext(ctx, &leaderInserted, `INSERT INTO group_leaders (group_id, email, name) VALUES ($1, $2, $3)
					ON CONFLICT (group_id, email) DO UPDATE SET name = EXCLUDED.name
					WHERE group_leaders.name IS DISTINCT FROM EXCLUDED.name
					RETURNING (xmax = 0)`, gid, email, cleanText(row.get("leader_name")))
			}
			if err != nil {
				return fatalRow{fmt.Errorf("line %d: store group %q: %w", line, name, err)}
			}
			switch {
			case len(groupInserted) == 1 && groupInserted[0]:
				rep.Added++
			case len(groupInserted) == 1 || len(leaderInserted) == 1:
				rep.Updated++
			default:
				rep.Unchanged++
			}
			return nil
		})
	})
	if err != nil {
		return rep, fmt.Errorf("import groups: %w", err)
	}
	return rep, nil
}

// MemberImport says how to import members.
type MemberImport struct {
	// DryRun computes the report and changes nothing.
	DryRun bool
	// Sync marks members missing from the file as removed (no more
	// ballots); their history stays. Without it nobody is removed.
	Sync bool
	// MaxRemove is the largest share (0 to 1) of a state's members a Sync
	// may remove; more is refused, the import changes nothing (a file cut
	// short, or of one state only, must not remove the rest). 0 is 0.10.
	MaxRemove float64
	// Progress, when set, is called every few thousand rows with the number
	// of bytes of the file read so far.
	Progress func(bytesRead int64, rows int)
}

// MemberReport is what a members import did.
type MemberReport struct {
	ImportReport
	Duplicates int `json:"duplicates"` // rows whose email came again later in the file (the last one counts)
	// DuplicateRows lists each email found on several rows, with their
	// lines: the last one counts, the others are the Duplicates.
	DuplicateRows []Duplicate `json:"duplicate_rows"`
	Removed       int         `json:"removed"` // with Sync: members not in the file, now removed (with DryRun: who would be)
	// Sample is some of the removed, in email order; with DryRun, all.
	Sample []string `json:"removed_sample,omitempty"`
	DryRun bool     `json:"dry_run"`
	// SyncRefused, in a dry run, says why a real run's Sync would be
	// refused (see MaxRemove); a real run returns it as its error.
	SyncRefused string `json:"sync_refused,omitempty"`
}

// Duplicate is an email found on several rows of a members file.
type Duplicate struct {
	Email string `json:"email"`
	Lines []int  `json:"lines"` // in file order; the last one counts
}

// Accounted checks that every row of the file is in exactly one count.
func (r MemberReport) Accounted() error {
	if sum := r.Added + r.Updated + r.Unchanged + len(r.Rejected) + r.Duplicates; sum != r.Rows {
		return fmt.Errorf("%d rows read but %d accounted for (%d added, %d updated, %d unchanged, %d rejected, %d duplicates)",
			r.Rows, sum, r.Added, r.Updated, r.Unchanged, len(r.Rejected), r.Duplicates)
	}
	return nil
}

// ErrSyncRefused is a sync that would remove more of a state's members
// than MemberImport.MaxRemove allows.
var ErrSyncRefused = errors.New("sync refused")

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

// Read implements io.Reader, counting the bytes.
func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ImportMembers upserts members from CSV with the columns email,name,district
// (district a House code such as MA-07; the state comes from it). It streams
// the file: rows are checked in Go (bad ones reported by line and skipped)
// and sent with COPY, straight into an empty table or into a staging table
// applied in one set-based upsert, so memory stays flat in the file's size
// and a million rows take seconds. Idempotent: importing the same file again changes nothing. A
// member who unsubscribed or bounced keeps that status; one removed by an
// earlier sync and present again becomes active.
func (s *Store) ImportMembers(ctx context.Context, r io.Reader) (ImportReport, error) {
	rep, err := s.ImportMemberList(ctx, r, MemberImport{})
	return rep.ImportReport, err
}

// ImportMemberList is ImportMembers with options and the full report.
//
// Into an empty members table (the first import, the usual one for a big
// list) the rows go straight in with COPY; otherwise through a staging
// table and one set-based upsert. Both give the same report and the same
// rows.
func (s *Store) ImportMemberList(ctx context.Context, r io.Reader, opt MemberImport) (MemberReport, error) {
	rep := MemberReport{DryRun: opt.DryRun}
	cr := &countingReader{r: r}
	// Looked at without a lock first, so that an import into a table in use
	// never asks for the exclusive lock; then again under the lock, since a
	// sign-up may have come in between.
	const isEmpty = `SELECT NOT EXISTS (SELECT 1 FROM members)`
	var empty bool
	if err := s.db.GetContext(ctx, &empty, isEmpty); err != nil {
		return rep, fmt.Errorf("import members: %w", err)
	}
	// One connection: the COPY runs on it directly (see copyMembers).
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return rep, fmt.Errorf("import members: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return rep, fmt.Errorf("import members: begin: %w", err)
	}
	defer tx.Rollback()
	if empty {
		if _, err := tx.ExecContext(ctx, `LOCK TABLE members IN ACCESS EXCLUSIVE MODE`); err != nil {
			return rep, fmt.Errorf("import members: lock: %w", err)
		}
		if err := tx.GetContext(ctx, &empty, isEmpty); err != nil {
			return rep, fmt.Errorf("import members: %w", err)
		}
	}
	if empty {
		err = loadFirst(ctx, conn, tx, cr, opt, &rep)
	} else {
		err = loadUpsert(ctx, conn, tx, cr, opt, &rep)
	}
	if err == nil {
		err = rep.Accounted()
	}
	if err != nil {
		return rep, fmt.Errorf("import members: %w", err)
	}
	if opt.DryRun {
		return rep, nil // the deferred rollback undoes it all
	}
	if err := tx.Commit(); err != nil {
		return rep, fmt.Errorf("import members: commit: %w", err)
	}
	return rep, nil
}

// copyData is what lib/pq's COPY statement offers beyond driver.Stmt: rows
// already in COPY's text format, sent as they are.
type copyData interface {
	CopyData(ctx context.Context, rows string) (driver.Result, error)
}

// copyMembers checks the rows of a members CSV in Go (bad ones reported by
// line and skipped) and streams the good ones to the COPY query, run on
// conn inside its open transaction, whose columns are (line,) email, name,
// state, district. The rows are written in COPY's text format into one
// reused buffer and handed to the driver 64 KB at a time: a value at a time
// through database/sql cost more CPU than all the parsing.
func copyMembers(ctx context.Context, conn *sqlx.Conn, cr *countingReader, opt MemberImport, rep *MemberReport, query string, withLine bool, lines *[]int32) error {
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("copy: the driver (%T) cannot prepare", dc)
		}
		st, err := pc.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		defer st.Close()
		cd, ok := st.(copyData)
		if !ok {
			return fmt.Errorf("copy: the driver (%T) cannot send COPY data", st)
		}
		const chunk = 64 << 10
		buf := make([]byte, 0, chunk+1024)
		flush := func() error {
			if err := ctx.Err(); err != nil {
				return err // before the driver turns it into a bad connection
			}
			if len(buf) == 0 {
				return nil
			}
			_, err := cd.CopyData(ctx, string(buf[:len(buf)-1])) // it ends the last row itself
			buf = buf[:0]
			return err
		}
		err = csvRows(cr, []string{"email", "district"}, &rep.ImportReport, func(line int, row csvRow) error {
			email, err := ParseEmail(row.get("email"))
			if err != nil {
				return err
			}
			d, err := race.ParseDistrict(row.get("district"))
			if err != nil {
				return err
			}
			if withLine {
				buf = strconv.AppendInt(buf, int64(line), 10)
				buf = append(buf, '\t')
			}
			if lines != nil {
				*lines = append(*lines, int32(line))
			}
			buf = appendCopyText(buf, email)
			buf = append(buf, '\t')
			buf = appendCopyText(buf, cleanText(row.get("name")))
			buf = append(buf, '\t')
			buf = appendCopyText(buf, d.State)
			buf = append(buf, '\t')
			buf = appendCopyText(buf, d.Code)
			buf = append(buf, '\n')
			if len(buf) >= chunk {
				if err := flush(); err != nil {
					return fatalRow{fmt.Errorf("line %d: copy: %w", line, err)}
				}
			}
			if opt.Progress != nil && rep.Rows%5000 == 0 {
				opt.Progress(cr.n, rep.Rows)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := flush(); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if err := st.Close(); err != nil { // ends the COPY, with its error if any
			return fmt.Errorf("copy: %w", err)
		}
		if opt.Progress != nil {
			opt.Progress(cr.n, rep.Rows)
		}
		return nil
	})
}

// appendCopyText appends s to b as a field of COPY's text format.
func appendCopyText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, c)
		}
	}
	return b
}

// loadFirst imports into an empty members table, locked exclusively. With
// the unique index on email dropped, the rows are copied straight into
// members: no staging table, no sort, no index kept up row by row (the
// standard bulk load). The index is then built once. Only if that build
// finds an email twice in the file are the earlier rows of each such email
// deleted (ids follow the file, so the highest id is the last row, the one
// that counts) and the index built again.
func loadFirst(ctx context.Context, conn *sqlx.Conn, tx *sqlx.Tx, cr *countingReader, opt MemberImport, rep *MemberReport) error {
	for _, q := range []string{
		`SET LOCAL maintenance_work_mem = '256MB'`,
		`ALTER TABLE members DROP CONSTRAINT members_email_key`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	// The line of each row copied, in order: the ids of one COPY into a
	// locked table follow one another, so the n-th row's id is the first
	// id + n, and a duplicate's ids give its lines.
	var lines []int32
	if err := copyMembers(ctx, conn, cr, opt, rep, `COPY members (email, name, state, district) FROM STDIN`, false, &lines); err != nil {
		return err
	}
	const addKey = `ALTER TABLE members ADD CONSTRAINT members_email_key UNIQUE (email)`
	if _, err := tx.ExecContext(ctx, `SAVEPOINT email_key`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, addKey)
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "23505" {
		var res sql.Result
		_, err = tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT email_key`)
		if err == nil {
			err = firstDuplicates(ctx, tx, lines, rep)
		}
		if err == nil {
			res, err = tx.ExecContext(ctx, `DELETE FROM members m
				USING (SELECT email, max(id) AS last FROM members GROUP BY email HAVING count(*) > 1) d
				WHERE m.email = d.email AND m.id <> d.last`)
		}
		if err == nil {
			n, _ := res.RowsAffected()
			rep.Duplicates = int(n)
			_, err = tx.ExecContext(ctx, addKey)
		}
	}
	if err != nil {
		return fmt.Errorf("email index: %w", err)
	}
	rep.Added = rep.Rows - len(rep.Rejected) - rep.Duplicates
	return nil // with Sync, nobody to remove: the table held only this file
}

// loadUpsert imports into a members table that has rows: COPY into a
// staging table, then one sort dedupes the file (the last row of an email
// wins), a plain UPDATE changes what changed and an anti-join INSERT adds
// what is new. This is much faster than INSERT … ON CONFLICT, whose
// speculative insertion costs per row; the table lock keeps a concurrent
// sign-up from racing the anti-join (writers wait the few seconds the
// upsert takes; readers never wait).
func loadUpsert(ctx context.Context, conn *sqlx.Conn, tx *sqlx.Tx, cr *countingReader, opt MemberImport, rep *MemberReport) error {
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE import_members (line int, email text, name text, state text, district text) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("staging table: %w", err)
	}
	if err := copyMembers(ctx, conn, cr, opt, rep, `COPY import_members (line, email, name, state, district) FROM STDIN`, true, nil); err != nil {
		return err
	}
	// The sort compares bytes (COLLATE "C"): equality is the same as under
	// the database's collation, the order does not matter, and it sorts in
	// less than half the time.
	var distinct int
	for _, q := range []struct {
		sql string
		n   *int
	}{
		{`SET LOCAL work_mem = '256MB'`, nil},
		{`LOCK TABLE members IN SHARE ROW EXCLUSIVE MODE`, nil},
		{`CREATE TEMP TABLE import_src ON COMMIT DROP AS
			SELECT DISTINCT ON (email COLLATE "C") email, name, state, district FROM import_members ORDER BY email COLLATE "C", line DESC`, &distinct},
		{`ANALYZE import_src`, nil},
		{`UPDATE members m SET name = s.name, state = s.state, district = s.district,
				status = CASE WHEN m.status = 'removed' THEN 'active' ELSE m.status END, updated_at = now()
			FROM import_src s
			WHERE m.email = s.email AND ((m.name, m.state, m.district) IS DISTINCT FROM (s.name, s.state, s.district) OR m.status = 'removed')`, &rep.Updated},
		{`INSERT INTO members (email, name, state, district)
			SELECT s.email, s.name, s.state, s.district FROM import_src s
			WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.email = s.email)`, &rep.Added},
	} {
		res, err := tx.ExecContext(ctx, q.sql)
		if err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
		if q.n != nil {
			n, _ := res.RowsAffected()
			*q.n = int(n)
		}
	}
	good := rep.Rows - len(rep.Rejected)
	rep.Duplicates = good - distinct
	rep.Unchanged = distinct - rep.Added - rep.Updated
	if rep.Duplicates > 0 {
		var dups []struct {
			Email string        `db:"email"`
			Lines pq.Int64Array `db:"lines"`
		}
		if err := tx.SelectContext(ctx, &dups, `SELECT email, array_agg(line ORDER BY line) AS lines FROM import_members
			GROUP BY email HAVING count(*) > 1 ORDER BY min(line)`); err != nil {
			return fmt.Errorf("duplicates: %w", err)
		}
		for _, d := range dups {
			dup := Duplicate{Email: d.Email}
			for _, l := range d.Lines {
				dup.Lines = append(dup.Lines, int(l))
			}
			rep.DuplicateRows = append(rep.DuplicateRows, dup)
		}
	}
	if !opt.Sync {
		return nil
	}
	return syncRemove(ctx, tx, opt, rep)
}

// syncRemove marks removed the members the file does not hold, unless that
// is more than opt.MaxRemove of a state's members: then it returns
// ErrSyncRefused naming the states (in a dry run it says so in the report
// and goes on, to list who would go).
func syncRemove(ctx context.Context, tx *sqlx.Tx, opt MemberImport, rep *MemberReport) error {
	limit := opt.MaxRemove
	if limit <= 0 {
		limit = 0.10
	}
	var states []struct {
		State   string `db:"state"`
		Members int    `db:"members"`
		Leaving int    `db:"leaving"`
	}
	if err := tx.SelectContext(ctx, &states, `SELECT m.state, count(*) AS members,
			count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM import_src i WHERE i.email = m.email)) AS leaving
		FROM members m WHERE m.status <> 'removed' GROUP BY m.state ORDER BY m.state`); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	var over []string
	for _, s := range states {
		if s.Leaving > 0 && float64(s.Leaving) > limit*float64(s.Members) {
			over = append(over, fmt.Sprintf("%d of %d members of %s (%.0f %%)", s.Leaving, s.Members, s.State, 100*float64(s.Leaving)/float64(s.Members)))
		}
	}
	if len(over) > 0 {
		msg := fmt.Sprintf("it would remove %s, above the limit of %g %% of a state's members: is the file complete? "+
			"Look with --dry-run, then pass --max-remove with the share to allow (e.g. --max-remove 100%%)", strings.Join(over, ", "), limit*100)
		if !opt.DryRun {
			return fmt.Errorf("%w: %s", ErrSyncRefused, msg)
		}
		rep.SyncRefused = msg
	}
	if err := tx.SelectContext(ctx, &rep.Sample, `WITH gone AS (
			UPDATE members m SET status = 'removed', updated_at = now()
			WHERE m.status <> 'removed' AND NOT EXISTS (SELECT 1 FROM import_src i WHERE i.email = m.email)
			RETURNING m.email)
		SELECT email FROM gone ORDER BY email`); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	rep.Removed = len(rep.Sample)
	if len(rep.Sample) > 10 && !opt.DryRun {
		rep.Sample = rep.Sample[:10]
	}
	return nil
}

// firstDuplicates lists the emails found on several rows of a first
// import, by line, from the ids the COPY gave them (see loadFirst).
func firstDuplicates(ctx context.Context, tx *sqlx.Tx, lines []int32, rep *MemberReport) error {
	var span struct {
		First int64 `db:"first"`
		Last  int64 `db:"last"`
	}
	if err := tx.GetContext(ctx, &span, `SELECT min(id) AS first, max(id) AS last FROM members`); err != nil {
		return fmt.Errorf("duplicates: %w", err)
	}
	var dups []struct {
		Email string        `db:"email"`
		IDs   pq.Int64Array `db:"ids"`
	}
	if err := tx.SelectContext(ctx, &dups, `SELECT email, array_agg(id ORDER BY id) AS ids
		FROM members GROUP BY email HAVING count(*) > 1 ORDER BY min(id)`); err != nil {
		return fmt.Errorf("duplicates: %w", err)
	}
	consecutive := span.Last-span.First+1 == int64(len(lines))
	for _, d := range dups {
		dup := Duplicate{Email: d.Email}
		for _, id := range d.IDs {
			if consecutive {
				dup.Lines = append(dup.Lines, int(lines[id-span.First]))
			}
		}
		rep.DuplicateRows = append(rep.DuplicateRows, dup)
	}
	return nil
}

// cleanText turns control characters (a CR or LF smuggled into a quoted
// CSV field) into spaces: names end up in headers and one-line listings.
func cleanText(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s))
}
