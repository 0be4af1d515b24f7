package ballots

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Vote choices as recorded.
const (
	ChoiceYes       = "yes"
	ChoiceNo        = "no"
	ChoiceCandidate = "candidate"
	ChoiceNone      = "none"
)

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

// RecordVotes records votes in tx in one statement, in order (so the last
// vote on a ballot stands), each with its Receipt (NewReceipt). The caller
// has checked every race is open (BallotsForVote) and enqueues the
// receipts in the same transaction.
func RecordVotes(ctx context.Context, tx *sqlx.Tx, vs []VoteInput, receipts []string) error {
	if len(vs) == 0 {
		return nil
	}
	n := len(vs)
	ballots, inbounds, cands := make([]int64, n), make([]sql.NullInt64, n), make([]sql.NullInt64, n)
	choices, castAts := make([]string, n), make([]sql.NullString, n)
	for i, v := range vs {
		ballots[i], inbounds[i], cands[i], choices[i] = v.BallotID, nullID(v.InboundID), nullID(v.CandidateID), v.Choice
		if !v.CastAt.IsZero() {
			castAts[i] = sql.NullString{String: v.CastAt.UTC().Format(time.RFC3339Nano), Valid: true}
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO votes (ballot_id, inbound_id, choice, candidate_id, receipt, cast_at)
		SELECT b, i, c, ca, r, coalesce(t::timestamptz, clock_timestamp())
		FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[]) WITH ORDINALITY AS u(b, i, c, ca, r, t, ord)
		ORDER BY ord`, pq.Array(ballots), pq.Array(inbounds), pq.Array(choices), pq.Array(cands), pq.Array(receipts), pq.Array(castAts))
	if err != nil {
		return fmt.Errorf("record %d votes: %w", n, err)
	}
	return nil
}

// NewReceipt returns a fresh receipt code, for RecordVotes.
func NewReceipt() string { return newReceipt() }

// RecordVote records a vote in tx and returns its receipt code. The caller
// has checked the race is open (BallotForVote) and enqueues the receipt in
// the same transaction.
func RecordVote(ctx context.Context, tx *sqlx.Tx, v VoteInput) (string, error) {
	receipt := newReceipt()
	if err := RecordVotes(ctx, tx, []VoteInput{v}, []string{receipt}); err != nil {
		return "", fmt.Errorf("record vote on ballot %d: %w", v.BallotID, err)
	}
	return receipt, nil
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
	found, err := StandingVotes(ctx, q, []int64{id})
	s, ok = found[id]
	return s, ok, err
}

// StandingVotes is StandingVote for many ballots in one statement: the
// standing votes of those of ids that have one, by ballot.
func StandingVotes(ctx context.Context, q sqlx.QueryerContext, ids []int64) (map[int64]Standing, error) {
	found := map[int64]Standing{}
	if len(ids) == 0 {
		return found, nil
	}
	var rows []struct {
		Ballot    int64         `db:"ballot_id"`
		Choice    string        `db:"choice"`
		Candidate sql.NullInt64 `db:"candidate_id"`
		Raw       []byte        `db:"raw"`
	}
	err := sqlx.SelectContext(ctx, q, &rows, `SELECT DISTINCT ON (v.ballot_id) v.ballot_id, v.choice, v.candidate_id, i.raw FROM votes v
		LEFT JOIN inbound_messages i ON i.id = v.inbound_id
		WHERE v.ballot_id = ANY($1) ORDER BY v.ballot_id, v.cast_at DESC, v.id DESC`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("standing votes of %d ballots: %w", len(ids), err)
	}
	for _, r := range rows {
		found[r.Ballot] = Standing{Choice: r.Choice, CandidateID: r.Candidate.Int64, Raw: r.Raw}
	}
	return found, nil
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
