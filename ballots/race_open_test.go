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

// A race open commits chunk by chunk, each chunk's ballots with their
// queued messages, reporting after each. Stopped half-way it leaves the race
// open but still opening, with whole chunks made (each ballot queued once),
// and the race cannot close; opened again (by hand, or by the scheduler) it
// goes on from there: every eligible member ends with exactly one ballot
// and one queued message, and the step is recorded once.
func TestOpenRaceInChunks(t *testing.T) {
	t.Parallel()
	for _, resumeBy := range []string{"hand", "scheduler"} {
		t.Run(resumeBy, func(t *testing.T) {
			t.Parallel()
			st := seed(t)
			ctx := context.Background()
			// 1,200 more in MA, ids far apart, and some in NY and inactive:
			// the open makes chunks of 500 then 1,000.
			if _, err := testenv.DB(t, st).Exec(`INSERT INTO members (id, email, name, state, district, status)
				SELECT 100000 + 37 * g, 'far' || g || '@example.net', 'Far ' || g, CASE WHEN g % 10 = 0 THEN 'NY' ELSE 'MA' END,
					CASE WHEN g % 10 = 0 THEN 'NY-10' ELSE 'MA-07' END, CASE WHEN g % 7 = 0 THEN 'unsubscribed' ELSE 'active' END
				FROM generate_series(1, 1400) g`); err != nil {
				t.Fatal(err)
			}
			var eligible int
			if err := testenv.DB(t, st).Get(&eligible, `SELECT count(*) FROM members WHERE state = 'MA' AND status = 'active'`); err != nil {
				t.Fatal(err)
			}
			if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", nil); err != nil {
				t.Fatal(err)
			}
			stop := errors.New("stopped")
			cctx, cancel := context.WithCancelCause(ctx)
			var first int
			_, err := st.OpenRaceProgress(cctx, "MA-SEN", func(n int, _ float64) {
				if first == 0 {
					first = n
				}
				cancel(stop)
			})
			if err == nil || first != 500 {
				t.Fatalf("open cancelled after the first chunk: %v with %d ballots in it, want an error after 500", err, first)
			}
			check := func(want int) {
				t.Helper()
				var ballotsN, queued, distinct int
				if err := testenv.DB(t, st).QueryRow(`SELECT (SELECT count(*) FROM ballots), (SELECT count(*) FROM outbox WHERE kind = 'ballot' AND status = 'queued'),
					(SELECT count(DISTINCT (race_id, member_id)) FROM ballots)`).Scan(&ballotsN, &queued, &distinct); err != nil {
					t.Fatal(err)
				}
				if ballotsN != want || queued != want || distinct != want {
					t.Fatalf("%d ballots, %d queued, %d members with a ballot; want %d of each", ballotsN, queued, distinct, want)
				}
			}
			check(500)
			r, err := st.Race(ctx, "MA-SEN")
			if err != nil || r.Status != ballots.RaceOpen || !r.Opening {
				t.Fatalf("after a stopped open the race is %q, opening %v (%v); want open and still opening", r.Status, r.Opening, err)
			}
			if _, err := st.CloseRace(ctx, "MA-SEN"); !errors.Is(err, ballots.ErrRaceState) {
				t.Fatalf("closing a race still opening: %v, want ErrRaceState", err)
			}

			if resumeBy == "hand" {
				var reports []int
				n, err := st.OpenRaceProgress(ctx, "MA-SEN", func(n int, read float64) { reports = append(reports, n) })
				if err != nil || n != eligible-500 || len(reports) == 0 || reports[len(reports)-1] != n {
					t.Fatalf("open again = %d, %v (reports %v); want the other %d", n, err, reports, eligible-500)
				}
			} else {
				rep, err := st.RunDueSteps(ctx, nil, time.Hour)
				if err != nil || len(rep.Opened) != 1 || rep.Enqueued != eligible-500 {
					t.Fatalf("scheduler: opened %v, enqueued %d, %v; want MA-SEN and %d", rep.Opened, rep.Enqueued, err, eligible-500)
				}
			}
			check(eligible)
			if r, err := st.Race(ctx, "MA-SEN"); err != nil || r.Status != ballots.RaceOpen || r.Opening || r.Ballots != eligible {
				t.Fatalf("after the open: %q, opening %v, %d ballots (%v); want open, done, %d", r.Status, r.Opening, r.Ballots, err, eligible)
			}
			if _, err := st.OpenRace(ctx, "MA-SEN"); !errors.Is(err, ballots.ErrRaceState) {
				t.Errorf("opening an open race: %v, want ErrRaceState", err)
			}
			if rep, err := st.RunDueSteps(ctx, nil, time.Hour); err != nil || len(rep.Opened) != 0 {
				t.Errorf("scheduler after the open: opened %v (%v), want nothing", rep.Opened, err)
			}
		})
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

// While a race is being opened (its opener's advisory lock held), a second
// open, by hand or by the scheduler, does not read the members again: by
// hand it gets ErrOpening, the scheduler leaves it to the opener.
func TestOpenRaceOneOpener(t *testing.T) {
	t.Parallel()
	st := seed(t)
	ctx := context.Background()
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", nil); err != nil {
		t.Fatal(err)
	}
	r, err := st.Race(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := testenv.DB(t, st).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1, $2)`, 0x6f70656e, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); !errors.Is(err, ballots.ErrOpening) {
		t.Fatalf("open while another opens: %v, want ErrOpening", err)
	}
	if rep, err := st.RunDueSteps(ctx, nil, time.Hour); err != nil || len(rep.Opened) != 0 || rep.Conflicts != 1 {
		t.Fatalf("scheduler while another opens: opened %v, %d conflicts, %v; want none opened, one conflict", rep.Opened, rep.Conflicts, err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1, $2)`, 0x6f70656e, r.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := st.OpenRace(ctx, "MA-SEN"); err != nil || n == 0 {
		t.Fatalf("open after the other opener: %d, %v", n, err)
	}
}

// One index keeps a ballot's outbox rows (migration 0019): a second
// ballot mail, announcement or reminder for a ballot is refused (ON
// CONFLICT DO NOTHING skips it), while receipts and resends, as many as
// there are, are not.
func TestOutboxOncePerBallot(t *testing.T) {
	t.Parallel()
	st := seed(t)
	ctx := context.Background()
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); err != nil {
		t.Fatal(err)
	}
	db := testenv.DB(t, st)
	var ballot int64
	if err := db.Get(&ballot, `SELECT min(id) FROM ballots`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind  string
		added int64 // of two rows inserted
	}{{"ballot", 0}, {"announcement", 1}, {"reminder", 1}, {"receipt", 2}, {"ballot-resend", 2}} {
		res, err := db.Exec(`INSERT INTO outbox (kind, recipient, member_id, ballot_id, race_id)
			SELECT $1, o.recipient, o.member_id, o.ballot_id, o.race_id FROM outbox o, generate_series(1, 2)
			WHERE o.ballot_id = $2 AND o.kind = 'ballot' ON CONFLICT DO NOTHING`, c.kind, ballot)
		if err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		if n, _ := res.RowsAffected(); n != c.added {
			t.Errorf("two %s rows for a ballot: %d added, want %d", c.kind, n, c.added)
		}
	}
	var rows int
	if err := db.Get(&rows, `SELECT count(*) FROM outbox WHERE ballot_id = $1`, ballot); err != nil || rows != 7 {
		t.Errorf("the ballot's rows: %d (%v), want 7", rows, err)
	}
}
