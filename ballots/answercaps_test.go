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
