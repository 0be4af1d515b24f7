package ballots_test

import (
	"context"
	"testing"

	"github.com/ballotd/ballotd/internal/testenv"
)

// BenchmarkScrapeOutbox is what a /metrics scrape reads from the database
// (ReadHealth: the oldest unsent row and the quarantine, from partial
// indexes) against the whole-outbox count a scrape used to make
// (OutboxCounts), over 200,000 sent rows and 50 queued, and logs the
// ratio (-v): the count's time per call over ReadHealth's.
func BenchmarkScrapeOutbox(b *testing.B) {
	st := newStore(b)
	ctx := context.Background()
	if _, err := testenv.DB(b, st).Exec(`INSERT INTO outbox (kind, recipient, status, created_at)
		SELECT 'receipt', 'm' || g || '@example.net', CASE WHEN g <= 50 THEN 'queued' ELSE 'sent' END, now() - g * interval '1 second'
		FROM generate_series(1, 200050) g`); err != nil {
		b.Fatal(err)
	}
	if _, err := testenv.DB(b, st).Exec(`ANALYZE outbox`); err != nil {
		b.Fatal(err)
	}
	var count, health float64
	b.Run("OutboxCounts", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := st.OutboxCounts(ctx); err != nil {
				b.Fatal(err)
			}
		}
		count = float64(b.Elapsed()) / float64(b.N)
	})
	b.Run("ReadHealth", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			h, err := st.ReadHealth(ctx)
			if err != nil || h.OldestUnsent < 49 {
				b.Fatal(h, err)
			}
		}
		health = float64(b.Elapsed()) / float64(b.N)
	})
	if health > 0 {
		b.Logf("whole-outbox count %.2f ms, ReadHealth %.2f ms a call: %.0f×", count/1e6, health/1e6, count/health)
	}
}
