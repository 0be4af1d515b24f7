package mailer_test

import (
	"bytes"
	"context"
	"mime"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// hostileNames are display names an attacker can put in data (a members
// CSV, a sign-up's From, BALLOTD_FROM) to try to add an address to a header.
var hostileNames = []string{
	"Bób <spy@evil.example>, Bob",
	`Eve" <eve@evil.example>, "Eve`,
	"Mallory <spy@evil.example>",
	"=?utf-8?q?Spy_=3Cspy=40evil=2Eexample=3E=2C_?= Bob",
	`Back\slash "quoted", <a@b.example>; group: spy@evil.example;`,
	"Trent\r\nBcc: victim@evil.example",
	"(comment) Zoë <spy@evil.example>",
	strings.Repeat("日本語の名前 <spy@evil.example>, ", 20),
}

// oneAddress parses a header value with both strict parsers (net/mail and
// go-message) and fails unless each reads exactly one address, want ("" for
// any), and returns its display name.
func oneAddress(t *testing.T, header, value, want string) string {
	t.Helper()
	std, err := netmail.ParseAddressList(value)
	if err != nil || len(std) != 1 {
		t.Fatalf("%s: net/mail reads %d addresses (%v) from %q", header, len(std), err, value)
	}
	gm, err := gomail.ParseAddressList(value)
	if err != nil || len(gm) != 1 {
		t.Fatalf("%s: go-message reads %d addresses (%v) from %q", header, len(gm), err, value)
	}
	if want != "" && (!strings.EqualFold(std[0].Address, want) || !strings.EqualFold(gm[0].Address, want)) {
		t.Fatalf("%s: reads %q / %q from %q, want %q", header, std[0].Address, gm[0].Address, value, want)
	}
	if std[0].Name != gm[0].Name {
		t.Fatalf("%s: parsers disagree on the name: %q and %q", header, std[0].Name, gm[0].Name)
	}
	return std[0].Name
}

// TestFormatAddressIsOneAddress: whatever the display name holds, the
// formatted mailbox is exactly one address to a strict parser, and its name
// reads back as the name given (line breaks and runs of spaces made one
// space; long names cut).
func TestFormatAddressIsOneAddress(t *testing.T) {
	t.Parallel()
	addrs := []string{"bob@example.net", `"odd, local <x@y>"@example.net`, "ballots+v-abc234@example.org"}
	for _, name := range append(hostileNames, "", "Alice", "Alice Ä", `O'Brien`) {
		for _, addr := range addrs {
			v := mailer.FormatAddress(name, addr)
			got := oneAddress(t, "To", v, addr)
			want := strings.Join(strings.Fields(name), " ")
			if len([]rune(want)) > 78 {
				if !strings.HasSuffix(got, "…") || !strings.HasPrefix(want, strings.TrimSuffix(got, "…")) {
					t.Errorf("long name %q reads back as %q", name, got)
				}
			} else if got != want {
				t.Errorf("name %q reads back as %q (via %q)", name, got, v)
			}
			if len(v) > 998 {
				t.Errorf("formatted mailbox of %d characters", len(v))
			}
		}
	}
}

// TestRecipientHeadersParseToOneAddress renders a message of every kind to
// members with hostile names, from a hostile BALLOTD_FROM, sends them all
// through the outbox to the hub's go-smtp server, and parses every header
// that names an address with strict parsers: each is exactly the one
// address meant. A raw encoded-word from a form reaches a subject as the
// characters it is, not decoded.
func TestRecipientHeadersParseToOneAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	var csv strings.Builder
	csv.WriteString("email,name,district\n")
	for i, n := range hostileNames {
		csv.WriteString(strings.Join([]string{"m" + string(rune('a'+i)) + "@example.net", `"` + strings.ReplaceAll(n, `"`, `""`) + `"`, "MA-07"}, ",") + "\n")
	}
	if rep, err := st.ImportMembers(ctx, strings.NewReader(csv.String())); err != nil || rep.Added != len(hostileNames) {
		t.Fatalf("import: %+v %v", rep, err)
	}
	if _, err := st.ImportGroups(ctx, strings.NewReader("name,state,district,leader_email,leader_name\n"+
		"\"Group <spy@evil.example>, x\",MA,MA-07,lead@example.net,\"Lee <spy@evil.example>, Lee\"\n")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "March", NominationsClose: now, VotingOpen: now, VotingClose: now.Add(time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	const rawWord = "=?utf-8?q?Ed_=3Cspy=40evil=2Eexample=3E?="
	if _, err := st.AddCandidate(ctx, "MA-07", "", rawWord+" Markey", "Bio", []string{"Group <spy@evil.example>, x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenRace(ctx, "MA-07"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseRace(ctx, "MA-07"); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Member int64 `db:"member_id"`
		Ballot int64 `db:"id"`
		Race   int64 `db:"race_id"`
		Email  string
	}
	if err := testenv.DB(t, st).GetContext(ctx, &m, `SELECT b.member_id, b.id, b.race_id, mb.email FROM ballots b JOIN members mb ON mb.id = b.member_id
		WHERE mb.email = 'ma@example.net'`); err != nil {
		t.Fatal(err)
	}
	sender, thread := "Spy <spy@evil.example>, x", templates.Thread{InReplyTo: "x@y"}
	kinds := []ballots.Mail{
		{BallotID: m.Ballot, RaceID: m.Race, Payload: templates.BallotResendMail{}},
		{BallotID: m.Ballot, RaceID: m.Race, Payload: templates.ReminderMail{}},
		{BallotID: m.Ballot, RaceID: m.Race, Payload: templates.ReceiptMail{Choice: "YES", Receipt: "r-1", Thread: thread}},
		{BallotID: m.Ballot, RaceID: m.Race, Payload: templates.ClarifyMail{Reason: "unclear", Thread: thread}},
		{BallotID: m.Ballot, RaceID: m.Race, Payload: templates.ClosedMail{Thread: thread}},
		{BallotID: m.Ballot, RaceID: m.Race, Payload: templates.NotVoterMail{Sender: sender, Thread: thread}},
		{BallotID: m.Ballot, RaceID: m.Race, Payload: templates.UnauthenticatedMail{Sender: sender, Thread: thread}},
		{Payload: templates.UnmatchedMail{Subject: rawWord, Thread: thread}},
		{Payload: templates.ResendNeutralMail{Subject: rawWord, Thread: thread}},
		{RaceID: m.Race, Payload: templates.HeldMail{}},
		{Payload: templates.NominationConfirm{Number: 1, Group: "G", Candidate: rawWord, Race: "MA-07"}},
		{Payload: templates.NominationProblems{Problems: []string{"x"}, Form: rawWord}},
		{Payload: templates.BlankForm{Blank: "Group:"}},
		{Payload: templates.VettingNotice{Number: 1, CandidateID: 1, Candidate: rawWord, Race: "MA-07"}},
		{Payload: templates.StaffAnswer{Results: []string{"APPROVE 1: done"}}},
		{Payload: templates.JoinConfirm{Name: hostileNames[0], District: "MA-07"}},
		{Payload: templates.JoinProblems{Problems: []string{"x"}}},
		{Payload: templates.Welcome{Name: hostileNames[0], District: "MA-07"}},
		{Payload: templates.Unsubscribed{Name: hostileNames[0]}},
		{Payload: templates.Vetting{Wave: "March", VotingOpen: now}},
		{Payload: templates.Digest{At: now}},
	}
	if err := st.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, k := range kinds {
			k.Recipient, k.MemberID = m.Email, m.Member
			if _, err := ballots.Enqueue(ctx, tx, k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := testenv.DB(t, st).GetContext(ctx, &rows, `SELECT count(*) FROM outbox`); err != nil {
		t.Fatal(err)
	}

	hub, err := mailhub.Start(mailhub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	toks, _ := token.NewKey("test-secret-0123456789")
	tpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	const from = "Élections <spy@evil.example>, \"Staff\" <staff@evil.example>"
	ob := &mailer.Outbox{
		Store: st,
		Renderer: &mailer.Renderer{Store: st, Templates: tpl, Tokens: toks,
			ID: mailer.Identity{Local: "ballots", Domain: "example.org", FromName: from, PublicURL: "https://ballots.example.org"}},
		NewSender: func() mailer.Sender {
			return mailer.NewSMTPSender(mailer.SMTPConfig{Addr: hub.SMTPAddr, HeloName: "example.org"})
		},
	}
	if _, err := ob.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	got := hub.Received()
	if len(got) != rows {
		t.Fatalf("the hub received %d messages, want the %d outbox rows (%v)", len(got), rows, statuses(t, st))
	}
	subjects := 0
	for _, e := range got {
		msg, err := netmail.ReadMessage(bytes.NewReader(e.Data))
		if err != nil {
			t.Fatalf("message does not parse: %v\n%s", err, e.Data)
		}
		if len(e.To) != 1 {
			t.Fatalf("envelope to %v", e.To)
		}
		if n := len(msg.Header["To"]); n != 1 {
			t.Fatalf("%d To headers", n)
		}
		oneAddress(t, "To", msg.Header.Get("To"), e.To[0])
		if name := oneAddress(t, "From", msg.Header.Get("From"), "ballots@example.org"); name != strings.Join(strings.Fields(from), " ") {
			t.Errorf("From name reads %q", name)
		}
		rt := oneAddress(t, "Reply-To", msg.Header.Get("Reply-To"), "")
		if rt != strings.Join(strings.Fields(from), " ") {
			t.Errorf("Reply-To name reads %q", rt)
		}
		if rts, _ := netmail.ParseAddressList(msg.Header.Get("Reply-To")); !strings.HasPrefix(rts[0].Address, "ballots") || !strings.HasSuffix(rts[0].Address, "@example.org") {
			t.Errorf("Reply-To %q is not the ballot mailbox", rts[0].Address)
		}
		for _, h := range []string{"Cc", "Bcc", "Sender"} {
			if v, ok := msg.Header[h]; ok {
				t.Errorf("a %s header: %q", h, v)
			}
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("subject %q: %v", msg.Header.Get("Subject"), err)
		}
		if strings.Contains(subject, "Ed <spy") {
			t.Errorf("a raw encoded-word from a form was decoded into the subject: %q", subject)
		}
		if strings.Contains(subject, rawWord) {
			subjects++
		}
	}
	// The nomination confirmation and the vetting notice name the candidate
	// in their subject; the announcement and the held notice do not (no one
	// was endorsed).
	if subjects != 2 {
		t.Errorf("%d subjects show the raw encoded-word as it was written, want 2", subjects)
	}
}
