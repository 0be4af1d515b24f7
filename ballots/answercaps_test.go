package ballots_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// TestAnswerCapsHoldUnderConcurrency: thirty transactions at once take an
// answer under a shared cap of 7: exactly 7 get one, and the refused give
// back what they counted under the other cap.
func TestAnswerCapsHoldUnderConcurrency(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	caps := []ballots.AnswerCap{{Scope: "all:x@example.net", Period: ballots.CapDay, Max: 20},
		{Scope: "strangers", Period: ballots.CapHour, Max: 7}}
	var took atomic.Int64
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := st.InTx(ctx, func(tx *sqlx.Tx) error {
				full, ok, err := ballots.TakeAnswerCaps(ctx, tx, caps)
				if ok {
					took.Add(1)
				} else if err == nil && full.Scope != "strangers" {
					t.Errorf("refused by %q, want the strangers' cap", full.Scope)
				}
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if took.Load() != 7 {
		t.Fatalf("%d answers taken under a cap of 7", took.Load())
	}
	var n int
	if err := testenv.DB(t, st).Get(&n, `SELECT n FROM answer_counts WHERE scope = 'all:x@example.net'`); err != nil || n != 7 {
		t.Fatalf("the per-address count is %d (%v), want 7: refused answers count nothing", n, err)
	}
	// A cap of none refuses without counting.
	err := st.InTx(ctx, func(tx *sqlx.Tx) error {
		full, ok, err := ballots.TakeAnswerCaps(ctx, tx, []ballots.AnswerCap{{Scope: "all:y@example.net", Period: ballots.CapDay, Max: 0}})
		if ok || full.Scope != "all:y@example.net" {
			t.Errorf("a cap of 0: ok %v, full %+v", ok, full)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestClaimAnswerSlotsAndCaps walks ClaimAnswer through its cases: the
// first slot free, the first used and the second free, every slot used,
// and a cap full, after which the slot and the counts are given back.
func TestClaimAnswerSlotsAndCaps(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	db := testenv.DB(t, st)
	ctx := context.Background()
	caps := func(perAddress int) []ballots.AnswerCap {
		return []ballots.AnswerCap{{Scope: "kind:receipt:v@example.net", Period: ballots.CapDay, Max: 10},
			{Scope: "all:v@example.net", Period: ballots.CapDay, Max: perAddress}}
	}
	claim := func(reason string, slots int, c []ballots.AnswerCap) (slot string, full ballots.AnswerCap, ok bool) {
		t.Helper()
		err := st.InTx(ctx, func(tx *sqlx.Tx) error {
			var err error
			slot, full, ok, err = ballots.ClaimAnswer(ctx, tx, "V@example.net", reason, slots, 0, c)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return slot, full, ok
	}
	count := func(q string) int {
		t.Helper()
		var n int
		if err := db.Get(&n, q); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if slot, _, ok := claim("receipt:1", 2, caps(25)); !ok || slot != "receipt:1" {
		t.Fatalf("first claim: slot %q ok %v", slot, ok)
	}
	if slot, _, ok := claim("receipt:1", 2, caps(25)); !ok || slot != "receipt:1#2" {
		t.Fatalf("second claim: slot %q ok %v, want the second slot", slot, ok)
	}
	if slot, full, ok := claim("receipt:1", 2, caps(25)); ok || slot != "" || full != (ballots.AnswerCap{}) {
		t.Fatalf("third claim of two slots: slot %q full %+v ok %v, want none and no cap", slot, full, ok)
	}
	if n := count(`SELECT n FROM answer_counts WHERE scope = 'all:v@example.net'`); n != 2 {
		t.Fatalf("per-address count %d after two answers, want 2", n)
	}
	// A cap of 2 is full now: the slot of another reason is given back,
	// and nothing more is counted.
	if slot, full, ok := claim("clarify:1", 1, caps(2)); ok || slot != "" || full.Scope != "all:v@example.net" {
		t.Fatalf("claim over a full cap: slot %q full %+v ok %v", slot, full, ok)
	}
	if n := count(`SELECT count(*) FROM answer_limits WHERE reason = 'clarify:1'`); n != 0 {
		t.Errorf("the refused answer's slot is kept (%d rows)", n)
	}
	if n := count(`SELECT n FROM answer_counts WHERE scope = 'kind:receipt:v@example.net'`); n != 2 {
		t.Errorf("per-kind count %d after a refused answer, want 2", n)
	}
	if n := count(`SELECT n FROM answer_counts WHERE scope = 'all:v@example.net'`); n != 2 {
		t.Errorf("per-address count %d after a refused answer, want 2", n)
	}
	// With room again, the freed slot is taken.
	if slot, _, ok := claim("clarify:1", 1, caps(25)); !ok || slot != "clarify:1" {
		t.Fatalf("claim after the cap rose: slot %q ok %v", slot, ok)
	}
}

// ClaimAnswers gives each claim what ClaimAnswer one at a time gives it,
// and leaves the same slots and counts: claims each from its own sender
// (claimed together), a sender whose first slot is used (a second slot,
// or none), a full cap, a sender claiming twice, two strangers sharing the
// hourly cap, and a kind that is never answered.
func TestClaimAnswersAsOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	caps := func(addr string, perAddress int) []ballots.AnswerCap {
		return []ballots.AnswerCap{{Scope: "kind:receipt:" + addr, Period: ballots.CapDay, Max: 10},
			{Scope: "all:" + addr, Period: ballots.CapDay, Max: perAddress}}
	}
	stranger := func(addr string) []ballots.AnswerCap {
		return append(caps(addr, 3), ballots.AnswerCap{Scope: "strangers", Period: ballots.CapHour, Max: 1})
	}
	claims := []ballots.AnswerClaim{
		{Sender: "a@example.net", Reason: "receipt:1", Slots: 10, Caps: caps("a@example.net", 25)},
		{Sender: "B@example.net", Reason: "receipt:2", Slots: 10, Caps: caps("b@example.net", 25)},
		{Sender: "used2@example.net", Reason: "receipt:3", Slots: 2, Caps: caps("used2@example.net", 25)},
		{Sender: "used1@example.net", Reason: "clarify:4", Slots: 1, Caps: caps("used1@example.net", 25)},
		{Sender: "full@example.net", Reason: "receipt:5", Slots: 10, Caps: caps("full@example.net", 25)},
		{Sender: "twice@example.net", Reason: "receipt:6", Slots: 10, Caps: caps("twice@example.net", 25)},
		{Sender: "c@example.net", Reason: "receipt:7", Slots: 10, Caps: caps("c@example.net", 25)},
		{Sender: "twice@example.net", Reason: "receipt:6", Slots: 10, Caps: caps("twice@example.net", 25)},
		{Sender: "s1@elsewhere.example", Reason: "nomination:8", Slots: 1, Caps: stranger("s1@elsewhere.example")},
		{Sender: "s2@elsewhere.example", Reason: "nomination:9", Slots: 1, Caps: stranger("s2@elsewhere.example")},
		{Sender: "never@example.net", Reason: "receipt:10", Slots: 1, Caps: []ballots.AnswerCap{{Scope: "kind:x:never@example.net", Period: ballots.CapDay, Max: 0}}},
	}
	setup := func(st *ballots.Store) {
		t.Helper()
		if err := st.InTx(ctx, func(tx *sqlx.Tx) error {
			for _, c := range []ballots.AnswerClaim{claims[2], claims[3]} {
				if _, _, _, err := ballots.ClaimAnswer(ctx, tx, c.Sender, c.Reason, c.Slots, 0, c.Caps); err != nil {
					return err
				}
			}
			for range 25 {
				if _, _, err := ballots.TakeAnswerCaps(ctx, tx, caps("full@example.net", 25)[1:]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	state := func(st *ballots.Store) string {
		t.Helper()
		var rows []string
		if err := testenv.DB(t, st).Select(&rows, `SELECT sender || ' ' || reason FROM answer_limits
			UNION ALL SELECT scope || ' ' || n FROM answer_counts ORDER BY 1`); err != nil {
			t.Fatal(err)
		}
		return strings.Join(rows, "\n")
	}

	one, all := newStore(t), newStore(t)
	setup(one)
	setup(all)
	want := make([]ballots.AnswerClaimed, len(claims))
	if err := one.InTx(ctx, func(tx *sqlx.Tx) error {
		for i, c := range claims {
			slot, full, ok, err := ballots.ClaimAnswer(ctx, tx, c.Sender, c.Reason, c.Slots, c.InboundID, c.Caps)
			if err != nil {
				return err
			}
			want[i] = ballots.AnswerClaimed{Slot: slot, Full: full, OK: ok}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []ballots.AnswerClaimed
	if err := all.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		got, err = ballots.ClaimAnswers(ctx, tx, claims)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := range claims {
		if got[i] != want[i] {
			t.Errorf("claim %d (%s %s): got %+v, one by one %+v", i, claims[i].Sender, claims[i].Reason, got[i], want[i])
		}
	}
	// The table covers each way a claim goes.
	var oks, seconds, none, fulls int
	for _, w := range want {
		switch {
		case w.OK && strings.Contains(w.Slot, "#"):
			seconds++
		case w.OK:
			oks++
		case w.Full != (ballots.AnswerCap{}):
			fulls++
		default:
			none++
		}
	}
	if oks < 3 || seconds < 2 || none < 1 || fulls < 3 {
		t.Errorf("the claims do not cover every case: %d first slots, %d later slots, %d without a slot, %d over a cap", oks, seconds, none, fulls)
	}
	if a, b := state(one), state(all); a != b {
		t.Errorf("slots and counts differ:\nClaimAnswers:\n%s\none by one:\n%s", b, a)
	}
}
