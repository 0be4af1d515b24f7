package inbound

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// The abuse of issue 17: ballotd turned against a stranger, a member or
// the count by forged mail. Each case over the real processor and
// database; each checks what was mailed (the outbox) and what changed.

// frontWorld is the world with groups and their leaders, a staff address,
// and a clock at which nominations are still open (for MA-GOV, a race
// not opened yet).
func frontWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	if _, err := w.st.ImportGroups(w.ctx, strings.NewReader("name,state,district,leader_email,leader_name\n"+
		"Indivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n")); err != nil {
		t.Fatal(err)
	}
	w.p.Staff = []string{"staff@example.org"}
	w.p.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	return w
}

// nominationForm is a complete nomination of candidate for governor.
func nominationForm(candidate string) string {
	return "Group: Indivisible Somerville\r\nCandidate: " + candidate + "\r\nOffice: Governor\r\nState: MA\r\nDistrict: MA-GOV\r\n" +
		"Local endorsement: yes\r\nReason for endorsement:\r\nShe shows up.\r\n"
}

// sentTo counts the outbox rows of kind to recipient ("" for any kind).
func (w *world) sentTo(recipient string, kind templates.Kind) int {
	return w.count(`SELECT count(*) FROM outbox WHERE recipient = $1 AND ($2 = '' OR kind = $2)`, recipient, kind)
}

// TestAbuseSignUpFloodFromInventedAddresses: 200 sign-ups from 200
// invented addresses mail at most the hourly cap of strangers, and leave
// no more pending members than confirmations sent; the rest are kept,
// held, and counted in the digest.
func TestAbuseSignUpFloodFromInventedAddresses(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.p.StrangerAnswersPerHour = 30
	members := w.count(`SELECT count(*) FROM members`)
	for i := range 200 {
		res := w.handle(w.reply(fmt.Sprintf("invented%d@victims.example", i), "join", "sign me up", "Name: Someone\r\nDistrict: MA-07"))
		if want := map[bool]string{true: OutcomeSignUp, false: OutcomeHeld}[i < 30]; res.Outcome != want {
			t.Fatalf("sign-up %d: outcome %q, want %q", i, res.Outcome, want)
		}
	}
	if n := w.answers(templates.KindJoinConfirm); n != 30 {
		t.Fatalf("confirmation requests = %d, want the cap, 30", n)
	}
	if n := w.count(`SELECT count(*) FROM members`) - members; n != 30 {
		t.Fatalf("pending members created = %d, want 30 (one per confirmation sent)", n)
	}
	if n := w.count(`SELECT count(*) FROM inbound_messages WHERE outcome = 'held' AND detail LIKE '%held back by the rate limit%'`); n != 170 {
		t.Fatalf("held sign-ups on record = %d, want 170", n)
	}
	d, err := ballots.BuildDigest(w.ctx, w.db)
	if err != nil {
		t.Fatal(err)
	}
	if d.HeldAnswers != 170 || d.Empty() {
		t.Fatalf("digest: %d answers held back, empty %v; want 170", d.HeldAnswers, d.Empty())
	}
	// Members are not strangers: the cap does not silence them.
	res := w.handle(w.reply("alice@example.net", "join", "sign me up", "Name: Alice A\r\nDistrict: MA-07"))
	if res.Outcome != OutcomeSignUp || w.sentTo("alice@example.net", templates.KindWelcome) != 1 {
		t.Fatalf("a member's sign-up under a full stranger cap: %+v", res)
	}
	// Configured to none: a stranger gets no answer at all.
	w.p.StrangerAnswersPerHour = -1
	if res := w.handle(w.reply("new@victims.example", "nominate", "form", "")); w.sentTo("new@victims.example", "") != 0 {
		t.Fatalf("answers to a stranger with the cap at none: %+v", res)
	}
}

// TestAbuseSignUpsForgedFromOneVictim: 40 sign-ups forged from one
// address send it at most the small daily cap, whether it is a stranger
// or a member, and every other kind of answer is capped too.
func TestAbuseSignUpsForgedFromOneVictim(t *testing.T) {
	t.Parallel()
	w := frontWorld(t)
	for i := range 40 {
		w.handle(w.reply("victim@elsewhere.example", "join", "join", fmt.Sprintf("Name: Click http://evil.example %d\r\nDistrict: MA-%02d", i, i%9+1)))
		w.handle(w.reply("alice@example.net", "join", "join", fmt.Sprintf("Name: Alice %d\r\nDistrict: MA-%02d", i, i%9+1)))
	}
	if n := w.sentTo("victim@elsewhere.example", ""); n != defaultKindCap {
		t.Fatalf("mails to the stranger victim = %d, want %d", n, defaultKindCap)
	}
	if n := w.count(`SELECT count(*) FROM members WHERE email = 'victim@elsewhere.example'`); n != 1 {
		t.Fatalf("victim member rows = %d", n)
	}
	if n := w.sentTo("alice@example.net", templates.KindMemberChange); n != defaultKindCap {
		t.Fatalf("change confirmations to alice = %d, want %d", n, defaultKindCap)
	}
	// One address, every kind a stranger can provoke: at most
	// strangerPerDay in all.
	from := "other@elsewhere.example"
	for i := range 10 {
		w.handle(w.reply(from, "nominate", "form", ""))
		w.handle(w.reply(from, "nominate", "nomination", "Candidate: X"))
		w.handle(w.reply(from, "join", "join", "no district"))
		w.handle([]byte(fmt.Sprintf("From: %s\r\nTo: ballots@example.org\r\nSubject: hello %d\r\nMessage-ID: <u%d@x>\r\n\r\nhi\r\n", from, i, i)))
		w.handle([]byte(fmt.Sprintf("From: %s\r\nTo: ballots@example.org\r\nSubject: my ballot %d\r\nMessage-ID: <r%d@x>\r\n\r\nlost it\r\n", from, i, i)))
	}
	if n := w.sentTo(from, ""); n != strangerPerDay {
		t.Fatalf("answers to one stranger = %d, want %d", n, strangerPerDay)
	}
	for _, k := range []templates.Kind{templates.KindBlankForm, templates.KindNominationProblems, templates.KindJoinProblems, templates.KindUnmatched, templates.KindResendNeutral} {
		if n := w.sentTo(from, k); n > kindCap(k) {
			t.Errorf("%s answers = %d, over its cap %d", k, n, kindCap(k))
		}
	}
	// Counted and recorded: what was held says so on its message.
	if n := w.count(`SELECT count(*) FROM answers_held WHERE recipient = $1`, from); n != 50-strangerPerDay {
		t.Fatalf("held answers to %s = %d, want %d", from, n, 50-strangerPerDay)
	}
	// Nothing of alice's changed.
	var name, district string
	if err := w.db.QueryRow(`SELECT name, district FROM members WHERE email = 'alice@example.net'`).Scan(&name, &district); err != nil {
		t.Fatal(err)
	}
	if name != "Alice A" || district != "MA-07" {
		t.Fatalf("alice is now %q in %s", name, district)
	}
}

// TestAbuseHugeFormQuotesLittle: a 4 MB nomination form forged from a
// victim comes back as an answer of a few KB, and so does every other
// answer that quotes the sender's text.
func TestAbuseHugeFormQuotesLittle(t *testing.T) {
	t.Parallel()
	w := frontWorld(t)
	huge := nominationForm(strings.Repeat("A", 100)) + strings.Repeat("Lorem ipsum dolor sit amet. ", 4<<20/28)
	w.handle(w.reply("victim@elsewhere.example", "nominate", "Nomination", huge))
	w.handle(w.reply("victim2@elsewhere.example", "nominate", "Nomination", "Candidate: "+strings.Repeat("B", 1<<20)+"\r\nDistrict: "+strings.Repeat("C", 1<<20)))
	w.handle(w.reply("victim3@elsewhere.example", "join", "join", "Name: x\r\nDistrict: "+strings.Repeat("D", 1<<20)))
	w.handle(w.reply("victim4@elsewhere.example", "join", "join", "Name: "+strings.Repeat("E", 1<<20)+"\r\nDistrict: MA-07"))
	w.handle([]byte("From: victim5@elsewhere.example\r\nTo: ballots@example.org\r\nSubject: " + strings.Repeat("F", 100000) + "\r\nMessage-ID: <big@x>\r\n\r\nhi\r\n"))
	if n := w.count(`SELECT count(*) FROM outbox WHERE kind IN ('nomination-problems', 'join-problems', 'join-confirm', 'unmatched')`); n != 5 {
		t.Fatalf("%d answers, want 5", n)
	}
	for _, m := range w.rendered("") {
		if len(m.Data) > 24<<10 {
			t.Errorf("answer to %s: %d bytes", m.To, len(m.Data))
		}
	}
}

// TestAbuseMemberChangeNeedsConfirmation: a sign-up from an active
// member's address changes nothing; the registered address is asked to
// confirm the change, stated old -> new; only a reply to that request
// applies it, and only the latest request.
func TestAbuseMemberChangeNeedsConfirmation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	member := func() (name, district, status string) {
		t.Helper()
		if err := w.db.QueryRow(`SELECT name, district, status FROM members WHERE email = 'alice@example.net'`).Scan(&name, &district, &status); err != nil {
			t.Fatal(err)
		}
		return
	}
	res := w.handle(w.reply("Alice <alice@example.net>", "join", "join", "Name: Mallory's puppet\r\nDistrict: NY-10"))
	if res.Outcome != OutcomeChangeAsked {
		t.Fatalf("sign-up from an active member: %q", res.Outcome)
	}
	if n, d, s := member(); n != "Alice A" || d != "MA-07" || s != "active" {
		t.Fatalf("alice changed at once: %q %s %s", n, d, s)
	}
	res = w.handle(w.reply("alice@example.net", "join", "join", "Name: Alice A\r\nDistrict: MA-08"))
	if res.Outcome != OutcomeChangeAsked {
		t.Fatalf("second sign-up: %q", res.Outcome)
	}
	msgs := w.rendered(templates.KindMemberChange)
	if len(msgs) != 2 || msgs[0].To != "alice@example.net" {
		t.Fatalf("change confirmations = %d", len(msgs))
	}
	first, second := msgs[0], msgs[1]
	for _, want := range []string{"Dear Alice A,", "Name:     Alice A -> Mallory's puppet", "District: MA-07 -> NY-10", "Nothing has changed yet"} {
		if !bytes.Contains(first.Data, []byte(want)) {
			t.Errorf("the request does not say %q:\n%s", want, first.Data)
		}
	}
	replyTo := func(m []byte) string {
		t.Helper()
		i := bytes.Index(m, []byte("Reply-To: "))
		line := string(m[i+len("Reply-To: "):])
		line = line[:strings.IndexByte(line, '\r')]
		tag := line[strings.Index(line, "<ballots+")+len("<ballots+") : strings.IndexByte(line, '@')]
		if !strings.HasPrefix(tag, "c-") {
			t.Fatalf("Reply-To %q is not a confirmation address", line)
		}
		return tag
	}
	// Forged tokens and the member's sign-up token do not apply it.
	mid, err := ballots.MemberByEmail(w.ctx, w.db, "alice@example.net")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"c-" + w.toks.Make(token.Confirm, mid, nil), "c-" + w.toks.Make(token.Change, 999, nil),
		"c-" + w.toks.Make(token.Staff, 1, nil)} {
		w.handle(w.reply("alice@example.net", tag, "Re: confirm", "yes"))
	}
	// The first request was superseded by the second: replying to it
	// changes nothing.
	if res := w.handle(w.reply("alice@example.net", replyTo(first.Data), "Re: confirm", "yes")); res.Outcome != OutcomeIgnored ||
		!strings.Contains(w.detail(res.InboundID), "superseded") {
		t.Fatalf("confirming a superseded change: %+v", res)
	}
	if n, d, _ := member(); n != "Alice A" || d != "MA-07" {
		t.Fatalf("alice changed before the confirmation: %q %s", n, d)
	}
	if res := w.handle(w.reply("alice@example.net", replyTo(second.Data), "Re: confirm", "yes")); res.Outcome != OutcomeConfirmed {
		t.Fatalf("confirming the change: %+v", res)
	}
	if n, d, s := member(); n != "Alice A" || d != "MA-08" || s != "active" {
		t.Fatalf("after the confirmation alice is %q %s %s, want MA-08", n, d, s)
	}
	if n := w.count(`SELECT count(*) FROM outbox WHERE kind = 'welcome' AND recipient = 'alice@example.net' AND data->>'district' = 'MA-08'`); n != 1 {
		t.Fatalf("welcomes to MA-08 = %d, want 1", n)
	}
	// Once applied, a second reply does nothing more.
	if res := w.handle(w.reply("alice@example.net", replyTo(second.Data), "Re: confirm", "yes again")); res.Outcome != OutcomeIgnored {
		t.Fatalf("confirming twice: %+v", res)
	}
	// An unsubscribed member signing up again is a status change: asked,
	// then confirmed.
	bob, err := ballots.MemberByEmail(w.ctx, w.db, "bob@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.st.Unsubscribe(w.ctx, bob); err != nil {
		t.Fatal(err)
	}
	bobStatus := func() string {
		var s string
		if err := w.db.Get(&s, `SELECT status FROM members WHERE id = $1`, bob); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if res := w.handle(w.reply("bob@example.net", "join", "join", "District: MA-07")); res.Outcome != OutcomeChangeAsked {
		t.Fatalf("sign-up of an unsubscribed member: %q", res.Outcome)
	}
	if s := bobStatus(); s != "unsubscribed" {
		t.Fatalf("status %s before the confirmation", s)
	}
	again := w.rendered(templates.KindMemberChange)
	if len(again) != 1 || !bytes.Contains(again[0].Data, []byte("Status:   unsubscribed -> active")) || bytes.Contains(again[0].Data, []byte("District:")) {
		t.Fatalf("status change request: %d %s", len(again), again)
	}
	w.handle(w.reply("bob@example.net", replyTo(again[0].Data), "Re: confirm", "yes"))
	if s := bobStatus(); s != "active" {
		t.Fatalf("status %s after the confirmation", s)
	}
}

// detail is the recorded outcome detail of inbound message id.
func (w *world) detail(id int64) string {
	w.t.Helper()
	var d string
	if err := w.db.Get(&d, `SELECT detail FROM inbound_messages WHERE id = $1`, id); err != nil {
		w.t.Fatal(err)
	}
	return d
}

// TestAbuseAuthenticationOnEveryChange: with a trusted server configured,
// every message that would change something — a staff command, a
// nomination, a withdrawal, a sign-up, a confirmation, an unsubscribe, a
// resend request — is acted on only when the server authenticated its
// From; without results from it, or with a failure, it is quarantined
// and at most a notice goes to the registered address, never to a
// stranger's From. Replayed once the server is trusted, it applies.
func TestAbuseAuthenticationOnEveryChange(t *testing.T) {
	t.Parallel()
	w := frontWorld(t)
	w.p.AuthservID = "mx.example.org"
	pass := "Authentication-Results: mx.example.org; dmarc=pass header.from=x"
	fail := "Authentication-Results: mx.example.org; dkim=pass header.d=evil.example; dmarc=fail header.from=x"
	forgedPass := "Authentication-Results: evil.example; dmarc=pass header.from=x"

	// A nomination from the leader, authenticated: the staff notice
	// carries a staff command address.
	if res := w.handle(w.reply("lead@somerville.example", "nominate", "Nomination", nominationForm("Maura Healey"), pass)); res.Outcome != OutcomeNominated {
		t.Fatalf("authenticated nomination: %+v", res)
	}
	var notice int64
	if err := w.db.Get(&notice, `SELECT id FROM outbox WHERE kind = 'vetting-notice'`); err != nil {
		t.Fatal(err)
	}
	staffTag := "s-" + w.toks.Make(token.Staff, notice, nil)
	var cand int64
	if err := w.db.Get(&cand, `SELECT id FROM candidates WHERE name = 'Maura Healey'`); err != nil {
		t.Fatal(err)
	}
	aliceID, err := ballots.MemberByEmail(w.ctx, w.db, "alice@example.net")
	if err != nil {
		t.Fatal(err)
	}
	unsub := "u-" + w.toks.Make(token.Unsubscribe, aliceID, nil)
	w.handle(w.reply("newbie@elsewhere.example", "join", "join", "District: MA-07", pass))
	newbieID, err := ballots.MemberByEmail(w.ctx, w.db, "newbie@elsewhere.example")
	if err != nil {
		t.Fatal(err)
	}
	confirm := "c-" + w.toks.Make(token.Confirm, newbieID, nil)

	type attempt struct {
		name, from, tag, subject, body string
		notice                         string // who gets the notice: the registered address, or "" (a stranger)
	}
	attempts := []attempt{
		{"staff APPROVE", "staff@example.org", staffTag, "Re: vet", fmt.Sprintf("APPROVE %d", cand), "staff@example.org"},
		{"leader WITHDRAW", "lead@somerville.example", "nominate", "Re: nomination", "WITHDRAW 1", "lead@somerville.example"},
		{"nomination by the leader", "lead@somerville.example", "nominate", "Nomination", nominationForm("Kim Janey"), "lead@somerville.example"},
		{"nomination by a stranger", "mallory@evil.example", "nominate", "Nomination", nominationForm("Andrea Campbell"), ""},
		{"member's district change", "alice@example.net", "join", "join", "District: NY-10", "alice@example.net"},
		{"a stranger's sign-up", "stranger@evil.example", "join", "join", "District: MA-07", ""},
		{"sign-up confirmation", "newbie@elsewhere.example", confirm, "Re: confirm", "yes", "newbie@elsewhere.example"},
		{"unsubscribe by email", "alice@example.net", unsub, "unsubscribe", "unsubscribe", "alice@example.net"},
		{"resend request", "alice@example.net", "resend", "my ballot", "lost it", "alice@example.net"},
	}
	outbox := w.count(`SELECT count(*) FROM outbox`)
	var quarantined []int64
	for _, a := range attempts {
		for _, h := range [][]string{nil, {fail}, {forgedPass}} {
			res := w.handle(w.reply(a.from, a.tag, a.subject, a.body, h...))
			if res.Outcome != OutcomeUnauthenticated {
				t.Errorf("%s with %q: outcome %q, want unauthenticated", a.name, h, res.Outcome)
			}
			quarantined = append(quarantined, res.InboundID)
		}
	}
	// Nothing changed.
	var status string
	if err := w.db.Get(&status, `SELECT status FROM candidates WHERE id = $1`, cand); err != nil || status != "nominated" {
		t.Fatalf("candidate is %s (%v), want still nominated", status, err)
	}
	if n := w.count(`SELECT count(*) FROM candidates WHERE name IN ('Kim Janey', 'Andrea Campbell')`); n != 0 {
		t.Fatalf("%d unauthenticated nominations recorded", n)
	}
	if n := w.count(`SELECT count(*) FROM nominations WHERE status = 'withdrawn'`); n != 0 {
		t.Fatal("an unauthenticated WITHDRAW withdrew")
	}
	if n := w.count(`SELECT count(*) FROM members WHERE email IN ('stranger@evil.example') OR (email = 'alice@example.net' AND (district <> 'MA-07' OR status <> 'active'))
		OR (email = 'newbie@elsewhere.example' AND status <> 'pending')`); n != 0 {
		t.Fatal("an unauthenticated sign-up, confirmation or unsubscribe changed a member")
	}
	if n := w.count(`SELECT count(*) FROM member_changes`); n != 0 {
		t.Fatal("an unauthenticated sign-up recorded a change")
	}
	// Only notices, only to registered addresses, at most the cap each.
	if n := w.count(`SELECT count(*) FROM outbox WHERE id > 0`) - outbox; n != w.answers(templates.KindUnauthenticatedRequest) {
		t.Fatalf("%d mails besides the notices", n-w.answers(templates.KindUnauthenticatedRequest))
	}
	for _, a := range attempts {
		if a.notice == "" {
			if n := w.sentTo(a.from, ""); n != 0 {
				t.Errorf("%s: %d mails to the stranger", a.name, n)
			}
			continue
		}
		if n := w.sentTo(a.notice, templates.KindUnauthenticatedRequest); n < 1 || n > defaultKindCap {
			t.Errorf("%s: %d notices to %s, want 1 to %d", a.name, n, a.notice, defaultKindCap)
		}
	}
	msgs := w.rendered(templates.KindUnauthenticatedRequest)
	if len(msgs) == 0 || !bytes.Contains(msgs[0].Data, []byte("sender authentication failed")) {
		t.Fatalf("notice: %.800s", msgs)
	}
	qs, err := w.st.Quarantine(w.ctx)
	if err != nil || len(qs) != len(quarantined) {
		t.Fatalf("quarantined = %d (%v), want %d", len(qs), err, len(quarantined))
	}
	// Replayed by staff who trust the server now (here: no check), the
	// staff command applies.
	w.p.AuthservID = ""
	if res, err := w.p.Replay(w.ctx, quarantined[0]); err != nil || res.Outcome != OutcomeVetted {
		t.Fatalf("replay of the staff command: %+v %v", res, err)
	}
	if err := w.db.Get(&status, `SELECT status FROM candidates WHERE id = $1`, cand); err != nil || status != "approved" {
		t.Fatalf("after the replay the candidate is %s (%v)", status, err)
	}
	// Authenticated, each goes through.
	w.p.AuthservID = "mx.example.org"
	for _, a := range attempts[1:] {
		if res := w.handle(w.reply(a.from, a.tag, a.subject, a.body, pass)); res.Outcome == OutcomeUnauthenticated {
			t.Errorf("%s, authenticated: %q", a.name, res.Outcome)
		}
	}
}

// TestAbuseStaffTagMustNameStaffMail: a staff command is obeyed only at a
// staff command address whose token names a mail we sent to staff, not
// at a validly signed token of any other outbox row.
func TestAbuseStaffTagMustNameStaffMail(t *testing.T) {
	t.Parallel()
	w := frontWorld(t)
	if res := w.handle(w.reply("lead@somerville.example", "nominate", "Nomination", nominationForm("Maura Healey"))); res.Outcome != OutcomeNominated {
		t.Fatalf("nomination: %+v", res)
	}
	var ballot, notice int64
	if err := w.db.QueryRow(`SELECT (SELECT min(id) FROM outbox WHERE kind = 'ballot'), (SELECT id FROM outbox WHERE kind = 'vetting-notice')`).Scan(&ballot, &notice); err != nil {
		t.Fatal(err)
	}
	var cand int64
	if err := w.db.Get(&cand, `SELECT id FROM candidates WHERE name = 'Maura Healey'`); err != nil {
		t.Fatal(err)
	}
	approve := fmt.Sprintf("APPROVE %d", cand)
	status := func() string {
		var s string
		if err := w.db.Get(&s, `SELECT status FROM candidates WHERE id = $1`, cand); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tag := range []string{"s-" + w.toks.Make(token.Staff, ballot, nil), "s-" + w.toks.Make(token.Staff, 999999, nil)} {
		res := w.handle(w.reply("staff@example.org", tag, "Re: vet", approve))
		if res.Outcome != OutcomeUnmatched || status() != "nominated" {
			t.Fatalf("staff command at %s: %q, candidate %s", tag, res.Outcome, status())
		}
	}
	if res := w.handle(w.reply("staff@example.org", "s-"+w.toks.Make(token.Staff, notice, nil), "Re: vet", approve)); res.Outcome != OutcomeVetted || status() != "approved" {
		t.Fatalf("staff command at the notice's address: %q, candidate %s", res.Outcome, status())
	}
}

// TestAbuseFormFloodFromALeader: 60 accepted forms in a leader's name
// (forged, with no trusted server to tell) bring the leader at most the
// daily cap of confirmations and each staff address at most the daily
// cap of vetting notices; the rest is counted for the digest.
func TestAbuseFormFloodFromALeader(t *testing.T) {
	t.Parallel()
	w := frontWorld(t)
	for i := range 60 {
		res := w.handle(w.reply("lead@somerville.example", "nominate", "Nomination", nominationForm(fmt.Sprintf("Jane %c%cson", 'A'+i/26, 'a'+i%26))))
		if res.Outcome != OutcomeNominated {
			t.Fatalf("form %d: %+v %s", i, res, w.detail(res.InboundID))
		}
	}
	if n := w.sentTo("lead@somerville.example", ""); n != kindCap(templates.KindNominationConfirm) {
		t.Fatalf("mails to the leader = %d, want %d", n, kindCap(templates.KindNominationConfirm))
	}
	if n := w.sentTo("staff@example.org", templates.KindVettingNotice); n != vettingNoticesPerDay {
		t.Fatalf("vetting notices = %d, want %d", n, vettingNoticesPerDay)
	}
	d, err := ballots.BuildDigest(w.ctx, w.db)
	if err != nil || d.HeldAnswers != 60-kindCap(templates.KindNominationConfirm)+60-vettingNoticesPerDay || len(d.Vetting) != 60 {
		t.Fatalf("digest: %d held, %d to vet (%v)", d.HeldAnswers, len(d.Vetting), err)
	}
}

// TestAbuseCommandsPerMessageBounded: one message runs at most
// maxCommands WITHDRAW lines or staff commands.
func TestAbuseCommandsPerMessageBounded(t *testing.T) {
	t.Parallel()
	w := frontWorld(t)
	if res := w.handle(w.reply("lead@somerville.example", "nominate", "Nomination", nominationForm("Maura Healey"))); res.Outcome != OutcomeNominated {
		t.Fatalf("nomination: %+v", res)
	}
	var notice int64
	if err := w.db.Get(&notice, `SELECT id FROM outbox WHERE kind = 'vetting-notice'`); err != nil {
		t.Fatal(err)
	}
	res := w.handle(w.reply("staff@example.org", "s-"+w.toks.Make(token.Staff, notice, nil), "Re: vet",
		strings.Repeat("APPROVE 99999\r\n", maxCommands+10)))
	var results []string
	if err := w.db.QueryRow(`SELECT data->'results' FROM outbox WHERE kind = 'staff-answer' AND inbound_id = $1`, res.InboundID).Scan(jsonOf(&results)); err != nil {
		t.Fatal(err)
	}
	if len(results) != maxCommands+1 || !strings.Contains(results[maxCommands], "Only the first 50 commands") {
		t.Fatalf("staff answer: %d results, last %q", len(results), results[len(results)-1])
	}
	res = w.handle(w.reply("lead@somerville.example", "nominate", "Re: nomination", strings.Repeat("WITHDRAW 99999\r\n", maxCommands+10)))
	answered := w.count(`SELECT (SELECT count(*) FROM outbox WHERE inbound_id = $1) + (SELECT count(*) FROM answers_held WHERE inbound_id = $1)`, res.InboundID)
	if res.Outcome != OutcomeWithdrawn || answered != maxCommands {
		t.Fatalf("withdrawals run: %d (%s)", answered, res.Outcome)
	}
}

// jsonScan scans a JSON column into v.
type jsonScan struct{ v any }

// jsonOf is a scanner of a JSON column into v.
func jsonOf(v any) *jsonScan { return &jsonScan{v} }

// Scan implements sql.Scanner.
func (j *jsonScan) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok {
		return fmt.Errorf("json column: %T", src)
	}
	return json.Unmarshal(b, j.v)
}

// TestAbuseOverlongSender: a From longer than any address can be (RFC
// 5321) is nobody's: the message is recorded, not answered, and does not
// block the mailbox (it used to fail on the members and answer-limit
// indexes at every reading).
func TestAbuseOverlongSender(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	local := make([]byte, 6000)
	for i := range local {
		local[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i*7+i*i)%36]
	}
	from := string(local) + "@example.com"
	for _, raw := range [][]byte{
		w.reply(from, "join", "join", "District: MA-07"),
		[]byte("From: " + from + "\r\nTo: ballots@example.org\r\nSubject: hi\r\nMessage-ID: <long@x>\r\n\r\nhello\r\n"),
		w.reply(from, "nominate", "Nomination", nominationForm("Maura Healey")),
	} {
		res := w.handle(raw)
		if res.Outcome == "" {
			t.Errorf("no outcome: %+v", res)
		}
	}
	if n := w.count(`SELECT count(*) FROM outbox WHERE kind <> 'ballot'`); n != 0 {
		t.Fatalf("%d answers to an overlong sender", n)
	}
}
