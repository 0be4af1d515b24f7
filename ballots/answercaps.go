package ballots

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// CapPeriod is the window an answer cap counts in.
type CapPeriod string

// The windows of answer caps, in UTC.
const (
	CapDay  CapPeriod = "day"
	CapHour CapPeriod = "hour"
)

// AnswerCap is one bound an automatic answer must fit under: at most Max
// answers counted under Scope in the current Period.
type AnswerCap struct {
	Scope  string
	Period CapPeriod
	Max    int
}

// TakeAnswerCaps counts one answer under each of caps, in tx, and returns
// the first cap that was already full, or ok. Counts taken before a full
// cap stay taken: the caller takes them inside a savepoint (Savepoint) and
// rolls back to it when one is full, so an answer not sent is not counted.
// Each count is one upsert on its row, which concurrent transactions
// serialise on, so a cap holds under concurrency.
func TakeAnswerCaps(ctx context.Context, tx *sqlx.Tx, caps []AnswerCap) (full AnswerCap, ok bool, err error) {
	for _, c := range caps {
		if c.Max <= 0 {
			return c, false, nil
		}
		var n []int
		err := tx.SelectContext(ctx, &n, `INSERT INTO answer_counts (scope, period, n)
			VALUES ($1, date_trunc($2, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 1)
			ON CONFLICT (scope, period) DO UPDATE SET n = answer_counts.n + 1 WHERE answer_counts.n < $3
			RETURNING n`, textColumn(c.Scope), string(c.Period), c.Max)
		if err != nil {
			return c, false, fmt.Errorf("answer cap %s: %w", c.Scope, err)
		}
		if len(n) == 0 {
			return c, false, nil
		}
	}
	return AnswerCap{}, true, nil
}

// HoldAnswer records, in tx, that an answer of kind to recipient was not
// sent, and why: the digest counts these.
func HoldAnswer(ctx context.Context, tx *sqlx.Tx, inboundID int64, recipient, kind, why string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO answers_held (inbound_id, recipient, kind, why) VALUES ($1, lower($2), $3, $4)`,
		nullID(inboundID), textColumn(truncate(strings.TrimSpace(recipient), 320)), kind, truncate(why, 500))
	if err != nil {
		return fmt.Errorf("hold %s answer to %s: %w", kind, recipient, err)
	}
	return nil
}

// AnswersHeldSince counts the answers held back since t.
func AnswersHeldSince(ctx context.Context, q sqlx.QueryerContext, t time.Time) (int, error) {
	var n int
	if err := sqlx.GetContext(ctx, q, &n, `SELECT count(*) FROM answers_held WHERE held_at > $1`, t); err != nil {
		return 0, fmt.Errorf("answers held since %s: %w", t.Format(time.RFC3339), err)
	}
	return n, nil
}

// KnownAddress reports whether addr belongs to an active member or to a
// group leader: someone ballotd knows, as opposed to a stranger (a
// pending sign-up is still a stranger: anyone can create one).
func KnownAddress(ctx context.Context, q sqlx.QueryerContext, addr string) (bool, error) {
	var known bool
	err := sqlx.GetContext(ctx, q, &known, `SELECT EXISTS (SELECT 1 FROM members WHERE email = lower($1) AND status = 'active')
		OR EXISTS (SELECT 1 FROM group_leaders WHERE email = lower($1))`, textColumn(strings.TrimSpace(addr)))
	if err != nil {
		return false, fmt.Errorf("known address %s: %w", addr, err)
	}
	return known, nil
}

// Savepoint starts savepoint name in tx: Rollback undoes what tx did since,
// Release keeps it.
func Savepoint(ctx context.Context, tx *sqlx.Tx, name string) (Point, error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return Point{}, fmt.Errorf("savepoint %s: %w", name, err)
	}
	return Point{tx: tx, name: name}, nil
}

// Point is a savepoint of a transaction.
type Point struct {
	tx   *sqlx.Tx
	name string
}

// Rollback undoes what the transaction did since the savepoint.
func (p Point) Rollback(ctx context.Context) error {
	if _, err := p.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+p.name); err != nil {
		return fmt.Errorf("rollback to savepoint %s: %w", p.name, err)
	}
	return p.Release(ctx)
}

// Release keeps what the transaction did since the savepoint.
func (p Point) Release(ctx context.Context) error {
	if _, err := p.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+p.name); err != nil {
		return fmt.Errorf("release savepoint %s: %w", p.name, err)
	}
	return nil
}
