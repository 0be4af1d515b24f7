package ballots_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// BenchmarkOpenRace opens a state-wide race of 200,000 members and a House
// race of a ninth of them in a fresh database per iteration; b.N counts
// both opens.
func BenchmarkOpenRace(b *testing.B) {
	const members = 200000
	ctx := context.Background()
	created := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := newStore(b)
		if _, err := testenv.DB(b, st).ExecContext(ctx, `INSERT INTO members (email, name, state, district)
			SELECT 'member' || g || '@bench.example', 'Member ' || g, 'MA', 'MA-0' || (g % 9 + 1) FROM generate_series(1, $1) g`, members); err != nil {
			b.Fatal(err)
		}
		if _, err := testenv.DB(b, st).ExecContext(ctx, `ANALYZE members`); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		if _, err := st.CreateWave(ctx, ballots.Wave{Name: "Bench", NominationsClose: now, VotingOpen: now, VotingClose: now.Add(time.Hour), Threshold: 0.6}); err != nil {
			b.Fatal(err)
		}
		for _, code := range []string{"MA-SEN", "MA-07"} {
			if _, err := st.AddCandidate(ctx, code, "", "Ed Markey", "", nil); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for _, code := range []string{"MA-SEN", "MA-07"} {
			n, err := st.OpenRace(ctx, code)
			if err != nil {
				b.Fatal(err)
			}
			created += n
		}
	}
	if created != b.N*(members+members/9) {
		b.Fatalf("created %d ballots, want %d", created, b.N*(members+members/9))
	}
	b.ReportMetric(float64(created)/b.Elapsed().Seconds(), "ballots/s")
}

// A race open walks the members in ranges of ids, reporting after each,
// and stays one transaction: stopped half-way, it leaves nothing behind;
// run through, every eligible member gets exactly one ballot and one
// queued message.
func TestOpenRaceInRanges(t *testing.T) {
	t.Parallel()
	st := seed(t)
	ctx := context.Background()
	// Ids far apart put these members in three ranges of 50,000.
	if _, err := testenv.DB(t, st).Exec(`INSERT INTO members (id, email, name, state, district) VALUES
		(60000, 'far1@example.net', 'Far One', 'MA', 'MA-07'),
		(149999, 'far2@example.net', 'Far Two', 'MA', 'MA-02'),
		(149998, 'far3@example.net', 'Far Three', 'NY', 'NY-10')`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", nil); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stopped")
	cctx, cancel := context.WithCancelCause(ctx)
	calls := 0
	_, err := st.OpenRaceProgress(cctx, "MA-SEN", func(int, float64) {
		calls++
		cancel(stop)
	})
	if err == nil || calls != 1 {
		t.Fatalf("open cancelled after the first range: %v after %d reports, want an error after 1", err, calls)
	}
	var left int
	if err := testenv.DB(t, st).Get(&left, `SELECT (SELECT count(*) FROM ballots) + (SELECT count(*) FROM outbox)`); err != nil || left != 0 {
		t.Fatalf("a stopped open left %d ballots and outbox rows (%v), want none", left, err)
	}
	if r, err := st.Race(ctx, "MA-SEN"); err != nil || r.Status != ballots.RaceDraft {
		t.Fatalf("after a stopped open the race is %q (%v), want draft", r.Status, err)
	}

	var created []int
	var read []float64
	n, err := st.OpenRaceProgress(ctx, "MA-SEN", func(ballots int, share float64) {
		created, read = append(created, ballots), append(read, share)
	})
	// seed's MA members (alice, bob, carol) and the two far ones in MA.
	if err != nil || n != 5 {
		t.Fatalf("open MA-SEN = %d, %v; want 5", n, err)
	}
	if len(created) != 3 || created[0] != 3 || created[1] != 4 || created[2] != 5 || read[2] != 1 || !(read[0] < read[1] && read[1] < read[2]) {
		t.Errorf("progress: ballots %v, share read %v; want 3, 4, 5 ballots after three ranges, the share rising to 1", created, read)
	}
	var ballotsN, queued, distinct int
	if err := testenv.DB(t, st).QueryRow(`SELECT (SELECT count(*) FROM ballots), (SELECT count(*) FROM outbox WHERE kind = 'ballot' AND status = 'queued'),
		(SELECT count(DISTINCT ballot_id) FROM outbox)`).Scan(&ballotsN, &queued, &distinct); err != nil {
		t.Fatal(err)
	}
	if ballotsN != 5 || queued != 5 || distinct != 5 {
		t.Errorf("%d ballots, %d queued, %d distinct ballots in the outbox; want 5 of each", ballotsN, queued, distinct)
	}
}

// RemindRace sends the race's one reminder now, to each member who has not
// voted, and records the step: asked again it sends none (ErrReminded); a
// race that is not open has no reminder (ErrRaceState).
func TestRemindRace(t *testing.T) {
	t.Parallel()
	st := seed(t)
	ctx := context.Background()
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", nil); err != nil {
		t.Fatal(err)
	}
	opened, err := st.OpenRace(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	n, err := st.RemindRace(ctx, "MA-SEN")
	if err != nil || n != opened || n == 0 {
		t.Fatalf("first reminder: %d, %v; want %d (nobody has voted)", n, err, opened)
	}
	var queued int
	if err := testenv.DB(t, st).Get(&queued, `SELECT count(*) FROM outbox WHERE kind = 'reminder'`); err != nil || queued != n {
		t.Fatalf("%d reminders queued, %v; want %d", queued, err, n)
	}
	if n, err := st.RemindRace(ctx, "MA-SEN"); !errors.Is(err, ballots.ErrReminded) || n != 0 {
		t.Errorf("second reminder: %d, %v; want ErrReminded", n, err)
	}
	if _, err := st.CloseRace(ctx, "MA-SEN"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RemindRace(ctx, "MA-SEN"); !errors.Is(err, ballots.ErrRaceState) {
		t.Errorf("reminder of a closed race: %v, want ErrRaceState", err)
	}
}
