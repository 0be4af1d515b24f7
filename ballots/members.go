package ballots

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/internal/race"
)

// Member status values.
const (
	MemberActive       = "active"
	MemberPending      = "pending"
	MemberUnsubscribed = "unsubscribed"
	MemberBounced      = "bounced"
)

// SignUpResult is what signing up did.
type SignUpResult struct {
	MemberID int64
	// Status is the member's status now: pending for a new sign-up (or
	// one still unconfirmed), else unchanged.
	Status string
	// Same is true when the address is an active member already signed
	// up with this name and district: nothing to change.
	Same bool
	// Change is set when the sign-up would change an existing member
	// (name, district or status): nothing changed yet; the change waits
	// for the registered address to confirm it (ConfirmChange).
	Change *MemberChange
}

// SignUp records a sign-up request in tx. A new address becomes a pending
// member until it confirms (double opt-in); a pending one is updated in
// place, still pending. An existing member (active, unsubscribed, bounced
// or removed) is never changed by a sign-up: what it would change — name,
// district, or status back to active — is recorded as a MemberChange that
// only a reply from the registered address applies, so that a message
// forged in a member's name cannot move them out of their district or
// rename them. district is a House district code; an empty name keeps the
// member's name.
func SignUp(ctx context.Context, tx *sqlx.Tx, email, name, district string, inboundID int64) (SignUpResult, error) {
	var r SignUpResult
	rc, err := race.ParseDistrict(district)
	if err != nil {
		return r, err
	}
	email = strings.ToLower(strings.TrimSpace(email))
	name = strings.TrimSpace(name)
	var cur []MemberRef
	if err := tx.SelectContext(ctx, &cur, `SELECT id, email, name, district, status FROM members WHERE email = $1 FOR UPDATE`, email); err != nil {
		return r, fmt.Errorf("sign up %s: %w", email, err)
	}
	if len(cur) == 0 || cur[0].Status == MemberPending {
		err = tx.QueryRowxContext(ctx, `INSERT INTO members (email, name, state, district, status) VALUES ($1, $2, $3, $4, 'pending')
			ON CONFLICT (email) DO UPDATE SET
				name = CASE WHEN EXCLUDED.name = '' THEN members.name ELSE EXCLUDED.name END,
				state = EXCLUDED.state, district = EXCLUDED.district, updated_at = now()
			WHERE members.status = 'pending'
			RETURNING id, status`, email, name, rc.State, rc.Code).Scan(&r.MemberID, &r.Status)
		if err != nil {
			return r, fmt.Errorf("sign up %s: %w", email, err)
		}
		return r, nil
	}
	m := cur[0]
	r.MemberID, r.Status = m.ID, m.Status
	if name == "" {
		name = m.Name
	}
	if m.Status == MemberActive && name == m.Name && rc.Code == m.District {
		r.Same = true
		return r, nil
	}
	c := MemberChange{MemberID: m.ID, Email: m.Email, OldName: m.Name, OldDistrict: m.District, OldStatus: m.Status,
		Name: name, District: rc.Code, Status: MemberActive}
	// Only the latest request can be confirmed: a flood of forged
	// requests leaves one, and a confirmation of an older one does nothing.
	if _, err := tx.ExecContext(ctx, `UPDATE member_changes SET outcome = 'superseded', done_at = now()
		WHERE member_id = $1 AND outcome = 'waiting'`, m.ID); err != nil {
		return r, fmt.Errorf("sign up %s: supersede changes: %w", email, err)
	}
	err = tx.GetContext(ctx, &c.ID, `INSERT INTO member_changes (member_id, old_name, old_district, old_status, name, state, district, status, inbound_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		m.ID, m.Name, m.District, m.Status, c.Name, rc.State, c.District, c.Status, nullID(inboundID))
	if err != nil {
		return r, fmt.Errorf("sign up %s: record change: %w", email, err)
	}
	r.Change = &c
	return r, nil
}

// MemberChange is a change to an existing member asked for by a sign-up,
// waiting for the member's registered address to confirm it.
type MemberChange struct {
	ID       int64  `db:"id"`
	MemberID int64  `db:"member_id"`
	Email    string `db:"email"` // the registered address
	// The member as it was when the change was asked for, and as it
	// would be.
	OldName     string `db:"old_name"`
	OldDistrict string `db:"old_district"`
	OldStatus   string `db:"old_status"`
	Name        string `db:"name"`
	District    string `db:"district"`
	Status      string `db:"status"`
	// Outcome is waiting, applied, superseded (a later request came) or
	// stale (the member changed otherwise, or the request expired).
	Outcome string `db:"outcome"`
}

// ChangeValidFor is how long a member change can be confirmed.
const ChangeValidFor = 7 * 24 * time.Hour

// MemberChangeOf returns member change id.
func MemberChangeOf(ctx context.Context, q sqlx.QueryerContext, id int64) (MemberChange, error) {
	var c MemberChange
	err := sqlx.GetContext(ctx, q, &c, `SELECT c.id, c.member_id, m.email, c.old_name, c.old_district, c.old_status,
		c.name, c.district, c.status, c.outcome
		FROM member_changes c JOIN members m ON m.id = c.member_id WHERE c.id = $1`, id)
	if err != nil {
		return c, notFound(err, fmt.Sprintf("member change %d", id))
	}
	return c, nil
}

// ConfirmChange applies member change id in tx, when it is the member's
// latest request, younger than ChangeValidFor, and the member is still as
// it was when it was asked for. Applied is true when this call applied
// it; else the returned change's Outcome says why not (applied already,
// superseded, stale).
func ConfirmChange(ctx context.Context, tx *sqlx.Tx, id int64) (MemberChange, bool, error) {
	var row struct {
		MemberChange
		State   string `db:"state"`
		Expired bool   `db:"expired"`
	}
	err := tx.GetContext(ctx, &row, `SELECT c.id, c.member_id, m.email, c.old_name, c.old_district, c.old_status,
		c.name, c.state, c.district, c.status, c.outcome, c.created_at < now() - $2 * interval '1 second' AS expired
		FROM member_changes c JOIN members m ON m.id = c.member_id WHERE c.id = $1 FOR UPDATE OF c, m`, id, int64(ChangeValidFor/time.Second))
	if err != nil {
		return MemberChange{}, false, notFound(err, fmt.Sprintf("member change %d", id))
	}
	c := row.MemberChange
	if c.Outcome != "waiting" {
		return c, false, nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE members SET name = $2, state = $3, district = $4, status = $5, updated_at = now()
		WHERE id = $1 AND name = $6 AND district = $7 AND status = $8 AND NOT $9`,
		c.MemberID, c.Name, row.State, c.District, c.Status, c.OldName, c.OldDistrict, c.OldStatus, row.Expired)
	if err != nil {
		return c, false, fmt.Errorf("apply member change %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	c.Outcome = "applied"
	if n == 0 {
		c.Outcome = "stale"
	}
	if _, err := tx.ExecContext(ctx, `UPDATE member_changes SET outcome = $2, done_at = now() WHERE id = $1`, id, c.Outcome); err != nil {
		return c, false, fmt.Errorf("member change %d: %s: %w", id, c.Outcome, err)
	}
	return c, n == 1, nil
}

// MemberRef names a member.
type MemberRef struct {
	ID       int64  `db:"id"`
	Email    string `db:"email"`
	Name     string `db:"name"`
	District string `db:"district"`
	Status   string `db:"status"`
}

// MemberOf returns member id.
func MemberOf(ctx context.Context, q sqlx.QueryerContext, id int64) (MemberRef, error) {
	var m MemberRef
	if err := sqlx.GetContext(ctx, q, &m, `SELECT id, email, name, district, status FROM members WHERE id = $1`, id); err != nil {
		return m, notFound(err, fmt.Sprintf("member %d", id))
	}
	return m, nil
}

// SetMemberStatus moves member id from one of the statuses in from to to,
// in q. Changed is false when the member was not in any of them.
func SetMemberStatus(ctx context.Context, q sqlx.ExtContext, id int64, to string, from ...string) (MemberRef, bool, error) {
	var m MemberRef
	err := sqlx.GetContext(ctx, q, &m, `SELECT id, email, name, district, status FROM members WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return m, false, fmt.Errorf("member %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return m, false, fmt.Errorf("member %d: %w", id, err)
	}
	for _, f := range from {
		if m.Status != f {
			continue
		}
		res, err := q.ExecContext(ctx, `UPDATE members SET status = $2, updated_at = now() WHERE id = $1 AND status = $3`, id, to, f)
		if err != nil {
			return m, false, fmt.Errorf("member %d: %s: %w", id, to, err)
		}
		n, _ := res.RowsAffected()
		if n == 1 {
			m.Status = to
		}
		return m, n == 1, nil
	}
	return m, false, nil
}

// Unsubscribe marks member id unsubscribed: they get no more ballots. A
// bounced member stays bounced.
func (s *Store) Unsubscribe(ctx context.Context, id int64) (MemberRef, bool, error) {
	return SetMemberStatus(ctx, s.db, id, MemberUnsubscribed, MemberActive, MemberPending)
}

// MemberByEmail returns the id of the member with this address.
func MemberByEmail(ctx context.Context, q sqlx.QueryerContext, email string) (int64, error) {
	var id int64
	err := sqlx.GetContext(ctx, q, &id, `SELECT id FROM members WHERE email = lower($1)`, email)
	if err != nil {
		return 0, notFound(err, "member "+email)
	}
	return id, nil
}
