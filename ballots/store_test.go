package ballots_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newStore returns a store on a fresh, migrated database.
func newStore(t testing.TB) *ballots.Store {
	t.Helper()
	return testenv.Store(t)
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	db := testenv.Database(t)
	ctx := context.Background()
	first, err := ballots.Migrate(ctx, db)
	if err != nil || len(first) == 0 {
		t.Fatalf("first migrate: %v, applied %v", err, first)
	}
	second, err := ballots.Migrate(ctx, db)
	if err != nil || len(second) != 0 {
		t.Fatalf("second migrate: %v, applied %v; want nothing", err, second)
	}
}

const groupsCSV = "name,state,district,leader_email,leader_name\n" +
	"Indivisible Northampton,MA,MA-02,Lead@Example.org,Lee Leader\n" +
	"Indivisible Northampton,MA,MA-02,second@example.org,Sam Second\n" +
	"Mass Statewide,Massachusetts,,state@example.org,\n" +
	",MA,,nobody@example.org,\n" + // line 5: no name
	"Wrong District,MA,NY-07,x@example.org,\n" + // line 6: district not in state
	"Bad Email,MA,,not-an-address,\n" // line 7

const membersCSV = "\ufeffemail,name,district\r\n" +
	"Alice@Example.net,Alice A,MA-07\r\n" +
	"bob@example.net,\"Bob, Jr.\",ma-7\r\n" +
	"carol@example.net,Carol,MA-02\r\n" +
	"dave@example.net,Dave,NY-10\r\n" +
	"broken,Broken,MA-07\r\n" + // line 6
	"eve@example.net,Eve,MA-SEN\r\n" // line 7: not a district

func TestImportIdempotent(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	rep, err := st.ImportGroups(ctx, strings.NewReader(groupsCSV))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 6 || rep.Added != 2 || rep.Updated != 1 || len(rep.Rejected) != 3 {
		t.Fatalf("groups report = %+v", rep)
	}
	lines := []int{rep.Rejected[0].Line, rep.Rejected[1].Line, rep.Rejected[2].Line}
	if lines[0] != 5 || lines[1] != 6 || lines[2] != 7 {
		t.Fatalf("rejected lines = %v, want 5 6 7 (%+v)", lines, rep.Rejected)
	}
	rep, err = st.ImportGroups(ctx, strings.NewReader(groupsCSV))
	if err != nil || rep.Added != 0 || rep.Updated != 0 || rep.Unchanged != 3 {
		t.Fatalf("second groups import = %+v, %v; want all unchanged", rep, err)
	}

	rep, err = st.ImportMembers(ctx, strings.NewReader(membersCSV))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 4 || len(rep.Rejected) != 2 || rep.Rejected[0].Line != 6 || rep.Rejected[1].Line != 7 {
		t.Fatalf("members report = %+v", rep)
	}
	rep, err = st.ImportMembers(ctx, strings.NewReader(membersCSV))
	if err != nil || rep.Added != 0 || rep.Updated != 0 || rep.Unchanged != 4 {
		t.Fatalf("second members import = %+v, %v; want 4 unchanged", rep, err)
	}
	var email, district, name string
	if err := testenv.DB(t, st).QueryRow(`SELECT email, district, name FROM members WHERE email = 'bob@example.net'`).Scan(&email, &district, &name); err != nil {
		t.Fatal(err)
	}
	if district != "MA-07" || name != "Bob, Jr." {
		t.Fatalf("bob = %q %q %q", email, district, name)
	}
	rep, err = st.ImportMembers(ctx, strings.NewReader("email,name,district\nbob@example.net,Robert,MA-07\n"))
	if err != nil || rep.Updated != 1 {
		t.Fatalf("changed name: %+v, %v; want 1 updated", rep, err)
	}
}

// seed makes a wave, groups, members in MA-07, MA-02 and NY, and returns
// the store.
func seed(t *testing.T) *ballots.Store {
	t.Helper()
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.ImportGroups(ctx, strings.NewReader(groupsCSV)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ImportMembers(ctx, strings.NewReader(membersCSV)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	_, err := st.CreateWave(ctx, ballots.Wave{Name: "March", NominationsClose: now.Add(-time.Hour), VotingOpen: now,
		VotingClose: now.Add(24 * time.Hour), Threshold: 0.6})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestOpenRaceEligibility(t *testing.T) {
	t.Parallel()
	st := seed(t)
	ctx := context.Background()
	if _, err := st.OpenRace(ctx, "MA-SEN"); !errors.Is(err, ballots.ErrNotFound) {
		t.Fatalf("opening a race with no candidates: %v, want ErrNotFound", err)
	}
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "Senator", []string{"No Such Group"}); !errors.Is(err, ballots.ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
	c, err := st.AddCandidate(ctx, "ma-sen", "", "Ed Markey", "Senator", []string{"indivisible northampton", "Mass Statewide"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Groups) != 2 || c.Status != "approved" {
		t.Fatalf("candidate = %+v", c)
	}
	if _, err := st.AddCandidate(ctx, "MA-07", "", "Ayanna Pressley", "", nil); err != nil {
		t.Fatal(err)
	}
	// Senate: everyone active in MA (alice, bob, carol), not dave in NY.
	n, err := st.OpenRace(ctx, "MA-SEN")
	if err != nil || n != 3 {
		t.Fatalf("open MA-SEN = %d, %v; want 3", n, err)
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); !errors.Is(err, ballots.ErrRaceState) {
		t.Fatalf("opening twice: %v, want ErrRaceState", err)
	}
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Late Comer", "", nil); !errors.Is(err, ballots.ErrRaceState) {
		t.Fatalf("adding to an open race: %v, want ErrRaceState", err)
	}
	// House: only the district (alice, bob); an unsubscribed member gets none.
	if _, err := testenv.DB(t, st).Exec(`UPDATE members SET status = 'unsubscribed' WHERE email = 'bob@example.net'`); err != nil {
		t.Fatal(err)
	}
	n, err = st.OpenRace(ctx, "MA-07")
	if err != nil || n != 1 {
		t.Fatalf("open MA-07 = %d, %v; want 1 (alice)", n, err)
	}
	var queued int
	if err := testenv.DB(t, st).Get(&queued, `SELECT count(*) FROM outbox WHERE kind = 'ballot' AND status = 'queued'`); err != nil || queued != 4 {
		t.Fatalf("queued ballots = %d, %v; want 4", queued, err)
	}
}

// castVotes records votes directly, as the inbound processor does.
func castVote(t *testing.T, st *ballots.Store, race, email, choice string, number int) {
	t.Helper()
	ctx := context.Background()
	err := st.InTx(ctx, func(tx *sqlx.Tx) error {
		var bid int64
		if err := tx.Get(&bid, `SELECT b.id FROM ballots b JOIN members m ON m.id = b.member_id JOIN races r ON r.id = b.race_id
			WHERE r.code = $1 AND m.email = $2`, race, email); err != nil {
			return err
		}
		b, err := ballots.BallotForVote(ctx, tx, bid)
		if err != nil {
			return err
		}
		iid, err := ballots.RecordInbound(ctx, tx, ballots.Inbound{MessageKey: time.Now().String() + email + choice, Raw: []byte("x")})
		if err != nil {
			return err
		}
		v := ballots.VoteInput{BallotID: bid, InboundID: iid, Choice: choice}
		for _, c := range b.Candidates {
			if int(c.Number.Int64) == number {
				v.CandidateID = c.ID
			}
		}
		_, err = ballots.RecordVote(ctx, tx, v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTallyLatestVoteCounts(t *testing.T) {
	t.Parallel()
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
	castVote(t, st, "MA-SEN", "alice@example.net", ballots.ChoiceCandidate, 2)
	castVote(t, st, "MA-SEN", "alice@example.net", ballots.ChoiceCandidate, 1) // changed her mind
	castVote(t, st, "MA-SEN", "bob@example.net", ballots.ChoiceCandidate, 1)
	castVote(t, st, "MA-SEN", "carol@example.net", ballots.ChoiceNone, 0)

	live, err := st.TallyRace(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	if live.Status != "open" || live.Eligible != 3 || live.Voted != 3 {
		t.Fatalf("live tally = %+v", live)
	}
	closed, err := st.CloseRace(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	want := []ballots.CandidateResult{
		{Number: 1, Name: "Ed Markey", Votes: 2, Support: 2.0 / 3, Endorsed: true},
		{Number: 2, Name: "Joe Kennedy", Votes: 0, Support: 0, Endorsed: false},
	}
	for i, w := range want {
		if closed.Candidates[i] != w {
			t.Errorf("candidate %d = %+v, want %+v", i+1, closed.Candidates[i], w)
		}
	}
	frozen, err := st.TallyRace(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	if frozen.Status != "closed" || frozen.Voted != 3 || frozen.Eligible != 3 || frozen.Candidates[0].Votes != 2 || !frozen.Candidates[0].Endorsed {
		t.Fatalf("frozen tally = %+v", frozen)
	}
	var ann int
	if err := testenv.DB(t, st).Get(&ann, `SELECT count(*) FROM outbox WHERE kind = 'announcement'`); err != nil || ann != 3 {
		t.Fatalf("announcements = %d, %v; want 3", ann, err)
	}
	if _, err := st.CloseRace(ctx, "MA-SEN"); !errors.Is(err, ballots.ErrRaceState) {
		t.Fatalf("closing twice: %v", err)
	}
}

func TestImportMemberListOptions(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	file := "\ufeffemail,name,district\r\n" +
		"a@example.net,\"Doe, Ann\",MA-07\r\n" +
		"b@example.net,Bo,MA-02\r\n" +
		"A@EXAMPLE.NET,\"Doe, Ann Q.\",MA-07\r\n" + // same member again: the last row counts
		"c@example.net,\"Cy\r\nBcc: x@example.com\",MA-03\r\n" + // a CR LF inside a quoted name
		"bad,Nobody,MA-07\r\n"
	dry, err := st.ImportMemberList(ctx, strings.NewReader(file), ballots.MemberImport{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Added != 3 || dry.Duplicates != 1 || len(dry.Rejected) != 1 || !dry.DryRun {
		t.Fatalf("dry run report = %+v", dry)
	}
	var n int
	if err := testenv.DB(t, st).Get(&n, `SELECT count(*) FROM members`); err != nil || n != 0 {
		t.Fatalf("a dry run changed the members table: %d rows", n)
	}
	var calls int
	rep, err := st.ImportMemberList(ctx, strings.NewReader(file), ballots.MemberImport{Progress: func(int64, int) { calls++ }})
	if err != nil || rep.Added != 3 || calls == 0 {
		t.Fatalf("import = %+v, %v (progress calls %d)", rep, err, calls)
	}
	var name string
	if err := testenv.DB(t, st).Get(&name, `SELECT name FROM members WHERE email = 'a@example.net'`); err != nil || name != "Doe, Ann Q." {
		t.Fatalf("a's name = %q, %v; want the last row's", name, err)
	}
	if err := testenv.DB(t, st).Get(&name, `SELECT name FROM members WHERE email = 'c@example.net'`); err != nil || strings.ContainsAny(name, "\r\n") {
		t.Fatalf("c's name = %q, %v; control characters must not be stored", name, err)
	}
	// A new export without b: kept without --sync, removed with it.
	next := "email,name,district\na@example.net,\"Doe, Ann Q.\",MA-07\nc@example.net,Cy,MA-03\n"
	rep, err = st.ImportMemberList(ctx, strings.NewReader(next), ballots.MemberImport{})
	if err != nil || rep.Removed != 0 || rep.Updated != 1 || rep.Unchanged != 1 {
		t.Fatalf("import without sync = %+v, %v", rep, err)
	}
	rep, err = st.ImportMemberList(ctx, strings.NewReader(next), ballots.MemberImport{Sync: true, MaxRemove: 0.5})
	if err != nil || rep.Removed != 1 || len(rep.Sample) != 1 || rep.Sample[0] != "b@example.net" {
		t.Fatalf("sync = %+v, %v", rep, err)
	}
	var status string
	if err := testenv.DB(t, st).Get(&status, `SELECT status FROM members WHERE email = 'b@example.net'`); err != nil || status != "removed" {
		t.Fatalf("b = %q, %v; want removed", status, err)
	}
	// b comes back in a later export: active again.
	rep, err = st.ImportMemberList(ctx, strings.NewReader(file), ballots.MemberImport{})
	if err != nil || rep.Updated < 1 {
		t.Fatalf("re-import = %+v, %v", rep, err)
	}
	if err := testenv.DB(t, st).Get(&status, `SELECT status FROM members WHERE email = 'b@example.net'`); err != nil || status != "active" {
		t.Fatalf("b = %q, %v; want active again", status, err)
	}
}
