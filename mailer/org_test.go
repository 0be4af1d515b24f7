package mailer_test

import (
	"bytes"
	"context"
	"mime"
	"net/mail"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// memberKinds are the mails to members, each of which ends with the
// footer: why the member gets it and how to stop.
var memberKinds = []templates.Kind{
	templates.KindBallot, templates.KindReminder, templates.KindReceipt, templates.KindClarify, templates.KindNoChange,
	templates.KindClosed, templates.KindAnnouncement, templates.KindNotVoter, templates.KindUnauthenticated,
	templates.KindWelcome, templates.KindJoinConfirm, templates.KindUnsubscribed, templates.KindMemberChange,
	templates.KindBallotResend,
}

// sentMail is a rendered message read back: its headers decoded and its
// text and HTML parts.
type sentMail struct {
	kind, from, subject, text, html string
}

// renderMemberMail fills the fixture's outbox with one mail of every
// member kind to Alice (MA-07): the ballots and announcements as opening
// and closing MA-SEN makes them, the rest enqueued as inbound would, and
// renders every row that has a member with id, keyed by kind.
func renderMemberMail(t *testing.T, id mailer.Identity) map[templates.Kind]sentMail {
	t.Helper()
	f := newFixture(t)
	ctx := context.Background()
	var alice struct {
		Member int64 `db:"member_id"`
		Ballot int64 `db:"ballot_id"`
		Race   int64 `db:"race_id"`
	}
	if err := testenv.DB(t, f.st).Get(&alice, `SELECT m.id AS member_id, b.id AS ballot_id, b.race_id FROM members m
		JOIN ballots b ON b.member_id = m.id WHERE m.email = 'alice@example.net'`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.CloseRace(ctx, "MA-SEN"); err != nil {
		t.Fatal(err)
	}
	choice, receipt, reason, quote, sender := "1. Ed Markey", "R-123", "two answers", "1 and 2", "mallory@example.com"
	mails := []ballots.Mail{
		{Payload: templates.ReminderMail{}},
		{Payload: templates.ReceiptMail{Choice: choice, Receipt: receipt}},
		{Payload: templates.ClarifyMail{Reason: reason, Quote: quote}},
		{Payload: templates.NoChangeMail{Choice: choice}},
		{Payload: templates.ClosedMail{}},
		{Payload: templates.NotVoterMail{Sender: sender}},
		{Payload: templates.UnauthenticatedMail{Sender: sender}},
		{Payload: templates.BallotResendMail{}},
		{Payload: templates.Welcome{Name: "Alice", District: "MA-07"}},
		{Payload: templates.JoinConfirm{Name: "Alice", District: "MA-07"}},
		{Payload: templates.Unsubscribed{Name: "Alice"}},
		{Payload: templates.MemberChange{Name: "Alice", OldName: "Alice", NewName: "Alice B",
			OldDistrict: "MA-07", NewDistrict: "MA-07", OldStatus: "active", NewStatus: "active", ChangeID: 1}},
	}
	if err := f.st.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, m := range mails {
			m.Recipient, m.MemberID = "alice@example.net", alice.Member
			switch m.Kind() {
			case templates.KindWelcome, templates.KindJoinConfirm, templates.KindUnsubscribed, templates.KindMemberChange:
			default:
				m.BallotID, m.RaceID = alice.Ballot, alice.Race
			}
			if _, err := ballots.Enqueue(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	r := &mailer.Renderer{Store: f.st, Templates: tpl, Tokens: f.toks, ID: id}
	rows, err := f.st.ClaimOutbox(ctx, 1000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	out := map[templates.Kind]sentMail{}
	for _, row := range rows {
		if row.Recipient != "alice@example.net" || !row.MemberID.Valid {
			continue
		}
		var buf bytes.Buffer
		m, err := r.Render(ctx, row, &buf)
		if err != nil {
			t.Fatalf("render %s: %v", row.Kind, err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("%s: %v", row.Kind, err)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("%s: subject: %v", row.Kind, err)
		}
		_, leaves := mimeTree(t, m.Data)
		out[row.Kind] = sentMail{kind: string(row.Kind), from: msg.Header.Get("From"), subject: subject,
			text: string(leaves[0].Body), html: string(leaves[1].Body)}
	}
	var missing []templates.Kind
	for _, k := range memberKinds {
		if _, ok := out[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		have := make([]string, 0, len(out))
		for k := range out {
			have = append(have, string(k))
		}
		sort.Strings(have)
		t.Fatalf("no %v rendered to Alice (have %v)", missing, have)
	}
	return out
}

// With BALLOTD_ORG_NAME, ADDRESS and URL set, every member mail comes from
// the organisation, names it at the end of its subject (which still starts
// with what the mail is), and ends with a footer in both parts: why the
// member gets it (the organisation and their district), the one-click
// unsubscribe link and the unsubscribe address (where any mail
// unsubscribes), and the postal address, in the HTML before </body>.
func TestOrgFooterOnEveryMemberMail(t *testing.T) {
	t.Parallel()
	org := templates.Org{Name: "Working Families", Address: "1 Main St, Boston, MA 02110", URL: "https://wf.example.org"}
	got := renderMemberMail(t, mailer.Identity{Local: "ballots", Domain: "example.org", FromName: "Working Families",
		PublicURL: "https://ballots.example.org", Org: org})
	starts := map[templates.Kind]string{templates.KindBallot: "Your ballot: ", templates.KindBallotResend: "Your ballot: ",
		templates.KindReminder: "Reminder: ", templates.KindReceipt: "Vote received", templates.KindAnnouncement: "Results: ",
		templates.KindClosed: "Voting has closed"}
	for _, k := range memberKinds {
		m := got[k]
		if a, err := mail.ParseAddress(m.from); err != nil || a.Name != "Working Families" || a.Address != "ballots@example.org" {
			t.Errorf("%s: From %q (%v), want Working Families <ballots@example.org>", k, m.from, err)
		}
		if !strings.HasSuffix(m.subject, " — Working Families") || strings.Count(m.subject, "Working Families") != 1 {
			t.Errorf("%s: subject %q does not end with the organisation once", k, m.subject)
		}
		if p := starts[k]; p != "" && !strings.HasPrefix(m.subject, p) {
			t.Errorf("%s: subject %q does not start with %q", k, m.subject, p)
		}
		why := "You get this because you are a member of Working Families in MA-07."
		switch k {
		case templates.KindJoinConfirm:
			why = "You get this because someone asked to join the member ballots of Working Families with this address"
		case templates.KindUnsubscribed:
			why = "You get this because this address has just left the member ballots of Working Families."
		}
		text := strings.Join(strings.Fields(m.text), " ")
		want := []string{why, "1 Main St, Boston, MA 02110", "https://wf.example.org"}
		if k != templates.KindUnsubscribed {
			want = append(want, "To stop getting these: open https://ballots.example.org/unsubscribe?t=",
				"or send any email to ballots+u-", "(what you write does not matter).")
		} else if strings.Contains(text, "To stop") {
			t.Errorf("%s: the goodbye says how to stop:\n%s", k, m.text)
		}
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: text lacks %q:\n%s", k, w, m.text)
			}
		}
		html := strings.Join(strings.Fields(m.html), " ")
		foot := strings.LastIndex(html, "You get this because")
		if foot < 0 || !strings.Contains(html[foot:], "1 Main St, Boston, MA 02110</p> </body>") {
			t.Errorf("%s: HTML lacks the footer before </body>:\n%s", k, m.html)
		}
		if k != templates.KindUnsubscribed && (!strings.Contains(html, `<a href="https://ballots.example.org/unsubscribe?t=`) ||
			!strings.Contains(html, `<a href="mailto:ballots&#43;u-`)) {
			t.Errorf("%s: HTML lacks the unsubscribe link and address:\n%s", k, m.html)
		}
		if !strings.Contains(html, `<a href="https://wf.example.org" style="color:#666">Working Families</a>`) && k != templates.KindJoinConfirm && k != templates.KindUnsubscribed {
			t.Errorf("%s: HTML does not link the organisation:\n%s", k, m.html)
		}
	}
}

// Without an organisation, member mail is as it was (BALLOTD_FROM names
// the sender, subjects carry no organisation) and the footer still says
// why and how to stop; without BALLOTD_PUBLIC_URL there is no link, only
// the unsubscribe address.
func TestFooterWithoutOrg(t *testing.T) {
	t.Parallel()
	got := renderMemberMail(t, mailer.Identity{Local: "ballots", Domain: "example.org", FromName: "Ballots"})
	for _, k := range memberKinds {
		m := got[k]
		if a, err := mail.ParseAddress(m.from); err != nil || a.Name != "Ballots" {
			t.Errorf("%s: From %q (%v)", k, m.from, err)
		}
		if strings.Contains(m.subject, " — ") {
			t.Errorf("%s: subject %q names an organisation", k, m.subject)
		}
		text := strings.Join(strings.Fields(m.text), " ")
		if strings.Contains(text, "/unsubscribe?t=") || strings.Contains(m.html, "/unsubscribe?t=") {
			t.Errorf("%s: a link without BALLOTD_PUBLIC_URL:\n%s", k, m.text)
		}
		switch k {
		case templates.KindUnsubscribed:
			if !strings.Contains(text, "this address has just left the member ballots") {
				t.Errorf("%s: text lacks the goodbye footer:\n%s", k, m.text)
			}
		case templates.KindJoinConfirm:
			if !strings.Contains(text, "asked to join the member ballots") || !strings.Contains(text, "To stop getting these: send any email to ballots+u-") {
				t.Errorf("%s: text lacks the footer:\n%s", k, m.text)
			}
		default:
			if !strings.Contains(text, "You get this because you are a member in MA-07. To stop getting these: send any email to ballots+u-") {
				t.Errorf("%s: text lacks the footer:\n%s", k, m.text)
			}
		}
	}
}
