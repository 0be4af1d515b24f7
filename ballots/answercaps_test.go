package ballots_test

import (
	"context"
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
