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
	"github.com/ballotd/ballotd/templates"
)

// TestQuestionnaireOnceAndOneReminder: a candidate gets one
// questionnaire, due when nominations close, and one reminder before the
// deadline when nothing came back; a campaign that answered gets none.
func TestQuestionnaireOnceAndOneReminder(t *testing.T) {
	t.Parallel()
	st, now := nominationStore(t)
	ctx := context.Background()
	send := func(cid int64, email string) bool {
		t.Helper()
		var sent bool
		if err := st.InTx(ctx, func(tx *sqlx.Tx) error {
			var err error
			sent, err = ballots.SendQuestionnaire(ctx, tx, cid, 0, email, []string{"Medicare for All?", "PAC money?"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return sent
	}
	a := nominate(t, st, ballots.NominationInput{Sender: "lead@northampton.example", Group: "Indivisible Northampton", Candidate: "Ed Markey",
		Race: "MA-SEN", Reason: "r", QuestionnaireRequired: true, Factors: ballots.Factors{Campaign: "team@markey.example"}}, now)
	b := nominate(t, st, ballots.NominationInput{Sender: "two@example.org", Group: "Indivisible Worcester", Candidate: "Jim McGovern",
		Race: "MA-02", Reason: "r", QuestionnaireRequired: true, Factors: ballots.Factors{Campaign: "hq@mcgovern.example"}}, now)
	if !a.Accepted || !b.Accepted || !a.FirstCampaign || a.Campaign != "team@markey.example" {
		t.Fatalf("nominations: %+v %+v", a, b)
	}
	if !send(a.CandidateID, a.Campaign) || send(a.CandidateID, a.Campaign) || !send(b.CandidateID, b.Campaign) {
		t.Fatal("want one questionnaire per candidate")
	}
	q, err := st.Questionnaire(ctx, a.CandidateID)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Questions) != 2 || q.Email != "team@markey.example" || q.Deadline.Sub(now) < 59*time.Minute {
		t.Fatalf("questionnaire = %+v; want two questions due at the nominations close", q)
	}
	// McGovern's campaign answers.
	if err := st.InTx(ctx, func(tx *sqlx.Tx) error {
		_, err := ballots.RecordQuestionnaireReply(ctx, tx, ballots.QuestionnaireReply{CandidateID: b.CandidateID,
			Answers: []templates.QAnswer{{Number: 1, Question: "Medicare for All?", Answer: "Yes."}}, Unread: []int{2}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Not yet: the reminder is due a day before the deadline, but not
	// before halfway between sending and the deadline.
	rep, err := st.RunDueSteps(ctx, nil, 24*time.Hour)
	if err != nil || rep.Questionnaires != 0 {
		t.Fatalf("first pass: %+v, %v; want no reminder before halfway", rep, err)
	}
	if _, err := testenv.DB(t, st).Exec(`UPDATE questionnaires SET sent_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		rep, err := st.RunDueSteps(ctx, nil, 24*time.Hour)
		if want := 1 - i; err != nil || rep.Questionnaires != want {
			t.Fatalf("pass %d: %+v, %v; want %d reminder", i+2, rep, err, want)
		}
	}
	if to := outboxTo(t, st, templates.KindQuestionnaire); len(to) != 3 || to[0] != "hq@mcgovern.example" || to[1] != "team@markey.example" || to[2] != "team@markey.example" {
		t.Fatalf("questionnaires sent to %q; want McGovern's once and Markey's twice (the reminder)", to)
	}
	var reminders int
	if err := testenv.DB(t, st).Get(&reminders, `SELECT count(*) FROM outbox WHERE kind = 'questionnaire' AND data::jsonb ->> 'reminder' = 'true'`); err != nil || reminders != 1 {
		t.Fatalf("reminders = %d, %v", reminders, err)
	}
	q, err = st.Questionnaire(ctx, b.CandidateID)
	if err != nil || q.Status != "received" || q.Replies != 1 || len(q.Answers) != 1 || len(q.Unread) != 1 {
		t.Fatalf("answered questionnaire = %+v, %v", q, err)
	}
}

// TestOnBallotNeedsPassedQuestionnaire: while the step is on, an approved
// candidate goes on the ballot only with a passed questionnaire; one
// added by hand counts as passed.
func TestOnBallotNeedsPassedQuestionnaire(t *testing.T) {
	t.Parallel()
	st, now := nominationStore(t)
	ctx := context.Background()
	if _, err := st.ImportMembers(ctx, strings.NewReader("email,name,district\nm@example.net,M,MA-02\n")); err != nil {
		t.Fatal(err)
	}
	a := nominate(t, st, ballots.NominationInput{Sender: "two@example.org", Group: "Indivisible Worcester", Candidate: "Jim McGovern",
		Race: "MA-02", Reason: "r", QuestionnaireRequired: true}, now)
	if _, err := st.Vet(ctx, a.CandidateID, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenRace(ctx, "MA-02"); err == nil {
		t.Fatal("MA-02 opened with its only candidate's questionnaire not passed")
	}
	if err := st.InTx(ctx, func(tx *sqlx.Tx) error {
		_, err := ballots.ReviewQuestionnaire(ctx, tx, a.CandidateID, true, "", "staff@example.org")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCandidate(ctx, "MA-02", "", "Ann Added", "bio", nil); err != nil {
		t.Fatal(err)
	}
	if n, err := st.OpenRace(ctx, "MA-02"); err != nil || n != 1 {
		t.Fatalf("open MA-02: %d, %v", n, err)
	}
	if _, err := st.SetQuestionnaire(ctx, a.CandidateID, "failed"); !errors.Is(err, ballots.ErrVet) {
		t.Errorf("failing a questionnaire after the race opened: %v; want ErrVet (the ballot's candidates are settled)", err)
	}
	cs, err := st.Candidates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	numbered := 0
	for _, c := range cs {
		if c.Race == "MA-02" && c.Number.Valid {
			numbered++
		}
	}
	if numbered != 2 {
		t.Errorf("%d candidates numbered on the MA-02 ballot, want 2 (passed, and added by hand)", numbered)
	}
}
