package inbound

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// world is a migrated database with members, a wave and two open races:
// MA-07 (one candidate: yes/no) and MA-SEN (two candidates), and the
// processor that reads replies to their ballots.
type world struct {
	t    testing.TB
	ctx  context.Context
	st   *ballots.Store
	db   *sqlx.DB // st's database, for the test's own SQL
	toks *token.Key
	box  message.Mailbox
	p    *Processor
	seq  atomic.Int64
}

const worldMembers = "email,name,district\n" +
	"alice@example.net,Alice A,MA-07\n" +
	"bob@example.net,Bob B,MA-07\n" +
	"carol@example.net,Carol C,MA-07\n" +
	"mallory@example.com,Mallory M,MA-07\n"

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	toks, err := token.NewKey("a test secret of enough length")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ctx: ctx, st: st, db: testenv.DB(t, st), toks: toks, box: message.Mailbox{Local: "ballots", Domain: "example.org"}}
	w.p = &Processor{Store: st, Tokens: toks, Box: w.box}
	if _, err := st.ImportMembers(ctx, strings.NewReader(worldMembers)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "March", NominationsClose: now.Add(-time.Hour), VotingOpen: now,
		VotingClose: now.Add(24 * time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ race, name string }{{"MA-07", "Ayanna Pressley"}, {"MA-SEN", "Ed Markey"}, {"MA-SEN", "Joe Kennedy"}} {
		if _, err := st.AddCandidate(ctx, c.race, "", c.name, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []string{"MA-07", "MA-SEN"} {
		if _, err := st.OpenRace(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// ballot returns the id and token of email's ballot in race.
func (w *world) ballot(race, email string) (int64, string) {
	w.t.Helper()
	var id int64
	err := w.db.Get(&id, `SELECT b.id FROM ballots b JOIN members m ON m.id = b.member_id JOIN races r ON r.id = b.race_id
		WHERE r.code = $1 AND m.email = $2`, race, email)
	if err != nil {
		w.t.Fatalf("ballot %s %s: %v", race, email, err)
	}
	nonce, err := ballots.BallotNonce(w.ctx, w.db, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return id, w.toks.Make(token.Ballot, id, nonce)
}

// reply is a plain reply from from to the plus address tag, with body and
// extra header lines.
func (w *world) reply(from, tag, subject, body string, extra ...string) []byte {
	n := w.seq.Add(1)
	var b strings.Builder
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: ballots+%s@example.org\r\nSubject: %s\r\nMessage-ID: <reply-%d-%d@client.example>\r\n"+
		"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, tag, subject, n, time.Now().UnixNano(), body)
	return []byte(b.String())
}

// handle feeds raw to the processor as the next message of the mailbox.
func (w *world) handle(raw []byte) Result {
	w.t.Helper()
	n := w.seq.Add(1)
	res, err := w.p.Handle(w.ctx, Delivery{Mailbox: "INBOX", UIDValidity: 1, UID: uint32(n), Raw: raw})
	if err != nil {
		w.t.Fatalf("handle: %v", err)
	}
	return res
}

// tally returns race's live tally as "name=votes" pairs plus voted count.
func (w *world) tally(race string) string {
	w.t.Helper()
	tl, err := w.st.TallyRace(w.ctx, race)
	if err != nil {
		w.t.Fatal(err)
	}
	parts := []string{fmt.Sprintf("voted=%d", tl.Voted)}
	for _, c := range tl.Candidates {
		parts = append(parts, fmt.Sprintf("%s=%d", c.Name, c.Votes))
	}
	return strings.Join(parts, " ")
}

// count runs a count(*) query.
func (w *world) count(q string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.db.Get(&n, q, args...); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// rendered claims every due outbox row and renders those of kind ("" for
// every kind but ballots) as the mailer would send them.
func (w *world) rendered(kind templates.Kind) []mailer.Rendered {
	w.t.Helper()
	tpl, err := templates.Load("")
	if err != nil {
		w.t.Fatal(err)
	}
	r := &mailer.Renderer{Store: w.st, Templates: tpl, Tokens: w.toks, ID: mailer.Identity{Local: "ballots", Domain: "example.org", FromName: "Ballots"}}
	rows, err := w.st.ClaimOutbox(w.ctx, 100000, time.Minute)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []mailer.Rendered
	for _, row := range rows {
		if row.Kind != kind && (kind != "" || row.Kind == templates.KindBallot) {
			continue
		}
		var buf bytes.Buffer
		msg, err := r.Render(w.ctx, row, &buf)
		if err != nil {
			w.t.Fatalf("render outbox %d: %v", row.ID, err)
		}
		msg.Data = append([]byte(nil), msg.Data...)
		out = append(out, msg)
	}
	return out
}

// answers counts outbox rows of kind (not ballots).
func (w *world) answers(kind templates.Kind) int {
	return w.count(`SELECT count(*) FROM outbox WHERE kind = $1`, kind)
}
