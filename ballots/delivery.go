package ballots

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ballotd/ballotd/templates"
)

// Delivery statuses of a ballot, as `ballotd ballots` shows them. A ballot
// has exactly one: the first that applies in the order voted, bounced,
// unsubscribed, failed, deferred, sent, queued, judged on the copy that
// reached the member if one did, else on the latest copy.
const (
	DeliveryQueued       = "queued"
	DeliverySent         = "sent"
	DeliveryDeferred     = "deferred"
	DeliveryFailed       = "failed"
	DeliveryBounced      = "bounced"
	DeliveryUnsubscribed = "unsubscribed"
	DeliveryVoted        = "voted"
)

// DeliveryStatuses lists every delivery status, in the order of a totals line.
var DeliveryStatuses = []string{DeliveryQueued, DeliverySent, DeliveryDeferred, DeliveryFailed,
	DeliveryBounced, DeliveryUnsubscribed, DeliveryVoted}

// BallotDelivery is one eligible member's ballot in a race and how far it
// got. It never carries the member's choice, only when they last voted.
type BallotDelivery struct {
	Email            string     `db:"email" json:"email"`
	Name             string     `db:"name" json:"name"`
	Status           string     `db:"status" json:"status"`
	Code             *int       `db:"last_code" json:"smtp_code,omitempty"`
	Reply            string     `db:"last_reply" json:"reply,omitempty"`
	Attempts         int        `db:"attempts" json:"attempts"`
	NextAttempt      *time.Time `db:"next_attempt" json:"next_attempt,omitempty"`
	BounceStatus     string     `db:"bounce_status" json:"bounce_status,omitempty"`
	BounceDiagnostic string     `db:"bounce_diagnostic" json:"bounce_diagnostic,omitempty"`
	VotedAt          *time.Time `db:"voted_at" json:"voted_at,omitempty"`
	// Copies is how many copies of the ballot were enqueued: the first and
	// each one sent again on the member's request.
	Copies int `db:"copies" json:"copies"`
}

// BallotDeliveries is a race's ballots with a count per delivery status.
type BallotDeliveries struct {
	Race    string           `json:"race"`
	Wave    string           `json:"wave"`
	Ballots []BallotDelivery `json:"ballots"`
	Totals  map[string]int   `json:"totals"`
}

// deliveryQuery is one row per ballot of race $1 (and the condition and,
// over ballots b, "" for every ballot): the member, the copy of the ballot
// that tells most (any copy sent and not bounced, else the latest: a
// ballot sent again on request can reach a member the first copy did
// not), how many copies there are, and the latest vote's time.
func deliveryQuery(and string) string {
	return `SELECT m.email, m.name,
		CASE
			WHEN v.cast_at IS NOT NULL THEN 'voted'
			WHEN o.bounce_hard OR (o.bounce_status LIKE '5.%') THEN 'bounced'
			WHEN m.status = 'unsubscribed' THEN 'unsubscribed'
			WHEN o.status = 'failed' THEN 'failed'
			WHEN o.status = 'deferred' THEN 'deferred'
			WHEN o.status = 'sent' THEN 'sent'
			ELSE 'queued'
		END AS status,
		o.last_code, COALESCE(o.last_reply, '') AS last_reply, COALESCE(o.attempts, 0) AS attempts,
		CASE WHEN o.status = 'deferred' THEN o.next_attempt END AS next_attempt,
		COALESCE(o.bounce_status, '') AS bounce_status, COALESCE(o.bounce_diagnostic, '') AS bounce_diagnostic,
		v.cast_at AS voted_at, COALESCE(o.copies, 0) AS copies
	FROM ballots b
	JOIN members m ON m.id = b.member_id
	` + bestBallotCopy + `
	LEFT JOIN LATERAL (SELECT max(cast_at) AS cast_at FROM votes WHERE ballot_id = b.id) v ON true
	WHERE b.race_id = $1 ` + and + `
	ORDER BY m.email`
}

// ballotCopy is the SQL condition, over outbox o, of a copy of ballot b:
// the first or one sent again on request.
const ballotCopy = `o.ballot_id = b.id AND o.kind IN ('` + string(templates.KindBallot) + `', '` + string(templates.KindBallotResend) + `')`

// reachedMember is the SQL condition of an outbox row o the recipient's
// server took and did not hand back.
const reachedMember = `o.status = 'sent' AND NOT o.bounce_hard AND COALESCE(o.bounce_status, '') NOT LIKE '5.%'`

// bestBallotCopy joins, over ballots b, the copy o of the ballot that
// tells most (any copy that reached the member, else the latest) with
// o.copies, how many copies there are.
const bestBallotCopy = `LEFT JOIN LATERAL (
		SELECT o.*, count(*) OVER () AS copies FROM outbox o WHERE ` + ballotCopy + `
		ORDER BY (` + reachedMember + `) DESC, o.id DESC LIMIT 1) o ON true`

// notSentCandidates is the SQL set of the ballot ids of race $1 whose
// delivery status can be other than voted or sent: those with a copy
// bounced for good, failed, deferred, queued or sending (each found
// through its partial index) and those whose member unsubscribed. Every
// other ballot has only copies that reached the member: it is voted if it
// has a vote, else sent. Every ballot has a copy: a race open creates each
// ballot and enqueues it in one statement pair of one transaction, and no
// outbox row is ever deleted (retention keeps every row).
const notSentCandidates = `(SELECT ballot_id FROM outbox WHERE ballot_id IS NOT NULL AND (bounce_hard OR bounce_status LIKE '5.%')
		UNION SELECT ballot_id FROM outbox WHERE status = 'failed' AND ballot_id IS NOT NULL
		UNION SELECT ballot_id FROM outbox WHERE status = 'deferred' AND ballot_id IS NOT NULL
		UNION SELECT ballot_id FROM outbox WHERE status = 'queued' AND ballot_id IS NOT NULL
		UNION SELECT ballot_id FROM outbox WHERE status = 'sending' AND ballot_id IS NOT NULL
		UNION SELECT b.id FROM members m JOIN ballots b ON b.member_id = m.id WHERE m.status = 'unsubscribed' AND b.race_id = $1)`

// Deliveries lists every eligible member of the race with code (latest
// wave) and their ballot's delivery status; status, if not empty, keeps
// only the ballots with that status. Totals always count every ballot.
// Only the ballots that may be neither voted nor sent (notSentCandidates)
// are judged one by one; the totals of voted and sent come from counts,
// so a race of a million ballots is not read whole unless every ballot,
// or those voted or sent, are listed.
func (s *Store) Deliveries(ctx context.Context, code, status string) (BallotDeliveries, error) {
	if status != "" && !validDelivery(status) {
		return BallotDeliveries{}, fmt.Errorf("delivery status %q: want one of %v", status, DeliveryStatuses)
	}
	// One snapshot: the counts and the ballots judged must agree.
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return BallotDeliveries{}, fmt.Errorf("ballots of %s: %w", code, err)
	}
	defer tx.Rollback()
	r, err := raceByCodeWith(ctx, tx, raceColumns, code, "")
	if err != nil {
		return BallotDeliveries{}, err
	}
	d := BallotDeliveries{Race: r.Code, Wave: r.Wave, Ballots: []BallotDelivery{}, Totals: map[string]int{}}
	for _, st := range DeliveryStatuses {
		d.Totals[st] = 0
	}
	var judged []BallotDelivery
	if err := tx.SelectContext(ctx, &judged, deliveryQuery(`AND b.id IN `+notSentCandidates), r.ID); err != nil {
		return d, fmt.Errorf("ballots of %s: %w", r.Code, err)
	}
	judgedVoted := 0
	for _, b := range judged {
		if b.Status == DeliveryVoted {
			judgedVoted++
			continue
		}
		d.Totals[b.Status]++
	}
	d.Totals[DeliveryVoted] = r.Voted
	d.Totals[DeliverySent] += r.Ballots - r.Voted - (len(judged) - judgedVoted)
	list := judged
	if status == "" || status == DeliveryVoted || status == DeliverySent {
		list = nil
		if err := tx.SelectContext(ctx, &list, deliveryQuery(""), r.ID); err != nil {
			return d, fmt.Errorf("ballots of %s: %w", r.Code, err)
		}
	}
	for _, b := range list {
		if status == "" || b.Status == status {
			d.Ballots = append(d.Ballots, b)
		}
	}
	return d, nil
}

func validDelivery(s string) bool {
	for _, x := range DeliveryStatuses {
		if x == s {
			return true
		}
	}
	return false
}
