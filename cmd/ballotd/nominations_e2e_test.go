package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/token"
)

// sentTo returns the messages ballotd sent to addr among envs.
func sentTo(t *testing.T, envs []ballotOf, addr string) []ballotOf {
	t.Helper()
	var out []ballotOf
	for _, b := range envs {
		if b.To == addr {
			out = append(out, b)
		}
	}
	return out
}

func parseAll(t *testing.T, h *harness, n int) []ballotOf {
	t.Helper()
	var out []ballotOf
	for _, e := range h.waitSent(n) {
		out = append(out, parseSent(t, e))
	}
	return out
}

// unsubscribeToken is the u- token ballotd gives the member with this
// address (List-Unsubscribe, one-click POST).
func (h *harness) unsubscribeToken(email string) string {
	h.t.Helper()
	id, err := ballots.MemberByEmail(context.Background(), h.db(), email)
	if err != nil {
		h.t.Fatal(err)
	}
	toks, err := token.NewKey(h.env["BALLOTD_SECRET"])
	if err != nil {
		h.t.Fatal(err)
	}
	return toks.Make(token.Unsubscribe, id, nil)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestEndToEndNominations is the front half of the process as its users
// meet it: a leader emails the seed's Markey form, a second group nominates
// him too, a group outside the state is refused with its problems, staff
// approve by replying APPROVE n, a member signs up by email, another
// unsubscribes by one click, and the race's ballots name both groups.
func TestEndToEndNominations(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_STAFF"] = "Vetting Staff <staff@example.org>"
	h.env["BALLOTD_HTTP_ADDR"] = freeAddr(t)
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("groups.csv", "name,state,district,leader_email,leader_name\n"+
		"Indivisible Northampton,MA,MA-02,lead@northampton.example,Lee\n"+
		"Indivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n"+
		"Indivisible Brooklyn,NY,NY-10,lead@brooklyn.example,Bea\n"))
	h.ballotd("import", "members", h.file("members.csv", "email,name,district\n"+
		"alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-02\nnora@example.net,Nora,NY-10\n"))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "Spring",
		"--nominations-close", now.Add(time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(time.Hour).Format(time.RFC3339),
		"--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))

	stop := h.serve()
	defer func() {
		if stop != nil {
			stop()
		}
	}()

	seed, err := os.ReadFile("../../inbound/message/testdata/markey_form.txt")
	if err != nil {
		t.Fatal(err)
	}
	const plain = "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n"
	// 1. The seed's form, verbatim, from Northampton's leader.
	h.reply("lead@northampton.example", "ballots+nominate@example.org", "From: Lee <lead@northampton.example>\nTo: ballots+nominate@example.org\n"+
		"Subject: Nomination: Ed Markey\nMessage-ID: <nom-1@northampton.example>\n"+plain+"\n"+string(seed))
	sent := parseAll(t, h, 2) // confirmation + vetting notice
	conf := sentTo(t, sent, "lead@northampton.example")
	if len(conf) != 1 || !strings.HasPrefix(conf[0].Subject, "Nomination 1 received: Ed Markey (MA-SEN)") ||
		!strings.Contains(conf[0].Body, "Nomination number: 1") {
		t.Fatalf("Northampton: want a confirmation with a nomination number, got %+v", conf)
	}
	notices := sentTo(t, sent, "staff@example.org")
	if len(notices) != 1 || !strings.HasPrefix(notices[0].ReplyTo, "ballots+s-") {
		t.Fatalf("staff: want one vetting notice with a staff Reply-To, got %+v", notices)
	}
	cid := regexp.MustCompile(`Vet candidate (\d+):`).FindStringSubmatch(notices[0].Subject)
	if cid == nil {
		t.Fatalf("vetting notice subject %q names no candidate", notices[0].Subject)
	}

	// 2. Somerville nominates him too, in DESIGN's wording and other case.
	h.reply("lead@somerville.example", "ballots+nominate@example.org", "From: Sam <Lead@Somerville.example>\nTo: ballots+nominate@example.org\n"+
		"Subject: our nomination\nMessage-ID: <nom-2@somerville.example>\n\nGroup: indivisible somerville\nCandidate: ED  MARKEY\nOffice: U.S. Senate\n"+
		"State: MA\nDistrict: MA-SEN\nLocal endorsement: yes\nPartner endorsements: Sunrise, Working Families\nFirst-time candidate: no\n"+
		"Past races: U.S. Senate 2014 and 2020, won both\nReason for endorsement:\nHe shows up.\n\n-- \nSam\n")
	// 3. A New York group cannot nominate in Massachusetts: every problem listed.
	h.reply("lead@brooklyn.example", "ballots+nominate@example.org", "From: lead@brooklyn.example\nTo: ballots+nominate@example.org\n"+
		"Subject: nomination\nMessage-ID: <nom-3@brooklyn.example>\n\nGroup: Indivisible Brooklyn\nCandidate: Ed Markey\nDistrict: MA-SEN\nReason for endorsement: Climate.\n")
	// 4. Someone asks for the form.
	h.reply("newlead@example.com", "ballots@example.org", "From: newlead@example.com\nTo: ballots@example.org\nSubject: form\nMessage-ID: <form-1@example.com>\n\nPlease send it.\n")
	// 5. Dave signs up by email.
	h.reply("dave@example.net", "ballots+join@example.org", "From: Dave <dave@example.net>\nTo: ballots+join@example.org\nSubject: sign me up\nMessage-ID: <join-1@example.net>\n\nName: Dave Doe\nState: Massachusetts\nDistrict: 5\n")
	sent = parseAll(t, h, 7) // + Somerville's confirmation + notice + Brooklyn's problems + form + Dave's confirmation request
	conf = sentTo(t, sent, "lead@somerville.example")
	if len(conf) != 1 || !strings.Contains(conf[0].Body, "Nominated by: Indivisible Northampton, Indivisible Somerville") {
		t.Fatalf("Somerville: want a confirmation naming both groups (merged), got %+v", conf)
	}
	if n := sentTo(t, sent, "staff@example.org"); len(n) != 2 || !strings.Contains(n[1].Subject, "Vet candidate "+cid[1]+":") {
		t.Fatalf("staff: want a second notice about the same candidate %s, got %+v", cid[1], n)
	} else {
		// The factors staff weigh, from the form, in the notice.
		for _, want := range []string{"Groups nominating: 2", "Partner endorsements: Sunrise, Working Families", "First-time candidate: no",
			"Past races: U.S. Senate 2014 and 2020, won both"} {
			if !strings.Contains(n[1].Body, want) {
				t.Errorf("vetting notice lacks %q:\n%s", want, n[1].Body)
			}
		}
	}
	if !strings.Contains(conf[0].Body, "Partner endorsements:  Sunrise, Working Families") {
		t.Errorf("Somerville's confirmation does not quote the partners back:\n%s", conf[0].Body)
	}
	probs := sentTo(t, sent, "lead@brooklyn.example")
	if len(probs) != 1 || probs[0].Subject != "We could not accept your nomination" {
		t.Fatalf("Brooklyn: want the problems, got %+v", probs)
	}
	for _, want := range []string{"State: Indivisible Brooklyn is in New York, not in Massachusetts",
		"Local endorsement: missing", "The form as we received it:\n\nGroup: Indivisible Brooklyn", "Blank form:", "Reason for endorsement:"} {
		if !strings.Contains(probs[0].Body, want) {
			t.Errorf("Brooklyn's answer lacks %q:\n%s", want, probs[0].Body)
		}
	}
	if f := sentTo(t, sent, "newlead@example.com"); len(f) != 1 || f[0].Subject != "Nomination form" || !strings.Contains(f[0].Body, "Local endorsement: yes") {
		t.Errorf("subject \"form\": want the blank form, got %+v", f)
	}
	join := sentTo(t, sent, "dave@example.net")
	if len(join) != 1 || !strings.HasPrefix(join[0].ReplyTo, "ballots+c-") || !strings.Contains(join[0].Body, "MA-05") {
		t.Fatalf("Dave: want a confirmation request to a c- address, got %+v", join)
	}

	// 6. Dave confirms; staff approve by replying to the notice.
	h.reply("dave@example.net", join[0].ReplyTo, fmt.Sprintf("From: dave@example.net\nTo: %s\nSubject: Re: %s\nMessage-ID: <join-2@example.net>\n\nyes\n", join[0].ReplyTo, join[0].Subject))
	h.reply("staff@example.org", notices[0].ReplyTo, fmt.Sprintf("From: Vetting Staff <staff@example.org>\nTo: %s\nSubject: Re: %s\nMessage-ID: <vet-1@example.org>\n\nAPPROVE %s\n\nOn Monday ballots wrote:\n> REJECT 99 no\n",
		notices[0].ReplyTo, notices[0].Subject, cid[1]))
	// A stranger writing to the staff address is not obeyed.
	h.reply("mallory@example.com", notices[0].ReplyTo, fmt.Sprintf("From: mallory@example.com\nTo: %s\nSubject: hi\nMessage-ID: <vet-2@example.com>\n\nREJECT %s bad\n", notices[0].ReplyTo, cid[1]))
	sent = parseAll(t, h, 9)
	if w := sentTo(t, sent, "dave@example.net"); len(w) != 2 || w[1].Subject != "You are signed up to vote on endorsements" {
		t.Fatalf("Dave: want the welcome, got %+v", w)
	}
	ans := sentTo(t, sent, "staff@example.org")
	if len(ans) != 3 || !strings.Contains(ans[2].Body, "APPROVE "+cid[1]+": Ed Markey (MA-SEN) is approved; nominated by Indivisible Northampton, Indivisible Somerville") {
		t.Fatalf("staff: want the APPROVE answered, got %+v", ans[len(ans)-1])
	}
	if strings.Contains(ans[2].Body, "REJECT 99") {
		t.Errorf("a quoted command was run: %s", ans[2].Body)
	}

	// 7. Bob unsubscribes by RFC 8058 one-click POST.
	url := "http://" + h.env["BALLOTD_HTTP_ADDR"] + "/unsubscribe?t=" + h.unsubscribeToken("bob@example.net")
	if resp, err := http.Post("http://"+h.env["BALLOTD_HTTP_ADDR"]+"/unsubscribe?t=forged", "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click")); err == nil {
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forged one-click token: status %d, want 400", resp.StatusCode)
		}
		resp.Body.Close()
	}
	resp, err := http.Post(url, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click unsubscribe: status %d", resp.StatusCode)
	}

	// 8. The candidate list shows the merge and the approval.
	var cands []struct {
		ID            int64    `json:"id"`
		Race          string   `json:"race"`
		Name          string   `json:"name"`
		Status        string   `json:"status"`
		Groups        []string `json:"groups"`
		Questionnaire string   `json:"questionnaire"`
		Conflicts     []string `json:"conflicts"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("candidates", "--json")), &cands); err != nil {
		t.Fatal(err)
	}
	if len(cands) != 1 || cands[0].Status != "approved" || cands[0].Name != "Ed Markey" || len(cands[0].Groups) != 2 || len(cands[0].Conflicts) != 0 {
		t.Fatalf("candidates --json = %+v; want one approved Ed Markey with two groups", cands)
	}
	h.ballotd("vet", "questionnaire", fmt.Sprint(cands[0].ID), "passed")
	if out := h.ballotd("candidates"); !regexp.MustCompile(`Ed Markey\s+approved\s+passed\s+Indivisible Northampton, Indivisible Somerville`).MatchString(out) {
		t.Errorf("candidates:\n%s", out)
	}

	// 9. The race opens: every active MA member gets a ballot naming both groups.
	if out := h.ballotd("race", "open", "MA-SEN"); !strings.Contains(out, "2 ballots") {
		t.Fatalf("race open: %q (want alice and dave; bob unsubscribed, nora in NY)", out)
	}
	sent = parseAll(t, h, 11)
	got := map[string]bool{}
	for _, b := range sent[9:] {
		got[b.To] = true
		if !strings.Contains(b.Body, "Indivisible Northampton, Indivisible Somerville") || !strings.Contains(b.Body, "Ed Markey") {
			t.Errorf("ballot to %s does not name both groups:\n%s", b.To, b.Body)
		}
	}
	if !got["alice@example.net"] || !got["dave@example.net"] {
		t.Errorf("ballots went to %v; want alice and dave", got)
	}
	h.waitIdle() // whatever the stranger's command would send, it has sent
	stop()
	stop = nil
	if n := len(h.sent()); n != 11 {
		t.Errorf("ballotd sent %d messages, want 11 (the stranger's staff command is not answered)", n)
	}
}

// TestEndToEndNominationCommands covers the answers around the main path:
// WITHDRAW by the group's leader and by someone else, a staff reply
// without a command or with an incomplete one, unsubscribing by email to
// the List-Unsubscribe address, and a sign-up without a district.
func TestEndToEndNominationCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("groups.csv", "name,state,district,leader_email,leader_name\n"+
		"Indivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n"))
	h.ballotd("import", "members", h.file("members.csv", "email,name,district\nalice@example.net,Alice,MA-07\n"))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "Spring",
		"--nominations-close", now.Add(time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(time.Hour).Format(time.RFC3339),
		"--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	stop := h.serve()
	defer stop()

	h.reply("lead@somerville.example", "ballots+nominate@example.org", "From: lead@somerville.example\nTo: ballots+nominate@example.org\nSubject: nomination\nMessage-ID: <n1@somerville.example>\n\n"+
		"Group: Indivisible Somerville\nCandidate: Ayanna Pressley\nOffice: House\nDistrict: MA-07\nLocal endorsement: yes\nReason for endorsement:\nShe fights.\n")
	sent := parseAll(t, h, 2)
	notice := sentTo(t, sent, "staff@example.org")[0]
	h.reply("lead@somerville.example", "ballots+nominate@example.org", "From: lead@somerville.example\nTo: ballots+nominate@example.org\nSubject: Re: nomination\nMessage-ID: <n2@somerville.example>\n\nWITHDRAW 1\n")
	h.waitSent(3) // the withdrawal is handled before the stranger tries it again
	h.reply("x@example.com", "ballots+nominate@example.org", "From: x@example.com\nTo: ballots+nominate@example.org\nSubject: nomination\nMessage-ID: <n3@example.com>\n\nwithdraw #1\n")
	h.reply("staff@example.org", notice.ReplyTo, "From: staff@example.org\nTo: "+notice.ReplyTo+"\nSubject: Re: vet\nMessage-ID: <s1@example.org>\n\nLooks fine to me.\n")
	h.reply("staff@example.org", notice.ReplyTo, "From: staff@example.org\nTo: "+notice.ReplyTo+"\nSubject: Re: vet\nMessage-ID: <s2@example.org>\n\nREJECT 1\nAPPROVE 77\n")
	u := "ballots+u-" + h.unsubscribeToken("alice@example.net") + "@example.org"
	h.reply("alice@example.net", u, "From: alice@example.net\nTo: "+u+"\nSubject: unsubscribe\nMessage-ID: <u1@example.net>\n\nunsubscribe\n")
	h.reply("erin@example.net", "ballots+join@example.org", "From: erin@example.net\nTo: ballots+join@example.org\nSubject: join\nMessage-ID: <j1@example.net>\n\nPlease add me!\n")
	sent = parseAll(t, h, 8)
	byTo := func(addr string) []ballotOf { return sentTo(t, sent, addr) }
	if l := byTo("lead@somerville.example"); len(l) != 2 || l[1].Subject != "Nomination 1 withdrawn" {
		t.Errorf("leader: want the withdrawal confirmed, got %+v", l)
	}
	if x := byTo("x@example.com"); len(x) != 1 || !strings.Contains(x[0].Body, "x@example.com is not a registered leader of Indivisible Somerville") ||
		!strings.Contains(x[0].Body, "the nomination is withdrawn") {
		t.Errorf("stranger's WITHDRAW: want both problems, got %+v", x)
	}
	s := byTo("staff@example.org")
	if len(s) != 3 {
		t.Fatalf("staff: want the notice and two answers, got %+v", s)
	}
	help, done := s[1], s[2] // sent side by side: either order
	if strings.Contains(help.Body, "REJECT 1:") {
		help, done = done, help
	}
	if !strings.Contains(help.Body, "APPROVE <candidate number>") || !strings.HasPrefix(help.Subject, "Vetting: no command found") {
		t.Errorf("staff without a command: want the command list, got %+v", help)
	}
	if !strings.Contains(done.Body, "REJECT 1: not done: give a reason") || !strings.Contains(done.Body, "APPROVE 77: not done: candidate 77: not found") {
		t.Errorf("staff commands: %s", done.Body)
	}
	if a := byTo("alice@example.net"); len(a) != 1 || a[0].Subject != "You are unsubscribed" {
		t.Errorf("alice: want the unsubscribe confirmed, got %+v", a)
	}
	if e := byTo("erin@example.net"); len(e) != 1 || !strings.Contains(e[0].Body, "District: missing") || e[0].ReplyTo != "ballots+join@example.org" {
		t.Errorf("erin: want the sign-up problems, got %+v", e)
	}
	var cands []struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("candidates", "--json")), &cands); err != nil || len(cands) != 1 || cands[0].Status != "withdrawn" {
		t.Errorf("candidates after WITHDRAW: %+v %v", cands, err)
	}
	if out, _, code := h.try("vet", "approve", "1"); code != 1 {
		t.Errorf("approving a withdrawn candidate: exit %d %s", code, out)
	}
	if _, _, code := h.try("vet", "reject"); code != 2 {
		t.Errorf("vet reject without an ID: exit %d, want 2 (usage)", code)
	}
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Jane Roe", "--group", "Indivisible Somerville")
	if out := h.ballotd("vet", "reject", "2", "--reason", "failed the questionnaire"); !strings.Contains(out, "candidate 2: Jane Roe in MA-07, rejected") {
		t.Errorf("vet reject: %q", out)
	}
}
