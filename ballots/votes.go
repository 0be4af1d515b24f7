package ballots

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Vote choices as recorded.
const (
	ChoiceYes       = "yes"
	ChoiceNo        = "no"
	ChoiceCandidate = "candidate"
	ChoiceNone      = "none"
)

// Ballot is one member's ballot in one race, with what answering it needs.
type Ballot struct {
	ID          int64     `db:"id"`
	Nonce       []byte    `db:"nonce"`
	RaceID      int64     `db:"race_id"`
	RaceCode    string    `db:"race_code"`
	RaceStatus  string    `db:"race_status"`
	VotingClose time.Time `db:"voting_close"`
	MemberID    int64     `db:"member_id"`
	MemberEmail string    `db:"member_email"`
	MemberName  string    `db:"member_name"`
	Candidates  []Candidate
}

// BallotForVote loads ballot id for recording a vote, holding its race FOR
// SHARE so that a close waits for this transaction (and this transaction
// sees a close that committed first).
func BallotForVote(ctx context.Context, tx *sqlx.Tx, id int64) (Ballot, error) {
	var b Ballot
	err := tx.GetContext(ctx, &b, `SELECT b.id, uuid_send(b.nonce) AS nonce, b.race_id, r.code AS race_code, r.status AS race_status,
		w.voting_close, m.id AS member_id, m.email AS member_email, m.name AS member_name
		FROM ballots b JOIN races r ON r.id = b.race_id JOIN waves w ON w.id = r.wave_id JOIN members m ON m.id = b.member_id
		WHERE b.id = $1 FOR SHARE OF r`, id)
	if err != nil {
		return b, notFound(err, fmt.Sprintf("ballot %d", id))
	}
	b.Candidates, err = approvedCandidates(ctx, tx, b.RaceID)
	return b, err
}

// BallotNonce returns the nonce of ballot id, for checking its token.
func BallotNonce(ctx context.Context, q sqlx.QueryerContext, id int64) ([]byte, error) {
	var nonce []byte
	err := sqlx.GetContext(ctx, q, &nonce, `SELECT uuid_send(nonce) FROM ballots WHERE id = $1`, id)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("ballot %d", id))
	}
	return nonce, nil
}

// BallotOfMessage returns the ballot an outbox message was about (a reply's
// In-Reply-To names it), or ErrNotFound.
func BallotOfMessage(ctx context.Context, q sqlx.QueryerContext, outboxID int64) (int64, error) {
	var id sql.NullInt64
	err := sqlx.GetContext(ctx, q, &id, `SELECT ballot_id FROM outbox WHERE id = $1`, outboxID)
	if err != nil {
		return 0, notFound(err, fmt.Sprintf("outbox %d", outboxID))
	}
	if !id.Valid {
		return 0, fmt.Errorf("outbox %d has no ballot: %w", outboxID, ErrNotFound)
	}
	return id.Int64, nil
}

// VoteInput is a vote to record.
type VoteInput struct {
	BallotID    int64
	InboundID   int64
	Choice      string
	CandidateID int64 // 0 for NONE
	// CastAt is when the vote was cast; zero means now. A replayed message
	// is cast when it was received, so it cannot overtake a later vote.
	CastAt time.Time
}

// receiptEncoding is lowercase base32, the alphabet of tokens.
var receiptEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newReceipt returns a fresh receipt code, 80 random bits written as four
// groups of four base32 characters.
func newReceipt() string {
	var b [10]byte
	rand.Read(b[:])
	s := receiptEncoding.EncodeToString(b[:])
	return strings.Join([]string{s[0:4], s[4:8], s[8:12], s[12:16]}, "-")
}

// RecordVote records a vote in tx and returns its receipt code. The caller
// has checked the race is open (BallotForVote) and enqueues the receipt in
// the same transaction.
func RecordVote(ctx context.Context, tx *sqlx.Tx, v VoteInput) (string, error) {
	var cand sql.NullInt64
	if v.CandidateID != 0 {
		cand = sql.NullInt64{Int64: v.CandidateID, Valid: true}
	}
	receipt := newReceipt()
	castAt := sql.NullTime{Time: v.CastAt, Valid: !v.CastAt.IsZero()}
	_, err := tx.ExecContext(ctx, `INSERT INTO votes (ballot_id, inbound_id, choice, candidate_id, receipt, cast_at)
		VALUES ($1, $2, $3, $4, $5, coalesce($6, clock_timestamp()))`, v.BallotID, v.InboundID, v.Choice, cand, receipt, castAt)
	if err != nil {
		return "", fmt.Errorf("record vote on ballot %d: %w", v.BallotID, err)
	}
	return receipt, nil
}

// Inbound is the record of one message read from the mailbox.
type Inbound struct {
	MessageKey  string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Raw         []byte
	From        string
	Subject     string
}

// ErrDuplicate means the message was recorded before: reading it again
// changes nothing.
var ErrDuplicate = errors.New("message already recorded")

// RecordInbound stores the message's raw bytes in tx and returns its id, or
// ErrDuplicate when a message with the same key was recorded before.
func RecordInbound(ctx context.Context, tx *sqlx.Tx, in Inbound) (int64, error) {
	var ids []int64
	err := tx.SelectContext(ctx, &ids, `INSERT INTO inbound_messages (message_key, mailbox, uid_validity, uid, raw, from_addr, subject)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_key) DO NOTHING RETURNING id`,
		textColumn(in.MessageKey), in.Mailbox, int64(in.UIDValidity), int64(in.UID), in.Raw, textColumn(in.From), textColumn(truncate(in.Subject, 500)))
	if err != nil {
		return 0, fmt.Errorf("record message %s: %w", in.MessageKey, err)
	}
	if len(ids) == 0 {
		return 0, ErrDuplicate
	}
	return ids[0], nil
}

// Outcome is what handling an inbound message came to.
type Outcome struct {
	Class       string
	Outcome     string
	Detail      string
	Quarantined bool
}

// FinishInbound records what became of message id.
func FinishInbound(ctx context.Context, tx *sqlx.Tx, id int64, o Outcome) error {
	_, err := tx.ExecContext(ctx, `UPDATE inbound_messages SET class = $2, outcome = $3, detail = $4, quarantined = $5, processed_at = now()
		WHERE id = $1`, id, o.Class, o.Outcome, textColumn(truncate(o.Detail, 2000)), o.Quarantined)
	if err != nil {
		return fmt.Errorf("finish message %d: %w", id, err)
	}
	return nil
}

// LastUID returns the highest UID whose handling committed in mailbox
// under uidValidity (0 when none).
func (s *Store) LastUID(ctx context.Context, mailbox string, uidValidity uint32) (uint32, error) {
	var uid []int64
	err := s.DB.SelectContext(ctx, &uid, `SELECT last_uid FROM mailbox_cursors WHERE mailbox = $1 AND uid_validity = $2`,
		mailbox, int64(uidValidity))
	if err != nil {
		return 0, fmt.Errorf("last uid of %s: %w", mailbox, err)
	}
	if len(uid) == 0 {
		return 0, nil
	}
	return uint32(uid[0]), nil
}

// AdvanceCursor records in tx that mailbox has been read up to uid.
func AdvanceCursor(ctx context.Context, tx *sqlx.Tx, mailbox string, uidValidity, uid uint32) error {
	if mailbox == "" || uid == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO mailbox_cursors (mailbox, uid_validity, last_uid) VALUES ($1, $2, $3)
		ON CONFLICT (mailbox, uid_validity) DO UPDATE SET last_uid = greatest(mailbox_cursors.last_uid, EXCLUDED.last_uid)`,
		mailbox, int64(uidValidity), int64(uid))
	if err != nil {
		return fmt.Errorf("advance %s to uid %d: %w", mailbox, uid, err)
	}
	return nil
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
