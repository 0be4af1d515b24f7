package ballots

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/templates"
)

// ResendsPerDay is how many resend requests a member has served per UTC
// day; beyond it they get the neutral answer (itself at most once a day).
const ResendsPerDay = 3

// ResendBallots enqueues again, in tx, each open ballot of the active
// member with email, within ResendsPerDay requests a day (counted in
// answer_limits under templates.KindBallotResend). It returns how many ballots it
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
	ok, err := AllowAnswer(ctx, tx, email, string(templates.KindBallotResend), ResendsPerDay, inboundID)
	if err != nil || !ok {
		return 0, err
	}
	for _, b := range open {
		if _, err := Enqueue(ctx, tx, Mail{Recipient: b.Email, MemberID: b.MemberID,
			BallotID: b.BallotID, RaceID: b.RaceID, InboundID: inboundID, Payload: templates.BallotResendMail{}}); err != nil {
			return 0, err
		}
	}
	return len(open), nil
}
