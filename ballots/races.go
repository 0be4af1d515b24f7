package ballots

import (
	"context"
	"fmt"
	"time"

	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/templates"
	"github.com/jmoiron/sqlx"
)

// Race status values.
const (
	RaceDraft  = "draft"
	RaceOpen   = "open"
	RaceClosed = "closed"
)

// Race is one race of a wave.
type Race struct {
	ID          int64       `db:"id" json:"-"`
	Code        string      `db:"code" json:"race"`
	Office      race.Office `db:"office" json:"office"`
	State       string      `db:"state" json:"state"`
	District    string      `db:"district" json:"district,omitempty"`
	Status      string      `db:"status" json:"status"`
	Wave        string      `db:"wave" json:"wave"`
	VotingOpen  time.Time   `db:"voting_open" json:"voting_open"`
	VotingClose time.Time   `db:"voting_close" json:"voting_close"`
	Threshold   float64     `db:"threshold" json:"threshold"`
	MinTurnout  float64     `db:"min_turnout" json:"min_turnout"`
	OpenedAt    *time.Time  `db:"opened_at" json:"opened_at,omitempty"`
	// Opening says the race is open but its open has not finished: some
	// members' ballots are still to be made (OpenRaceProgress).
	Opening     bool       `db:"opening" json:"opening,omitempty"`
	ClosedAt    *time.Time `db:"closed_at" json:"closed_at,omitempty"`
	Candidates  int        `db:"candidates" json:"candidates"`
	Ballots     int        `db:"ballots" json:"ballots"`
	Voted       int        `db:"voted" json:"voted"`
	HoldResults bool       `db:"hold_results" json:"hold_results"`
	ReleasedAt  *time.Time `db:"released_at" json:"released_at,omitempty"`
}

// raceBaseColumns are a race's columns without its counts of ballots
// and voters, which read every ballot of the race: what the steps that
// act on a race (open, close, tally, release, the scheduler) select.
const raceBaseColumns = `r.id, r.code, r.office, r.state, r.district, r.status, w.name AS wave,
	w.voting_open, w.voting_close, w.threshold::float8 AS threshold, w.min_turnout::float8 AS min_turnout,
	r.opened_at, r.closed_at, w.hold_results, r.released_at,
	r.status = 'open' AND NOT EXISTS (SELECT 1 FROM race_steps s WHERE s.race_id = r.id AND s.step = 'open') AS opening,
	(SELECT count(*) FROM candidates c WHERE c.race_id = r.id AND ` + onBallot + `) AS candidates`

// raceColumns are raceBaseColumns with the counts (Race.Ballots and
// Race.Voted): what the listings show.
const raceColumns = raceBaseColumns + `,
	(SELECT count(*) FROM ballots b WHERE b.race_id = r.id) AS ballots,
	(SELECT count(*) FROM standing_votes s WHERE s.race_id = r.id) AS voted`

// Races lists every race with its counts, by wave then code.
func (s *Store) Races(ctx context.Context) ([]Race, error) {
	var rs []Race
	err := s.db.SelectContext(ctx, &rs, `SELECT `+raceColumns+` FROM races r JOIN waves w ON w.id = r.wave_id
		ORDER BY w.voting_open DESC, r.code`)
	if err != nil {
		return nil, fmt.Errorf("list races: %w", err)
	}
	return rs, nil
}

// raceByCode finds the race with code in the latest wave that has one,
// locking it as lock says ("", "FOR SHARE", "FOR UPDATE"), without its
// counts (raceBaseColumns).
func raceByCode(ctx context.Context, q sqlx.QueryerContext, code, lock string) (Race, error) {
	return raceByCodeWith(ctx, q, raceBaseColumns, code, lock)
}

func raceByCodeWith(ctx context.Context, q sqlx.QueryerContext, columns, code, lock string) (Race, error) {
	rc, err := race.Parse(code)
	if err != nil {
		return Race{}, err
	}
	var r Race
	err = sqlx.GetContext(ctx, q, &r, `SELECT `+columns+` FROM races r JOIN waves w ON w.id = r.wave_id
		WHERE r.code = $1 ORDER BY w.voting_open DESC LIMIT 1 `+lock, rc.Code)
	if err != nil {
		return r, notFound(err, "race "+rc.Code)
	}
	return r, nil
}

// Race returns the race with code in the latest wave that has one, with
// its counts.
func (s *Store) Race(ctx context.Context, code string) (Race, error) {
	return raceByCodeWith(ctx, s.db, raceColumns, code, "")
}

const candidateSelect = `SELECT c.id, c.race_id, r.code AS race, c.name, c.bio, c.status, c.number,
	ARRAY(SELECT g.name FROM candidate_groups cg JOIN groups g ON g.id = cg.group_id
	      WHERE cg.candidate_id = c.id ORDER BY g.name) AS groups
	FROM candidates c JOIN races r ON r.id = c.race_id`

// OpenRace opens the race with code: it fixes the candidates' ballot
// numbers, creates one ballot per eligible active member (House: same
// district; Senate and governor: same state) and enqueues each ballot. It
// returns the number of ballots created.
func (s *Store) OpenRace(ctx context.Context, code string) (int, error) {
	return s.OpenRaceProgress(ctx, code, nil)
}

// OpenProgress is told how far a race open has got: the ballots created
// (and committed) so far and the share of the member table read, 0 to 1.
type OpenProgress func(ballots int, read float64)

// OpenRaceProgress is OpenRace calling progress, when set, after each
// chunk of members.
//
// The open commits as it goes, so that the first ballots are on their way
// while the rest are made: the first transaction opens the race and makes
// the first chunk; each chunk's ballots and their outbox rows commit
// together, in the members' id order, and wake the outbox (NOTIFY
// OutboxChannel); the last records the open step. A race whose status is
// open but whose open step is not recorded is still opening
// (Race.Opening): an open that stopped (a crash, a cancel) is resumed by
// opening it again, here or by the scheduler, from the last member that
// has a ballot, so no member gets two ballots and none is skipped. One
// process opens a race at a time: another gets ErrOpening.
func (s *Store) OpenRaceProgress(ctx context.Context, code string, progress OpenProgress) (int, error) {
	r, err := raceByCode(ctx, s.db, code, "")
	if err != nil {
		return 0, err
	}
	return s.openRace(ctx, r.ID, r.Code, ActorManual, progress)
}

// OutboxChannel is the PostgreSQL notification channel on which a race
// open announces each chunk of ballots it commits (ListenOutbox).
const OutboxChannel = "ballotd_outbox"

// Chunk sizes of a race open: the first is small so the outbox starts
// sending within milliseconds; each next one doubles, up to openChunk,
// which costs about 0.2 s of the database, so a vote waiting on the race's
// row lock waits no longer than that.
const (
	openFirstChunk = 500
	openChunk      = 5000
)

// openRace opens race id (code, for messages), or resumes its open,
// recording the step as done by actor (see OpenRaceProgress). It returns
// the ballots it created.
func (s *Store) openRace(ctx context.Context, id int64, code, actor string, progress OpenProgress) (int, error) {
	// One opener at a time: a second (the scheduler while `race open`
	// runs, or another replica) would only read the same members again.
	// The lock is its session's, so an opener that dies frees it.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("open race %s: %w", code, err)
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, $2)`, openLock, int32(id)).Scan(&got); err != nil {
		return 0, fmt.Errorf("open race %s: %w", code, err)
	}
	if !got {
		return 0, fmt.Errorf("open race %s: %w", code, ErrOpening)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2)`, openLock, int32(id))
	return s.openChunks(ctx, id, actor, progress)
}

// openLock is the first key of the advisory lock an opener of a race holds
// (the second is the race's id): "open".
const openLock = 0x6f70656e

// openChunks is openRace under its lock.
func (s *Store) openChunks(ctx context.Context, id int64, actor string, progress OpenProgress) (int, error) {
	var (
		r             Race
		after, lo, hi int64
		n             int
		done          bool
		chunk         = openFirstChunk
		first         = true
	)
	for !done {
		err := s.InTx(ctx, func(tx *sqlx.Tx) error {
			// FOR UPDATE: a vote (FOR SHARE) waits for the chunk, and a
			// second opener for the first. The race is read after the lock,
			// in a statement of its own, so that it is read as the holder
			// before left it (a statement that waited for a row lock sees
			// that row's new version but its subqueries, as Opening's,
			// still see the old).
			if _, err := tx.ExecContext(ctx, `SELECT 1 FROM races WHERE id = $1 FOR UPDATE`, id); err != nil {
				return fmt.Errorf("open race %d: lock: %w", id, err)
			}
			var err error
			if r, err = raceByID(ctx, tx, id, ""); err != nil {
				return err
			}
			if first {
				if err = startOpen(ctx, tx, r); err != nil {
					return err
				}
				if err := tx.QueryRowxContext(ctx, `SELECT coalesce((SELECT max(member_id) FROM ballots WHERE race_id = $1), 0),
					coalesce(min(id), 0), coalesce(max(id), 0) FROM members`, r.ID).Scan(&after, &lo, &hi); err != nil {
					return fmt.Errorf("open race %s: member ids: %w", r.Code, err)
				}
			} else if r.Status != RaceOpen || !r.Opening {
				// Finished by another opener, or closed: nothing left to do.
				done = true
				return nil
			}
			made, last, full, err := openChunkTx(ctx, tx, r, after, chunk)
			if err != nil {
				return err
			}
			n += made
			if last > after {
				after = last
			}
			if !full {
				done = true
				return recordRaceStep(ctx, tx, r.ID, StepOpen, actor)
			}
			return nil
		})
		if err != nil {
			if !first {
				err = fmt.Errorf("%w (the %d ballots made so far are kept and queued; open the race again to finish)", err, n)
			}
			return n, err
		}
		first = false
		chunk = min(2*chunk, openChunk)
		if progress != nil {
			read := 1.0
			if !done && hi > lo {
				read = min(1, float64(after-lo+1)/float64(hi-lo+1))
			}
			progress(n, read)
		}
	}
	return n, nil
}

// startOpen begins an open of r, locked FOR UPDATE in tx: a draft race
// becomes open with its candidates numbered; a race still opening is
// resumed. Any other race is in the wrong state.
func startOpen(ctx context.Context, tx *sqlx.Tx, r Race) error {
	if r.Status == RaceOpen && r.Opening {
		return nil
	}
	if r.Status != RaceDraft {
		return fmt.Errorf("open race %s: it is %s: %w", r.Code, r.Status, ErrRaceState)
	}
	if r.Candidates == 0 {
		return fmt.Errorf("open race %s: %w", r.Code, ErrCandidates)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE candidates c SET number = o.n
		FROM (SELECT c.id, row_number() OVER (ORDER BY c.id) AS n FROM candidates c WHERE c.race_id = $1 AND `+onBallot+`) o
		WHERE c.id = o.id`, r.ID); err != nil {
		return fmt.Errorf("open race %s: number candidates: %w", r.Code, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE races SET status = 'open', opened_at = now() WHERE id = $1`, r.ID); err != nil {
		return fmt.Errorf("open race %s: %w", r.Code, err)
	}
	return nil
}

// openChunkTx makes, in tx, the ballots of the next limit eligible active
// members of r after member id after (House: same district; Senate and
// governor: same state), and enqueues each, in one statement. It returns
// the ballots made, the last member id read, and whether limit members
// were read (more may follow). A member who has a ballot already (a
// concurrent opener's) is skipped: that ballot's outbox row committed with
// it. The outbox rows are plain inserts: each names a ballot the statement
// has just made, which no row can name yet (ON CONFLICT's speculative
// insertion cost 4–7 µs a ballot, a fifth of the open).
func openChunkTx(ctx context.Context, tx *sqlx.Tx, r Race, after int64, limit int) (made int, last int64, full bool, err error) {
	where, key := "state = $2", r.State
	if r.Office == race.House {
		where, key = "district = $2", r.District
	}
	var read int
	err = tx.QueryRowxContext(ctx, `WITH m AS MATERIALIZED (
			SELECT id, email FROM members WHERE status = 'active' AND `+where+` AND id > $3 ORDER BY id LIMIT $4
		), b AS (
			INSERT INTO ballots (race_id, member_id) SELECT $1, id FROM m ORDER BY id
			ON CONFLICT DO NOTHING RETURNING id, member_id
		), o AS (
			INSERT INTO outbox (kind, recipient, member_id, ballot_id, race_id)
			SELECT $5, m.email, m.id, b.id, $1 FROM b JOIN m ON m.id = b.member_id ORDER BY b.id
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM m), coalesce((SELECT max(id) FROM m), 0), (SELECT count(*) FROM o), pg_notify($6, '')`,
		r.ID, key, after, limit, templates.KindBallot, OutboxChannel).Scan(&read, &last, &made, new(string))
	if err != nil {
		return 0, 0, false, fmt.Errorf("open race %s: ballots after member %d: %w", r.Code, after, err)
	}
	return made, last, read == limit, nil
}

// CloseRace closes the race with code: no vote counts after it. It computes
// and freezes the tally and enqueues the announcement to every eligible
// member, in one transaction. When the wave holds its results, each staff
// address gets the held-results notice instead, as at a scheduled close.
func (s *Store) CloseRace(ctx context.Context, code string, staff ...string) (Tally, error) {
	var t Tally
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		// FOR UPDATE waits for every vote transaction holding the race FOR
		// SHARE: a vote either commits before the tally or sees the race closed.
		r, err := raceByCode(ctx, tx, code, "FOR UPDATE OF r")
		if err != nil {
			return err
		}
		if t, err = closeRace(ctx, tx, r, ActorManual); err != nil {
			return err
		}
		if r.HoldResults {
			_, err = enqueueHeld(ctx, tx, r, staff)
		}
		return err
	})
	return t, err
}

// closeRace closes r, locked FOR UPDATE in tx: the tally is frozen, the
// announcements to every eligible member and to the leaders of the
// nominating groups are enqueued, and the step is recorded as done by actor.
func closeRace(ctx context.Context, tx *sqlx.Tx, r Race, actor string) (Tally, error) {
	var t Tally
	if r.Status != RaceOpen {
		return t, fmt.Errorf("close race %s: it is %s: %w", r.Code, r.Status, ErrRaceState)
	}
	if r.Opening {
		return t, fmt.Errorf("close race %s: its open has not finished (open it again to finish it): %w", r.Code, ErrRaceState)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE races SET status = 'closed', closed_at = now() WHERE id = $1`, r.ID); err != nil {
		return t, fmt.Errorf("close race %s: %w", r.Code, err)
	}
	r.Status = RaceClosed
	t, err := countVotes(ctx, tx, r)
	if err != nil {
		return t, err
	}
	if err := freezeTally(ctx, tx, r.ID, t); err != nil {
		return t, err
	}
	if err := recordRaceStep(ctx, tx, r.ID, StepClose, actor); err != nil {
		return t, err
	}
	if r.HoldResults {
		return t, nil // announced on release (ReleaseResults)
	}
	return t, announce(ctx, tx, r)
}

// announce enqueues r's results to every eligible member and to the
// leaders of the nominating groups.
func announce(ctx context.Context, tx *sqlx.Tx, r Race) error {
	// Each member's row says whether they voted: the results thank only
	// those who did (one set-based statement, whatever the race's size).
	// The two payloads are made from their Go type, so the keys are its.
	voted, other := jsonOf(templates.AnnouncementMail{Voted: true}), jsonOf(templates.AnnouncementMail{})
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (kind, recipient, member_id, ballot_id, race_id, data)
		SELECT $2, m.email, m.id, b.id, b.race_id,
			CASE WHEN EXISTS (SELECT 1 FROM votes v WHERE v.ballot_id = b.id) THEN $3::jsonb ELSE $4::jsonb END
		FROM ballots b JOIN members m ON m.id = b.member_id
		WHERE b.race_id = $1 ORDER BY b.id ON CONFLICT DO NOTHING`, r.ID, templates.KindAnnouncement, voted, other); err != nil {
		return fmt.Errorf("race %s: enqueue announcements: %w", r.Code, err)
	}
	if err := enqueueLeaderAnnouncements(ctx, tx, r); err != nil {
		return fmt.Errorf("race %s: %w", r.Code, err)
	}
	return nil
}

// RaceSheet is everything a ballot or announcement shows about its race.
type RaceSheet struct {
	Race       Race
	Candidates []Candidate
	Tally      *Tally // set once the race has closed
	// Questionnaires counts the candidates on the ballot whose passed
	// policy questionnaire has answers to show (on the public page).
	Questionnaires int
}

// RaceSheet loads race id's sheet.
func (s *Store) RaceSheet(ctx context.Context, id int64) (RaceSheet, error) {
	var sh RaceSheet
	err := s.db.GetContext(ctx, &sh.Race, `SELECT `+raceBaseColumns+` FROM races r JOIN waves w ON w.id = r.wave_id WHERE r.id = $1`, id)
	if err != nil {
		return sh, notFound(err, fmt.Sprintf("race %d", id))
	}
	if sh.Candidates, err = approvedCandidates(ctx, s.db, id); err != nil {
		return sh, err
	}
	if err := s.db.GetContext(ctx, &sh.Questionnaires, `SELECT count(*) FROM candidates c JOIN questionnaires q ON q.candidate_id = c.id
		WHERE c.race_id = $1 AND `+onBallot+` AND c.questionnaire = 'passed' AND q.received_at IS NOT NULL`, id); err != nil {
		return sh, fmt.Errorf("race %d: questionnaires: %w", id, err)
	}
	if sh.Race.Status == RaceClosed {
		t, err := tallyOf(ctx, s.db, sh.Race)
		if err != nil {
			return sh, err
		}
		sh.Tally = &t
	}
	return sh, nil
}
