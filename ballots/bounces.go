package ballots

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// BounceInput is a delivery failure reported for one outbox row.
type BounceInput struct {
	OutboxID   int64
	InboundID  int64
	Hard       bool   // permanent (5.x.x): the address does not take mail
	Status     string // RFC 3463 status, e.g. "5.1.1" ("" when none was given)
	Diagnostic string // the remote server's words
	// Complaint says the report is a recipient's abuse report (RFC 5965
	// feedback report, a provider's feedback loop), not a failed delivery.
	Complaint bool
}

// BounceRecord is what recording a bounce found and did.
type BounceRecord struct {
	MemberID     int64  // 0 when the row was not sent to a member
	Recipient    string // the address the row was sent to
	MemberMarked bool   // a hard bounce marked the member bounced
}

// RecordBounce records b on its outbox row in tx. A hard bounce marks the
// row's member bounced (no more ballots are created for them); a soft one
// is counted on the row and the member. ErrNotFound when the row does not
// exist.
func RecordBounce(ctx context.Context, tx *sqlx.Tx, b BounceInput) (BounceRecord, error) {
	var rec BounceRecord
	var member sql.NullInt64
	soft := 0
	if !b.Hard {
		soft = 1
	}
	reason := ClassifyFailure(0, b.Status, b.Diagnostic)
	if reason == ReasonNetwork {
		reason = ReasonOther // a report came back: the network was not the trouble
	}
	err := tx.QueryRowxContext(ctx, `UPDATE outbox SET bounce_status = $2, bounce_diagnostic = $3, bounce_hard = bounce_hard OR $4,
			soft_bounces = soft_bounces + $5, bounced_at = now(), bounce_inbound_id = $6,
			reason = CASE WHEN $7 THEN reason ELSE $8 END, complaint = complaint OR $7
		WHERE id = $1 RETURNING member_id, recipient`,
		b.OutboxID, truncate(b.Status, 20), truncate(b.Diagnostic, 1000), b.Hard, soft, nullID(b.InboundID),
		b.Complaint, reason).Scan(&member, &rec.Recipient)
	if err != nil {
		return rec, notFound(err, fmt.Sprintf("bounce of outbox %d", b.OutboxID))
	}
	if !member.Valid {
		// An answer to a non-member: find the member by the address, if any.
		var ids []int64
		if err := tx.SelectContext(ctx, &ids, `SELECT id FROM members WHERE email = lower($1)`, rec.Recipient); err != nil {
			return rec, fmt.Errorf("bounce of outbox %d: member: %w", b.OutboxID, err)
		}
		if len(ids) == 0 {
			return rec, nil
		}
		member = sql.NullInt64{Int64: ids[0], Valid: true}
	}
	rec.MemberID = member.Int64
	if b.Hard {
		res, err := tx.ExecContext(ctx, `UPDATE members SET status = 'bounced', bounced_at = now(), updated_at = now()
			WHERE id = $1 AND status <> 'bounced'`, rec.MemberID)
		if err != nil {
			return rec, fmt.Errorf("mark member %d bounced: %w", rec.MemberID, err)
		}
		n, _ := res.RowsAffected()
		rec.MemberMarked = n > 0
		return rec, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE members SET soft_bounces = soft_bounces + 1, updated_at = now() WHERE id = $1`, rec.MemberID); err != nil {
		return rec, fmt.Errorf("count soft bounce of member %d: %w", rec.MemberID, err)
	}
	return rec, nil
}

// MemberBounces is a member's bounce state.
type MemberBounces struct {
	Status      string `db:"status"`
	SoftBounces int    `db:"soft_bounces"`
}

// MemberBounceState returns member id's status and soft bounce count.
func MemberBounceState(ctx context.Context, q sqlx.QueryerContext, id int64) (MemberBounces, error) {
	var m MemberBounces
	if err := sqlx.GetContext(ctx, q, &m, `SELECT status, soft_bounces FROM members WHERE id = $1`, id); err != nil {
		return m, notFound(err, fmt.Sprintf("member %d", id))
	}
	return m, nil
}
