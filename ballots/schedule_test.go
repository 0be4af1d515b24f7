package ballots_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/templates"
)

// shift moves the wave's schedule: each argument is an SQL interval from
// now() (” keeps the time), standing in for the clock moving on.
func shift(t *testing.T, st *ballots.Store, nc, vo, vc string) {
	t.Helper()
	for col, v := range map[string]string{"nominations_close": nc, "voting_open": vo, "voting_close": vc} {
		if v == "" {
			continue
		}
		if _, err := testenv.DB(t, st).Exec(`UPDATE waves SET `+col+` = now() + $1::interval`, v); err != nil {
			t.Fatalf("shift %s: %v", col, err)
		}
	}
}

// runConcurrently runs the scheduler's pass from n goroutines at once, as
// replicas without the leader lock would, and returns the summed report.
func runConcurrently(t *testing.T, st *ballots.Store, n int, staff []string, lead time.Duration) ballots.StepReport {
	t.Helper()
	var mu sync.Mutex
	var sum ballots.StepReport
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := st.RunDueSteps(context.Background(), staff, lead)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			sum.Vetting = append(sum.Vetting, rep.Vetting...)
			sum.Opened = append(sum.Opened, rep.Opened...)
			sum.Reminded = append(sum.Reminded, rep.Reminded...)
			sum.Closed = append(sum.Closed, rep.Closed...)
			sum.Enqueued += rep.Enqueued
		}()
	}
	wg.Wait()
	return sum
}

func outboxTo(t *testing.T, st *ballots.Store, kind templates.Kind) []string {
	t.Helper()
	var to []string
	if err := testenv.DB(t, st).Select(&to, `SELECT recipient FROM outbox WHERE kind = $1 ORDER BY recipient`, kind); err != nil {
		t.Fatal(err)
	}
	return to
}

func TestScheduledStepsOnceAmongConcurrentActors(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.ImportGroups(ctx, strings.NewReader(groupsCSV)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ImportMembers(ctx, strings.NewReader(membersCSV)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "April", NominationsClose: now.Add(time.Hour), VotingOpen: now.Add(2 * time.Hour),
		VotingClose: now.Add(3 * time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", []string{"Indivisible Northampton", "Mass Statewide"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCandidate(ctx, "MA-07", "", "Ayanna Pressley", "", nil); err != nil {
		t.Fatal(err)
	}
	staff := []string{"staff@example.org"}
	lead := 30 * time.Minute

	if rep := runConcurrently(t, st, 4, staff, lead); rep.Any() {
		t.Fatalf("nothing is due yet, but the pass did %+v", rep)
	}

	shift(t, st, "-1 second", "", "")
	rep := runConcurrently(t, st, 4, staff, lead)
	if len(rep.Vetting) != 1 || got(outboxTo(t, st, templates.KindVetting)) != "staff@example.org" {
		t.Fatalf("vetting: report %v, outbox %v; want one notice", rep.Vetting, outboxTo(t, st, templates.KindVetting))
	}

	// Staff open MA-07 by hand before its time: the scheduler leaves it be.
	if _, err := st.OpenRace(ctx, "MA-07"); err != nil {
		t.Fatal(err)
	}
	shift(t, st, "", "-1 second", "")
	rep = runConcurrently(t, st, 4, staff, lead)
	if got(rep.Opened) != "MA-SEN" {
		t.Fatalf("opened %v, want MA-SEN once", rep.Opened)
	}
	if b := outboxTo(t, st, templates.KindBallot); len(b) != 3+2 {
		t.Fatalf("ballots to %v; want alice, bob, carol (MA-SEN) and alice, bob (MA-07)", b)
	}

	castVote(t, st, "MA-SEN", "alice@example.net", ballots.ChoiceYes, 1)
	shift(t, st, "", "", "10 minutes") // inside the reminder's lead time…
	if rep = runConcurrently(t, st, 2, staff, lead); rep.Any() {
		t.Fatalf("reminded before halfway through the voting: %+v", rep)
	}
	openedAgo(t, st, "1 hour") // …and past halfway
	rep = runConcurrently(t, st, 4, staff, lead)
	if len(rep.Reminded) != 2 {
		t.Fatalf("reminded %v, want MA-SEN and MA-07 once each", rep.Reminded)
	}
	if r := got(outboxTo(t, st, templates.KindReminder)); r != "alice@example.net bob@example.net bob@example.net carol@example.net" {
		t.Fatalf("reminders to %s; want alice and bob (MA-07), bob and carol (MA-SEN; alice voted)", r)
	}
	if rep = runConcurrently(t, st, 2, staff, lead); rep.Any() {
		t.Fatalf("a second pass inside the lead time did %+v", rep)
	}

	// Staff close MA-07 by hand: the scheduler closes only MA-SEN.
	if _, err := st.CloseRace(ctx, "MA-07"); err != nil {
		t.Fatal(err)
	}
	shift(t, st, "", "", "-1 second")
	rep = runConcurrently(t, st, 4, staff, lead)
	if got(rep.Closed) != "MA-SEN" {
		t.Fatalf("closed %v, want MA-SEN once", rep.Closed)
	}
	// Members of both races, and the leaders of the groups that nominated
	// Ed Markey (Pressley has none).
	if a := got(outboxTo(t, st, templates.KindAnnouncement)); a != "alice@example.net alice@example.net bob@example.net bob@example.net carol@example.net lead@example.org second@example.org state@example.org" {
		t.Fatalf("announcements to %s", a)
	}
	var steps []string
	if err := testenv.DB(t, st).Select(&steps, `SELECT r.code || ' ' || s.step || ' ' || s.actor FROM race_steps s JOIN races r ON r.id = s.race_id ORDER BY r.code, s.done_at`); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(steps, ", "); s != "MA-07 open manual, MA-07 remind scheduler, MA-07 close manual, MA-SEN open scheduler, MA-SEN remind scheduler, MA-SEN close scheduler" {
		t.Fatalf("steps: %s", s)
	}
	if rep = runConcurrently(t, st, 2, staff, lead); rep.Any() {
		t.Fatalf("a pass after everything ran did %+v", rep)
	}

	phases, err := st.RacePhases(ctx, lead)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range phases {
		if p.Phase != "closed" || p.NextAt != nil {
			t.Errorf("%s: phase %s next %s %v; want closed, nothing next", p.Code, p.Phase, p.NextStep, p.NextAt)
		}
	}
}

// openedAgo moves the races' opening back by the SQL interval ago.
func openedAgo(t *testing.T, st *ballots.Store, ago string) {
	t.Helper()
	if _, err := testenv.DB(t, st).Exec(`UPDATE races SET opened_at = now() - $1::interval WHERE opened_at IS NOT NULL`, ago); err != nil {
		t.Fatal(err)
	}
}

func got(ss []string) string { return strings.Join(ss, " ") }

func TestRacePhases(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "May", NominationsClose: now.Add(time.Hour), VotingOpen: now.Add(2 * time.Hour),
		VotingClose: now.Add(50 * time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", nil); err != nil {
		t.Fatal(err)
	}
	lead := 24 * time.Hour
	check := func(phase, next string) {
		t.Helper()
		ps, err := st.RacePhases(ctx, lead)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 || ps[0].Phase != phase || ps[0].NextStep != next {
			t.Fatalf("phases = %+v; want %s, next %s", ps, phase, next)
		}
	}
	check("nominations", "close-nominations")
	shift(t, st, "-1 second", "", "")
	if _, err := st.RunDueSteps(ctx, nil, lead); err != nil {
		t.Fatal(err)
	}
	check("vetting", "open")
	shift(t, st, "", "-1 second", "")
	if _, err := st.RunDueSteps(ctx, nil, lead); err != nil {
		t.Fatal(err)
	}
	check("voting", "remind")
	shift(t, st, "", "", "1 hour")
	if _, err := st.RunDueSteps(ctx, nil, lead); err != nil {
		t.Fatal(err)
	}
	check("voting", "remind") // not before halfway through the voting
	openedAgo(t, st, "3 hours")
	if _, err := st.RunDueSteps(ctx, nil, lead); err != nil {
		t.Fatal(err)
	}
	check("voting", "close")
}
