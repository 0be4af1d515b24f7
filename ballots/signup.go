package ballots

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Member status values.
const (
	MemberActive       = "active"
	MemberPending      = "pending"
	MemberUnsubscribed = "unsubscribed"
	MemberBounced      = "bounced"
)

// Token kinds of sign-up and unsubscribe addresses.
const (
	TokenConfirm     = "c" // ballots+c-TOKEN@: confirms a sign-up (member id)
	TokenUnsubscribe = "u" // ballots+u-TOKEN@ and /unsubscribe?t=TOKEN (member id)
	TokenStaff       = "s" // ballots+s-TOKEN@: staff commands (outbox id of the notice)
)

// SignUpResult is what signing up did.
type SignUpResult struct {
	MemberID int64
	Status   string // the member's status now: pending, or active when already signed up
}

// SignUp records a sign-up request in tx: a new member, or an unsubscribed
// or bounced one, becomes pending until they confirm (double opt-in); an
// active member stays active. district is a House district code.
func SignUp(ctx context.Context, tx *sqlx.Tx, email, name, district string) (SignUpResult, error) {
	var r SignUpResult
	rc, err := ParseDistrict(district)
	if err != nil {
		return r, err
	}
	email = strings.ToLower(strings.TrimSpace(email))
	err = tx.QueryRowxContext(ctx, `INSERT INTO members (email, name, state, district, status) VALUES ($1, $2, $3, $4, 'pending')
		ON CONFLICT (email) DO UPDATE SET
			name = CASE WHEN EXCLUDED.name = '' THEN members.name ELSE EXCLUDED.name END,
			state = EXCLUDED.state, district = EXCLUDED.district,
			status = CASE WHEN members.status = 'active' THEN 'active' ELSE 'pending' END,
			updated_at = now()
		RETURNING id, status`, email, strings.TrimSpace(name), rc.State, rc.Code).Scan(&r.MemberID, &r.Status)
	if err != nil {
		return r, fmt.Errorf("sign up %s: %w", email, err)
	}
	return r, nil
}

// MemberRef names a member.
type MemberRef struct {
	ID       int64  `db:"id"`
	Email    string `db:"email"`
	Name     string `db:"name"`
	District string `db:"district"`
	Status   string `db:"status"`
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
	return SetMemberStatus(ctx, s.DB, id, MemberUnsubscribed, MemberActive, MemberPending)
}

// Outbox kinds of nominations, vetting and sign-up.
const (
	MailNominationConfirm  = "nomination-confirm"
	MailNominationProblems = "nomination-problems"
	MailBlankForm          = "blank-form"
	MailVettingNotice      = "vetting-notice"
	MailStaffAnswer        = "staff-answer"
	MailJoinConfirm        = "join-confirm"
	MailJoinProblems       = "join-problems"
	MailWelcome            = "welcome"
	MailUnsubscribed       = "unsubscribed"
)
