package ballots

import (
	"context"
	"fmt"
)

// How far the daemon has got, for code that drives it and waits
// (the demo): messages handled, and what an outbox row is.

// CountHandled returns how many inbound messages have been handled
// (processed, whatever the outcome).
func (s *Store) CountHandled(ctx context.Context) (int, error) {
	var n int
	if err := s.DB.GetContext(ctx, &n, `SELECT count(*) FROM inbound_messages WHERE processed_at IS NOT NULL`); err != nil {
		return 0, fmt.Errorf("count handled messages: %w", err)
	}
	return n, nil
}

// OutboxKind returns the kind of outbox row id.
func (s *Store) OutboxKind(ctx context.Context, id int64) (string, error) {
	var kind string
	if err := s.DB.GetContext(ctx, &kind, `SELECT kind FROM outbox WHERE id = $1`, id); err != nil {
		return "", fmt.Errorf("the kind of outbox row %d: %w", id, err)
	}
	return kind, nil
}
