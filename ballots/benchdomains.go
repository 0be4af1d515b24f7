package ballots

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// SpreadBenchDomains moves the generated bench members
// (memberN@bench.example) to the recipient domains domains in turn, N
// modulo their number, so that a bench's delivery report has several
// domain classes. Call it before the race opens.
func (s *Store) SpreadBenchDomains(ctx context.Context, domains []string) error {
	if len(domains) == 0 {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `UPDATE members SET email = split_part(email, '@', 1) || '@' ||
			($1::text[])[substr(split_part(email, '@', 1), 7)::bigint % cardinality($1::text[]) + 1]
		WHERE email LIKE 'member%@bench.example'`, pq.Array(domains))
	if err != nil {
		return fmt.Errorf("spread bench members over %d domains: %w", len(domains), err)
	}
	return nil
}

// AttemptsOver counts the outbox rows tried more than n times.
func (s *Store) AttemptsOver(ctx context.Context, n int) (int, error) {
	var c int
	if err := s.db.GetContext(ctx, &c, `SELECT count(*) FROM outbox WHERE attempts > $1`, n); err != nil {
		return 0, fmt.Errorf("count outbox rows over %d attempts: %w", n, err)
	}
	return c, nil
}
