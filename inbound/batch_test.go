package inbound

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/mailhub"
)

// batchScript is a stretch of a mailbox that tests what a batch shares:
// one message twice, a changed vote, a replayed older vote, a join request
// and a bounce between replies (they make a batch load its ballots again),
// an unclear reply, a forged one, an auto-reply, the same vote again, and
// a voter who has had every answer a day allows (the vote counts, the
// receipt is held back).
func batchScript(w *world) [][]byte {
	_, alice07 := w.ballot("MA-07", "alice@example.net")
	_, bob07 := w.ballot("MA-07", "bob@example.net")
	_, carol07 := w.ballot("MA-07", "carol@example.net")
	_, aliceSen := w.ballot("MA-SEN", "alice@example.net")
	_, bobSen := w.ballot("MA-SEN", "bob@example.net")
	_, mallorySen := w.ballot("MA-SEN", "mallory@example.com")
	_, mallory07 := w.ballot("MA-07", "mallory@example.com")
	// Mallory has had every answer a day allows.
	w.db.MustExec(`INSERT INTO answer_counts (scope, period, n, cap)
		VALUES ('all:mallory@example.com', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 1000, 1000)`)
	n := 0
	msg := func(from, tag, date, body string, extra ...string) []byte {
		n++
		head := ""
		for _, h := range extra {
			head += h + "\r\n"
		}
		return fmt.Appendf(nil, "%sFrom: %s\r\nTo: ballots+%s@example.org\r\nSubject: Re: Your ballot\r\nMessage-ID: <batch-%d@client.example>\r\n"+
			"Date: Tue, 24 Nov 2026 %s +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", head, from, tag, n, date, body)
	}
	alice := msg("alice@example.net", "v-"+alice07, "10:00:00", "Yes")
	return [][]byte{
		alice,
		alice, // the same message again
		msg("bob@example.net", "v-"+bob07, "10:00:00", "Yes"),
		msg("bob@example.net", "v-"+bob07, "10:05:00", "No"), // changed
		msg("carol@example.net", "v-"+carol07, "10:05:00", "No"),
		msg("carol@example.net", "v-"+carol07, "10:00:00", "Yes"), // written before the vote that stands
		msg("newcomer@example.com", "join", "10:06:00", "Name: New Comer\r\nDistrict: MA-07"),
		msg("mallory@example.com", "v-"+mallorySen, "10:07:00", "2"),
		dsn("ballots@example.org", "nobody@example.org", "5.1.1", "550 5.1.1 user unknown"),
		msg("alice@example.net", "v-"+aliceSen, "10:08:00", "maybe Kennedy?"),
		msg("eve@evil.example", "v-"+aliceSen, "10:09:00", "1"),   // not the voter
		msg("alice@example.net", "v-"+alice07, "10:10:00", "yes"), // the same vote again
		msg("bob@example.net", "v-"+bobSen, "10:11:00", "I am away until Monday.", "Auto-Submitted: auto-replied"),
		msg("bob@example.net", "v-"+bobSen, "10:12:00", "Markey"),
		msg("mallory@example.com", "v-"+mallory07, "10:13:00", "Yes"),
	}
}

// worldState is what a world holds after a script: each message's class
// and outcome, the tallies, the votes and the answers queued.
func worldState(w *world, results []Result) string {
	var b strings.Builder
	for i, r := range results {
		fmt.Fprintf(&b, "%d %s %s %s\n", i+1, r.Class, r.Outcome, r.Race)
	}
	fmt.Fprintf(&b, "MA-07 %s\nMA-SEN %s\n", w.tally("MA-07"), w.tally("MA-SEN"))
	var rows []string
	if err := w.db.Select(&rows, `SELECT v.choice || ' ' || m.email || ' ' || r.code FROM votes v JOIN ballots bl ON bl.id = v.ballot_id
		JOIN members m ON m.id = bl.member_id JOIN races r ON r.id = bl.race_id ORDER BY v.id`); err != nil {
		w.t.Fatal(err)
	}
	fmt.Fprintf(&b, "votes %s\n", strings.Join(rows, "; "))
	rows = nil
	if err := w.db.Select(&rows, `SELECT kind || ' ' || recipient FROM outbox ORDER BY id`); err != nil {
		w.t.Fatal(err)
	}
	fmt.Fprintf(&b, "outbox %s\n", strings.Join(rows, "; "))
	rows = nil
	if err := w.db.Select(&rows, `SELECT coalesce(class, '') || ' ' || coalesce(outcome, '') || ' ' || quarantined || ' ' || coalesce(detail, '')
		FROM inbound_messages ORDER BY id`); err != nil {
		w.t.Fatal(err)
	}
	fmt.Fprintf(&b, "inbound %s\n", strings.Join(rows, "; "))
	rows = nil
	if err := w.db.Select(&rows, `SELECT sender || ' ' || reason FROM answer_limits UNION ALL SELECT scope || ' ' || n FROM answer_counts
		UNION ALL SELECT 'held ' || recipient || ' ' || kind || ' ' || why FROM answers_held ORDER BY 1`); err != nil {
		w.t.Fatal(err)
	}
	fmt.Fprintf(&b, "answer policy %s\n", strings.Join(rows, "; "))
	return b.String()
}

// TestBatchActsAsOneAtATime reads the same stretch of a mailbox over IMAP
// in batches of several sizes and checks that every message, vote, answer
// and record comes out as when each message is handled alone.
func TestBatchActsAsOneAtATime(t *testing.T) {
	t.Parallel()
	alone := newWorld(t)
	var want []Result
	for _, raw := range batchScript(alone) {
		want = append(want, alone.handle(raw))
	}
	wantState := worldState(alone, want)
	for _, c := range []string{"counted", "duplicate", "stale", "unclear", "not-voter", "ignored", "bounce", "sign-up", "held"} {
		if !strings.Contains(wantState, " "+c+" ") {
			t.Fatalf("the script has no %s message:\n%s", c, wantState)
		}
	}
	for _, size := range []int{1, 3, 50} {
		t.Run(fmt.Sprintf("batch=%d", size), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			hub := startHub(t)
			script := batchScript(w)
			for _, raw := range script {
				if err := hub.Deliver("ballots@example.org", raw); err != nil {
					t.Fatal(err)
				}
			}
			var got []Result
			w.p.Handled = func(r Result) { got = append(got, r) }
			r := &Reader{Processor: w.p, Config: IMAPConfig{Addr: hub.IMAPAddr, Username: "ballots@example.org", Password: hub.Password, Batch: size}}
			n, err := r.Once(w.ctx)
			if err != nil || n != len(script) {
				t.Fatalf("Once: %d handled, %v; want %d", n, err, len(script))
			}
			if state := worldState(w, got); state != wantState {
				t.Errorf("batches of %d:\n%s\none at a time:\n%s", size, state, wantState)
			}
			assertAllSeen(t, hub, len(script))
		})
	}
}

// poison makes the database refuse every vote on ballot id (a trigger that
// raises, as a bug or a bad row would); cure takes it away.
func poison(w *world, id int64) {
	w.db.MustExec(fmt.Sprintf(`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.ballot_id = %d THEN RAISE EXCEPTION 'poisoned ballot'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER poison BEFORE INSERT ON votes FOR EACH ROW EXECUTE FUNCTION poison()`, id))
}

func cure(w *world) { w.db.MustExec(`DROP TRIGGER poison ON votes; DROP FUNCTION poison()`) }

// startHub starts an embedded mail hub for the test.
func startHub(t *testing.T) *mailhub.Hub {
	t.Helper()
	hub, err := mailhub.Start(mailhub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	return hub
}

// assertAllSeen checks that the ballot mailbox holds n messages, all
// flagged \Seen.
func assertAllSeen(t *testing.T, hub *mailhub.Hub, n int) {
	t.Helper()
	msgs, err := hub.Inbox("ballots@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("mailbox holds %d messages, want %d", len(msgs), n)
	}
	for _, m := range msgs {
		if !slices.Contains(m.Flags, `\Seen`) {
			t.Errorf("uid %d not \\Seen: %v", m.UID, m.Flags)
		}
	}
}

// TestBatchIsolatesAFailingMessage makes the database refuse one vote of
// a batch (a trigger that raises, as a bug or a bad row would): the batch
// falls back to one message at a time, its batch-mates before and after
// are counted, the failing one is quarantined with the error and counts
// once when replayed after the fix, and the mailbox reads on.
func TestBatchIsolatesAFailingMessage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hub := startHub(t)
	emails := []string{"alice@example.net", "bob@example.net", "carol@example.net", "mallory@example.com"}
	var poisoned int64
	for i, e := range emails {
		id, tok := w.ballot("MA-07", e)
		if i == 2 {
			poisoned = id
		}
		if err := hub.Deliver("ballots@example.org", w.reply(e, "v-"+tok, "Re: Your ballot", "Yes")); err != nil {
			t.Fatal(err)
		}
	}
	poison(w, poisoned)
	r := &Reader{Processor: w.p, Config: IMAPConfig{Addr: hub.IMAPAddr, Username: "ballots@example.org", Password: hub.Password}}
	n, err := r.Once(w.ctx)
	if err != nil || n != len(emails) {
		t.Fatalf("Once: %d handled, %v; want %d", n, err, len(emails))
	}
	if got := w.tally("MA-07"); got != "voted=3 Ayanna Pressley=3" {
		t.Errorf("tally with one vote refused: %s", got)
	}
	var q struct {
		ID     int64  `db:"id"`
		Detail string `db:"detail"`
	}
	if err := w.db.Get(&q, `SELECT id, detail FROM inbound_messages WHERE quarantined`); err != nil {
		t.Fatalf("the failing message is not the one quarantined: %v", err)
	}
	if !strings.Contains(q.Detail, "could not be handled") || !strings.Contains(q.Detail, "poisoned ballot") {
		t.Errorf("quarantine detail %q does not say why", q.Detail)
	}
	assertAllSeen(t, hub, len(emails))
	// Read on: nothing is handled twice.
	if n, err := r.Once(w.ctx); err != nil || n != 0 {
		t.Fatalf("second pass: %d handled, %v; want none", n, err)
	}
	cure(w)
	res, err := w.p.Replay(w.ctx, q.ID)
	if err != nil || res.Outcome != OutcomeCounted {
		t.Fatalf("replay after the fix: %+v, %v", res, err)
	}
	if got := w.tally("MA-07"); got != "voted=4 Ayanna Pressley=4" {
		t.Errorf("tally after the replay: %s", got)
	}
}

// TestAnswersWaitForTheMailbox: in a wave of replies, the answers of a
// batch with more than AnswersBehind messages behind it in the mailbox are
// queued to come due later, and made due once the reader has read to the
// end (and the outbox woken); the last batches' are due at once. A row a
// limit put off (claimed before) is not made due by that.
func TestAnswersWaitForTheMailbox(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hub := startHub(t)
	emails := []string{"alice@example.net", "bob@example.net", "carol@example.net", "mallory@example.com"}
	for _, e := range emails {
		for _, race := range []string{"MA-07", "MA-SEN"} {
			_, tok := w.ballot(race, e)
			if err := hub.Deliver("ballots@example.org", w.reply(e, "v-"+tok, "Re: Your ballot", "Yes")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A receipt a relay's limit put off until tomorrow: claimed once.
	var inboundID int64
	w.db.MustExec(`INSERT INTO inbound_messages (message_key, mailbox, raw) VALUES ('put-off', 'x', '\x')`)
	if err := w.db.Get(&inboundID, `SELECT id FROM inbound_messages WHERE message_key = 'put-off'`); err != nil {
		t.Fatal(err)
	}
	w.db.MustExec(`INSERT INTO outbox (kind, recipient, inbound_id, data, next_attempt, claim) VALUES ('receipt', 'x@example.net', $1, '{}', now() + interval '1 day', 1)`, inboundID)

	held := func() int {
		var n int
		if err := w.db.Get(&n, `SELECT count(*) FROM outbox WHERE inbound_id IS NOT NULL AND next_attempt > now() AND claim IS NULL`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var during []int
	w.p.AnswersWait, w.p.AnswersBehind = time.Hour, 3
	w.p.Handled = func(Result) { during = append(during, held()) }
	woken := 0
	w.p.Enqueued = func() { woken++ }
	r := &Reader{Processor: w.p, Config: IMAPConfig{Addr: hub.IMAPAddr, Username: "ballots@example.org", Password: hub.Password, Batch: 2}}
	n, err := r.Once(w.ctx)
	if err != nil || n != 2*len(emails) {
		t.Fatalf("Once: %d handled, %v; want %d", n, err, 2*len(emails))
	}
	// Batches of 2 with 6, 4, 2 and 0 behind: the first two batches'
	// answers (a receipt, and a clarification of "Yes" on the Senate
	// ballot, which has several candidates) wait (more than 3 behind), the
	// last two's do not.
	if want := []int{2, 2, 4, 4, 4, 4, 4, 4}; !slices.Equal(during, want) {
		t.Errorf("answers waiting after each message: %v, want %v", during, want)
	}
	if n := held(); n != 0 {
		t.Errorf("%d answers still waiting after the mailbox was read", n)
	}
	var due, putOff int
	if err := w.db.Get(&due, `SELECT count(*) FROM outbox WHERE inbound_id IS NOT NULL AND next_attempt <= now()`); err != nil || due != 2*len(emails) {
		t.Errorf("%d answers due (%v), want %d", due, err, 2*len(emails))
	}
	if err := w.db.Get(&putOff, `SELECT count(*) FROM outbox WHERE recipient = 'x@example.net' AND next_attempt > now() + interval '23 hours'`); err != nil || putOff != 1 {
		t.Errorf("the row a limit put off was made due too (%d still put off, %v)", putOff, err)
	}
	if woken == 0 {
		t.Error("the outbox was not woken")
	}
}
