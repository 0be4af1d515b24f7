package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEndToEndQuestionnaire is the policy questionnaire as its users meet
// it (issue 20): a leader's form with a campaign email brings the
// questionnaire to that address; the campaign's inline reply is read per
// question and staff get the answers; a second reply replaces the first;
// a stranger's reply to the campaign's address is not taken; PASS n by
// staff puts the approved candidate on the ballot, and a candidate
// approved without a passed questionnaire stays off it.
func TestEndToEndQuestionnaire(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	h.env["BALLOTD_PUBLIC_URL"] = "https://ballots.example.org"
	h.env["BALLOTD_QUESTIONNAIRE"] = h.file("questions.txt", "# 2026\n1. Do you support Medicare for All?\n2. Will you refuse corporate PAC money?\n3. What is your top priority?\n")
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("groups.csv", "name,state,district,leader_email,leader_name\n"+
		"Indivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n"+
		"Indivisible Cambridge,MA,MA-07,lead@cambridge.example,Cam\n"))
	h.ballotd("import", "members", h.file("members.csv", "email,name,district\nalice@example.net,Alice,MA-07\n"))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "Spring",
		"--nominations-close", now.Add(time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(2*time.Hour).Format(time.RFC3339),
		"--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	stop := h.serve()
	defer func() {
		if stop != nil {
			stop()
		}
	}()

	// 1. Somerville nominates Jordan Rivera, with the campaign's address.
	h.reply("lead@somerville.example", "ballots+nominate@example.org", "From: Sam <lead@somerville.example>\nTo: ballots+nominate@example.org\n"+
		"Subject: nomination\nMessage-ID: <n1@somerville.example>\n\nGroup: Indivisible Somerville\nCandidate: Jordan Rivera\nDistrict: MA-07\n"+
		"Local endorsement: yes\nCampaign email: Rivera HQ <HQ@rivera.example>\nPartner endorsements: Sunrise Boston\nFirst-time candidate: yes\n"+
		"Reason for endorsement:\nOrganizer.\n")
	sent := parseAll(t, h, 3) // confirmation, questionnaire, vetting notice
	q := sentTo(t, sent, "hq@rivera.example")
	if len(q) != 1 || !strings.HasPrefix(q[0].ReplyTo, "ballots+q-") || q[0].Subject != "Policy questionnaire for Jordan Rivera (MA-07)" {
		t.Fatalf("campaign: want the questionnaire with a q- Reply-To, got %+v", q)
	}
	for _, want := range []string{"1. Do you support Medicare for All?", "3. What is your top priority?", "Please reply to this email by",
		"cannot discuss campaign strategy", "Indivisible Somerville nominated Jordan Rivera"} {
		if !strings.Contains(q[0].Body, want) {
			t.Errorf("questionnaire lacks %q:\n%s", want, q[0].Body)
		}
	}
	if c := sentTo(t, sent, "lead@somerville.example"); len(c) != 1 || !strings.Contains(c[0].Body, "The policy questionnaire goes to the campaign at hq@rivera.example") {
		t.Errorf("leader's confirmation does not say where the questionnaire went: %+v", c)
	}
	notice := sentTo(t, sent, "staff@example.org")
	if len(notice) != 1 {
		t.Fatalf("staff: want one vetting notice, got %+v", notice)
	}
	for _, want := range []string{"Partner endorsements: Sunrise Boston", "First-time candidate: yes", "Questionnaire: sent to hq@rivera.example"} {
		if !strings.Contains(notice[0].Body, want) {
			t.Errorf("vetting notice lacks %q:\n%s", want, notice[0].Body)
		}
	}
	rivera := regexp.MustCompile(`Vet candidate (\d+):`).FindStringSubmatch(notice[0].Subject)[1]

	// 2. Cambridge nominates Sam Okafor without a campaign email: no
	// questionnaire goes out.
	h.reply("lead@cambridge.example", "ballots+nominate@example.org", "From: lead@cambridge.example\nTo: ballots+nominate@example.org\n"+
		"Subject: nomination\nMessage-ID: <n2@cambridge.example>\n\nGroup: Indivisible Cambridge\nCandidate: Sam Okafor\nDistrict: MA-07\n"+
		"Local endorsement: yes\nReason for endorsement:\nTeacher.\n")
	sent = parseAll(t, h, 5)
	n2 := sentTo(t, sent, "staff@example.org")
	if len(n2) != 2 || !strings.Contains(n2[1].Body, "Questionnaire: not sent: no campaign email given yet") {
		t.Fatalf("staff: want the second notice to say no questionnaire went out, got %+v", n2)
	}
	okafor := regexp.MustCompile(`Vet candidate (\d+):`).FindStringSubmatch(n2[1].Subject)[1]

	// 3. Staff approve both.
	h.reply("staff@example.org", notice[0].ReplyTo, fmt.Sprintf("From: staff@example.org\nTo: %s\nSubject: Re: vet\nMessage-ID: <v1@example.org>\n\nAPPROVE %s\nAPPROVE %s\n",
		notice[0].ReplyTo, rivera, okafor))
	parseAll(t, h, 6)

	// 4. The campaign answers inline under the quoted questions.
	quoted := quoteLines(q[0].Body)
	h.reply("hq@rivera.example", q[0].ReplyTo, fmt.Sprintf("From: Rivera HQ <hq@rivera.example>\nTo: %s\nSubject: Re: %s\nMessage-ID: <a1@rivera.example>\n"+
		"In-Reply-To: %s\n\nOn Monday you wrote:\n%s", q[0].ReplyTo, q[0].Subject, q[0].MessageID,
		strings.Replace(strings.Replace(quoted, "> 1. Do you support Medicare for All?\n", "> 1. Do you support Medicare for All?\n\nYes, since 2019.\n\n", 1),
			"> 2. Will you refuse corporate PAC money?\n", "> 2. Will you refuse corporate PAC money?\n\nWe already do.\n\n", 1)))
	sent = parseAll(t, h, 8) // receipt + answers to staff
	rc := sentTo(t, sent, "hq@rivera.example")
	if len(rc) != 2 || !strings.Contains(rc[1].Body, "We read answers to 2 of 3 questions.") || !strings.Contains(rc[1].Body, "no answer to question 3") {
		t.Fatalf("campaign: want a receipt naming the unread question, got %+v", rc[len(rc)-1])
	}
	ans := sentTo(t, sent, "staff@example.org")
	last := ans[len(ans)-1]
	if !strings.HasPrefix(last.Subject, "Questionnaire "+rivera+": Jordan Rivera (MA-07)") || !strings.HasPrefix(last.ReplyTo, "ballots+s-") {
		t.Fatalf("staff: want the answers with a staff Reply-To, got %+v", last)
	}
	for _, want := range []string{"1. Do you support Medicare for All?\n\nYes, since 2019.", "2. Will you refuse corporate PAC money?\n\nWe already do.",
		"No answer found to question 3.", "PASS " + rivera} {
		if !strings.Contains(last.Body, want) {
			t.Errorf("answers notice lacks %q:\n%s", want, last.Body)
		}
	}

	// 5. A second reply, numbered, replaces the first; a stranger's is
	// not taken.
	h.reply("hq@rivera.example", q[0].ReplyTo, fmt.Sprintf("From: hq@rivera.example\nTo: %s\nSubject: Re: questionnaire\nMessage-ID: <a2@rivera.example>\n\n"+
		"1. Yes.\n2. Yes.\n3. Housing.\n", q[0].ReplyTo))
	h.reply("mallory@example.com", q[0].ReplyTo, fmt.Sprintf("From: mallory@example.com\nTo: %s\nSubject: Re: questionnaire\nMessage-ID: <a3@example.com>\n\n"+
		"1. No.\n2. No.\n3. Nothing.\n", q[0].ReplyTo))
	sent = parseAll(t, h, 10)
	if rc := sentTo(t, sent, "hq@rivera.example"); !strings.Contains(rc[len(rc)-1].Body, "they\nreplace the answers you sent before") &&
		!strings.Contains(rc[len(rc)-1].Body, "they replace the answers you sent before") {
		t.Errorf("second receipt does not say it replaced the first:\n%s", rc[len(rc)-1].Body)
	}
	ans = sentTo(t, sent, "staff@example.org")
	last = ans[len(ans)-1]
	if !strings.Contains(last.Subject, ", replaced") || !strings.Contains(last.Body, "3. What is your top priority?\n\nHousing.") {
		t.Errorf("staff: want the replacing answers, got %+v", last)
	}

	// 6. The digest says why MA-07 cannot open yet.
	h.ballotd("digest", "send")
	sent = parseAll(t, h, 11)
	for _, want := range []string{"#" + rivera + " Jordan Rivera, MA-07: answers received, to review", "#" + okafor + " Sam Okafor, MA-07: not sent: no campaign email",
		"MA-07 cannot open: none of its candidates has passed the questionnaire"} {
		if !strings.Contains(sent[10].Body, want) {
			t.Errorf("digest lacks %q:\n%s", want, sent[10].Body)
		}
	}

	// 7. Staff pass Rivera's questionnaire by reply.
	h.reply("staff@example.org", last.ReplyTo, fmt.Sprintf("From: staff@example.org\nTo: %s\nSubject: Re: %s\nMessage-ID: <p1@example.org>\n\nPASS %s\n",
		last.ReplyTo, last.Subject, rivera))
	sent = parseAll(t, h, 14) // the answer to staff, and the answers to both MA-07 groups' leaders
	if a := sentTo(t, sent[11:], "staff@example.org"); len(a) != 1 || !strings.Contains(a[0].Body, "PASS "+rivera+": Jordan Rivera (MA-07): questionnaire passed; candidate approved") {
		t.Fatalf("staff: want PASS answered, got %+v", a)
	}
	for _, leader := range []string{"lead@somerville.example", "lead@cambridge.example"} {
		s := sentTo(t, sent[11:], leader)
		if len(s) != 1 || s[0].Subject != "Questionnaire answers: Jordan Rivera (MA-07)" || !strings.Contains(s[0].Body, "3. What is your top priority?\n\nHousing.") {
			t.Errorf("%s: want the passed answers, got %+v", leader, s)
		}
	}
	var shown struct {
		Status  string `json:"status"`
		Replies int    `json:"replies"`
		Answers []struct {
			Number int    `json:"number"`
			Answer string `json:"answer"`
		} `json:"answers"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("questionnaire", "show", rivera, "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Status != "passed" || shown.Replies != 2 || len(shown.Answers) != 3 || shown.Answers[2].Answer != "Housing." {
		t.Errorf("questionnaire show --json = %+v", shown)
	}

	// A candidate added by hand counts as passed, unless told otherwise.
	if out := h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Pat Hand", "--questionnaire"); !strings.Contains(out, "on the ballot once the questionnaire passes") {
		t.Errorf("candidate add --questionnaire: %q", out)
	}

	// 8. The race opens with Rivera only: Okafor is approved, but his
	// questionnaire has not passed.
	if out := h.ballotd("race", "open", "MA-07"); !strings.Contains(out, "1 ballots") && !strings.Contains(out, "1 ballot") {
		t.Fatalf("race open: %q", out)
	}
	sent = parseAll(t, h, 15)
	if b := sent[14]; b.To != "alice@example.net" || !strings.Contains(b.Body, "Jordan Rivera") || strings.Contains(b.Body, "Sam Okafor") || strings.Contains(b.Body, "Pat Hand") {
		t.Fatalf("ballot: want Rivera only, got %+v", b)
	}
	if !strings.Contains(sent[14].Body, "The candidates' answers to our policy questionnaire:\nhttps://ballots.example.org/results#questionnaires") {
		t.Errorf("ballot does not link to the answers:\n%s", sent[14].Body)
	}
	// The answers are public once the candidate is on a ballot.
	if page := h.ballotd("export", "endorsements", "--format", "html"); !strings.Contains(page, `id="questionnaires"`) ||
		!strings.Contains(page, "Jordan Rivera (MA-07") || !strings.Contains(page, "Housing.") {
		t.Errorf("public page lacks Rivera's answers:\n%s", page)
	}
	var public struct {
		Questionnaires []struct {
			Candidate string `json:"candidate"`
			Answers   []struct {
				Answer string `json:"answer"`
			} `json:"answers"`
		} `json:"questionnaires"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("export", "endorsements", "--format", "json")), &public); err != nil {
		t.Fatal(err)
	}
	if len(public.Questionnaires) != 1 || public.Questionnaires[0].Candidate != "Jordan Rivera" || len(public.Questionnaires[0].Answers) != 3 {
		t.Errorf("export json questionnaires = %+v; want Rivera's only (Okafor is not on the ballot)", public.Questionnaires)
	}
	var cands []struct {
		Name          string `json:"name"`
		Status        string `json:"status"`
		Questionnaire string `json:"questionnaire"`
		Campaign      string `json:"campaign_email"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("candidates", "--json")), &cands); err != nil {
		t.Fatal(err)
	}
	if len(cands) != 3 || cands[0].Questionnaire != "passed" || cands[0].Campaign != "hq@rivera.example" || cands[1].Questionnaire != "none" {
		t.Errorf("candidates --json = %+v", cands)
	}
	stop()
	stop = nil
	if n := len(h.sent()); n != 15 {
		t.Errorf("ballotd sent %d messages, want 15 (the stranger's reply is not answered)", n)
	}
}

func quoteLines(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight("> "+l, " ")
	}
	return strings.Join(lines, "\n") + "\n"
}
