package ballots

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
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
	// MemberActive is whether the voter is an active member (someone
	// ballotd knows, for the answer policy).
	MemberActive bool `db:"member_active"`
	Candidates   []Candidate
}

// BallotForVote loads ballot id for recording a vote, holding its race FOR
// SHARE so that a close waits for this transaction (and this transaction
// sees a close that committed first).
func BallotForVote(ctx context.Context, tx *sqlx.Tx, id int64) (Ballot, error) {
	found, err := BallotsForVote(ctx, tx, []int64{id})
	if err != nil {
		return Ballot{}, err
	}
	b, ok := found[id]
	if !ok {
		return b, fmt.Errorf("ballot %d: %w", id, ErrNotFound)
	}
	return b, nil
}

// BallotsForVote is BallotForVote for many ballots in two statements,
// for a batch of replies: the ballots of ids that exist, by id, their
// races held FOR SHARE (in race order, as every holder takes them) until
// tx ends.
func BallotsForVote(ctx context.Context, tx *sqlx.Tx, ids []int64) (map[int64]Ballot, error) {
	found := map[int64]Ballot{}
	if len(ids) == 0 {
		return found, nil
	}
	var bs []Ballot
	err := tx.SelectContext(ctx, &bs, `SELECT b.id, uuid_send(b.nonce) AS nonce, b.race_id, r.code AS race_code, r.status AS race_status,
		w.voting_close, m.id AS member_id, m.email AS member_email, m.name AS member_name, m.status = 'active' AS member_active
		FROM ballots b JOIN races r ON r.id = b.race_id JOIN waves w ON w.id = r.wave_id JOIN members m ON m.id = b.member_id
		WHERE b.id = ANY($1) ORDER BY r.id FOR SHARE OF r`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("ballots for a batch of %d replies: %w", len(ids), err)
	}
	candidates := map[int64][]Candidate{}
	for _, b := range bs {
		cs, ok := candidates[b.RaceID]
		if !ok {
			if cs, err = approvedCandidates(ctx, tx, b.RaceID); err != nil {
				return nil, err
			}
			candidates[b.RaceID] = cs
		}
		b.Candidates = cs
		found[b.ID] = b
	}
	return found, nil
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
