package ballots

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// RowError is one rejected row of an import, by its line in the file.
type RowError struct {
	Line    int    `json:"line"`
	Problem string `json:"problem"`
}

// ImportReport counts what an import did. Rejected rows are skipped; good
// rows are kept.
type ImportReport struct {
	Rows      int        `json:"rows"`
	Added     int        `json:"added"`
	Updated   int        `json:"updated"`
	Unchanged int        `json:"unchanged"`
	Rejected  []RowError `json:"rejected"`
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

// csvRows reads a CSV with a header naming at least the want columns (in
// any order, case-insensitive) and calls fn with each row and its line
// number. A row fn rejects is recorded and skipped.
func csvRows(r io.Reader, want []string, rep *ImportReport, fn func(line int, row csvRow) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		col[h] = i
	}
	for _, w := range want {
		if _, ok := col[w]; !ok {
			return fmt.Errorf("header: missing column %q (want %s)", w, strings.Join(want, ","))
		}
	}
	cr.ReuseRecord = true // fn reads the row, never keeps it
	for {
		rec, err := cr.Read()
		line, _ := cr.FieldPos(0)
		if err == io.EOF {
			return nil
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			rep.Rows++
			rep.Rejected = append(rep.Rejected, RowError{Line: perr.Line, Problem: perr.Err.Error()})
			continue
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", line, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		rep.Rows++
		if err := fn(line, csvRow{rec: rec, col: col}); err != nil {
			var f fatalRow
			if errors.As(err, &f) {
				return f.error
			}
			rep.Rejected = append(rep.Rejected, RowError{Line: line, Problem: err.Error()})
		}
	}
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
			state, err := ParseState(row.get("state"))
			if err != nil {
				return err
			}
			district := ""
			if row.get("district") != "" {
				d, err := ParseDistrict(row.get("district"))
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
	// Progress, when set, is called every few thousand rows with the number
	// of bytes of the file read so far.
	Progress func(bytesRead int64, rows int)
}

// MemberReport is what a members import did.
type MemberReport struct {
	ImportReport
	Duplicates int      `json:"duplicates"` // rows whose email came again later in the file (the last one counts)
	Removed    int      `json:"removed"`    // with Sync: members not in the file, now removed
	Sample     []string `json:"removed_sample,omitempty"`
	DryRun     bool     `json:"dry_run"`
}

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
	if err := s.DB.GetContext(ctx, &empty, isEmpty); err != nil {
		return rep, fmt.Errorf("import members: %w", err)
	}
	// One connection: the COPY runs on it directly (see copyMembers).
	conn, err := s.DB.Connx(ctx)
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
func copyMembers(ctx context.Context, conn *sqlx.Conn, cr *countingReader, opt MemberImport, rep *MemberReport, query string, withLine bool) error {
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
			d, err := ParseDistrict(row.get("district"))
			if err != nil {
				return err
			}
			if withLine {
				buf = strconv.AppendInt(buf, int64(line), 10)
				buf = append(buf, '\t')
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
	if err := copyMembers(ctx, conn, cr, opt, rep, `COPY members (email, name, state, district) FROM STDIN`, false); err != nil {
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
	if err := copyMembers(ctx, conn, cr, opt, rep, `COPY import_members (line, email, name, state, district) FROM STDIN`, true); err != nil {
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
	if !opt.Sync {
		return nil
	}
	if err := tx.SelectContext(ctx, &rep.Sample, `WITH gone AS (
			UPDATE members m SET status = 'removed', updated_at = now()
			WHERE m.status <> 'removed' AND NOT EXISTS (SELECT 1 FROM import_src i WHERE i.email = m.email)
			RETURNING m.email)
		SELECT email FROM gone ORDER BY email`); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	rep.Removed = len(rep.Sample)
	if len(rep.Sample) > 10 {
		rep.Sample = rep.Sample[:10]
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
