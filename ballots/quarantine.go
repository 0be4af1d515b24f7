package ballots

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// AllowAnswer claims one of the slots automatic answers of reason have per
// sender per UTC day (usually one), in tx. It reports false when all were
// used today: the caller records its outcome and sends nothing. A
// rolled-back tx gives the claim back.
func AllowAnswer(ctx context.Context, tx *sqlx.Tx, sender, reason string, slots int, inboundID int64) (bool, error) {
	slot, err := ClaimAnswerSlot(ctx, tx, sender, reason, slots, inboundID)
	return slot != "", err
}

// ClaimAnswerSlot is AllowAnswer, returning the slot it claimed ("" for
// none), which ReleaseAnswerSlot gives back.
func ClaimAnswerSlot(ctx context.Context, tx *sqlx.Tx, sender, reason string, slots int, inboundID int64) (string, error) {
	for k := 1; k <= max(1, slots); k++ {
		r := reason
		if k > 1 {
			r = fmt.Sprintf("%s#%d", reason, k)
		}
		var n []int
		err := tx.SelectContext(ctx, &n, `INSERT INTO answer_limits (sender, reason, day, inbound_id)
			VALUES (lower($1), $2, (now() AT TIME ZONE 'UTC')::date, $3) ON CONFLICT DO NOTHING RETURNING 1`,
			textColumn(strings.TrimSpace(sender)), r, nullID(inboundID))
		if err != nil {
			return "", fmt.Errorf("answer limit %s to %s: %w", reason, sender, err)
		}
		if len(n) > 0 {
			return r, nil
		}
	}
	return "", nil
}

// ReleaseAnswerSlot gives back today's slot claimed for sender (an answer
// that was not sent after all).
func ReleaseAnswerSlot(ctx context.Context, tx *sqlx.Tx, sender, slot string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM answer_limits WHERE sender = lower($1) AND reason = $2 AND day = (now() AT TIME ZONE 'UTC')::date`,
		textColumn(strings.TrimSpace(sender)), slot)
	if err != nil {
		return fmt.Errorf("answer limit %s to %s: give back: %w", slot, sender, err)
	}
	return nil
}

// Standing is a ballot's latest vote: the one that counts.
type Standing struct {
	Choice      string
	CandidateID int64
	// Raw is the message that cast it (nil for a vote without one).
	Raw []byte
}

// StandingVote returns ballot id's latest vote with the message that cast
// it; ok is false when it has none.
func StandingVote(ctx context.Context, q sqlx.QueryerContext, id int64) (s Standing, ok bool, err error) {
	var rows []struct {
		Choice    string        `db:"choice"`
		Candidate sql.NullInt64 `db:"candidate_id"`
		Raw       []byte        `db:"raw"`
	}
	err = sqlx.SelectContext(ctx, q, &rows, `SELECT v.choice, v.candidate_id, i.raw FROM votes v
		LEFT JOIN inbound_messages i ON i.id = v.inbound_id
		WHERE v.ballot_id = $1 ORDER BY v.cast_at DESC, v.id DESC LIMIT 1`, id)
	if err != nil {
		return s, false, fmt.Errorf("standing vote on ballot %d: %w", id, err)
	}
	if len(rows) == 0 {
		return s, false, nil
	}
	return Standing{Choice: rows[0].Choice, CandidateID: rows[0].Candidate.Int64, Raw: rows[0].Raw}, true, nil
}

// QuarantineEntry is one quarantined inbound message, as listed for staff.
type QuarantineEntry struct {
	ID       int64     `db:"id" json:"id"`
	Received time.Time `db:"received_at" json:"received"`
	From     string    `db:"from_addr" json:"from"`
	Subject  string    `db:"subject" json:"subject"`
	Class    string    `db:"class" json:"class"`
	Outcome  string    `db:"outcome" json:"outcome"`
	Detail   string    `db:"detail" json:"detail"`
}

// Quarantine lists the quarantined inbound messages, oldest first.
func (s *Store) Quarantine(ctx context.Context) ([]QuarantineEntry, error) {
	var es []QuarantineEntry
	err := s.DB.SelectContext(ctx, &es, `SELECT id, received_at, from_addr, subject, class, outcome, detail
		FROM inbound_messages WHERE quarantined ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return es, nil
}

// InboundRaw locks inbound message id in tx (a replay and the reader never
// apply it at the same time) and returns its raw bytes and when it was
// received; ErrPruned once retention has pruned them.
func InboundRaw(ctx context.Context, tx *sqlx.Tx, id int64) ([]byte, time.Time, error) {
	var row struct {
		Raw      []byte    `db:"raw"`
		Received time.Time `db:"received_at"`
	}
	if err := tx.GetContext(ctx, &row, `SELECT raw, received_at FROM inbound_messages WHERE id = $1 FOR UPDATE`, id); err != nil {
		return nil, time.Time{}, notFound(err, fmt.Sprintf("inbound message %d", id))
	}
	if len(row.Raw) == 0 {
		return nil, time.Time{}, fmt.Errorf("inbound message %d: %w", id, ErrPruned)
	}
	return row.Raw, row.Received, nil
}

// LaterVote reports whether ballot id has a vote cast after at.
func LaterVote(ctx context.Context, q sqlx.QueryerContext, id int64, at time.Time) (bool, error) {
	var n int
	if err := sqlx.GetContext(ctx, q, &n, `SELECT count(*) FROM votes WHERE ballot_id = $1 AND cast_at > $2`, id, at); err != nil {
		return false, fmt.Errorf("later votes on ballot %d: %w", id, err)
	}
	return n > 0, nil
}

// VoteOfInbound returns the receipt of the vote inbound message id cast, or
// "" when it cast none.
func VoteOfInbound(ctx context.Context, q sqlx.QueryerContext, id int64) (string, error) {
	var receipts []string
	if err := sqlx.SelectContext(ctx, q, &receipts, `SELECT receipt FROM votes WHERE inbound_id = $1`, id); err != nil {
		return "", fmt.Errorf("vote of inbound %d: %w", id, err)
	}
	if len(receipts) == 0 {
		return "", nil
	}
	return receipts[0], nil
}

// SetInboundHeader updates the sender and subject recorded for message id
// (a replay may read them where the first reading could not).
func SetInboundHeader(ctx context.Context, tx *sqlx.Tx, id int64, from, subject string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE inbound_messages SET from_addr = $2, subject = $3 WHERE id = $1`, id, textColumn(from), textColumn(truncate(subject, 500))); err != nil {
		return fmt.Errorf("inbound %d header: %w", id, err)
	}
	return nil
}

// textColumn makes s storable in a text column: PostgreSQL rejects NUL
// characters and invalid UTF-8, and one such byte in a subject must not make
// a message unrecordable (it would be read again forever).
func textColumn(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}
