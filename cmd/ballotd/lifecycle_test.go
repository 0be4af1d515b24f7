package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/internal/testenv"
)

// db opens the harness's database, for moving a wave's clock.
func (h *harness) db() *sqlx.DB {
	h.t.Helper()
	return testenv.Open(h.t, h.env["DATABASE_URL"])
}

// shift moves every wave's times to now() plus the given SQL intervals (”
// keeps one): the clock moving on, without waiting for it.
func (h *harness) shift(db *sqlx.DB, nc, vo, vc string) {
	h.t.Helper()
	for _, c := range []struct{ col, v string }{{"nominations_close", nc}, {"voting_open", vo}, {"voting_close", vc}} {
		if c.v == "" {
			continue
		}
		if _, err := db.Exec(`UPDATE waves SET `+c.col+` = now() + $1::interval`, c.v); err != nil {
			h.t.Fatalf("shift %s: %v", c.col, err)
		}
	}
}

func voteReply(b ballotOf, from, id, answer string) string {
	return fmt.Sprintf("From: %s\nTo: %s\nSubject: Re: %s\nMessage-ID: <%s@example.net>\n\n%s\n\n> Ballot code: %s\n", from, b.ReplyTo, b.Subject, id, answer, b.Code)
}

const lifecycleGroups = "name,state,district,leader_email,leader_name\nIndivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n"
const lifecycleMembers = "email,name,district\nalice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\ncarol@example.net,Carol,MA-07\n" +
	"dave@example.net,Dave,MA-07\nerin@example.net,Erin,MA-07\n"

// TestWaveRunsUnderTwoServes runs a wave from its schedule under two
// `serve` processes on one database, with no manual command: the wave's
// clock is moved step by step. The first instance leads; it is stopped
// mid-wave and the second finishes. Every mail goes out once.
func TestWaveRunsUnderTwoServes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	h.env["BALLOTD_TICK"] = "50ms"
	h.env["BALLOTD_REMIND_BEFORE"] = "30m"
	h.env["BALLOTD_DIGEST_EVERY"] = "off"
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("g.csv", lifecycleGroups))
	h.ballotd("import", "members", h.file("m.csv", lifecycleMembers))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "April", "--nominations-close", now.Add(time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(2*time.Hour).Format(time.RFC3339), "--voting-close", now.Add(3*time.Hour).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Jane Doe", "--group", "Indivisible Somerville")
	db := h.db()

	var races []struct {
		Phase    string `json:"phase"`
		NextStep string `json:"next_step"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("races", "--json")), &races); err != nil || len(races) != 1 || races[0].Phase != "nominations" || races[0].NextStep != "close-nominations" {
		t.Fatalf("races --json before the wave: %+v, %v", races, err)
	}

	stopA := h.serve()
	defer func() {
		if stopA != nil {
			stopA()
		}
	}()
	h.shift(db, "-1 second", "", "")
	vet := parseSent(t, h.waitSent(1)[0])
	if vet.To != "staff@example.org" || !strings.HasPrefix(vet.Subject, "Nominations closed: April") ||
		!strings.Contains(vet.Body, "#1 Jane Doe (approved), nominated by Indivisible Somerville") || !strings.Contains(vet.Body, "REJECT n reason") {
		t.Fatalf("vetting notice: %+v", vet)
	}

	stopB := h.serve() // A holds the lock: B waits
	defer func() {
		if stopB != nil {
			stopB()
		}
	}()

	h.shift(db, "", "-1 second", "")
	ballotsTo := map[string]ballotOf{}
	for _, e := range h.waitSent(1 + 5)[1:] {
		b := parseSent(t, e)
		ballotsTo[b.To] = b
		for _, w := range []string{"exactly 60 % is enough", "NO or NONE counts as having voted", "(Massachusetts time)"} {
			if !strings.Contains(b.Body, w) {
				t.Errorf("ballot to %s lacks the rule's %q", b.To, w)
			}
		}
	}
	if len(ballotsTo) != 5 {
		t.Fatalf("ballots to %v, want the 5 members", keys(ballotsTo))
	}
	h.reply("alice@example.net", ballotsTo["alice@example.net"].ReplyTo, voteReply(ballotsTo["alice@example.net"], "alice@example.net", "a1", "YES"))
	h.reply("bob@example.net", ballotsTo["bob@example.net"].ReplyTo, voteReply(ballotsTo["bob@example.net"], "bob@example.net", "b1", "yes"))
	h.reply("carol@example.net", ballotsTo["carol@example.net"].ReplyTo, voteReply(ballotsTo["carol@example.net"], "carol@example.net", "c1", "NO"))
	receipts := map[string]string{}
	for _, e := range h.waitSent(6 + 3)[6:] {
		p := parseSent(t, e)
		i := strings.Index(p.Body, "Receipt code: ")
		if i < 0 || !strings.Contains(p.Body, "sha256sum") {
			t.Fatalf("receipt to %s lacks its code or how to check it: %s", p.To, p.Body)
		}
		receipts[p.To] = strings.Fields(p.Body[i+len("Receipt code: "):])[0]
	}

	// The leader stops mid-wave; B takes the lock at its next tick.
	stopA()
	stopA = nil

	h.shift(db, "", "", "10 minutes") // inside the reminder's lead time, and past halfway:
	if _, err := db.Exec(`UPDATE races SET opened_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	var reminded []string
	for _, e := range h.waitSent(9 + 2)[9:] {
		p := parseSent(t, e)
		if !strings.HasPrefix(p.Subject, "Reminder:") || p.Code != ballotsTo[p.To].Code {
			t.Errorf("want a reminder carrying the ballot's code, got %q to %s (code %q)", p.Subject, p.To, p.Code)
		}
		reminded = append(reminded, p.To)
	}
	sort.Strings(reminded)
	if got := strings.Join(reminded, " "); got != "dave@example.net erin@example.net" {
		t.Fatalf("reminded %s; want only the members who had not voted", got)
	}

	h.shift(db, "", "", "-1 second")
	announced := map[string]ballotOf{}
	for _, e := range h.waitSent(11 + 6)[11:] {
		p := parseSent(t, e)
		announced[p.To] = p
		if !strings.HasPrefix(p.Subject, "Results: ") || !strings.Contains(p.Body, "3 of 5 eligible members voted (60.0 %)") ||
			!strings.Contains(p.Body, "2 votes\n     endorsed: 66.7 % support, above the 60 % needed; 60.0 % turnout") ||
			!strings.Contains(p.Body, "celebrate it locally") ||
			!strings.Contains(p.Body, "The rule as it was applied:\n- A candidate needed the support of 60 % or more") ||
			strings.Contains(p.Body, "change your vote") || strings.Contains(p.Body, "Voting closes") {
			t.Errorf("announcement to %s: %s\n%s", p.To, p.Subject, p.Body)
		}
	}
	if len(announced) != 6 || !strings.Contains(announced["lead@somerville.example"].Body, "as a leader of Indivisible Somerville") {
		t.Fatalf("announced to %v; want 5 members and the nominating group's leader", keys(announced))
	}

	// A vote after the close is answered "closed" and changes nothing.
	h.reply("dave@example.net", ballotsTo["dave@example.net"].ReplyTo, voteReply(ballotsTo["dave@example.net"], "dave@example.net", "d1", "YES"))
	if late := parseSent(t, h.waitSent(18)[17]); late.To != "dave@example.net" || !strings.HasPrefix(late.Subject, "Voting has closed") {
		t.Fatalf("late vote answered with %q to %s", late.Subject, late.To)
	}
	stopB()
	stopB = nil

	// Every outbox row was sent exactly once: no duplicate rows, and the
	// hub received exactly as many messages.
	var ob struct {
		Counts []struct {
			Kind   string `json:"kind"`
			Status string `json:"status"`
			Count  int    `json:"count"`
		} `json:"counts"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("outbox", "--json")), &ob); err != nil {
		t.Fatal(err)
	}
	byKind := map[string]int{}
	total := 0
	for _, c := range ob.Counts {
		if c.Status != "sent" {
			t.Errorf("outbox: %d %s rows %s", c.Count, c.Kind, c.Status)
		}
		byKind[c.Kind] += c.Count
		total += c.Count
	}
	want := map[string]int{"vetting": 1, "ballot": 5, "receipt": 3, "reminder": 2, "announcement": 6, "closed": 1}
	if fmt.Sprint(byKind) != fmt.Sprint(want) || len(h.sent()) != total {
		t.Fatalf("outbox by kind %v (hub received %d); want %v", byKind, len(h.sent()), want)
	}

	final := h.tallyOf("MA-07")
	if final.Status != "closed" || final.Eligible != 5 || final.Voted != 3 || len(final.Candidates) != 1 || final.Candidates[0].Votes != 2 || !final.Candidates[0].Endorsed {
		t.Fatalf("frozen tally = %+v", final)
	}
	if recount := h.ballotd("tally", "MA-07", "--recount", "--json"); recount != h.ballotd("tally", "MA-07", "--json") {
		t.Fatalf("a recount does not reproduce the frozen tally:\n%s", recount)
	}
	var steps []string
	if err := db.Select(&steps, `SELECT step || ' ' || actor FROM race_steps ORDER BY done_at`); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(steps, ", "); s != "open scheduler, remind scheduler, close scheduler" {
		t.Fatalf("race steps: %s", s)
	}

	// The endorsement list, three ways, against the known result.
	var list struct {
		Endorsements []struct {
			Race, State, Office, Candidate, Reason string
			Groups                                 []string
			Votes, Voted, Eligible                 int
			Support, Turnout                       float64
		} `json:"endorsements"`
		Receipts []struct {
			Race     string `json:"race"`
			Receipts []struct {
				Hash   string `json:"sha256"`
				Choice string `json:"choice"`
			} `json:"receipts"`
		} `json:"receipts"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("export", "endorsements", "--format", "json", "--wave", "April")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Endorsements) != 1 {
		t.Fatalf("export json: %+v", list)
	}
	en := list.Endorsements[0]
	if en.Race != "MA-07" || en.State != "MA" || en.Office != "house" || en.Candidate != "Jane Doe" || strings.Join(en.Groups, ",") != "Indivisible Somerville" ||
		en.Votes != 2 || en.Voted != 3 || en.Eligible != 5 || fmt.Sprintf("%.4f %.4f", en.Support, en.Turnout) != "0.6667 0.6000" {
		t.Errorf("export json endorsement = %+v", en)
	}
	wantReceipts := map[string]string{hash(receipts["alice@example.net"]): "YES: Jane Doe", hash(receipts["bob@example.net"]): "YES: Jane Doe",
		hash(receipts["carol@example.net"]): "NO: Jane Doe"}
	if len(list.Receipts) != 1 || len(list.Receipts[0].Receipts) != 3 {
		t.Fatalf("export json receipts = %+v", list.Receipts)
	}
	for _, r := range list.Receipts[0].Receipts {
		if wantReceipts[r.Hash] != r.Choice {
			t.Errorf("receipt %s counted as %q, want %q", r.Hash, r.Choice, wantReceipts[r.Hash])
		}
	}
	csvOut := h.ballotd("export", "endorsements", "--format", "csv")
	wantCSV := "wave,state,office,race,candidate,groups,reason,votes,voted,eligible,support,turnout,reachable,turnout_reachable\n" +
		"April,MA,house,MA-07,Jane Doe,Indivisible Somerville,,2,3,5,0.6667,0.6000,5,0.6000\n"
	if csvOut != wantCSV {
		t.Errorf("export csv =\n%s\nwant\n%s", csvOut, wantCSV)
	}
	page := h.ballotd("export", "endorsements", "--format", "html")
	for _, w := range []string{"<!DOCTYPE html>", `name="viewport"`, "<h2>Jane Doe</h2>", `U.S. House · Massachusetts · <span class="code">MA-07</span>`,
		"Support 66.7 % (2 of 3 who voted)", `<span style="width:66.7%">`, "turnout 60.0 % (3 of 5 eligible)", "Nominated by Indivisible Somerville",
		hash(receipts["alice@example.net"]), "sha256sum"} {
		if !strings.Contains(page, w) {
			t.Errorf("export html lacks %q", w)
		}
	}
	if strings.Contains(page, "alice@example.net") {
		t.Error("export html names a voter")
	}
	// With an organisation, the page is its: title, heading and intro.
	h.env["BALLOTD_ORG_NAME"], h.env["BALLOTD_ORG_URL"] = "Working Families", "https://wf.example.org"
	page = h.ballotd("export", "endorsements", "--format", "html")
	delete(h.env, "BALLOTD_ORG_NAME")
	delete(h.env, "BALLOTD_ORG_URL")
	for _, w := range []string{"<title>Working Families: endorsed candidates</title>", "<h1>Working Families: endorsed candidates</h1>",
		`The candidates <a href="https://wf.example.org">Working Families</a> endorses, as its members chose them by email ballot.`} {
		if !strings.Contains(page, w) {
			t.Errorf("export html with BALLOTD_ORG_NAME lacks %q", w)
		}
	}
}

// htmlPart decodes the HTML alternative of a message ballotd composed.
func htmlPart(raw string) string {
	_, rest, ok := strings.Cut(raw, "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	if !ok {
		return ""
	}
	// The next boundary: the message's, or its related part's (=_rel=_ballotd_).
	body, _, _ := strings.Cut(rest, "\r\n--=_")
	b, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	return string(b)
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func (h *harness) tallyOf(code string) tallyJSON {
	h.t.Helper()
	var t tallyJSON
	out := h.ballotd("tally", code, "--json")
	if err := json.Unmarshal([]byte(out), &t); err != nil {
		h.t.Fatalf("tally --json: %v\n%s", err, out)
	}
	return t
}

// TestWaveOnItsOwn is the new user's try: a wave whose times are a few
// seconds apart, `serve`, and nothing else: the vetting notice, a digest,
// the ballots and the results arrive in that order.
func TestWaveOnItsOwn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	h.env["BALLOTD_TICK"] = "100ms"
	h.env["BALLOTD_REMIND_BEFORE"] = "off"
	h.env["BALLOTD_DIGEST_EVERY"] = "1h"
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("g.csv", lifecycleGroups))
	h.ballotd("import", "members", h.file("m.csv", "email,name,district\nalice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\n"))
	now := time.Now().UTC().Truncate(time.Second)
	h.ballotd("wave", "create", "--name", "May", "--nominations-close", now.Add(3*time.Second).Format(time.RFC3339),
		"--voting-open", now.Add(4*time.Second).Format(time.RFC3339), "--voting-close", now.Add(6*time.Second).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Jane Doe", "--group", "Indivisible Somerville")
	stop := h.serve()
	defer stop()
	// digest (first tick: a new nomination), vetting, 2 ballots, 2 + 1 announcements.
	var kinds []string
	for _, e := range h.waitSent(7) {
		p := parseSent(t, e)
		switch {
		case strings.HasSuffix(p.Subject, "— ballotd digest"):
			kinds = append(kinds, "digest")
			if p.To != "staff@example.org" || !strings.Contains(p.Body, "NEW CANDIDATES SINCE THE LAST DIGEST") || p.Subject != "1 new candidate — ballotd digest" || !strings.HasPrefix(p.ReplyTo, "ballots+s-") {
				t.Errorf("digest: %+v", p)
			}
		case strings.HasPrefix(p.Subject, "Nominations closed"):
			kinds = append(kinds, "vetting")
		case strings.HasPrefix(p.Subject, "Your ballot"):
			kinds = append(kinds, "ballot")
		case strings.HasPrefix(p.Subject, "Results"):
			kinds = append(kinds, "results")
			if !strings.Contains(p.Body, "0 of 2 eligible members voted") {
				t.Errorf("results to %s: %s", p.To, p.Body)
			}
		default:
			kinds = append(kinds, p.Subject)
		}
	}
	// The digest and the vetting notice both fall at the start; ballots
	// must precede results.
	sort.Strings(kinds[:2])
	if got := strings.Join(kinds, " "); got != "digest vetting ballot ballot results results results" {
		t.Fatalf("sent %s", got)
	}
}

// TestDigestSend checks the staff digest's sections against known data:
// what is new is sent once, empty sections are left out, and nothing new
// sends nothing.
func TestDigestSend(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if _, errOut, code := h.try("digest", "send"); code != 2 || !strings.Contains(errOut, "BALLOTD_STAFF") {
		t.Fatalf("digest send without staff: exit %d, %q", code, errOut)
	}
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("g.csv", lifecycleGroups))
	h.ballotd("import", "members", h.file("m.csv", "email,name,district\nalice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\n"))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "June", "--nominations-close", now.Add(-time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(-time.Second).Format(time.RFC3339), "--voting-close", now.Add(49*time.Hour).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Jane Doe", "--group", "Indivisible Somerville")
	h.ballotd("candidate", "add", "--race", "MA-SEN", "--name", "Nominee Two")
	db := h.db()
	if _, err := db.Exec(`UPDATE candidates SET status = 'nominated' WHERE name = 'Nominee Two'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO inbound_messages (message_key, raw, from_addr, subject, class, outcome, detail, quarantined)
		VALUES ('q1', 'x', 'odd@example.com', 'weird', 'unknown', 'quarantined', 'unreadable message: bad MIME', true)`); err != nil {
		t.Fatal(err)
	}
	h.ballotd("race", "open", "MA-07")

	digest := h.digest
	d := digest("digest sent to 1 staff: 2 new nominations, 1 to vet, 1 open races, 1 to look at, 0 results")
	if d.To != "staff@example.org" || !strings.HasPrefix(d.ReplyTo, "ballots+s-") || d.Subject != "1 to vet, 1 to look at, 1 race open — ballotd digest" {
		t.Errorf("digest headers: to %s, reply-to %s, subject %q", d.To, d.ReplyTo, d.Subject)
	}
	for _, w := range []string{"NEW CANDIDATES SINCE THE LAST DIGEST\n\nJune:\n", "#1 Jane Doe, MA-07, by Indivisible Somerville: added by staff, approved",
		"#2 Nominee Two, MA-SEN: waiting for vetting",
		"VETTING QUEUE", "  #2 Nominee Two, MA-SEN\n      questionnaire: passed\n      APPROVE 2   or   REJECT 2 reason", "OPEN RACES", "MA-07: 0 of 2 voted (0.0 %)", "2 days 0 hours left",
		"NEEDS A LOOK", "quarantined #1 odd@example.com: unreadable message: bad MIME", "Open races</h2>",
		`<img src="cid:turnout.`, `alt="Turnout so far: MA-07 0 of 2 voted, 0.0 %"`} {
		if !strings.Contains(d.Body, w) {
			t.Errorf("digest lacks %q", w)
		}
	}
	if strings.Contains(d.Body, "RESULTS") {
		t.Error("digest has an empty results section")
	}
	digest("nothing new since the last digest")

	h.ballotd("race", "close", "MA-07")
	d = digest("digest sent to 1 staff: 0 new nominations, 1 to vet, 0 open races, 0 to look at, 1 results")
	if !strings.Contains(d.Body, "RESULTS") || !strings.Contains(d.Body, "MA-07: 0 of 2 voted (0.0 %)") || !strings.Contains(d.Body, "1. Jane Doe: 0 votes, 0.0 %") {
		t.Errorf("digest after the close lacks the result:\n%s", d.Body)
	}
	for _, absent := range []string{"NEW NOMINATIONS", "OPEN RACES", "NEEDS A LOOK", "<img"} {
		if strings.Contains(d.Body, absent) {
			t.Errorf("digest after the close has section %s", absent)
		}
	}
	digest("nothing new since the last digest")
}

// digest runs `digest send`, checks its output has wantOut and returns the
// digest it sent, its body the text part followed by the HTML part.
func (h *harness) digest(wantOut string) ballotOf {
	h.t.Helper()
	before := len(h.sent())
	out := h.ballotd("digest", "send")
	if !strings.Contains(out, wantOut) {
		h.t.Fatalf("digest send: %q, want %q", out, wantOut)
	}
	for _, e := range h.sent()[before:] {
		if p := parseSent(h.t, e); strings.HasSuffix(p.Subject, "— ballotd digest") {
			p.Body += htmlPart(string(e.Data))
			return p
		}
	}
	return ballotOf{}
}

// between is the part of s from the first start to the next end after it
// ("" when start is not there).
func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	sec, _, _ := strings.Cut(rest, end)
	return sec
}

// TestDigestConflicts: the digest lists the candidates waiting for
// approval whose race has other candidates nominated by groups, with the
// groups, what they conflict with and the reply command, in the text and
// the HTML part; a conflict staff resolved (approved, rejected) leaves.
func TestDigestConflicts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("g.csv", lifecycleGroups+
		"Indivisible Northampton,MA,MA-02,lead@northampton.example,Nia\nIndivisible Cambridge,MA,MA-07,lead@cambridge.example,Cam\n"))
	h.ballotd("import", "members", h.file("m.csv", lifecycleMembers))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "June", "--nominations-close", now.Add(time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(48*time.Hour).Format(time.RFC3339), "--voting-close", now.Add(96*time.Hour).Format(time.RFC3339))
	db := h.db()
	nominate := func(race, name string, groups ...string) {
		t.Helper()
		args := []string{"candidate", "add", "--race", race, "--name", name}
		for _, g := range groups {
			args = append(args, "--group", g)
		}
		h.ballotd(args...)
		// candidate add approves; a nomination by email waits for vetting.
		if _, err := db.Exec(`UPDATE candidates SET status = 'nominated' WHERE name = $1`, name); err != nil {
			t.Fatal(err)
		}
	}
	nominate("MA-SEN", "Ed Markey", "Indivisible Northampton")                               // 1
	nominate("MA-SEN", "Ayanna Pressley", "Indivisible Somerville", "Indivisible Cambridge") // 2
	nominate("MA-SEN", "Write In")                                                           // 3: no group, no conflict
	nominate("MA-07", "Jane Doe", "Indivisible Somerville")                                  // 4: alone in MA-07

	d := h.digest("digest sent to 1 staff: 4 new nominations, 4 to vet")
	const conflicts = "CONFLICTS (other candidates nominated in the same race)\n\nJune:\n"
	text := between(d.Body, conflicts, "\n\n")
	html := between(d.Body, "Conflicts</h2>", "</ul>")
	for _, want := range []struct{ text, html string }{
		{"  #1 Ed Markey, MA-SEN, by Indivisible Northampton; conflicts with Ayanna Pressley (Indivisible Cambridge, Indivisible Somerville)\n      APPROVE 1   or   REJECT 1 reason",
			"<li>#1 Ed Markey, MA-SEN, by Indivisible Northampton; conflicts with Ayanna Pressley (Indivisible Cambridge, Indivisible Somerville): <code>APPROVE 1</code> or <code>REJECT 1 reason</code></li>"},
		{"  #2 Ayanna Pressley, MA-SEN, by Indivisible Cambridge, Indivisible Somerville; conflicts with Ed Markey (Indivisible Northampton)\n      APPROVE 2   or   REJECT 2 reason",
			"<li>#2 Ayanna Pressley, MA-SEN, by Indivisible Cambridge, Indivisible Somerville; conflicts with Ed Markey (Indivisible Northampton): <code>APPROVE 2</code> or <code>REJECT 2 reason</code></li>"},
	} {
		if !strings.Contains(text, want.text) {
			t.Errorf("text conflicts lack %q:\n%s", want.text, text)
		}
		if !strings.Contains(html, want.html) {
			t.Errorf("HTML conflicts lack %q:\n%s", want.html, html)
		}
	}
	if n := strings.Count(text, "\n"); n != 3 || strings.Count(html, "<li>") != 2 {
		t.Errorf("conflicts: %d text lines, %d HTML items; want 2 each:\n%s\n%s", n, strings.Count(html, "<li>"), text, html)
	}

	// Staff reject Ayanna Pressley: Ed Markey conflicts with no one left.
	// Sam Okafor joins Jane Doe in MA-07 and Jane Doe is approved: only
	// Sam Okafor waits with a conflict.
	h.ballotd("vet", "reject", "2", "--reason", "nominated twice")
	nominate("MA-07", "Sam Okafor", "Indivisible Cambridge") // 5
	h.ballotd("vet", "approve", "4")
	d = h.digest("digest sent to 1 staff: 1 new nominations, 3 to vet")
	text = between(d.Body, conflicts, "\n\n")
	html = between(d.Body, "Conflicts</h2>", "</ul>")
	if text != "  #5 Sam Okafor, MA-07, by Indivisible Cambridge; conflicts with Jane Doe (Indivisible Somerville)\n      APPROVE 5   or   REJECT 5 reason" ||
		strings.Count(text, "\n") != 1 {
		t.Errorf("text conflicts after vetting:\n%s", text)
	}
	if !strings.Contains(html, "<li>#5 Sam Okafor, MA-07, by Indivisible Cambridge; conflicts with Jane Doe (Indivisible Somerville):") ||
		strings.Count(html, "<li>") != 1 {
		t.Errorf("HTML conflicts after vetting:\n%s", html)
	}
}

// TestHeldResults: a wave created with --hold-results freezes its results
// at the close and tells staff; members and leaders hear only after
// `results release`, and the export shows nothing until then.
func TestHeldResults(t *testing.T) {
	t.Parallel()
	h := newHeldWave(t)
	if _, errOut, code := h.try("results", "release", "MA-07"); code != 1 || !strings.Contains(errOut, "results are released after the close") {
		t.Fatalf("release before the close: exit %d %q", code, errOut)
	}
	db := h.db()
	stop := h.serve()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	h.shift(db, "", "-1 second", "")
	bs := memberMail(t, h.waitSent(1+2), "staff@example.org") // two ballots, beside the vetting notice
	a := parseSent(t, bs[0])
	h.reply(a.To, a.ReplyTo, voteReply(a, a.To, "a1", "YES"))
	h.waitSent(4)
	h.shift(db, "", "", "-1 second")
	held := parseSent(t, h.waitSent(5)[4])
	if held.To != "staff@example.org" || held.Subject != "Results held for release: U.S. House, Massachusetts district 7 (MA-07)" ||
		!strings.Contains(held.Body, "1. Jane Doe: 1 vote\n     endorsed: 100.0 % support, above the 60 % needed") || !strings.Contains(held.Body, "ballotd results release MA-07") {
		t.Fatalf("held notice: %+v", held)
	}
	var races []struct {
		Phase string `json:"phase"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("races", "--json")), &races); err != nil || races[0].Phase != "held" {
		t.Fatalf("races --json while held: %+v %v", races, err)
	}
	if out := h.ballotd("export", "endorsements", "--format", "csv"); strings.Count(out, "\n") != 1 {
		t.Fatalf("export while held shows results:\n%s", out)
	}

	if out := h.ballotd("results", "release", "MA-07"); !strings.Contains(out, "results released") {
		t.Fatalf("release: %q", out)
	}
	announced := map[string]bool{}
	for _, e := range h.waitSent(5 + 3)[5:] {
		p := parseSent(t, e)
		if strings.HasPrefix(p.Subject, "Results: ") {
			announced[p.To] = true
		}
	}
	if len(announced) != 3 || !announced["lead@somerville.example"] {
		t.Fatalf("after release, announced to %v; want alice, bob and the leader", keys(announced))
	}
	if _, errOut, code := h.try("results", "release", "MA-07"); code != 1 || !strings.Contains(errOut, "already released") {
		t.Fatalf("second release: exit %d %q", code, errOut)
	}
	if out := h.ballotd("export", "endorsements", "--format", "csv"); !strings.Contains(out, "July,MA,house,MA-07,Jane Doe") {
		t.Fatalf("export after release:\n%s", out)
	}
	h.waitIdle()
	stop()
	stop = nil
	if n := len(h.sent()); n != 8 {
		t.Errorf("sent %d messages, want 8 (vetting, 2 ballots, receipt, held notice, 3 announcements)", n)
	}
}

// TestReachableTurnout: a ballot the relay refuses for good lowers
// reachable, not eligible, in the tally and the announcement.
func TestReachableTurnout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_DIGEST_EVERY"] = "off"
	h.hub.SetRcptFault(func(rcpt string) *smtp.SMTPError {
		if rcpt == "carol@example.net" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("g.csv", lifecycleGroups))
	h.openRace("alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\ncarol@example.net,Carol,MA-07\n", "MA-07", "Jane Doe", "--group", "Indivisible Somerville")
	stop := h.serve()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	var alice ballotOf
	for _, e := range h.waitSent(2) {
		if b := parseSent(t, e); b.To == "alice@example.net" {
			alice = b
		}
	}
	h.reply(alice.To, alice.ReplyTo, voteReply(alice, alice.To, "a1", "YES"))
	h.waitSent(3)
	// Carol's ballot is refused for good (a bounded wait for the outbox to
	// record it, not a timing assertion).
	if !testenv.Poll(30*time.Second, func() bool { return h.outboxCount("ballot", "failed") == 1 }) {
		t.Fatalf("carol's ballot never failed:\n%s", h.ballotd("outbox"))
	}
	h.ballotd("race", "close", "MA-07")
	for _, e := range h.waitSent(3 + 3)[3:] {
		p := parseSent(t, e)
		if !strings.Contains(p.Body, "1 of 3 eligible members voted (33.3 %)") ||
			!strings.Contains(p.Body, "1 ballot could not be delivered: of the 2 members we could reach, 50.0 % voted") {
			t.Errorf("announcement to %s lacks both turnouts:\n%s", p.To, p.Body)
		}
	}
	stop()
	stop = nil
	var tally struct {
		Eligible         int     `json:"eligible"`
		Voted            int     `json:"voted"`
		Reachable        int     `json:"reachable"`
		Turnout          float64 `json:"turnout"`
		TurnoutReachable float64 `json:"turnout_reachable"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("tally", "MA-07", "--json")), &tally); err != nil {
		t.Fatal(err)
	}
	if tally.Eligible != 3 || tally.Voted != 1 || tally.Reachable != 2 || tally.TurnoutReachable != 0.5 || tally.Turnout != 1.0/3 {
		t.Fatalf("tally --json = %+v", tally)
	}
}

// outboxCount is the number of outbox rows of kind in status.
func (h *harness) outboxCount(kind, status string) int {
	h.t.Helper()
	var out struct {
		Counts []struct {
			Kind   string `json:"kind"`
			Status string `json:"status"`
			Count  int    `json:"count"`
		} `json:"counts"`
	}
	if err := json.Unmarshal([]byte(h.ballotd("outbox", "--json")), &out); err != nil {
		h.t.Fatal(err)
	}
	for _, c := range out.Counts {
		if c.Kind == kind && c.Status == status {
			return c.Count
		}
	}
	return 0
}

// TestLeaderSessionKilled: the database session holding the scheduler's
// lock is terminated mid-wave (the holder "dies"); the lock is free, a
// replica takes it, and the wave finishes with every mail sent once.
func TestLeaderSessionKilled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["BALLOTD_TICK"] = "50ms"
	h.env["BALLOTD_DIGEST_EVERY"] = "off"
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("g.csv", lifecycleGroups))
	h.ballotd("import", "members", h.file("m.csv", lifecycleMembers))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "April", "--nominations-close", now.Add(-time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(time.Hour).Format(time.RFC3339), "--voting-close", now.Add(3*time.Hour).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Jane Doe", "--group", "Indivisible Somerville")
	db := h.db()
	stopA, stopB := h.serve(), h.serve()
	defer func() { stopA(); stopB() }()
	h.shift(db, "", "-1 second", "")
	h.waitSent(5)

	// The scheduler lock is advisory key 0x7363686564: classid 0x73, objid 0x63686564.
	holder := func() []int {
		var pids []int
		if err := db.Select(&pids, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 115 AND objid = 1667786084
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
			t.Fatal(err)
		}
		return pids
	}
	if pids := holder(); len(pids) != 1 {
		t.Fatalf("scheduler lock held by %v, want one session", pids)
	}
	var killed bool
	if err := db.Get(&killed, `SELECT pg_terminate_backend($1)`, holder()[0]); err != nil || !killed {
		t.Fatalf("terminate the leader's session: %v %v", killed, err)
	}

	h.shift(db, "", "", "-1 second")
	h.waitSent(5 + 6)
	h.waitIdle() // a mail sent twice would have gone by now
	stopA()
	stopB()
	stopA, stopB = func() {}, func() {}
	if n, b, a := len(h.sent()), h.outboxCount("ballot", "sent"), h.outboxCount("announcement", "sent"); n != 11 || b != 5 || a != 6 {
		var got []string
		for _, e := range h.sent() {
			p := parseSent(t, e)
			got = append(got, p.To+": "+p.Subject)
		}
		t.Fatalf("sent %d messages (%d ballots, %d announcements); want 5 ballots and 6 announcements once each:\n%s", n, b, a, strings.Join(got, "\n"))
	}
}

// newHeldWave is a harness with staff, a fast scheduler and a wave that
// holds its results: voting opens in an hour (tests shift it), MA-07 has
// Jane Doe, nominated by Indivisible Somerville, and two members vote.
func newHeldWave(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.env["BALLOTD_STAFF"] = "staff@example.org"
	h.env["BALLOTD_TICK"] = "50ms"
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("g.csv", lifecycleGroups))
	h.ballotd("import", "members", h.file("m.csv", "email,name,district\nalice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\n"))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "July", "--hold-results", "--nominations-close", now.Add(-time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(time.Hour).Format(time.RFC3339), "--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Jane Doe", "--group", "Indivisible Somerville")
	return h
}

// TestHeldResultsReleasedByStaffEmail: staff release held results by
// replying RELEASE to the results notice; the same reply from a member does
// nothing.
func TestHeldResultsReleasedByStaffEmail(t *testing.T) {
	t.Parallel()
	h := newHeldWave(t)
	db := h.db()
	stop := h.serve()
	defer stop()
	h.shift(db, "", "-1 second", "")
	bs := memberMail(t, h.waitSent(1+2), "staff@example.org")
	a := parseSent(t, bs[0])
	h.reply(a.To, a.ReplyTo, voteReply(a, a.To, "a1", "YES"))
	h.waitSent(4)
	h.shift(db, "", "", "-1 second")
	held := parseSent(t, h.waitSent(5)[4])
	if !strings.HasPrefix(held.ReplyTo, "ballots+s-") || !strings.Contains(held.Body, "RELEASE MA-07") {
		t.Fatalf("held notice: Reply-To %q, body %q", held.ReplyTo, held.Body)
	}
	// A member who got hold of the notice's address cannot release.
	h.reply("alice@example.net", held.ReplyTo, "From: alice@example.net\nTo: "+held.ReplyTo+"\nSubject: Re: results\nMessage-ID: <rel-alice@example.net>\n\nRELEASE MA-07\n")
	// Staff can.
	h.reply("staff@example.org", held.ReplyTo, "From: Staff <staff@example.org>\nTo: "+held.ReplyTo+"\nSubject: Re: results\nMessage-ID: <rel-staff@example.org>\n\nRELEASE MA-07\n\nOn Monday ballots wrote:\n> RELEASE MA-99\n")
	sent := h.waitSent(5 + 1 + 3) // the staff answer and three announcements
	var answer ballotOf
	announced := map[string]bool{}
	for _, e := range sent[5:] {
		p := parseSent(t, e)
		switch {
		case strings.HasPrefix(p.Subject, "Results: "):
			announced[p.To] = true
		case p.To == "staff@example.org":
			answer = p
		}
	}
	if len(announced) != 3 || announced["alice@example.net"] != true {
		t.Fatalf("announced to %v; want alice, bob and the leader", keys(announced))
	}
	if !strings.Contains(answer.Body, "RELEASE MA-07: released") || strings.Contains(answer.Body, "MA-99") {
		t.Fatalf("staff answer: %q", answer.Body)
	}
	var actor string
	if err := db.Get(&actor, `SELECT actor FROM race_steps WHERE step = 'release'`); err != nil || actor != "staff" {
		t.Fatalf("release recorded by %q, %v; want staff", actor, err)
	}
	h.waitIdle() // whatever alice's RELEASE would send, it has sent
	if n := len(h.sent()); n != 9 {
		t.Errorf("sent %d messages, want 9 (nothing to alice's RELEASE, no second announcement)", n)
	}
}

// TestHeldResultsClosedByHandNotifyStaff: closing a held race by hand
// sends staff the same held-results notice as the scheduled close, so the
// results do not wait until someone remembers them.
func TestHeldResultsClosedByHandNotifyStaff(t *testing.T) {
	t.Parallel()
	h := newHeldWave(t)
	db := h.db()
	h.ballotd("race", "open", "MA-07")
	if out := h.ballotd("race", "open", "MA-07"); !strings.Contains(out, "race MA-07 is already open (2 ballots)") {
		t.Fatalf("race open on an open race said %q", out)
	}
	out := h.ballotd("race", "close", "MA-07")
	if !strings.Contains(out, "staff (1) notified") {
		t.Fatalf("race close said %q", out)
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM outbox WHERE kind = 'results-held' AND recipient = 'staff@example.org'`); err != nil || n != 1 {
		t.Fatalf("held-results notices = %d, %v; want 1", n, err)
	}
	if err := db.Get(&n, `SELECT count(*) FROM outbox WHERE kind = 'announcement'`); err != nil || n != 0 {
		t.Fatalf("announcements = %d, %v; want none before the release", n, err)
	}
}
