package ballots

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Outbox kinds of a ballot sent again on request.
const (
	// MailBallotResend is a ballot sent again, rendered with the ballot
	// template. It is its own kind because the first ballot's row is unique
	// per (kind, ballot). The token is the same as the first ballot's: a
	// ballot token is never stored but derived from BALLOTD_SECRET, the
	// ballot's id and its nonce (Tokens.Make), so it can be recomputed at
	// any time and the lost ballot and the new one both still work; nothing
	// is voided, and a vote already cast stays.
	MailBallotResend = "ballot-resend"
	// MailResendNeutral is the one answer to a resend request that cannot
	// be served (not a member, no open ballot, over the daily limit). It
	// says the same in every case, so it reveals nothing about who is
	// registered.
	MailResendNeutral = "resend-neutral"
)

// ResendsPerDay is how many resend requests a member has served per UTC
// day; beyond it they get the neutral answer (itself at most once a day).
const ResendsPerDay = 3

// ResendBallots enqueues again, in tx, each open ballot of the active
// member with email, within ResendsPerDay requests a day (counted in
// answer_limits under MailBallotResend). It returns how many ballots it
// enqueued: 0 when the address is not an active member, has no open
// ballot, or is over the limit, all alike for the caller.
func ResendBallots(ctx context.Context, tx *sqlx.Tx, email string, inboundID int64) (int, error) {
	var open []struct {
		BallotID int64  `db:"ballot_id"`
		MemberID int64  `db:"member_id"`
		RaceID   int64  `db:"race_id"`
		Email    string `db:"email"`
	}
	err := tx.SelectContext(ctx, &open, `SELECT b.id AS ballot_id, m.id AS member_id, b.race_id, m.email
		FROM members m JOIN ballots b ON b.member_id = m.id JOIN races r ON r.id = b.race_id
		WHERE m.email = lower($1) AND m.status = 'active' AND r.status = 'open'
		ORDER BY r.code`, email)
	if err != nil {
		return 0, fmt.Errorf("resend to %s: open ballots: %w", email, err)
	}
	if len(open) == 0 {
		return 0, nil
	}
	ok, err := AllowAnswer(ctx, tx, email, MailBallotResend, ResendsPerDay, inboundID)
	if err != nil || !ok {
		return 0, err
	}
	for _, b := range open {
		if _, err := Enqueue(ctx, tx, Mail{Kind: MailBallotResend, Recipient: b.Email, MemberID: b.MemberID,
			BallotID: b.BallotID, RaceID: b.RaceID, InboundID: inboundID}); err != nil {
			return 0, err
		}
	}
	return len(open), nil
}
