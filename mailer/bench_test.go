package mailer_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// benchRace opens MA-SEN for n members (set-based SQL, as bench send does)
// and returns the store and a renderer.
func benchRace(b *testing.B, n int) (*ballots.Store, *mailer.Renderer) {
	b.Helper()
	ctx := context.Background()
	st := testenv.Store(b)
	db := testenv.DB(b, st)
	if _, err := db.Exec(`INSERT INTO members (email, name, state, district)
		SELECT 'member' || g || '@bench.example', 'Member ' || g, 'MA', 'MA-0' || (g % 9 + 1) FROM generate_series(1, $1) g`, n); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "Bench", NominationsClose: now, VotingOpen: now, VotingClose: now.Add(time.Hour), Threshold: 0.6}); err != nil {
		b.Fatal(err)
	}
	bio := strings.Repeat("Served two terms in the state senate; led the campaign for clean energy and fair wages. ", 6)
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", bio, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); err != nil {
		b.Fatal(err)
	}
	// What autovacuum does soon after a race opens.
	if _, err := db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	toks, _ := token.NewKey("bench-secret-0123456789")
	tpl, err := templates.Load("")
	if err != nil {
		b.Fatal(err)
	}
	return st, &mailer.Renderer{Store: st, Templates: tpl, Tokens: toks,
		ID: mailer.Identity{Local: "ballots", Domain: "bench.example", FromName: "Endorsement ballots", PublicURL: "https://ballots.bench.example"}}
}

// BenchmarkRenderBallot renders one personalised ballot (templates, tokens,
// headers, MIME) into a reused buffer, as a worker does.
func BenchmarkRenderBallot(b *testing.B) {
	st, r := benchRace(b, 1000)
	rows, err := st.ClaimOutbox(context.Background(), 1000, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	// stamped: filled from the race's stamp (the path a ballot takes);
	// templates: executed for each message (names a stamp cannot take).
	for _, mode := range []struct {
		name     string
		noStamps bool
	}{{"stamped", false}, {"templates", true}} {
		b.Run(mode.name, func(b *testing.B) {
			r.NoStamps = mode.noStamps
			var buf bytes.Buffer
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m, err := r.Render(context.Background(), rows[i%len(rows)], &buf)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(m.Data)))
			}
		})
	}
}

// BenchmarkCompose is the MIME step alone: headers and two
// quoted-printable parts of a ballot's size.
func BenchmarkCompose(b *testing.B) {
	text := []byte(strings.Repeat("Dear Member 12345, voting is open on a national endorsement — reply YES or NO.\n", 20))
	html := []byte(strings.Repeat("<p>Dear Member 12345, voting is open on a national endorsement &mdash; reply <b>YES</b> or <b>NO</b>.</p>\n", 16))
	headers := []mailer.Header{{Name: "From", Value: `"Endorsement ballots" <ballots@bench.example>`}, {Name: "To", Value: `"Zoë Member" <member@bench.example>`},
		{Name: "Message-ID", Value: "<abcdefghijklmnopqrstuvwxyz234@bench.example>"}}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		mailer.Compose(&buf, headers, "Your ballot: U.S. Senate, Massachusetts (MA-SEN)", text, html, "=_ballotd_abcdefghijklmnopqrstuvwxyz234")
		b.SetBytes(int64(buf.Len()))
	}
}

// BenchmarkClaimRecord is the database side of sending, per row: claim a
// batch after the feeder's cursor (FOR UPDATE SKIP LOCKED) and record its
// results (one unnest UPDATE), on a real PostgreSQL.
func BenchmarkClaimRecord(b *testing.B) {
	for _, batch := range []int{50, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			st, _ := benchRace(b, 50000)
			ctx := context.Background()
			results := make([]ballots.SendResult, 0, batch)
			rows := 0
			var claimTime, recordTime time.Duration
			var cur ballots.ClaimCursor
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				claimed, next, err := st.ClaimOutboxAfter(ctx, cur, batch, time.Minute)
				cur = next
				claimTime += time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if len(claimed) == 0 {
					b.StopTimer()
					if _, err := testenv.DB(b, st).Exec(`UPDATE outbox SET status = 'queued', next_attempt = now()`); err != nil {
						b.Fatal(err)
					}
					cur = ballots.ClaimCursor{}
					b.StartTimer()
					continue
				}
				results = results[:0]
				for _, r := range claimed {
					results = append(results, ballots.SendResult{ID: r.ID, Claim: r.Claim, Status: ballots.OutboxSent, Code: 250, Reply: "ok"})
				}
				t0 = time.Now()
				if _, err := st.RecordResults(ctx, results); err != nil {
					b.Fatal(err)
				}
				recordTime += time.Since(t0)
				rows += len(claimed)
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(max(rows, 1)) / 1e3 }
			b.ReportMetric(per(b.Elapsed()), "µs/row")
			b.ReportMetric(per(claimTime), "claim-µs/row")
			b.ReportMetric(per(recordTime), "record-µs/row")
		})
	}
}
