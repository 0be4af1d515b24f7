package templates

import (
	"bytes"
	"flag"
	"fmt"
	htmltemplate "html/template"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// update rewrites the golden files from what the templates render now:
//
//	go test ./templates -run TestGolden -update
//
// and then read the diff (git diff templates/testdata) before committing it.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden from the templates")

// goldenDir holds one KIND.CASE.txt (the subject, a blank line, the text
// body) and one KIND.CASE.html per golden case.
const goldenDir = "testdata/golden"

// goldenCase is one message of one kind in one phase, with its data.
type goldenCase struct {
	kind, name string
	data       any
}

// goldenZone is the fixed zone every time of the fixed data set is in: a
// race's times are in its state's zone (Massachusetts), as the mailer
// gives them.
func goldenZone(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// goldenCases is the fixed data set: every kind in every phase and shape
// it is sent in (one candidate and several, named and not, open and
// closed, results out and held, leader and member).
func goldenCases(t *testing.T) []goldenCase {
	ny := goldenZone(t)
	closes := time.Date(2026, 3, 8, 17, 0, 0, 0, ny)
	closedEarly := time.Date(2026, 3, 6, 10, 30, 0, 0, ny)
	race := Race{Code: "MA-07", Title: "U.S. House, Massachusetts district 7", Close: closes, ThresholdPct: "60 %"}
	senate := Race{Code: "MA-SEN", Title: "U.S. Senate, Massachusetts", Close: closes, ThresholdPct: "60 %"}
	openRule := []string{
		"A candidate is endorsed with the support of 60 % or more of the members who vote; exactly 60 % is enough.",
		"Answering NO or NONE counts as having voted and supports no candidate.",
		"Only your latest reply before the close counts; you can change your vote until then.",
		"Voting closes Sunday 8 March 2026 at 5:00 pm EDT (Massachusetts time).",
	}
	openHouse := OpenRace{Race: race, Rule: openRule}
	openSenate := OpenRace{Race: senate, Rule: openRule}
	one := []Candidate{{Number: 1, Name: "Ed Markey", Bio: "Senator since 2013 & a <climate> champion.",
		Groups: []string{"Indivisible Northampton", "Indivisible Somerville"}}}
	many := []Candidate{
		{Number: 1, Name: "Ayanna Pressley", Bio: "Representative since 2019.\n\nFormer Boston city councillor.", Groups: []string{"Indivisible Somerville"}},
		{Number: 2, Name: "Sam O'Kafor", Bio: "Organiser \"for\" 10 years.", Groups: []string{"Indivisible Cambridge", "Indivisible Somerville"}},
		{Number: 3, Name: "Zoë Ünal"},
	}
	const code = "k7d2m4q8x3v9c6b1n5t0r2w8"
	const reply = "ballots+v-k7d2m4q8x3v9c6b1n5t0r2w8@vote.example.org"
	closedHouse := race
	closedHouse.Close = closedEarly
	applied := []string{
		"A candidate needed the support of 60 % or more of the members who voted; exactly 60 % was enough.",
		"Answering NO or NONE counted as having voted and supported no candidate.",
		"Each member's latest reply before the close was the one counted.",
		"Voting closed Friday 6 March 2026 at 10:30 am EST (Massachusetts time).",
	}
	endorsed := Announcement{Name: "Jane Doe", YouVoted: true, Race: closedHouse, Applied: applied, Eligible: 30, Voted: 20, Turnout: "66.7 %",
		Reachable: 30, TurnoutReachable: "66.7 %",
		Results: []Result{
			{Number: 1, Name: "Ayanna Pressley", Votes: 15, Support: "75.0 %", Endorsed: true,
				Applied: "endorsed: 75.0 % support, above the 60 % needed; 66.7 % turnout"},
			{Number: 2, Name: "Sam O'Kafor", Votes: 4, Support: "20.0 %", Applied: "not endorsed: 20.0 % support, below the 60 % needed; 66.7 % turnout"},
			{Number: 3, Name: "Zoë Ünal", Votes: 1, Support: "5.0 %", Applied: "not endorsed: 5.0 % support, below the 60 % needed; 66.7 % turnout"},
		},
		Endorsed: []string{"Ayanna Pressley"}}
	none := Announcement{Race: Race{Code: "MA-SEN", Title: "U.S. Senate, Massachusetts", Close: closes, ThresholdPct: "60 %"},
		Applied: append(applied[:3:3],
			"No one could be endorsed unless at least 30 % of the eligible members voted; 20.0 % did, so no one could be endorsed.",
			"Voting closed Sunday 8 March 2026 at 5:00 pm EDT (Massachusetts time)."),
		Eligible: 10, Voted: 2, Turnout: "20.0 %", Reachable: 8, Unreachable: 2, TurnoutReachable: "25.0 %",
		Results: []Result{{Number: 1, Name: "Ed Markey", Votes: 1, Support: "50.0 %",
			Applied: "not endorsed: 50.0 % support, below the 60 % needed, but 20.0 % turnout, below the 30 % needed"}}}
	leader := endorsed
	leader.Name, leader.LeaderOf = "Lee Leader", []string{"Indivisible Somerville", "Indivisible Cambridge"}
	since := time.Date(2026, 3, 5, 8, 0, 0, 0, time.UTC)
	at := time.Date(2026, 3, 6, 8, 0, 0, 0, time.UTC)
	vetting := []VettingCandidate{
		{ID: 12, Race: "MA-07", Wave: "March 2026", Name: "Sam O'Kafor", Status: "pending", Groups: []string{"Indivisible Cambridge"}},
		{ID: 13, Race: "MA-SEN", Wave: "March 2026", Name: "Ed Markey", Status: "pending", Groups: []string{"Indivisible Northampton", "Indivisible Somerville"},
			Conflicts: []string{"Jane Roe"}, Partners: []string{"Sunrise, Working Families"}, FirstTime: "no", PastRaces: []string{"U.S. Senate 2014, 2020"},
			Questionnaire: "received"},
	}
	openRace := DigestRace{Code: "MA-07", Wave: "March 2026", Eligible: 30, Reachable: 28, Voted: 12, Turnout: 0.4,
		Closes: closes, Left: "2 days 9 hours", MinTurnout: 0.3}
	result := DigestResult{Race: "MA-SEN", Eligible: 10, Voted: 6, Turnout: 0.6}
	result.Candidates = append(result.Candidates, struct {
		Number   int     `json:"number"`
		Name     string  `json:"name"`
		Votes    int     `json:"votes"`
		Support  float64 `json:"support"`
		Endorsed bool    `json:"endorsed"`
	}{Number: 1, Name: "Ed Markey", Votes: 5, Support: 5.0 / 6, Endorsed: true})
	blank := "Group:\nCandidate:\nOffice:\nState:\nDistrict:\nLocal endorsement:\nCampaign email:\nReason for endorsement:\n"

	return []goldenCase{
		{"ballot", "one-candidate", Ballot{Name: "Jane Doe", Race: openSenate, Candidates: one, Single: true, Code: code, Reply: reply}},
		{"ballot", "several-unnamed", Ballot{Race: openHouse, Candidates: many, Code: code, Reply: reply}},
		{"ballot", "questionnaire-link", Ballot{Race: OpenRace{Race: race, Rule: openRule, Answers: "https://ballots.example.org/results#questionnaires"},
			Candidates: one, Single: true, Code: code, Reply: reply}},
		{"reminder", "one-candidate", Reminder{Name: "Jane Doe", Race: openSenate, Candidates: one, Single: true, Code: code, Reply: reply}},
		{"reminder", "several", Reminder{Name: "Jane Doe", Race: openHouse, Candidates: many, Code: code, Reply: reply}},
		{"receipt", "vote", Receipt{Name: "Jane Doe", Race: race, Choice: "1. Ayanna Pressley", Receipt: "r3c31pt-c0de-7x9q", Code: code}},
		{"receipt", "read-as", Receipt{Race: race, Choice: "1. Ayanna Pressley", Receipt: "r3c31pt-c0de-7x9q", Code: code,
			Read: `"Pressly" as Ayanna Pressley`}},
		{"no-change", "same", NoChange{Name: "Jane Doe", Race: race, Choice: "YES for Ed Markey", Code: code}},
		{"no-change", "stale", NoChange{Name: "Jane Doe", Race: race, Choice: "NO", Stale: true, Code: code}},
		{"clarify", "one-candidate", Clarify{Name: "Jane Doe", Race: senate, Reason: "the reply says both YES and NO",
			Quote: "yes\nno, wait", Candidates: one, Single: true, Code: code, Reply: reply}},
		{"clarify", "several", Clarify{Race: race, Reason: "no candidate's number or name was found",
			Quote: "I like the second one <3", Candidates: many, Code: code, Reply: reply}},
		{"closed", "results-pending", Closed{Name: "Jane Doe", Race: closedHouse}},
		{"closed", "results-out", Closed{Name: "Jane Doe", Race: closedHouse, Results: &endorsed}},
		{"not-voter", "other-sender", NotVoter{Name: "Jane Doe", Race: race, Sender: "someone@else.example"}},
		{"unauthenticated", "dmarc-fail", Unauthenticated{Name: "Jane Doe", Race: race, Sender: "jane@example.net"}},
		{"unmatched", "unknown-token", Unmatched{Subject: "Re: Your ballot"}},
		{"resend-neutral", "resend", Unmatched{Subject: "please resend my ballot"}},
		{"announcement", "endorsed-member", endorsed},
		{"announcement", "endorsed-leader", leader},
		{"announcement", "none-turnout-short", none},
		{"results-held", "endorsed", endorsed},
		{"results-held", "none-undelivered", none},
		{"nomination-confirm", "new", NominationConfirm{Number: 7, Group: "Indivisible Somerville", Candidate: "Ayanna Pressley", Race: "MA-07",
			Groups: []string{"Indivisible Somerville"}}},
		{"nomination-confirm", "updated", NominationConfirm{Number: 7, Group: "Indivisible Somerville", Candidate: "Ayanna Pressley", Race: "MA-07",
			Groups: []string{"Indivisible Cambridge", "Indivisible Somerville"}, Updated: true}},
		{"nomination-confirm", "factors", NominationConfirm{Number: 9, Group: "Indivisible Northampton", Candidate: "Ed Markey", Race: "MA-SEN",
			Groups: []string{"Indivisible Northampton"}, Campaign: "team@markey.example", Partners: "Sunrise, Working Families", FirstTime: "no",
			PastRaces: "Senate 2014, 2020 (won)", Questionnaire: true}},
		{"nomination-confirm", "withdrawn", NominationConfirm{Number: 7, Group: "Indivisible Somerville", Candidate: "Ayanna Pressley", Race: "MA-07",
			Withdrawn: true}},
		{"nomination-problems", "two-problems", NominationProblems{Number: 8, Problems: []string{"District: MA-99 is not a race in an open wave",
			"You are not a registered leader of Indivisible Nowhere"}, Form: "Group: Indivisible Nowhere\nDistrict: MA-99", Blank: blank}},
		{"blank-form", "blank", BlankForm{Blank: blank}},
		{"vetting-notice", "conflict", VettingNotice{Number: 7, CandidateID: 13, Candidate: "Ed Markey", Status: "pending", Race: "MA-SEN",
			Group: "Indivisible Northampton", Groups: []string{"Indivisible Northampton", "Indivisible Somerville"}, Conflicts: []string{"Jane Roe"},
			Reason: "A champion of the Green New Deal & of <voting rights>."}},
		{"vetting-notice", "factors", VettingNotice{Number: 9, CandidateID: 14, Candidate: "Jordan Rivera", Status: "nominated", Race: "MA-07",
			Group: "Indivisible Somerville", Groups: []string{"Indivisible Somerville"}, Campaign: "hq@rivera.example",
			Partners: []string{"Sunrise", "Our Revolution & <friends>"}, FirstTime: "yes", Questionnaire: "sent, due Friday 20 February"}},
		{"vetting", "two-races", Vetting{Wave: "March 2026", VotingOpen: time.Date(2026, 3, 1, 9, 0, 0, 0, ny),
			Races: []VettingRace{{Code: "MA-07", Candidates: vetting[:1]}, {Code: "MA-SEN", Candidates: vetting[1:]}}}},
		{"staff-answer", "results", StaffAnswer{Results: []string{"APPROVE 12: Sam O'Kafor approved", "REJECT 99: no candidate 99"}}},
		{"questionnaire", "first", Questionnaire{QuestionnaireMail: QuestionnaireMail{CandidateID: 14, Candidate: "Jordan Rivera", Race: "MA-07",
			RaceTitle: "U.S. House", Groups: []string{"Indivisible Somerville"}, Questions: []string{"Do you support Medicare for All?",
				"Will you refuse corporate PAC money & <dark money>?"}, Deadline: time.Date(2026, 2, 20, 17, 0, 0, 0, ny)}, Reply: "ballots+q-tok@example.org"}},
		{"questionnaire", "reminder", Questionnaire{QuestionnaireMail: QuestionnaireMail{CandidateID: 14, Candidate: "Jordan Rivera", Race: "MA-07",
			RaceTitle: "U.S. House", Groups: []string{"Indivisible Somerville", "Indivisible Cambridge"}, Questions: []string{"Do you support Medicare for All?"},
			Deadline: time.Date(2026, 2, 20, 17, 0, 0, 0, ny), Reminder: true}, Reply: "ballots+q-tok@example.org"}},
		{"questionnaire-receipt", "partial-replaced", QuestionnaireReceipt{Candidate: "Jordan Rivera", Race: "MA-07", Answered: 1, Questions: 3,
			Unread: []int{2, 3}, Attachments: []string{"answers.pdf"}, Replaced: true}},
		{"questionnaire-receipt", "all", QuestionnaireReceipt{Candidate: "Jordan Rivera", Race: "MA-07", Answered: 2, Questions: 2, Late: true}},
		{"questionnaire-answers", "two", QuestionnaireAnswers{CandidateID: 14, Candidate: "Jordan Rivera", Race: "MA-07", Status: "approved",
			Groups: []string{"Indivisible Somerville"}, From: "hq@rivera.example", Answers: []QAnswer{{1, "Do you support Medicare for All?", "Yes.\n\nSince 2019."},
				{3, "Will you refuse corporate PAC money?", "Yes & <always>."}}, Unread: []int{2}, Attachments: []string{"platform.pdf"}, Replaced: true}},
		{"questionnaire-shared", "leader", QuestionnaireShared{Name: "Cam", Candidate: "Jordan Rivera", Race: "MA-07", RaceTitle: "U.S. House",
			Groups: []string{"Indivisible Somerville"}, Answers: []QAnswer{{1, "Do you support Medicare for All?", "Yes."}}, Attachments: []string{"platform.pdf"}}},
		{"staff-answer", "help", StaffAnswer{Results: []string{"FOO: not a command"}, Help: true}},
		{"digest", "quiet", Digest{At: at}},
		{"digest", "questionnaires", Digest{At: at, Questionnaires: []DigestQuestionnaire{
			{ID: 14, Race: "MA-07", Wave: "March 2026", Name: "Jordan Rivera", Status: "received", Words: "answers received, to review", Blocked: true},
			{ID: 15, Race: "MA-07", Wave: "March 2026", Name: "Sam Okafor", Status: "none", Words: "no answer, 3 days overdue", Blocked: true}}}},
		{"digest", "busy", Digest{Since: &since, At: at, Nominations: vetting, Vetting: vetting, Conflicts: vetting[1:],
			Open:        []DigestRace{openRace},
			Problems:    []DigestProblem{{Kind: "quarantine", ID: 4, Address: "who@example.net", Detail: "unreadable form"}},
			Results:     []DigestResult{result},
			Undelivered: []DigestUndelivered{{Reason: "mailbox full", Count: 3, Addresses: []string{"a@example.net", "b@example.net"}}},
			Delivery: []DigestDelivery{{Domains: "gmail", Sent: 410, Deferred: 12, Bounced: 3, Complaints: 1, Reasons: "greylisting 9, unknown_mailbox 3"},
				{Domains: "other", Sent: 88, Bounced: 1, Reasons: "mailbox_full 1"},
				{Domains: "total", Sent: 498, Deferred: 12, Bounced: 4, Complaints: 1, Reasons: "greylisting 9, unknown_mailbox 3, mailbox_full 1"}},
			Sending: []DigestSending{{Wave: "March 2026", Remaining: 41200, PerMinute: 950, Out: at.Add(43 * time.Minute), Known: true},
				{Wave: "April 2026", Remaining: 300}},
			HeldAnswers: 2, Chart: htmltemplate.URL("cid:chart.k7d2m4q8@vote.example.org"), ChartRaces: []DigestRace{openRace}, ChartMore: 1}},
		{"join-confirm", "request", JoinConfirm{Name: "Jo Q. Public", District: "MA-07"}},
		{"join-problems", "unreadable", JoinProblems{Problems: []string{"District: MA-99 is not a district"}}},
		{"welcome", "new", Welcome{Name: "Jo Public", District: "MA-07"}},
		{"welcome", "already", Welcome{Name: "Jo Public", District: "MA-07", Already: true}},
		{"unsubscribed", "named", Unsubscribed{Name: "Jo Public"}},
		{"member-change", "district-and-name", MemberChange{Name: "Jo Public", OldName: "Jo Public", NewName: "Joanna Public",
			OldDistrict: "MA-07", NewDistrict: "MA-05", OldStatus: "active", NewStatus: "active", ChangeID: 41}},
		{"unauthenticated-request", "sign-up", UnauthenticatedRequest{What: "a sign-up", Sender: "jo@example.net", Subject: "join"}},
	}
}

// goldenFiles renders a case: the text file (subject, blank line, text
// body) and the HTML body.
func goldenFiles(set *Set, c goldenCase) (txt, html []byte, err error) {
	var text, hb bytes.Buffer
	subject, err := set.Render(c.kind, c.data, &text, &hb)
	if err != nil {
		return nil, nil, err
	}
	return []byte("Subject: " + subject + "\n\n" + text.String()), hb.Bytes(), nil
}

// TestGolden renders every kind in every phase from the fixed data set and
// compares each with its golden file; -update rewrites them (and removes
// the files of cases that are gone). Every kind must have a case, so a
// kind cannot be added untested.
func TestGolden(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	cases := goldenCases(t)
	covered := map[string]bool{}
	want := map[string]bool{} // golden file names the cases make
	for _, c := range cases {
		if !slices.Contains(Names, c.kind) {
			t.Errorf("golden case %s.%s: no such kind", c.kind, c.name)
		}
		covered[c.kind] = true
	}
	for _, k := range Names {
		if !covered[k] {
			t.Errorf("kind %q has no golden case: add one to goldenCases", k)
		}
	}
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		base := c.kind + "." + c.name
		if want[base+".txt"] {
			t.Errorf("golden case %s twice", base)
		}
		want[base+".txt"], want[base+".html"] = true, true
		t.Run(base, func(t *testing.T) {
			txt, html, err := goldenFiles(set, c)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name string
				got  []byte
			}{{base + ".txt", txt}, {base + ".html", html}} {
				path := filepath.Join(goldenDir, f.name)
				if *update {
					if err := os.WriteFile(path, f.got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				golden, err := os.ReadFile(path)
				if err != nil {
					t.Errorf("%v (run go test ./templates -run TestGolden -update)", err)
					continue
				}
				if !bytes.Equal(golden, f.got) {
					t.Errorf("%s differs from its golden file (run go test ./templates -run TestGolden -update and read the diff):\n%s",
						f.name, firstDifference(string(golden), string(f.got)))
				}
			}
		})
	}
	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if want[e.Name()] {
			continue
		}
		if *update {
			if err := os.Remove(filepath.Join(goldenDir, e.Name())); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("golden file %s has no case (run go test ./templates -run TestGolden -update to remove it)", e.Name())
	}
}

// TestGoldenClosedRaceHasNoOpenRule: nothing a closed race's mail renders
// says voting is still open; its data type (Announcement, Closed) has no
// open-race rule to render, and its templates say so in the past tense.
func TestGoldenClosedRaceHasNoOpenRule(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range goldenCases(t) {
		switch c.data.(type) {
		case Announcement, Closed:
		default:
			continue
		}
		txt, html, err := goldenFiles(set, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, open := range []string{"change your vote", "Voting closes", "you can vote", "until then", "Thank you for voting"} {
			if bytes.Contains(txt, []byte(open)) || bytes.Contains(html, []byte(open)) {
				t.Errorf("%s.%s says %q after the close", c.kind, c.name, open)
			}
		}
	}
}

// firstDifference shows the first line where two texts differ.
func firstDifference(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n golden: %q\n    got: %q", i+1, w, g)
		}
	}
	return "(only line endings differ)"
}
