package ballots_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// standingRace opens MA-SEN (alice, bob, carol) with two candidates and
// returns the store, the ballot of each member and the candidates' ids.
func standingRace(t *testing.T) (*ballots.Store, map[string]int64, []int64) {
	t.Helper()
	st := seed(t)
	ctx := context.Background()
	for _, name := range []string{"Ed Markey", "Joe Kennedy"} {
		if _, err := st.AddCandidate(ctx, "MA-SEN", "", name, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Email string `db:"email"`
		ID    int64  `db:"id"`
	}
	if err := testenv.DB(t, st).Select(&rows, `SELECT m.email, b.id FROM ballots b JOIN members m ON m.id = b.member_id`); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, r := range rows {
		ids[r.Email] = r.ID
	}
	var cands []int64
	if err := testenv.DB(t, st).Select(&cands, `SELECT id FROM candidates ORDER BY number`); err != nil {
		t.Fatal(err)
	}
	return st, ids, cands
}

// vote records a vote on ballot for candidate (0: NONE) cast at at, in
// tx, with a message of its own.
func vote(t *testing.T, tx *sqlx.Tx, ballot, candidate int64, at time.Time) {
	t.Helper()
	ctx := context.Background()
	iid, err := ballots.RecordInbound(ctx, tx, ballots.Inbound{MessageKey: fmt.Sprintf("%d-%d-%d", ballot, candidate, at.UnixNano()), Raw: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	v := ballots.VoteInput{BallotID: ballot, InboundID: iid, Choice: ballots.ChoiceCandidate, CandidateID: candidate, CastAt: at}
	if candidate == 0 {
		v.Choice = ballots.ChoiceNone
	}
	if _, err := ballots.RecordVote(ctx, tx, v); err != nil {
		t.Fatal(err)
	}
}

// supports returns each candidate's votes in the live tally, after
// checking the live tally (standing votes) equals a recount from the
// vote history.
func supports(t *testing.T, st *ballots.Store) []int {
	t.Helper()
	ctx := context.Background()
	live, err := st.TallyRace(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.Recount(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(live, again) {
		t.Fatalf("live tally %+v differs from the recount from the history %+v", live, again)
	}
	out := []int{live.Voted}
	for _, c := range live.Candidates {
		out = append(out, c.Votes)
	}
	return out
}

// The standing vote a tally counts is each ballot's latest by cast time,
// however the votes arrive: a replayed older vote does not overtake, votes
// inserted in one statement (a batch) keep only the latest, and of two
// transactions voting on one ballot at once the later vote stands
// whichever commits first.
func TestStandingVoteIsTheLatest(t *testing.T) {
	t.Parallel()
	st, ballot, cand := standingRace(t)
	ctx := context.Background()
	now := time.Now()
	inTx := func(fn func(tx *sqlx.Tx)) {
		t.Helper()
		if err := st.InTx(ctx, func(tx *sqlx.Tx) error { fn(tx); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	inTx(func(tx *sqlx.Tx) { vote(t, tx, ballot["alice@example.net"], cand[1], now) })
	// A message read again late, cast when it was first received.
	inTx(func(tx *sqlx.Tx) { vote(t, tx, ballot["alice@example.net"], cand[0], now.Add(-time.Hour)) })
	if got, want := supports(t, st), []int{1, 0, 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("voted, #1, #2 = %v, want %v (the older vote must not stand)", got, want)
	}
	// Two votes of bob and one of carol in one statement: bob's later one stands.
	if _, err := testenv.DB(t, st).Exec(`WITH i AS (INSERT INTO inbound_messages (message_key, raw)
			SELECT 'batch-' || g, '\x'::bytea FROM generate_series(1, 3) g RETURNING id, message_key)
		INSERT INTO votes (ballot_id, inbound_id, choice, candidate_id, receipt, cast_at)
		SELECT v.ballot, i.id, v.choice, v.cand, 'batch-' || v.n, now() - v.ago * interval '1 minute'
		FROM i JOIN (VALUES (1, $1::bigint, 'candidate', $3::bigint, 5), (2, $1, 'candidate', $4::bigint, 1), (3, $2::bigint, 'none', NULL, 1))
			AS v(n, ballot, choice, cand, ago) ON i.message_key = 'batch-' || v.n`,
		ballot["bob@example.net"], ballot["carol@example.net"], cand[0], cand[1]); err != nil {
		t.Fatal(err)
	}
	if got, want := supports(t, st), []int{3, 0, 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("voted, #1, #2 = %v, want %v (bob's later vote, carol's NONE)", got, want)
	}
	// Two transactions on carol's ballot: the one with the later vote
	// commits first; the other, with an earlier vote, waits on the
	// standing row and then leaves it.
	later, err := testenv.DB(t, st).BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	vote(t, later, ballot["carol@example.net"], cand[0], now.Add(time.Minute))
	done := make(chan error)
	go func() {
		done <- st.InTx(ctx, func(tx *sqlx.Tx) error {
			iid, err := ballots.RecordInbound(ctx, tx, ballots.Inbound{MessageKey: "carol-earlier", Raw: []byte("x")})
			if err != nil {
				return err
			}
			_, err = ballots.RecordVote(ctx, tx, ballots.VoteInput{BallotID: ballot["carol@example.net"], InboundID: iid,
				Choice: ballots.ChoiceCandidate, CandidateID: cand[1], CastAt: now.Add(30 * time.Second)})
			return err
		})
	}()
	if err := later.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := supports(t, st), []int{3, 1, 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("voted, #1, #2 = %v, want %v (carol's latest vote, for #1)", got, want)
	}
	// ballotd never deletes a vote; were one deleted, the ballot's
	// standing vote is found again from its history.
	if _, err := testenv.DB(t, st).Exec(`DELETE FROM votes WHERE ballot_id = $1 AND candidate_id = $2`, ballot["carol@example.net"], cand[0]); err != nil {
		t.Fatal(err)
	}
	if got, want := supports(t, st), []int{3, 0, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("voted, #1, #2 = %v, want %v (carol's vote before the deleted one)", got, want)
	}
	// Closing freezes what the standing votes say; a recount agrees.
	closed, err := st.CloseRace(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.Recount(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	if closed.Voted != 3 || closed.Candidates[0].Votes != 0 || closed.Candidates[1].Votes != 3 ||
		again.Voted != closed.Voted || !reflect.DeepEqual(again.Candidates, closed.Candidates) {
		t.Fatalf("closed %+v, recount %+v", closed, again)
	}
}

// The counts that avoid reading every row (ballots' totals, the outbox by
// status, the reachable count) agree with judging every row, whatever mix
// of delivery states the race holds.
func TestCountsAgreeWithEveryRow(t *testing.T) {
	t.Parallel()
	st, _, _ := standingRace(t)
	ctx := context.Background()
	if _, err := st.ImportMembers(ctx, strings.NewReader("email,name,district\n"+
		"d1@example.net,D1,MA-01\nd2@example.net,D2,MA-01\nd3@example.net,D3,MA-01\nd4@example.net,D4,MA-01\n"+
		"d5@example.net,D5,MA-01\nd6@example.net,D6,MA-01\nd7@example.net,D7,MA-01\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCandidate(ctx, "MA-GOV", "", "Maura Healey", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenRace(ctx, "MA-GOV"); err != nil {
		t.Fatal(err)
	}
	// MA-GOV: alice votes; bob's ballot is sent; carol's failed; d1's
	// deferred; d2's bounced hard, then sent again on request and
	// delivered; d3's bounced 5.1.1; d4 unsubscribed after it was sent;
	// d5's is being sent; d6's is sent; d7's stays queued.
	for _, q := range []string{
		`UPDATE outbox SET status = 'sent' WHERE kind = 'ballot'`,
		`UPDATE outbox o SET status = 'failed', last_code = 550 FROM members m WHERE m.id = o.member_id AND m.email = 'carol@example.net'`,
		`UPDATE outbox o SET status = 'deferred', last_code = 451 FROM members m WHERE m.id = o.member_id AND m.email = 'd1@example.net'`,
		`UPDATE outbox o SET bounce_hard = true FROM members m WHERE m.id = o.member_id AND m.email = 'd2@example.net'`,
		`INSERT INTO outbox (kind, recipient, member_id, ballot_id, race_id, status)
			SELECT 'ballot-resend', recipient, member_id, ballot_id, race_id, 'sent' FROM outbox o
			WHERE o.kind = 'ballot' AND o.recipient = 'd2@example.net'`,
		`UPDATE outbox o SET bounce_status = '5.1.1' FROM members m WHERE m.id = o.member_id AND m.email = 'd3@example.net'`,
		`UPDATE members SET status = 'unsubscribed' WHERE email = 'd4@example.net'`,
		`UPDATE outbox o SET status = 'sending' FROM members m WHERE m.id = o.member_id AND m.email = 'd5@example.net'`,
		`UPDATE outbox o SET status = 'queued' FROM members m WHERE m.id = o.member_id AND m.email = 'd7@example.net'`,
	} {
		if _, err := testenv.DB(t, st).Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var gov int64
	if err := testenv.DB(t, st).Get(&gov, `SELECT b.id FROM ballots b JOIN races r ON r.id = b.race_id JOIN members m ON m.id = b.member_id
		WHERE r.code = 'MA-GOV' AND m.email = 'alice@example.net'`); err != nil {
		t.Fatal(err)
	}
	if err := st.InTx(ctx, func(tx *sqlx.Tx) error { vote(t, tx, gov, 0, time.Now()); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, status := range append([]string{""}, ballots.DeliveryStatuses...) {
		d, err := st.Deliveries(ctx, "MA-GOV", status)
		if err != nil {
			t.Fatal(err)
		}
		all, err := st.Deliveries(ctx, "MA-GOV", "")
		if err != nil {
			t.Fatal(err)
		}
		byRow := map[string]int{}
		for _, b := range all.Ballots {
			byRow[b.Status]++
		}
		for _, s := range ballots.DeliveryStatuses {
			if d.Totals[s] != byRow[s] {
				t.Errorf("--status %q: totals %v, judging every ballot gives %v", status, d.Totals, byRow)
				break
			}
		}
		if status != "" && len(d.Ballots) != byRow[status] {
			t.Errorf("--status %s lists %d ballots, want %d", status, len(d.Ballots), byRow[status])
		}
	}
	want := map[string]int{"voted": 1, "sent": 3, "failed": 1, "deferred": 1, "bounced": 1, "unsubscribed": 1, "queued": 2}
	if d, _ := st.Deliveries(ctx, "MA-GOV", ""); !reflect.DeepEqual(d.Totals, want) {
		t.Errorf("totals %v, want %v", d.Totals, want)
	}
	by, err := st.OutboxStatusCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := st.OutboxCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	grouped := map[string]int{ballots.OutboxQueued: 0, ballots.OutboxSending: 0, ballots.OutboxDeferred: 0, ballots.OutboxSent: 0, ballots.OutboxFailed: 0}
	for _, c := range cs {
		grouped[c.Status] += c.Count
	}
	if !reflect.DeepEqual(by, grouped) {
		t.Errorf("outbox by status %v, grouping every row gives %v", by, grouped)
	}
	// Reachable: eligible less carol (failed, none delivered) and d3
	// (bounced 5.1.1 is not failed: reachable), and any member marked bounced.
	if _, err := testenv.DB(t, st).Exec(`UPDATE members SET status = 'bounced' WHERE email = 'd7@example.net'`); err != nil {
		t.Fatal(err)
	}
	tl, err := st.TallyRace(ctx, "MA-GOV")
	if err != nil {
		t.Fatal(err)
	}
	var every int
	if err := testenv.DB(t, st).Get(&every, `SELECT count(*) FROM ballots b JOIN races r ON r.id = b.race_id WHERE r.code = 'MA-GOV' AND NOT (
		(EXISTS (SELECT 1 FROM outbox o WHERE o.ballot_id = b.id AND o.kind IN ('ballot', 'ballot-resend') AND o.status = 'failed')
		 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ballot_id = b.id AND o.kind IN ('ballot', 'ballot-resend')
			AND o.status = 'sent' AND NOT o.bounce_hard AND o.bounce_status NOT LIKE '5.%'))
		OR EXISTS (SELECT 1 FROM members m WHERE m.id = b.member_id AND m.status = 'bounced'))`); err != nil {
		t.Fatal(err)
	}
	if tl.Reachable != every || tl.Reachable != tl.Eligible-2 {
		t.Errorf("reachable %d of %d, judging every ballot gives %d (want eligible less carol and d7)", tl.Reachable, tl.Eligible, every)
	}
}
