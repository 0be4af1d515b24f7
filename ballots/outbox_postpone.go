package ballots

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Postponed is a claimed row given back unsent, due again at Next: a row
// a limit (a domain's hourly or daily one, the relays' daily quotas) does
// not let go now.
type Postponed struct {
	Claimed
	Next time.Time
}

// PostponeOutbox gives claimed rows back to the queue unsent, each due at
// its Next, its attempts unchanged: waiting for a limit is not an
// attempt. A row claimed by someone else since is left alone.
func (s *Store) PostponeOutbox(ctx context.Context, rows []Postponed) error {
	if len(rows) == 0 {
		return nil
	}
	ids, claims, nexts := make([]int64, len(rows)), make([]int64, len(rows)), make([]string, len(rows))
	for i, r := range rows {
		ids[i], claims[i], nexts[i] = r.ID, r.Claim, r.Next.UTC().Format(time.RFC3339Nano)
	}
	_, err := s.db.ExecContext(ctx, `UPDATE outbox o SET status = CASE WHEN o.attempts = 0 THEN 'queued' ELSE 'deferred' END,
			lease_until = NULL, next_attempt = u.next
		FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS u(id, claim, next)
		WHERE `+heldRows, pq.Array(ids), pq.Array(claims), pq.Array(nexts))
	if err != nil {
		return fmt.Errorf("postpone %d claimed outbox rows: %w", len(rows), err)
	}
	return nil
}
