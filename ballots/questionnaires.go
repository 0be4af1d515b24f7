package ballots

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/templates"
)

// The policy questionnaire (issue 20): one per candidate, sent to the
// campaign email, answered by reply, reviewed by staff.

// Questionnaire is a candidate's questionnaire as kept.
type Questionnaire struct {
	CandidateID int64               `json:"candidate_id"`
	Candidate   string              `json:"candidate"`
	Race        string              `json:"race"`
	RaceStatus  string              `json:"-"`
	Status      string              `json:"status"` // the candidate's questionnaire status: none, received, passed, failed
	Vetting     string              `json:"vetting"`
	Groups      []string            `json:"groups"`
	Email       string              `json:"email"`
	Questions   []string            `json:"questions"`
	Deadline    time.Time           `json:"deadline"`
	SentAt      time.Time           `json:"sent_at"`
	RemindedAt  *time.Time          `json:"reminded_at,omitempty"`
	ReceivedAt  *time.Time          `json:"received_at,omitempty"`
	Replies     int                 `json:"replies"`
	Answers     []templates.QAnswer `json:"answers"`
	Unread      []int               `json:"unread"`
	Attachments []string            `json:"attachments"`
	Reason      string              `json:"reason,omitempty"` // staff's reason for a failed questionnaire
}

// questionnaireRow is the SQL of a Questionnaire.
type questionnaireRow struct {
	CandidateID int64          `db:"candidate_id"`
	Candidate   string         `db:"candidate"`
	Race        string         `db:"race"`
	RaceStatus  string         `db:"race_status"`
	Status      string         `db:"questionnaire"`
	Vetting     string         `db:"vetting"`
	Groups      pq.StringArray `db:"groups"`
	Email       string         `db:"email"`
	Questions   string         `db:"questions"`
	Deadline    time.Time      `db:"deadline"`
	SentAt      time.Time      `db:"sent_at"`
	RemindedAt  *time.Time     `db:"reminded_at"`
	ReceivedAt  *time.Time     `db:"received_at"`
	Replies     int            `db:"replies"`
	Answers     string         `db:"answers"`
	Unread      pq.Int64Array  `db:"unread"`
	Attachments pq.StringArray `db:"attachments"`
	Reason      string         `db:"review_reason"`
}

const questionnaireSelect = `SELECT q.candidate_id, c.name AS candidate, r.code AS race, r.status AS race_status, c.questionnaire,
	c.status AS vetting,
	ARRAY(SELECT g.name FROM candidate_groups cg JOIN groups g ON g.id = cg.group_id WHERE cg.candidate_id = c.id ORDER BY g.name) AS groups,
	q.email, q.questions, q.deadline, q.sent_at, q.reminded_at, q.received_at, q.replies, q.answers::text AS answers, q.unread, q.attachments,
	q.review_reason
	FROM questionnaires q JOIN candidates c ON c.id = q.candidate_id JOIN races r ON r.id = c.race_id`

func (row questionnaireRow) questionnaire() (Questionnaire, error) {
	q := Questionnaire{CandidateID: row.CandidateID, Candidate: row.Candidate, Race: row.Race, RaceStatus: row.RaceStatus,
		Status: row.Status, Vetting: row.Vetting, Groups: row.Groups, Email: row.Email, Deadline: row.Deadline, SentAt: row.SentAt,
		RemindedAt: row.RemindedAt, ReceivedAt: row.ReceivedAt, Replies: row.Replies, Attachments: row.Attachments, Reason: row.Reason,
		Unread: []int{}, Answers: []templates.QAnswer{}}
	if q.Groups == nil {
		q.Groups = []string{}
	}
	if q.Attachments == nil {
		q.Attachments = []string{}
	}
	for _, n := range row.Unread {
		q.Unread = append(q.Unread, int(n))
	}
	if err := json.Unmarshal([]byte(row.Questions), &q.Questions); err != nil {
		return q, fmt.Errorf("questionnaire of candidate %d: questions: %w", row.CandidateID, err)
	}
	if err := json.Unmarshal([]byte(row.Answers), &q.Answers); err != nil {
		return q, fmt.Errorf("questionnaire of candidate %d: answers: %w", row.CandidateID, err)
	}
	return q, nil
}

// QuestionnaireOf returns candidate id's questionnaire; ErrNotFound when
// none was sent.
func QuestionnaireOf(ctx context.Context, q sqlx.QueryerContext, id int64) (Questionnaire, error) {
	var row questionnaireRow
	if err := sqlx.GetContext(ctx, q, &row, questionnaireSelect+` WHERE q.candidate_id = $1`, id); err != nil {
		return Questionnaire{}, notFound(err, fmt.Sprintf("questionnaire of candidate %d", id))
	}
	return row.questionnaire()
}

// Questionnaire returns candidate id's questionnaire (see QuestionnaireOf).
func (s *Store) Questionnaire(ctx context.Context, id int64) (Questionnaire, error) {
	return QuestionnaireOf(ctx, s.db, id)
}

// mail is the questionnaire's mail to the campaign.
func (q Questionnaire) mail(reminder bool) (Mail, error) {
	rc, err := race.Parse(q.Race)
	if err != nil {
		return Mail{}, err
	}
	return Mail{Recipient: q.Email, Payload: templates.QuestionnaireMail{CandidateID: q.CandidateID, Candidate: q.Candidate, Race: q.Race,
		RaceTitle: rc.Office.Title(), Groups: q.Groups, Questions: q.Questions, Deadline: q.Deadline, Reminder: reminder}}, nil
}

// SendQuestionnaire records and enqueues in tx the questionnaire of
// candidate id to email, with questions, due when the candidate's wave
// closes its nominations. A candidate gets one questionnaire: when one
// was sent already, nothing is done and sent is false.
func SendQuestionnaire(ctx context.Context, tx *sqlx.Tx, id, inboundID int64, email string, questions []string) (sent bool, err error) {
	qs, err := json.Marshal(questions)
	if err != nil {
		return false, fmt.Errorf("questionnaire of candidate %d: %w", id, err)
	}
	var got int64
	err = tx.GetContext(ctx, &got, `INSERT INTO questionnaires (candidate_id, email, questions, deadline)
		SELECT c.id, $2, $3, w.nominations_close FROM candidates c JOIN races r ON r.id = c.race_id JOIN waves w ON w.id = r.wave_id
		WHERE c.id = $1
		ON CONFLICT (candidate_id) DO NOTHING RETURNING candidate_id`, id, email, string(qs))
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("questionnaire of candidate %d: %w", id, err)
	}
	q, err := QuestionnaireOf(ctx, tx, id)
	if err != nil {
		return false, err
	}
	m, err := q.mail(false)
	if err != nil {
		return false, err
	}
	m.InboundID = inboundID
	if _, err := Enqueue(ctx, tx, m); err != nil {
		return false, fmt.Errorf("questionnaire of candidate %d: %w", id, err)
	}
	return true, nil
}

// questionnaireRemindAt is the SQL time of a questionnaire's reminder
// (lead time $1 in milliseconds): lead before the deadline, but not
// before halfway between sending and the deadline.
const questionnaireRemindAt = `GREATEST(q.deadline - $1 * interval '1 millisecond', q.sent_at + (q.deadline - q.sent_at) / 2)`

// remindQuestionnaires sends the one reminder of every questionnaire not
// answered whose reminder time has come and whose deadline has not
// passed, and returns how many it enqueued.
func (s *Store) remindQuestionnaires(ctx context.Context, lead time.Duration) (int, error) {
	n := 0
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		var ids []int64
		if err := tx.SelectContext(ctx, &ids, `UPDATE questionnaires SET reminded_at = now() WHERE candidate_id IN (
			SELECT q.candidate_id FROM questionnaires q JOIN candidates c ON c.id = q.candidate_id
			WHERE q.received_at IS NULL AND q.reminded_at IS NULL AND q.deadline > now() AND `+questionnaireRemindAt+` <= now()
			  AND c.status IN ('nominated', 'approved')
			ORDER BY q.deadline, q.candidate_id LIMIT 1000 FOR UPDATE OF q SKIP LOCKED)
			RETURNING candidate_id`, lead.Milliseconds()); err != nil {
			return fmt.Errorf("questionnaire reminders: %w", err)
		}
		for _, id := range ids {
			q, err := QuestionnaireOf(ctx, tx, id)
			if err != nil {
				return err
			}
			m, err := q.mail(true)
			if err != nil {
				return err
			}
			if _, err := Enqueue(ctx, tx, m); err != nil {
				return fmt.Errorf("questionnaire reminder to candidate %d: %w", id, err)
			}
			n++
		}
		return nil
	})
	return n, err
}

// QuestionnaireReply is a campaign's reply to the questionnaire, as read.
type QuestionnaireReply struct {
	CandidateID int64
	InboundID   int64
	Answers     []templates.QAnswer
	Unread      []int
	Attachments []string
}

// ErrQuestionnaireClosed means the candidate's race has opened (or the
// candidate is out): answers are no longer taken.
var ErrQuestionnaireClosed = errors.New("questionnaire closed")

// RecordQuestionnaireReply keeps r in tx, replacing an earlier reply, and
// marks the candidate's questionnaire received (to be reviewed again if
// staff had reviewed an earlier reply). It returns the questionnaire as
// it was before (Replies > 0: this reply replaces one).
func RecordQuestionnaireReply(ctx context.Context, tx *sqlx.Tx, r QuestionnaireReply) (Questionnaire, error) {
	var row questionnaireRow
	if err := tx.GetContext(ctx, &row, questionnaireSelect+` WHERE q.candidate_id = $1 FOR UPDATE OF q, c`, r.CandidateID); err != nil {
		return Questionnaire{}, notFound(err, fmt.Sprintf("questionnaire of candidate %d", r.CandidateID))
	}
	before, err := row.questionnaire()
	if err != nil {
		return before, err
	}
	if before.RaceStatus != RaceDraft || !live(before.Vetting) {
		return before, fmt.Errorf("candidate %d: race %s is %s, candidate %s: %w", r.CandidateID, before.Race, before.RaceStatus, before.Vetting, ErrQuestionnaireClosed)
	}
	answers, err := json.Marshal(nonNil(r.Answers))
	if err != nil {
		return before, fmt.Errorf("questionnaire of candidate %d: %w", r.CandidateID, err)
	}
	unread := make(pq.Int64Array, len(r.Unread))
	for i, n := range r.Unread {
		unread[i] = int64(n)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE questionnaires SET received_at = now(), replies = replies + 1, inbound_id = $2,
		answers = $3::jsonb, unread = $4, attachments = $5, reviewed_by = '', review_reason = '' WHERE candidate_id = $1`,
		r.CandidateID, nullID(r.InboundID), string(answers), unread, pq.StringArray(nonNil(r.Attachments))); err != nil {
		return before, fmt.Errorf("questionnaire of candidate %d: %w", r.CandidateID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE candidates SET questionnaire = 'received' WHERE id = $1`, r.CandidateID); err != nil {
		return before, fmt.Errorf("questionnaire of candidate %d: %w", r.CandidateID, err)
	}
	return before, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ReviewQuestionnaire records staff's review of candidate id's
// questionnaire in tx: passed, or failed with reason. Only a candidate
// of a race that has not opened can be reviewed.
func ReviewQuestionnaire(ctx context.Context, tx *sqlx.Tx, id int64, pass bool, reason, by string) (Vetting, error) {
	var raceStatus string
	err := tx.QueryRowxContext(ctx, `SELECT r.status FROM candidates c JOIN races r ON r.id = c.race_id WHERE c.id = $1 FOR UPDATE OF c`, id).Scan(&raceStatus)
	if errors.Is(err, sql.ErrNoRows) {
		return Vetting{}, fmt.Errorf("candidate %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Vetting{}, fmt.Errorf("questionnaire of candidate %d: %w", id, err)
	}
	if raceStatus != RaceDraft {
		return Vetting{}, fmt.Errorf("candidate %d: the race is %s already: %w", id, raceStatus, ErrVet)
	}
	status := "failed"
	if pass {
		status = "passed"
	}
	if err := setQuestionnaire(ctx, tx, id, status); err != nil {
		return Vetting{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE questionnaires SET reviewed_by = $2, review_reason = $3 WHERE candidate_id = $1`, id, by, reason); err != nil {
		return Vetting{}, fmt.Errorf("questionnaire of candidate %d: %w", id, err)
	}
	return vettingByID(ctx, tx, id)
}

// setQuestionnaire sets candidate id's questionnaire status in tx; a
// questionnaire that passes now (it had not) is shared with the group
// leaders of the race's state or district.
func setQuestionnaire(ctx context.Context, tx *sqlx.Tx, id int64, status string) error {
	var was, raceStatus string
	err := tx.QueryRowxContext(ctx, `SELECT c.questionnaire, r.status FROM candidates c JOIN races r ON r.id = c.race_id
		WHERE c.id = $1 FOR UPDATE OF c`, id).Scan(&was, &raceStatus)
	if err != nil {
		return notFound(err, fmt.Sprintf("candidate %d", id))
	}
	// Who is on an open race's ballot is settled: a questionnaire changed
	// now would change the tally's candidates.
	if raceStatus != RaceDraft && was != status {
		return fmt.Errorf("candidate %d: the race is %s already: %w", id, raceStatus, ErrVet)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE candidates SET questionnaire = $2 WHERE id = $1`, id, status); err != nil {
		return fmt.Errorf("questionnaire of candidate %d: %w", id, err)
	}
	if status != "passed" || was == "passed" {
		return nil
	}
	_, err = shareQuestionnaire(ctx, tx, id)
	return err
}

// shareQuestionnaire enqueues candidate id's answers to every leader of a
// group in the race's district (House) or state (Senate, governor), and
// returns how many. A candidate whose campaign never answered (passed by
// hand) has nothing to share.
func shareQuestionnaire(ctx context.Context, tx *sqlx.Tx, id int64) (int, error) {
	q, err := QuestionnaireOf(ctx, tx, id)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if q.ReceivedAt == nil {
		return 0, nil
	}
	rc, err := race.Parse(q.Race)
	if err != nil {
		return 0, err
	}
	where, key := "g.state = $1", rc.State
	if rc.Office == race.House {
		where, key = "g.district = $1", rc.District
	}
	var leaders []struct {
		Email string `db:"email"`
		Name  string `db:"name"`
	}
	if err := tx.SelectContext(ctx, &leaders, `SELECT gl.email, coalesce(max(gl.name), '') AS name
		FROM groups g JOIN group_leaders gl ON gl.group_id = g.id WHERE `+where+` GROUP BY gl.email ORDER BY gl.email`, key); err != nil {
		return 0, fmt.Errorf("share questionnaire of candidate %d: leaders: %w", id, err)
	}
	for _, l := range leaders {
		if _, err := Enqueue(ctx, tx, Mail{Recipient: l.Email, Payload: templates.QuestionnaireShared{Name: l.Name, Candidate: q.Candidate,
			Race: q.Race, RaceTitle: rc.Office.Title(), Groups: q.Groups, Answers: q.Answers, Attachments: q.Attachments}}); err != nil {
			return 0, fmt.Errorf("share questionnaire of candidate %d: %w", id, err)
		}
	}
	return len(leaders), nil
}

// PublicQuestionnaire is a passed questionnaire as the public page shows
// it: the candidate, the race and the campaign's answers.
type PublicQuestionnaire struct {
	ID        int64               `db:"id" json:"id"`
	Wave      string              `db:"wave" json:"wave"`
	Race      string              `db:"race" json:"race"`
	Candidate string              `db:"candidate" json:"candidate"`
	Answers   []templates.QAnswer `db:"-" json:"answers"`
	JSON      string              `db:"answers" json:"-"`
}

// publicQuestionnaires lists the passed questionnaires with answers of
// the candidates of open and closed races (of wave, or all when ""): once
// a candidate is on a ballot, their answers are public.
func publicQuestionnaires(ctx context.Context, q sqlx.QueryerContext, wave string) ([]PublicQuestionnaire, error) {
	var out []PublicQuestionnaire
	if err := sqlx.SelectContext(ctx, q, &out, `SELECT c.id, w.name AS wave, r.code AS race, c.name AS candidate, q.answers::text AS answers
		FROM questionnaires q JOIN candidates c ON c.id = q.candidate_id JOIN races r ON r.id = c.race_id JOIN waves w ON w.id = r.wave_id
		WHERE c.questionnaire = 'passed' AND q.received_at IS NOT NULL AND r.status IN ('open', 'closed') AND `+onBallot+`
		  AND ($1 = '' OR w.name = $1)
		ORDER BY w.voting_close DESC, r.code, c.number NULLS LAST, c.id`, wave); err != nil {
		return nil, fmt.Errorf("public questionnaires: %w", err)
	}
	for i := range out {
		if err := json.Unmarshal([]byte(out[i].JSON), &out[i].Answers); err != nil {
			return nil, fmt.Errorf("public questionnaire of candidate %d: %w", out[i].ID, err)
		}
	}
	return out, nil
}

// RequireQuestionnaire makes candidate id, of a race not open yet, go on
// the ballot only once their questionnaire passes (a candidate added by
// hand counts as passed unless told otherwise).
func (s *Store) RequireQuestionnaire(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE candidates c SET questionnaire_required = true, questionnaire = 'none'
		FROM races r WHERE r.id = c.race_id AND c.id = $1 AND r.status = 'draft'`, id)
	if err != nil {
		return fmt.Errorf("questionnaire of candidate %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("candidate %d in a race not open yet: %w", id, ErrNotFound)
	}
	return nil
}
