package ballots

import (
	"context"
	"fmt"
)

// Health is what /healthz and /metrics read from the database at once.
type Health struct {
	// OldestUnsent is the age in seconds of the oldest outbox row not yet
	// sent or failed (0 when there is none).
	OldestUnsent float64 `db:"oldest_unsent"`
	// Quarantined is how many inbound messages wait for staff.
	Quarantined int64 `db:"quarantined"`
}

// ReadHealth reads the outbox backlog's age and the quarantine's size,
// each through a partial index (outbox_ready and outbox_leased hold the
// rows not yet sent; the quarantined messages have theirs), never a pass
// over every row.
func (s *Store) ReadHealth(ctx context.Context) (Health, error) {
	var h Health
	err := s.db.GetContext(ctx, &h, `SELECT
		coalesce(extract(epoch FROM now() - least(
			(SELECT min(created_at) FROM outbox WHERE status IN ('queued', 'deferred')),
			(SELECT min(created_at) FROM outbox WHERE status = 'sending')))::float8, 0) AS oldest_unsent,
		(SELECT count(*) FROM inbound_messages WHERE quarantined) AS quarantined`)
	if err != nil {
		return h, fmt.Errorf("read health: %w", err)
	}
	return h, nil
}
