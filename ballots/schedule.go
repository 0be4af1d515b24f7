package ballots

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ballotd/ballotd/templates"
)

// Scheduled steps of a wave and its races. Each is recorded once, in the
// same transaction as its effect (wave_steps, race_steps).
const (
	StepNominationsClosed = "nominations-closed"
	StepOpen              = "open"
	StepRemind            = "remind"
	StepClose             = "close"
)

// Who did a race step.
const (
	ActorScheduler = "scheduler"
	ActorManual    = "manual"
	ActorStaff     = "staff" // a staff member's command by email
)

// recordRaceStep records step of race as done by actor. A step already
// recorded is an error: every caller has just checked the race's state
// under a row lock, so a second record means two actors raced.
func recordRaceStep(ctx context.Context, tx *sqlx.Tx, raceID int64, step, actor string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO race_steps (race_id, step, actor) VALUES ($1, $2, $3)`, raceID, step, actor)
	if err != nil {
		return fmt.Errorf("record step %s of race %d: %w", step, raceID, err)
	}
	return nil
}

// enqueueLeaderAnnouncements enqueues the results to the leaders of the
// groups that nominated the race's candidates, once per address; a leader
// who is also an eligible member already has their announcement. The
// leaders are few: each payload is built here, from its Go type.
func enqueueLeaderAnnouncements(ctx context.Context, tx *sqlx.Tx, r Race) error {
	var leaders []struct {
		Email    string         `db:"email"`
		Name     string         `db:"name"`
		LeaderOf pq.StringArray `db:"leader_of"`
	}
	err := tx.SelectContext(ctx, &leaders, `SELECT gl.email, coalesce(max(gl.name), '') AS name, array_agg(DISTINCT g.name ORDER BY g.name) AS leader_of
		FROM candidates c
		JOIN candidate_groups cg ON cg.candidate_id = c.id
		JOIN groups g ON g.id = cg.group_id
		JOIN group_leaders gl ON gl.group_id = g.id
		WHERE c.race_id = $1 AND `+onBallot+`
		  AND gl.email NOT IN (SELECT m.email FROM ballots b JOIN members m ON m.id = b.member_id WHERE b.race_id = $1)
		GROUP BY gl.email ORDER BY gl.email`, r.ID)
	if err != nil {
		return fmt.Errorf("enqueue announcements to group leaders: %w", err)
	}
	for _, l := range leaders {
		if _, err := Enqueue(ctx, tx, Mail{Recipient: l.Email, RaceID: r.ID,
			Payload: templates.AnnouncementMail{Name: l.Name, LeaderOf: l.LeaderOf}}); err != nil {
			return fmt.Errorf("enqueue announcements to group leaders: %w", err)
		}
	}
	return nil
}

func raceByID(ctx context.Context, q sqlx.QueryerContext, id int64, lock string) (Race, error) {
	var r Race
	err := sqlx.GetContext(ctx, q, &r, `SELECT `+raceBaseColumns+` FROM races r JOIN waves w ON w.id = r.wave_id WHERE r.id = $1 `+lock, id)
	if err != nil {
		return r, notFound(err, fmt.Sprintf("race %d", id))
	}
	return r, nil
}

// StepReport is what one pass of the scheduler did.
type StepReport struct {
	Vetting  []string // waves whose nominations closed (notice enqueued)
	Opened   []string // races opened
	Reminded []string // races whose non-voters were reminded
	Closed   []string // races closed, tallied and announced
	// Questionnaires is how many questionnaire reminders were enqueued.
	Questionnaires int
	Enqueued       int // messages enqueued
	Conflicts      int // steps another actor took first
}

// Any reports whether the pass did anything.
func (r StepReport) Any() bool {
	return len(r.Vetting)+len(r.Opened)+len(r.Reminded)+len(r.Closed)+r.Questionnaires > 0
}

// RunDueSteps takes every scheduled step whose time has come, by the
// database's clock, each in its own transaction with its record: nominations
// close (a vetting notice to staff), voting opens (a draft race with
// approved candidates opens), the reminder remindBefore the close but not
// before halfway through the voting (once, to members who have not voted), voting closes (tally frozen, announcements
// enqueued). A step someone else took first (a manual command, another
// replica) is skipped. Errors of one step do not stop the others; they are
// joined.
func (s *Store) RunDueSteps(ctx context.Context, staff []string, remindBefore time.Duration) (StepReport, error) {
	var rep StepReport
	var errs []error

	var waves []struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
		Over bool   `db:"over"`
	}
	if err := s.db.SelectContext(ctx, &waves, `SELECT id, name, voting_close <= now() AS over FROM waves w
		WHERE nominations_close <= now()
		  AND NOT EXISTS (SELECT 1 FROM wave_steps s WHERE s.wave_id = w.id AND s.step = $1) ORDER BY id`, StepNominationsClosed); err != nil {
		return rep, fmt.Errorf("scheduler: due waves: %w", err)
	}
	for _, w := range waves {
		n, err := s.closeNominations(ctx, w.ID, !w.Over, staff)
		switch {
		case errors.Is(err, errTaken):
			rep.Conflicts++
		case err != nil:
			errs = append(errs, fmt.Errorf("wave %s: close nominations: %w", w.Name, err))
		default:
			rep.Vetting = append(rep.Vetting, w.Name)
			rep.Enqueued += n
		}
	}

	// The one reminder of each questionnaire not answered, remindBefore
	// its deadline (issue 20).
	if remindBefore > 0 {
		n, err := s.remindQuestionnaires(ctx, remindBefore)
		if err != nil {
			errs = append(errs, err)
		}
		rep.Questionnaires += n
		rep.Enqueued += n
	}

	type due struct {
		ID   int64  `db:"id"`
		Code string `db:"code"`
		Step string `db:"step"`
	}
	var races []due
	if err := s.db.SelectContext(ctx, &races, `
		SELECT r.id, r.code, CASE
			WHEN r.status = 'draft' OR NOT EXISTS (SELECT 1 FROM race_steps s WHERE s.race_id = r.id AND s.step = 'open') THEN 'open'
			WHEN w.voting_close <= now() THEN 'close'
			ELSE 'remind' END AS step
		FROM races r JOIN waves w ON w.id = r.wave_id
		WHERE (r.status = 'draft' AND w.voting_open <= now() AND w.voting_close > now()
		       AND EXISTS (SELECT 1 FROM candidates c WHERE c.race_id = r.id AND `+onBallot+`))
		   OR (r.status = 'open' AND NOT EXISTS (SELECT 1 FROM race_steps s WHERE s.race_id = r.id AND s.step = 'open'))
		   OR (r.status = 'open' AND w.voting_close <= now())
		   OR (r.status = 'open' AND `+remindAt+` <= now()
		       AND NOT EXISTS (SELECT 1 FROM race_steps s WHERE s.race_id = r.id AND s.step = 'remind'))
		ORDER BY w.voting_close, r.code`, remindBefore.Milliseconds()); err != nil {
		return rep, fmt.Errorf("scheduler: due races: %w", err)
	}
	for _, d := range races {
		var n int
		var err error
		if d.Step == StepOpen {
			// An open commits chunk by chunk (openRace), outside a
			// transaction of this loop; one that another replica finished
			// since the look was taken, or that an opener is working on
			// now (a `race open`, another replica), is theirs.
			if n, err = s.openRace(ctx, d.ID, d.Code, ActorScheduler, nil); errors.Is(err, ErrRaceState) || errors.Is(err, ErrOpening) {
				err = errTaken
			}
		} else {
			n, err = s.raceStep(ctx, d.ID, d.Step, staff)
		}
		switch {
		case errors.Is(err, errTaken):
			rep.Conflicts++
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("race %s: %s: %w", d.Code, d.Step, err))
			continue
		}
		rep.Enqueued += n
		switch d.Step {
		case StepOpen:
			rep.Opened = append(rep.Opened, d.Code)
		case StepRemind:
			rep.Reminded = append(rep.Reminded, d.Code)
		case StepClose:
			rep.Closed = append(rep.Closed, d.Code)
		}
	}
	return rep, errors.Join(errs...)
}

// raceStep takes the remind or close step of race id in one transaction
// and returns the mail it enqueued; errTaken when someone took it first.
func (s *Store) raceStep(ctx context.Context, id int64, step string, staff []string) (int, error) {
	var n int
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		r, err := raceByID(ctx, tx, id, "FOR UPDATE OF r")
		if err != nil {
			return err
		}
		if r.Status != RaceOpen || r.Opening {
			return errTaken
		}
		if step == StepRemind {
			n, err = remind(ctx, tx, r, ActorScheduler)
			return err
		}
		if _, err = closeRace(ctx, tx, r, ActorScheduler); err != nil {
			return err
		}
		if r.HoldResults {
			n, err = enqueueHeld(ctx, tx, r, staff)
			return err
		}
		n, err = countQueued(ctx, tx, r.ID, templates.KindAnnouncement, nil)
		return err
	})
	return n, err
}

// remindAt is the SQL time of race r's reminder (wave w; lead time $1 in
// milliseconds): the lead time before the close, but no earlier than
// halfway through the voting, so a short vote does not get its reminder on
// the heels of its ballot.
const remindAt = `GREATEST(w.voting_close - $1 * interval '1 millisecond', r.opened_at + (w.voting_close - r.opened_at) / 2)`

// RemindAt is the Go twin of remindAt.
func RemindAt(opened, close time.Time, lead time.Duration) time.Time {
	at := close.Add(-lead)
	if mid := opened.Add(close.Sub(opened) / 2); mid.After(at) {
		return mid
	}
	return at
}

// errTaken is a step someone else took between the look and the lock.
var errTaken = errors.New("step already taken")

func countQueued(ctx context.Context, tx *sqlx.Tx, raceID int64, kind templates.Kind, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM outbox WHERE race_id = $1 AND kind = $2`, raceID, kind); err != nil {
		return 0, fmt.Errorf("count %s mail: %w", kind, err)
	}
	return n, nil
}

// RemindRace sends the race's one reminder now, to each active member who
// has not voted, as the scheduler does when its time comes; it is recorded
// as the race's reminder step, so the scheduler does not send another. The
// demo uses it to show a reminder without waiting half the vote. A race
// that is not open is ErrRaceState; one already reminded, ErrReminded.
func (s *Store) RemindRace(ctx context.Context, code string) (int, error) {
	var n int
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		r, err := raceByCode(ctx, tx, code, "FOR UPDATE OF r")
		if err != nil {
			return err
		}
		if r.Status != RaceOpen {
			return fmt.Errorf("race %s is %s: %w", r.Code, r.Status, ErrRaceState)
		}
		n, err = remind(ctx, tx, r, ActorManual)
		if errors.Is(err, errTaken) {
			return fmt.Errorf("race %s: %w", r.Code, ErrReminded)
		}
		return err
	})
	return n, err
}

// ErrReminded is a reminder asked for a race whose members were already
// reminded.
var ErrReminded = errors.New("reminder already sent")

// remind enqueues one reminder to each active member of r, locked FOR
// UPDATE in tx, who has not voted, and records the step as done by actor.
func remind(ctx context.Context, tx *sqlx.Tx, r Race, actor string) (int, error) {
	var done bool
	if err := tx.GetContext(ctx, &done, `SELECT EXISTS (SELECT 1 FROM race_steps WHERE race_id = $1 AND step = $2)`, r.ID, StepRemind); err != nil {
		return 0, fmt.Errorf("reminder: %w", err)
	}
	if done {
		return 0, errTaken
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (kind, recipient, member_id, ballot_id, race_id)
		SELECT $2, m.email, m.id, b.id, b.race_id FROM ballots b JOIN members m ON m.id = b.member_id
		WHERE b.race_id = $1 AND m.status = 'active' AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.ballot_id = b.id)
		ORDER BY b.id ON CONFLICT DO NOTHING`, r.ID, templates.ReminderMail{}.Kind())
	if err != nil {
		return 0, fmt.Errorf("enqueue reminders: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), recordRaceStep(ctx, tx, r.ID, StepRemind, actor)
}

// closeNominations records that wave id's nominations have closed and, if
// notify, enqueues the vetting notice to each staff address: every race of
// the wave with its nominated and approved candidates.
func (s *Store) closeNominations(ctx context.Context, waveID int64, notify bool, staff []string) (int, error) {
	var n int
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		var inserted int64
		err := tx.GetContext(ctx, &inserted, `INSERT INTO wave_steps (wave_id, step) VALUES ($1, $2)
			ON CONFLICT DO NOTHING RETURNING wave_id`, waveID, StepNominationsClosed)
		if errors.Is(err, sql.ErrNoRows) {
			return errTaken
		}
		if err != nil {
			return fmt.Errorf("record step: %w", err)
		}
		if !notify || len(staff) == 0 {
			return nil
		}
		var v templates.Vetting
		if err := tx.QueryRowxContext(ctx, `SELECT name, voting_open FROM waves WHERE id = $1`, waveID).Scan(&v.Wave, &v.VotingOpen); err != nil {
			return fmt.Errorf("wave %d: %w", waveID, err)
		}
		var cs []Candidate
		if err := tx.SelectContext(ctx, &cs, candidateSelect+` WHERE r.wave_id = $1 AND c.status IN ('nominated', 'approved')
			ORDER BY r.code, c.id`, waveID); err != nil {
			return fmt.Errorf("candidates: %w", err)
		}
		for _, c := range cs {
			if len(v.Races) == 0 || v.Races[len(v.Races)-1].Code != c.Race {
				v.Races = append(v.Races, templates.VettingRace{Code: c.Race})
			}
			last := &v.Races[len(v.Races)-1]
			last.Candidates = append(last.Candidates, templates.VettingCandidate{ID: c.ID, Race: c.Race, Name: c.Name, Status: c.Status, Groups: c.Groups})
		}
		for _, to := range staff {
			if _, err := Enqueue(ctx, tx, Mail{Recipient: to, Payload: v}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// RacePhase is a race with where it stands in its wave's schedule.
type RacePhase struct {
	Race
	NominationsClose time.Time  `json:"nominations_close"`
	Phase            string     `json:"phase"`               // nominations, vetting, voting, closed, not-opened
	NextStep         string     `json:"next_step,omitempty"` // close-nominations, open, remind, close
	NextAt           *time.Time `json:"next_at,omitempty"`
	Steps            []string   `json:"steps"` // steps done, "open by scheduler at …"
}

// RacePhases lists every race (as Races does) with its phase and next
// scheduled step, given the reminder's lead time.
func (s *Store) RacePhases(ctx context.Context, remindBefore time.Duration) ([]RacePhase, error) {
	rs, err := s.Races(ctx)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		Code      string         `db:"code"`
		Wave      string         `db:"wave"`
		NomClose  time.Time      `db:"nominations_close"`
		NomClosed bool           `db:"nom_closed"`
		Now       time.Time      `db:"now"`
		Steps     pq.StringArray `db:"steps"`
	}
	err = s.db.SelectContext(ctx, &rows, `SELECT r.code, w.name AS wave, w.nominations_close,
		EXISTS (SELECT 1 FROM wave_steps ws WHERE ws.wave_id = w.id AND ws.step = 'nominations-closed') AS nom_closed, now() AS now,
		ARRAY(SELECT s.step || ' by ' || s.actor || ' at ' || to_char(s.done_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
		      FROM race_steps s WHERE s.race_id = r.id ORDER BY s.done_at) AS steps
		FROM races r JOIN waves w ON w.id = r.wave_id`)
	if err != nil {
		return nil, fmt.Errorf("race phases: %w", err)
	}
	type key struct{ wave, code string }
	extra := map[key]int{}
	for i, row := range rows {
		extra[key{row.Wave, row.Code}] = i
	}
	out := make([]RacePhase, 0, len(rs))
	for _, r := range rs {
		row := rows[extra[key{r.Wave, r.Code}]]
		p := RacePhase{Race: r, NominationsClose: row.NomClose, Steps: []string(row.Steps)}
		if p.Steps == nil {
			p.Steps = []string{}
		}
		now := row.Now
		at := func(step string, t time.Time) { p.NextStep, p.NextAt = step, &t }
		reminded := false
		for _, s := range row.Steps {
			if len(s) >= len(StepRemind) && s[:len(StepRemind)] == StepRemind {
				reminded = true
			}
		}
		switch r.Status {
		case RaceDraft:
			switch {
			case !r.VotingClose.After(now):
				p.Phase = "not-opened"
			case now.Before(row.NomClose) || !row.NomClosed:
				p.Phase = "nominations"
				at("close-nominations", row.NomClose)
			default:
				p.Phase = "vetting"
				at(StepOpen, r.VotingOpen)
			}
		case RaceOpen:
			p.Phase = "voting"
			opened := r.VotingOpen
			if r.OpenedAt != nil {
				opened = *r.OpenedAt
			}
			if remindAt := RemindAt(opened, r.VotingClose, remindBefore); !reminded && remindAt.After(now) {
				at(StepRemind, remindAt)
			} else {
				at(StepClose, r.VotingClose)
			}
		default:
			p.Phase = "closed"
			if r.HoldResults && r.ReleasedAt == nil {
				p.Phase = "held"
				p.NextStep = "release (staff: ballotd results release " + r.Code + ")"
			}
		}
		out = append(out, p)
	}
	return out, nil
}
