package ballots_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

const nominationGroups = "name,state,district,leader_email,leader_name\n" +
	"Indivisible Northampton,MA,MA-02,lead@northampton.example,Lee\n" +
	"Indivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n" +
	"Indivisible Somerville,MA,MA-07,two@example.org,Two\n" +
	"Indivisible Worcester,MA,MA-02,two@example.org,Two\n" +
	"Indivisible Brooklyn,NY,NY-10,lead@brooklyn.example,Bea\n"

// nominationStore has the groups above and a wave open for nominations
// until an hour from now.
func nominationStore(t *testing.T) (*ballots.Store, time.Time) {
	t.Helper()
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.ImportGroups(ctx, strings.NewReader(nominationGroups)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "Spring", NominationsClose: now.Add(time.Hour), VotingOpen: now.Add(time.Hour),
		VotingClose: now.Add(48 * time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	return st, now
}

func nominate(t *testing.T, st *ballots.Store, in ballots.NominationInput, now time.Time) ballots.NominationResult {
	t.Helper()
	var res ballots.NominationResult
	err := st.InTx(context.Background(), func(tx *sqlx.Tx) error {
		var err error
		res, err = ballots.Nominate(context.Background(), tx, in, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestNominateValidation(t *testing.T) {
	t.Parallel()
	st, now := nominationStore(t)
	cases := []struct {
		name     string
		in       ballots.NominationInput
		at       time.Time
		problems []string
		group    string
	}{
		{name: "leader, state-wide race, group in the state", in: ballots.NominationInput{Sender: "Lead@Northampton.example", Group: "indivisible  NORTHAMPTON", Candidate: "Ed Markey", Race: "MA-SEN"}, group: "Indivisible Northampton"},
		{name: "the sender's only group stands in for a missing Group", in: ballots.NominationInput{Sender: "lead@northampton.example", Candidate: "Ed Markey", Race: "MA-SEN"}, group: "Indivisible Northampton"},
		{name: "a leader of several groups must name one", in: ballots.NominationInput{Sender: "two@example.org", Candidate: "Ed Markey", Race: "MA-SEN"},
			problems: []string{"Group: missing: you lead Indivisible Somerville, Indivisible Worcester; name the group nominating"}},
		{name: "not a leader of the named group", in: ballots.NominationInput{Sender: "lead@northampton.example", Group: "Indivisible Somerville", Candidate: "Ed Markey", Race: "MA-SEN"},
			group: "Indivisible Somerville", problems: []string{"Sender: lead@northampton.example is not a registered leader of Indivisible Somerville; a leader of the group must send the form"}},
		{name: "not a leader at all, unknown group, form problems kept first", in: ballots.NominationInput{Sender: "x@example.com", Group: "Indivisible Nowhere", Candidate: "Ed Markey", Race: "MA-SEN", Problems: []string{"Candidate: something"}},
			problems: []string{"Candidate: something", `Group: no group named "Indivisible Nowhere" is registered; check the name`}},
		{name: "House race from a group in another district", in: ballots.NominationInput{Sender: "lead@northampton.example", Candidate: "Ayanna Pressley", Race: "MA-07"},
			group: "Indivisible Northampton", problems: []string{"District: Indivisible Northampton is in MA-02, not in MA-07; a House nomination comes from a group in the district"}},
		{name: "state-wide race in another state", in: ballots.NominationInput{Sender: "lead@brooklyn.example", Candidate: "Ed Markey", Race: "MA-SEN"},
			group: "Indivisible Brooklyn", problems: []string{"State: Indivisible Brooklyn is in New York, not in Massachusetts; a U.S. Senate nomination comes from a group in the state"}},
		{name: "no wave accepting nominations", in: ballots.NominationInput{Sender: "lead@northampton.example", Candidate: "Ed Markey", Race: "MA-SEN"}, at: now.Add(2 * time.Hour),
			group: "Indivisible Northampton", problems: []string{"Wave: no wave is accepting nominations now; staff will announce the next one"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := c.at
			if at.IsZero() {
				at = now
			}
			c.in.Reason = "r"
			res := nominate(t, st, c.in, at)
			if !reflect.DeepEqual(res.Problems, append([]string{}, c.problems...)) && !(len(res.Problems) == 0 && len(c.problems) == 0) {
				t.Errorf("problems:\n got %q\nwant %q", res.Problems, c.problems)
			}
			if res.Accepted != (len(c.problems) == 0) || res.Group != c.group || res.ID == 0 {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestNominationMergeUpdateWithdrawVet(t *testing.T) {
	t.Parallel()
	st, now := nominationStore(t)
	ctx := context.Background()
	a := nominate(t, st, ballots.NominationInput{Sender: "lead@northampton.example", Candidate: "Ed Markey", Race: "MA-SEN", Reason: "Climate leader.\n\nMore."}, now)
	again := nominate(t, st, ballots.NominationInput{Sender: "lead@northampton.example", Candidate: "ed  markey", Race: "MA-SEN", Reason: "Updated."}, now)
	b := nominate(t, st, ballots.NominationInput{Sender: "lead@somerville.example", Candidate: "ED MARKEY", Race: "MA-SEN", Reason: "Yes."}, now)
	other := nominate(t, st, ballots.NominationInput{Sender: "two@example.org", Group: "Indivisible Worcester", Candidate: "Jane Roe", Race: "MA-SEN", Reason: "Fresh."}, now)
	if !a.Accepted || !a.NewCandidate || !again.Updated || again.ID != a.ID || b.NewCandidate || b.CandidateID != a.CandidateID || !other.NewCandidate {
		t.Fatalf("merge/update:\n a %+v\n again %+v\n b %+v\n other %+v", a, again, b, other)
	}
	if want := []string{"Indivisible Northampton", "Indivisible Somerville"}; !reflect.DeepEqual(b.Groups, want) {
		t.Errorf("groups %q, want %q", b.Groups, want)
	}
	vs, err := st.VettingList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Name != "Ed Markey" || vs[0].Status != "nominated" || vs[0].Bio != "Climate leader." ||
		!reflect.DeepEqual(vs[0].Conflicts, []string{"Jane Roe (Indivisible Worcester)"}) ||
		!reflect.DeepEqual(vs[1].Conflicts, []string{"Ed Markey (Indivisible Northampton, Indivisible Somerville)"}) {
		t.Fatalf("vetting list %+v", vs)
	}
	// Withdraw: only a leader of the nominating group.
	var probs []string
	err = st.InTx(ctx, func(tx *sqlx.Tx) error {
		_, p1, err := ballots.Withdraw(ctx, tx, "lead@northampton.example", other.ID)
		if err != nil {
			return err
		}
		_, p2, err := ballots.Withdraw(ctx, tx, "two@example.org", other.ID)
		probs = append(p1, p2...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"WITHDRAW 3: lead@northampton.example is not a registered leader of Indivisible Worcester, which made this nomination"}
	if other.ID != 3 || !reflect.DeepEqual(probs, want) {
		t.Errorf("withdraw problems %q, want %q (nomination %d)", probs, want, other.ID)
	}
	if vs, _ = st.VettingList(ctx); vs[1].Status != "withdrawn" || len(vs[0].Conflicts) != 0 {
		t.Errorf("after withdrawal: %+v", vs)
	}
	// Vetting: nothing opens until a candidate is approved.
	if _, err := st.OpenRace(ctx, "MA-SEN"); !errors.Is(err, ballots.ErrCandidates) {
		t.Fatalf("open with no approved candidate: %v", err)
	}
	if _, err := st.Vet(ctx, vs[1].ID, true, ""); !errors.Is(err, ballots.ErrVet) {
		t.Errorf("approving a withdrawn candidate: %v", err)
	}
	if _, err := st.SetQuestionnaire(ctx, a.CandidateID, "lost"); err == nil {
		t.Error("questionnaire status lost accepted")
	}
	v, err := st.SetQuestionnaire(ctx, a.CandidateID, "passed")
	if err != nil || v.Questionnaire != "passed" {
		t.Fatalf("questionnaire: %+v %v", v, err)
	}
	if v, err = st.Vet(ctx, a.CandidateID, true, "cleared"); err != nil || v.Status != "approved" {
		t.Fatalf("approve: %+v %v", v, err)
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Vet(ctx, a.CandidateID, false, "late"); !errors.Is(err, ballots.ErrVet) {
		t.Errorf("vetting after the race opened: %v", err)
	}
	late := nominate(t, st, ballots.NominationInput{Sender: "lead@northampton.example", Candidate: "Ed Markey", Race: "MA-SEN", Reason: "x"}, now)
	if late.Accepted || len(late.Problems) != 1 || !strings.Contains(late.Problems[0], "the MA-SEN race is already open") {
		t.Errorf("nomination into an open race: %+v", late)
	}
}

func TestSignUpStatuses(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	var first, again ballots.SignUpResult
	err := st.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if first, err = ballots.SignUp(ctx, tx, "Dave@Example.net", "Dave", "ma-5", 0); err != nil {
			return err
		}
		if _, _, err = ballots.SetMemberStatus(ctx, tx, first.MemberID, ballots.MemberActive, ballots.MemberPending); err != nil {
			return err
		}
		again, err = ballots.SignUp(ctx, tx, "dave@example.net", "", "MA-05", 0)
		return err
	})
	if err != nil || first.Status != "pending" || again.Status != "active" || !again.Same || again.Change != nil || again.MemberID != first.MemberID {
		t.Fatalf("sign-up: %+v %+v %v", first, again, err)
	}
	m, changed, err := st.Unsubscribe(ctx, first.MemberID)
	if err != nil || !changed || m.Status != "unsubscribed" || m.Name != "Dave" {
		t.Fatalf("unsubscribe: %+v %v %v", m, changed, err)
	}
	if _, changed, _ = st.Unsubscribe(ctx, first.MemberID); changed {
		t.Error("unsubscribing twice changed something")
	}
	err = st.InTx(ctx, func(tx *sqlx.Tx) error {
		_, err := ballots.SignUp(ctx, tx, "x@example.net", "X", "MA-SEN", 0)
		return err
	})
	if err == nil {
		t.Error("sign-up with a state-wide race code as district accepted")
	}
}

// TestMemberChangeStale: a change confirmed after the member changed
// otherwise (an import, another confirmed change) is not applied.
func TestMemberChangeStale(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.ImportMembers(ctx, strings.NewReader("email,name,district\nerin@example.net,Erin,MA-07\n")); err != nil {
		t.Fatal(err)
	}
	var r ballots.SignUpResult
	if err := st.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		r, err = ballots.SignUp(ctx, tx, "erin@example.net", "Erin", "MA-05", 0)
		return err
	}); err != nil || r.Change == nil || r.Change.OldDistrict != "MA-07" || r.Change.District != "MA-05" {
		t.Fatalf("sign-up: %+v %v", r, err)
	}
	if _, err := testenv.DB(t, st).Exec(`UPDATE members SET district = 'MA-08' WHERE email = 'erin@example.net'`); err != nil {
		t.Fatal(err)
	}
	var c ballots.MemberChange
	var applied bool
	if err := st.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		c, applied, err = ballots.ConfirmChange(ctx, tx, r.Change.ID)
		return err
	}); err != nil || applied || c.Outcome != "stale" {
		t.Fatalf("confirm after another change: %+v %v %v", c, applied, err)
	}
	var district string
	if err := testenv.DB(t, st).Get(&district, `SELECT district FROM members WHERE email = 'erin@example.net'`); err != nil || district != "MA-08" {
		t.Fatalf("district %s %v", district, err)
	}
}
