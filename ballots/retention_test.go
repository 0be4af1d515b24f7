package ballots_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// TestSchedulerPrunesPastRetention: the leading scheduler applies retention
// as a step of its tick: the mail of a wave closed longer ago than Retain
// (the vote's reply, and a stray message that arrived during the wave)
// loses its bytes; a message that arrived after that close keeps them; the
// vote and the tally stay, and a recount agrees.
func TestSchedulerPrunesPastRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Its own connection for the SQL that stands in for time passing, so
	// the test needs nothing of the Store but its methods.
	url := testenv.DatabaseURL(t)
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := ballots.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	st, err := ballots.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.ImportMembers(ctx, strings.NewReader(membersCSV)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "March", NominationsClose: now.Add(-time.Hour), VotingOpen: now,
		VotingClose: now.Add(2 * time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); err != nil {
		t.Fatal(err)
	}
	castVote(t, st, "MA-SEN", "alice@example.net", ballots.ChoiceYes, 1)
	stray := recordInbound(t, st, "stray")
	frozen, err := st.CloseRace(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE waves SET nominations_close = nominations_close - interval '201 days', voting_open = voting_open - interval '201 days',
			voting_close = voting_close - interval '201 days'`,
		`UPDATE races SET opened_at = opened_at - interval '201 days', closed_at = closed_at - interval '201 days'`,
		`UPDATE inbound_messages SET received_at = received_at - interval '201 days'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	late := recordInbound(t, st, "a message after the close")

	ticks := make(chan bool, 16)
	runCtx, cancel := context.WithCancel(ctx)
	sc := &ballots.Scheduler{Store: st, Tick: 10 * time.Millisecond, Retain: 180 * 24 * time.Hour,
		Ticked: func(leading bool, _ ballots.StepReport) {
			select {
			case ticks <- leading:
			default:
			}
		}}
	done := make(chan struct{})
	go func() { sc.Run(runCtx); close(done) }()
	// The second tick as leader begins after the first one's prune ended.
	for led := 0; led < 2; {
		select {
		case leading := <-ticks:
			if leading {
				led++
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the scheduler did not tick twice as leader within 30s")
		}
	}
	cancel()
	<-done

	var raws []struct {
		ID    int64 `db:"id"`
		Bytes int   `db:"bytes"`
	}
	if err := db.Select(&raws, `SELECT id, octet_length(raw) AS bytes FROM inbound_messages ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	got := map[int64]int{}
	for _, r := range raws {
		got[r.ID] = r.Bytes
	}
	if len(raws) != 3 || got[stray] != 0 || got[late] == 0 {
		t.Fatalf("raw bytes per message %v; want the vote's and the stray one (%d) pruned, the late one (%d) kept", got, stray, late)
	}
	for _, r := range raws {
		if r.ID != stray && r.ID != late && r.Bytes != 0 {
			t.Errorf("the vote's message %d keeps %d bytes", r.ID, r.Bytes)
		}
	}
	recount, err := st.Recount(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	kept, err := st.TallyRace(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(recount.Candidates, recount.Voted) != fmt.Sprint(frozen.Candidates, frozen.Voted) ||
		fmt.Sprint(kept.Candidates, kept.Voted) != fmt.Sprint(frozen.Candidates, frozen.Voted) || frozen.Voted != 1 {
		t.Errorf("after the prune: tally %+v, recount %+v; want the frozen %+v", kept, recount, frozen)
	}

	// Replaying a pruned message is refused, not read as an empty one.
	err = st.InTx(ctx, func(tx *sqlx.Tx) error {
		_, _, err := ballots.InboundRaw(ctx, tx, stray)
		return err
	})
	if !errors.Is(err, ballots.ErrPruned) {
		t.Errorf("InboundRaw of a pruned message: %v; want ErrPruned", err)
	}
}

// recordInbound stores a message linked to no race and returns its id.
func recordInbound(t *testing.T, st *ballots.Store, text string) int64 {
	t.Helper()
	var id int64
	err := st.InTx(context.Background(), func(tx *sqlx.Tx) error {
		var err error
		id, err = ballots.RecordInbound(context.Background(), tx, ballots.Inbound{MessageKey: "<" + strings.ReplaceAll(text, " ", "-") + "@example.net>",
			Raw: []byte("Subject: " + text + "\r\n\r\n" + text + "\r\n")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
