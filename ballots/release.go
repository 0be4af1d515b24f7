package ballots

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/templates"
)

// StepRelease is the step that sends held results.
const StepRelease = "release"

// ErrNotHeld is a release of results that were not held, or already out.
var ErrNotHeld = errors.New("results are not held")

// ReleaseResults sends the held results of the closed race with code: the
// announcements to its members and the nominating groups' leaders are
// enqueued and the release recorded, in one transaction. It returns the
// frozen tally.
func (s *Store) ReleaseResults(ctx context.Context, code string) (Tally, error) {
	var t Tally
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		t, err = ReleaseResultsTx(ctx, tx, code, ActorManual)
		return err
	})
	return t, err
}

// ReleaseResultsTx is ReleaseResults in the caller's transaction (a staff
// member's RELEASE reply is handled with the message that carries it),
// recording who released: ActorManual (the CLI) or ActorStaff (by email).
func ReleaseResultsTx(ctx context.Context, tx *sqlx.Tx, code, actor string) (Tally, error) {
	r, err := raceByCode(ctx, tx, code, "FOR UPDATE OF r")
	if err != nil {
		return Tally{}, err
	}
	switch {
	case r.Status != RaceClosed:
		return Tally{}, fmt.Errorf("release %s: it is %s; results are released after the close: %w", r.Code, r.Status, ErrRaceState)
	case !r.HoldResults:
		return Tally{}, fmt.Errorf("release %s: wave %s does not hold results; they went out at the close: %w", r.Code, r.Wave, ErrNotHeld)
	case r.ReleasedAt != nil:
		return Tally{}, fmt.Errorf("release %s: already released at %s: %w", r.Code, r.ReleasedAt.UTC().Format("2006-01-02 15:04 UTC"), ErrNotHeld)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE races SET released_at = now() WHERE id = $1`, r.ID); err != nil {
		return Tally{}, fmt.Errorf("release %s: %w", r.Code, err)
	}
	if err := announce(ctx, tx, r); err != nil {
		return Tally{}, err
	}
	if err := recordRaceStep(ctx, tx, r.ID, StepRelease, actor); err != nil {
		return Tally{}, err
	}
	return tallyOf(ctx, tx, Race{ID: r.ID, Code: r.Code, Status: RaceClosed})
}

// enqueueHeld tells each staff address that r's results are frozen and wait
// for their release.
func enqueueHeld(ctx context.Context, tx *sqlx.Tx, r Race, staff []string) (int, error) {
	for _, to := range staff {
		if _, err := Enqueue(ctx, tx, Mail{Recipient: to, RaceID: r.ID, Payload: templates.HeldMail{}}); err != nil {
			return 0, err
		}
	}
	return len(staff), nil
}
