package ballots

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/jmoiron/sqlx"
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

// csvRows reads a CSV with a header naming at least the want columns (in
// any order, case-insensitive) and calls fn with each row as a map and its
// line number. A row fn rejects is recorded and skipped.
func csvRows(r io.Reader, want []string, rep *ImportReport, fn func(line int, row map[string]string) error) error {
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
		row := map[string]string{}
		for name, i := range col {
			if i < len(rec) {
				row[name] = strings.TrimSpace(rec[i])
			}
		}
		if err := fn(line, row); err != nil {
			var f fatalRow
			if errors.As(err, &f) {
				return f.error
			}
			rep.Rejected = append(rep.Rejected, RowError{Line: line, Problem: err.Error()})
		}
	}
}

// ParseEmail returns the bare address of s, lowercased, or an error naming
// what is wrong.
func ParseEmail(s string) (string, error) {
	if s == "" {
		return "", errors.New("email is empty")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || !strings.Contains(a.Address, "@") {
		return "", fmt.Errorf("email %q is not an address", s)
	}
	return strings.ToLower(a.Address), nil
}

// upsertOutcome turns the result of an INSERT … ON CONFLICT DO UPDATE … WHERE
// changed … RETURNING (xmax = 0) into the report's counts.
func upsertOutcome(rep *ImportReport, inserted []bool) {
	switch {
	case len(inserted) == 0:
		rep.Unchanged++
	case inserted[0]:
		rep.Added++
	default:
		rep.Updated++
	}
}

// ImportGroups upserts groups and their leaders from CSV with the columns
// name,state,district,leader_email,leader_name (one row per leader; district
// empty for a state-wide group). Idempotent: a second import of the same
// file changes nothing.
func (s *Store) ImportGroups(ctx context.Context, r io.Reader) (ImportReport, error) {
	var rep ImportReport
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		return csvRows(r, []string{"name", "state", "district", "leader_email"}, &rep, func(line int, row map[string]string) error {
			name := row["name"]
			if name == "" {
				return errors.New("name is empty")
			}
			state, err := ParseState(row["state"])
			if err != nil {
				return err
			}
			district := ""
			if row["district"] != "" {
				d, err := ParseDistrict(row["district"])
				if err != nil {
					return err
				}
				if d.State != state {
					return fmt.Errorf("district %s is not in state %s", d.Code, state)
				}
				district = d.Code
			}
			email, err := ParseEmail(row["leader_email"])
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
					RETURNING (xmax = 0)`, gid, email, row["leader_name"])
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

// ImportMembers upserts members from CSV with the columns email,name,district
// (district a House code such as MA-07; the state comes from it). A member
// who unsubscribed or bounced keeps that status. Idempotent.
func (s *Store) ImportMembers(ctx context.Context, r io.Reader) (ImportReport, error) {
	var rep ImportReport
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		return csvRows(r, []string{"email", "district"}, &rep, func(line int, row map[string]string) error {
			email, err := ParseEmail(row["email"])
			if err != nil {
				return err
			}
			d, err := ParseDistrict(row["district"])
			if err != nil {
				return err
			}
			var inserted []bool
			err = tx.SelectContext(ctx, &inserted, `INSERT INTO members (email, name, state, district) VALUES ($1, $2, $3, $4)
				ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name, state = EXCLUDED.state, district = EXCLUDED.district, updated_at = now()
				WHERE (members.name, members.state, members.district) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.state, EXCLUDED.district)
				RETURNING (xmax = 0)`, email, row["name"], d.State, d.Code)
			if err != nil {
				return fatalRow{fmt.Errorf("line %d: store member %s: %w", line, email, err)}
			}
			upsertOutcome(&rep, inserted)
			return nil
		})
	})
	if err != nil {
		return rep, fmt.Errorf("import members: %w", err)
	}
	return rep, nil
}
