package ballots

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/templates"
)

// Nomination status values.
const (
	NominationAccepted  = "accepted"
	NominationRejected  = "rejected"
	NominationWithdrawn = "withdrawn"
)

// Questionnaire status values of a candidate.
var questionnaireStates = map[string]bool{"none": true, "received": true, "passed": true, "failed": true}

// NominationInput is a nomination form as read from a leader's email.
type NominationInput struct {
	Sender    string // the authenticated From address
	Group     string // as written; "" lets the sender's only group stand
	Candidate string
	Race      string // canonical race code, "" when the form gave none
	Reason    string
	FormText  string
	InboundID int64
	// Problems already found in the form itself; the store adds its own.
	Problems []string
	Factors
	// QuestionnaireRequired says the questionnaire step is on: the
	// candidate goes on a ballot only with a passed questionnaire.
	QuestionnaireRequired bool
}

// Factors are what a nomination form tells staff beyond the race and the
// reason (seed 002, step 3): all optional.
type Factors struct {
	Campaign  string `json:"campaign_email,omitempty"` // the campaign's email, where the questionnaire goes
	Partners  string `json:"partners,omitempty"`       // partner endorsements as written
	FirstTime string `json:"first_time,omitempty"`     // "yes", "no" or ""
	PastRaces string `json:"past_races,omitempty"`     // as written
}

// NominationResult is what became of a nomination.
type NominationResult struct {
	ID           int64 // the nomination number
	Accepted     bool
	Updated      bool // the group had nominated this candidate already
	NewCandidate bool
	Problems     []string
	CandidateID  int64
	Candidate    string
	Race         string
	Group        string
	Groups       []string // every group nominating the candidate
	Wave         string
	// Campaign is the candidate's campaign email on record (the first a
	// form gave), "" when none is known.
	Campaign string
	// FirstCampaign says this nomination gave the candidate their
	// campaign email: the questionnaire may go out now.
	FirstCampaign bool
}

type leaderGroup struct {
	ID       int64  `db:"id"`
	Name     string `db:"name"`
	State    string `db:"state"`
	District string `db:"district"`
}

// normName is a name compared case- and space-insensitively.
func normName(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// Nominate validates a nomination and records it in tx: accepted, it
// creates or merges the candidate (same race, same name up to case and
// spaces) and links the group; the same group nominating the same candidate
// again updates its nomination. Every problem is listed; a rejected form is
// recorded too, with its problems.
func Nominate(ctx context.Context, tx *sqlx.Tx, in NominationInput, now time.Time) (NominationResult, error) {
	res := NominationResult{Problems: append([]string{}, in.Problems...), Race: in.Race, Candidate: strings.Join(strings.Fields(in.Candidate), " ")}
	sender := strings.ToLower(strings.TrimSpace(in.Sender))
	var led []leaderGroup
	if err := tx.SelectContext(ctx, &led, `SELECT g.id, g.name, g.state, g.district FROM groups g
		JOIN group_leaders l ON l.group_id = g.id WHERE l.email = $1 ORDER BY g.name`, sender); err != nil {
		return res, fmt.Errorf("nomination from %s: groups led: %w", sender, err)
	}
	names := make([]string, len(led))
	for i, g := range led {
		names[i] = g.Name
	}
	var group *leaderGroup
	switch {
	case in.Group != "":
		var g leaderGroup
		err := tx.GetContext(ctx, &g, `SELECT id, name, state, district FROM groups
			WHERE lower(regexp_replace(name, '\s+', ' ', 'g')) = $1`, normName(in.Group))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			p := fmt.Sprintf("Group: no group named %q is registered; check the name", in.Group)
			if len(names) > 0 {
				p += " (you lead " + strings.Join(names, ", ") + ")"
			}
			res.Problems = append(res.Problems, p)
		case err != nil:
			return res, fmt.Errorf("nomination from %s: find group %q: %w", sender, in.Group, err)
		default:
			isLeader := false
			for _, l := range led {
				isLeader = isLeader || l.ID == g.ID
			}
			if !isLeader {
				res.Problems = append(res.Problems, fmt.Sprintf("Sender: %s is not a registered leader of %s; a leader of the group must send the form", sender, g.Name))
			}
			group = &g
		}
	case len(led) == 1:
		group = &led[0]
	case len(led) == 0:
		res.Problems = append(res.Problems, fmt.Sprintf("Sender: %s is not a registered leader of any group; a leader of the group must send the form", sender))
	default:
		res.Problems = append(res.Problems, fmt.Sprintf("Group: missing: you lead %s; name the group nominating", strings.Join(names, ", ")))
	}
	if group != nil {
		res.Group = group.Name
	}
	var rc race.Code
	if in.Race != "" {
		var err error
		if rc, err = race.Parse(in.Race); err != nil {
			res.Problems = append(res.Problems, "District: "+err.Error())
		}
	}
	if group != nil && rc.Code != "" {
		where := group.District
		if where == "" {
			where = race.StateName(group.State) + " (state-wide)"
		}
		switch {
		case rc.Office == race.House && group.District != rc.District:
			res.Problems = append(res.Problems, fmt.Sprintf("District: %s is in %s, not in %s; a House nomination comes from a group in the district", group.Name, where, rc.Code))
		case rc.Office != race.House && group.State != rc.State:
			res.Problems = append(res.Problems, fmt.Sprintf("State: %s is in %s, not in %s; a %s nomination comes from a group in the state",
				group.Name, race.StateName(group.State), race.StateName(rc.State), rc.Office.Title()))
		}
	}
	var wave struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	err := tx.GetContext(ctx, &wave, `SELECT id, name FROM waves WHERE nominations_close > $1 ORDER BY nominations_close, id LIMIT 1`, now)
	if errors.Is(err, sql.ErrNoRows) {
		res.Problems = append(res.Problems, "Wave: no wave is accepting nominations now; staff will announce the next one")
	} else if err != nil {
		return res, fmt.Errorf("nomination from %s: find wave: %w", sender, err)
	}
	res.Wave = wave.Name
	var raceID int64
	if wave.ID != 0 && rc.Code != "" {
		var status string
		err := tx.QueryRowxContext(ctx, `SELECT id, status FROM races WHERE wave_id = $1 AND code = $2`, wave.ID, rc.Code).Scan(&raceID, &status)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return res, fmt.Errorf("nomination for %s: %w", rc.Code, err)
		}
		if status != "" && status != RaceDraft {
			res.Problems = append(res.Problems, fmt.Sprintf("District: the %s race is already %s; nominations are closed for it", rc.Code, status))
		}
	}
	if len(res.Problems) > 0 {
		var gid sql.NullInt64
		if group != nil {
			gid = sql.NullInt64{Int64: group.ID, Valid: true}
		}
		err := tx.GetContext(ctx, &res.ID, `INSERT INTO nominations (group_id, race_code, candidate, sender, form_text, reason, status, problems, inbound_id,
			campaign_email, partners, first_time, past_races)
			VALUES ($1, $2, $3, $4, $5, $6, 'rejected', $7, $8, $9, $10, $11, $12) RETURNING id`,
			gid, rc.Code, res.Candidate, sender, in.FormText, in.Reason, strings.Join(res.Problems, "\n"), nullID(in.InboundID),
			in.Campaign, in.Partners, in.FirstTime, in.PastRaces)
		if err != nil {
			return res, fmt.Errorf("record rejected nomination from %s: %w", sender, err)
		}
		return res, nil
	}
	if raceID == 0 {
		err := tx.GetContext(ctx, &raceID, `INSERT INTO races (wave_id, code, office, state, district) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (wave_id, code) DO UPDATE SET code = EXCLUDED.code RETURNING id`, wave.ID, rc.Code, rc.Office, rc.State, rc.District)
		if err != nil {
			return res, fmt.Errorf("create race %s: %w", rc.Code, err)
		}
	}
	var cand struct {
		ID       int64  `db:"id"`
		Name     string `db:"name"`
		Inserted bool   `db:"inserted"`
	}
	err = tx.GetContext(ctx, &cand, `INSERT INTO candidates (race_id, name, bio, status, questionnaire_required) VALUES ($1, $2, $3, 'nominated', $4)
		ON CONFLICT (race_id, lower(name)) DO UPDATE SET
			status = CASE WHEN candidates.status = 'withdrawn' THEN 'nominated' ELSE candidates.status END,
			bio = CASE WHEN candidates.bio = '' THEN EXCLUDED.bio ELSE candidates.bio END,
			questionnaire_required = candidates.questionnaire_required OR EXCLUDED.questionnaire_required
		RETURNING id, name, (xmax = 0) AS inserted`, raceID, res.Candidate, bioOf(in.Reason), in.QuestionnaireRequired)
	if err != nil {
		return res, fmt.Errorf("nominate %q in %s: %w", res.Candidate, rc.Code, err)
	}
	res.CandidateID, res.Candidate, res.NewCandidate = cand.ID, cand.Name, cand.Inserted
	err = tx.QueryRowxContext(ctx, `UPDATE nominations SET status = 'accepted', form_text = $3, reason = $4, sender = $5,
		inbound_id = $6, race_code = $7, candidate = $8, campaign_email = $9, partners = $10, first_time = $11, past_races = $12, updated_at = now()
		WHERE group_id = $1 AND candidate_id = $2 AND status <> 'rejected' RETURNING id`,
		group.ID, cand.ID, in.FormText, in.Reason, sender, nullID(in.InboundID), rc.Code, res.Candidate,
		in.Campaign, in.Partners, in.FirstTime, in.PastRaces).Scan(&res.ID)
	switch {
	case err == nil:
		res.Updated = true
	case errors.Is(err, sql.ErrNoRows):
		err = tx.GetContext(ctx, &res.ID, `INSERT INTO nominations (group_id, candidate_id, race_code, candidate, sender, form_text, reason, status, inbound_id,
			campaign_email, partners, first_time, past_races)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'accepted', $8, $9, $10, $11, $12) RETURNING id`,
			group.ID, cand.ID, rc.Code, res.Candidate, sender, in.FormText, in.Reason, nullID(in.InboundID),
			in.Campaign, in.Partners, in.FirstTime, in.PastRaces)
		if err != nil {
			return res, fmt.Errorf("record nomination of %q by %s: %w", res.Candidate, group.Name, err)
		}
	default:
		return res, fmt.Errorf("update nomination of %q by %s: %w", res.Candidate, group.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO candidate_groups (candidate_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, cand.ID, group.ID); err != nil {
		return res, fmt.Errorf("link %q to %s: %w", res.Candidate, group.Name, err)
	}
	if err := tx.GetContext(ctx, pq.Array(&res.Groups), `SELECT ARRAY(SELECT g.name FROM candidate_groups cg JOIN groups g ON g.id = cg.group_id
		WHERE cg.candidate_id = $1 ORDER BY g.name)`, cand.ID); err != nil {
		return res, fmt.Errorf("groups of %q: %w", res.Candidate, err)
	}
	// The first campaign email a form gives stays: the questionnaire goes
	// there.
	var campaign struct {
		Email string `db:"campaign_email"`
		Set   bool   `db:"set"`
	}
	if err := tx.GetContext(ctx, &campaign, `WITH old AS (SELECT campaign_email FROM candidates WHERE id = $1 FOR UPDATE)
		UPDATE candidates c SET campaign_email = CASE WHEN old.campaign_email = '' THEN $2 ELSE old.campaign_email END FROM old
		WHERE c.id = $1 RETURNING c.campaign_email, (old.campaign_email = '' AND $2 <> '') AS set`, cand.ID, in.Campaign); err != nil {
		return res, fmt.Errorf("campaign email of %q: %w", res.Candidate, err)
	}
	res.Campaign, res.FirstCampaign = campaign.Email, campaign.Set
	res.Accepted = true
	return res, nil
}

// bioOf is the ballot's bio of a newly nominated candidate: the first
// paragraph of the first nominating group's reason, at most 600 bytes.
func bioOf(reason string) string {
	p, _, _ := strings.Cut(strings.TrimSpace(reason), "\n\n")
	p = strings.Join(strings.Fields(p), " ")
	if len(p) > 600 {
		cut := strings.LastIndexByte(p[:600], ' ')
		if cut < 0 {
			cut = 600
		}
		p = p[:cut] + " …"
	}
	return p
}

// WithdrawResult is what withdrawing a nomination did.
type WithdrawResult struct {
	ID        int64
	Candidate string
	Race      string
	Group     string
}

// Withdraw withdraws nomination id on behalf of sender, who must lead the
// nominating group. A candidate left with no nominating group is
// withdrawn too, unless staff have approved them already. The problems say
// why nothing was done.
func Withdraw(ctx context.Context, tx *sqlx.Tx, sender string, id int64) (WithdrawResult, []string, error) {
	var n struct {
		GroupID     int64         `db:"group_id"`
		CandidateID sql.NullInt64 `db:"candidate_id"`
		Group       string        `db:"group_name"`
		Candidate   string        `db:"candidate"`
		Race        string        `db:"race_code"`
		Status      string        `db:"status"`
		Leader      bool          `db:"leader"`
		RaceStatus  string        `db:"race_status"`
	}
	r := WithdrawResult{ID: id}
	err := tx.GetContext(ctx, &n, `SELECT n.group_id, n.candidate_id, g.name AS group_name, n.candidate, n.race_code, n.status,
		EXISTS (SELECT 1 FROM group_leaders l WHERE l.group_id = n.group_id AND l.email = lower($2)) AS leader,
		coalesce((SELECT r.status FROM candidates c JOIN races r ON r.id = c.race_id WHERE c.id = n.candidate_id), '') AS race_status
		FROM nominations n JOIN groups g ON g.id = n.group_id WHERE n.id = $1 FOR UPDATE OF n`, id, sender)
	if errors.Is(err, sql.ErrNoRows) {
		return r, []string{fmt.Sprintf("WITHDRAW %d: there is no nomination number %d", id, id)}, nil
	}
	if err != nil {
		return r, nil, fmt.Errorf("withdraw nomination %d: %w", id, err)
	}
	r.Candidate, r.Race, r.Group = n.Candidate, n.Race, n.Group
	var probs []string
	if !n.Leader {
		probs = append(probs, fmt.Sprintf("WITHDRAW %d: %s is not a registered leader of %s, which made this nomination", id, sender, n.Group))
	}
	if n.Status != NominationAccepted {
		probs = append(probs, fmt.Sprintf("WITHDRAW %d: the nomination is %s", id, n.Status))
	}
	if n.RaceStatus != "" && n.RaceStatus != RaceDraft {
		probs = append(probs, fmt.Sprintf("WITHDRAW %d: the %s race is already %s", id, n.Race, n.RaceStatus))
	}
	if len(probs) > 0 {
		return r, probs, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE nominations SET status = 'withdrawn', updated_at = now() WHERE id = $1`, id); err != nil {
		return r, nil, fmt.Errorf("withdraw nomination %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM candidate_groups WHERE candidate_id = $1 AND group_id = $2`, n.CandidateID, n.GroupID); err != nil {
		return r, nil, fmt.Errorf("withdraw nomination %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE candidates SET status = 'withdrawn' WHERE id = $1 AND status = 'nominated'
		AND NOT EXISTS (SELECT 1 FROM nominations WHERE candidate_id = $1 AND status = 'accepted')`, n.CandidateID); err != nil {
		return r, nil, fmt.Errorf("withdraw nomination %d: %w", id, err)
	}
	return r, nil, nil
}

// Vetting is a candidate as staff vet them.
type Vetting struct {
	Candidate
	Questionnaire string   `db:"questionnaire" json:"questionnaire"`
	Reason        string   `db:"vet_reason" json:"reason,omitempty"`
	Conflicts     []string `db:"-" json:"conflicts"`
	// Campaign is the campaign's email on record.
	Campaign string `db:"campaign_email" json:"campaign_email,omitempty"`
	// Partners are the partner endorsements the nominating forms gave,
	// one entry per distinct text.
	Partners pq.StringArray `db:"partners" json:"partners"`
	// FirstTime is "yes" or "no" as the latest form that said gave it,
	// "" when no form said.
	FirstTime string `db:"first_time" json:"first_time,omitempty"`
	// PastRaces are the past races the forms gave, one entry per
	// distinct text.
	PastRaces pq.StringArray `db:"past_races" json:"past_races"`
}

// VettingList lists every candidate with their questionnaire status and
// conflicts: the other candidates (with their groups) that groups in the
// same race nominated.
func VettingList(ctx context.Context, q sqlx.QueryerContext) ([]Vetting, error) {
	var vs []Vetting
	err := sqlx.SelectContext(ctx, q, &vs, `SELECT c.id, c.race_id, r.code AS race, c.name, c.bio, c.status, c.number,
		ARRAY(SELECT g.name FROM candidate_groups cg JOIN groups g ON g.id = cg.group_id WHERE cg.candidate_id = c.id ORDER BY g.name) AS groups,
		c.questionnaire, c.vet_reason, c.campaign_email,
		ARRAY(SELECT DISTINCT n.partners FROM nominations n WHERE n.candidate_id = c.id AND n.status = 'accepted' AND n.partners <> '' ORDER BY 1) AS partners,
		coalesce((SELECT n.first_time FROM nominations n WHERE n.candidate_id = c.id AND n.status = 'accepted' AND n.first_time <> ''
			ORDER BY n.updated_at DESC, n.id DESC LIMIT 1), '') AS first_time,
		ARRAY(SELECT DISTINCT n.past_races FROM nominations n WHERE n.candidate_id = c.id AND n.status = 'accepted' AND n.past_races <> '' ORDER BY 1) AS past_races
		FROM candidates c JOIN races r ON r.id = c.race_id ORDER BY r.code, c.number NULLS LAST, c.id`)
	if err != nil {
		return nil, fmt.Errorf("list candidates for vetting: %w", err)
	}
	for i := range vs {
		vs[i].Conflicts = []string{}
		if !live(vs[i].Status) || len(vs[i].Groups) == 0 {
			continue
		}
		for j := range vs {
			o := vs[j]
			if j == i || o.RaceID != vs[i].RaceID || !live(o.Status) || len(o.Groups) == 0 {
				continue
			}
			vs[i].Conflicts = append(vs[i].Conflicts, fmt.Sprintf("%s (%s)", o.Name, strings.Join(o.Groups, ", ")))
		}
		sort.Strings(vs[i].Conflicts)
	}
	return vs, nil
}

func live(status string) bool { return status == "nominated" || status == "approved" }

// VettingList lists every candidate for vetting (see VettingList).
func (s *Store) VettingList(ctx context.Context) ([]Vetting, error) { return VettingList(ctx, s.db) }

// ErrVet means a vetting decision cannot be applied in the candidate's
// state.
var ErrVet = errors.New("cannot vet")

// Vet approves (approve true) or rejects candidate id in tx, with reason
// kept. Only a candidate of a race that has not opened can be vetted.
func Vet(ctx context.Context, tx *sqlx.Tx, id int64, approve bool, reason string) (Vetting, error) {
	var v Vetting
	var raceStatus string
	err := tx.QueryRowxContext(ctx, `SELECT c.status, r.status FROM candidates c JOIN races r ON r.id = c.race_id WHERE c.id = $1 FOR UPDATE OF c`, id).
		Scan(&v.Status, &raceStatus)
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("candidate %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("vet candidate %d: %w", id, err)
	}
	if raceStatus != RaceDraft {
		return v, fmt.Errorf("candidate %d: the race is %s already: %w", id, raceStatus, ErrVet)
	}
	if v.Status == "withdrawn" {
		return v, fmt.Errorf("candidate %d: withdrawn by the nominating groups: %w", id, ErrVet)
	}
	status := "rejected"
	if approve {
		status = "approved"
	}
	if _, err := tx.ExecContext(ctx, `UPDATE candidates SET status = $2, vet_reason = $3, vetted_at = now() WHERE id = $1`, id, status, reason); err != nil {
		return v, fmt.Errorf("vet candidate %d: %w", id, err)
	}
	return vettingByID(ctx, tx, id)
}

func vettingByID(ctx context.Context, q sqlx.QueryerContext, id int64) (Vetting, error) {
	vs, err := VettingList(ctx, q)
	if err != nil {
		return Vetting{}, err
	}
	for _, v := range vs {
		if v.ID == id {
			return v, nil
		}
	}
	return Vetting{}, fmt.Errorf("candidate %d: %w", id, ErrNotFound)
}

// Vet approves or rejects candidate id (see Vet).
func (s *Store) Vet(ctx context.Context, id int64, approve bool, reason string) (Vetting, error) {
	var v Vetting
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		v, err = Vet(ctx, tx, id, approve, reason)
		return err
	})
	return v, err
}

// SetQuestionnaire records candidate id's questionnaire status: none,
// received, passed or failed. A questionnaire that passes now is shared
// with the group leaders of the race's state or district.
func (s *Store) SetQuestionnaire(ctx context.Context, id int64, status string) (Vetting, error) {
	if !questionnaireStates[status] {
		return Vetting{}, fmt.Errorf("questionnaire %q: want received, passed or failed", status)
	}
	var v Vetting
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := setQuestionnaire(ctx, tx, id, status); err != nil {
			return err
		}
		var err error
		v, err = vettingByID(ctx, tx, id)
		return err
	})
	return v, err
}

// OutboxKind returns the kind of outbox row id (a staff token names the
// vetting notice it came with).
func OutboxKind(ctx context.Context, q sqlx.QueryerContext, id int64) (templates.Kind, error) {
	var kind templates.Kind
	err := sqlx.GetContext(ctx, q, &kind, `SELECT kind FROM outbox WHERE id = $1`, id)
	if err != nil {
		return "", notFound(err, fmt.Sprintf("outbox %d", id))
	}
	return kind, nil
}
