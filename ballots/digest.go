package ballots

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ballotd/ballotd/templates"
)

// Digest is the staff digest: what happened since the last one and what
// needs a look. Its JSON is the outbox row's data, rendered at send time
// (templates.Digest has the same shape).
type Digest struct {
	Since       *time.Time        `json:"since,omitempty"` // the last digest, nil for the first
	At          time.Time         `json:"at"`
	Nominations []DigestCandidate `json:"nominations,omitempty"` // candidates new since the last digest, with their status
	Vetting     []DigestCandidate `json:"vetting,omitempty"`     // waiting for approval
	Open        []DigestRace      `json:"open,omitempty"`        // open races, turnout so far
	Problems    []DigestProblem   `json:"problems,omitempty"`    // bounces, failed sends, quarantined mail
	Results     []Tally           `json:"results,omitempty"`     // races closed since the last digest
	NewVotes    int               `json:"new_votes"`             // votes cast since the last digest
	// Undelivered: ballots of open races that did not reach members, per
	// reason (standing state, like Open: it alone does not make a digest).
	Undelivered []DigestUndelivered `json:"undelivered,omitempty"`
	// Conflicts: candidates waiting for approval whose race has other
	// candidates nominated by groups (VettingList), each with those listed
	// (standing state, like Vetting).
	Conflicts []DigestCandidate `json:"conflicts,omitempty"`
	// HeldAnswers counts the automatic answers the rate limit held back
	// since the last digest (answers_held): many means someone is forging
	// mail to make ballotd write to others.
	HeldAnswers int `json:"held_answers,omitempty"`
	// Questionnaires: approved candidates of races not open yet who stay
	// off the ballot until their questionnaire passes (standing state).
	Questionnaires []DigestQuestionnaire `json:"questionnaires,omitempty"`
	// Delivery is the open races' mail by recipient domain class
	// (standing state, like Open).
	Delivery DomainDeliveries `json:"delivery"`
	// Sending is the pace of each wave with an open race and ballots
	// still to send (standing state).
	Sending []SendPace `json:"sending,omitempty"`
}

// DigestQuestionnaire is an approved candidate waiting on their policy
// questionnaire, in the digest: where it stands, and whether their race
// can open at all (Blocked: no candidate of the race is on the ballot).
type DigestQuestionnaire struct {
	ID       int64      `db:"id" json:"id"`
	Race     string     `db:"race" json:"race"`
	Wave     string     `db:"wave" json:"wave"`
	Name     string     `db:"name" json:"name"`
	Status   string     `db:"questionnaire" json:"status"` // none, received, failed
	Campaign string     `db:"campaign_email" json:"campaign_email,omitempty"`
	Deadline *time.Time `db:"deadline" json:"deadline,omitempty"` // nil: never sent
	Blocked  bool       `db:"blocked" json:"blocked"`
}

// DigestUndelivered counts the ballots of open races that did not reach
// members for one reason (bounced, failed, or deferred for over an hour),
// with the first few addresses.
type DigestUndelivered struct {
	Reason    string         `db:"reason" json:"reason"`
	Count     int            `db:"count" json:"count"`
	Addresses pq.StringArray `db:"addresses" json:"addresses"`
}

// mayBeUndelivered is the SQL set of the ballot ids whose best copy can
// give a reason in the digest's undelivered count: those with a copy
// bounced for good (outbox_bounced), failed (outbox_failed) or deferred
// (outbox_ready). Judging these alone finds the same ballots as judging
// every ballot of the open races, without reading them all.
const mayBeUndelivered = `(SELECT ballot_id FROM outbox WHERE ballot_id IS NOT NULL AND (bounce_hard OR bounce_status LIKE '5.%')
		UNION SELECT ballot_id FROM outbox WHERE status = 'failed' AND ballot_id IS NOT NULL
		UNION SELECT ballot_id FROM outbox WHERE status = 'deferred' AND ballot_id IS NOT NULL)`

// undeliveredFirst is how many addresses the digest names per reason.
const undeliveredFirst = 5

// DigestCandidate is a candidate in a digest.
type DigestCandidate struct {
	ID     int64          `db:"id" json:"id"`
	Race   string         `db:"race" json:"race"`
	Wave   string         `db:"wave" json:"wave"`
	Name   string         `db:"name" json:"name"`
	Status string         `db:"status" json:"status"`
	Groups pq.StringArray `db:"groups" json:"groups"`
	// Nominated says a group's nomination form named the candidate; staff
	// add candidates without one (race candidate add, a CSV).
	Nominated bool `db:"nominated" json:"nominated"`
	// Conflicts are the other candidates of the race nominated by groups,
	// "Name (Group, Group)" (only in Digest.Conflicts).
	Conflicts []string `db:"-" json:"conflicts,omitempty"`
	// What the forms said (seed 002, step 3) and the questionnaire's
	// status, for the vetting picture.
	Partners      pq.StringArray `db:"partners" json:"partners,omitempty"`
	FirstTime     string         `db:"first_time" json:"first_time,omitempty"`
	PastRaces     pq.StringArray `db:"past_races" json:"past_races,omitempty"`
	Questionnaire string         `db:"questionnaire" json:"questionnaire"`
}

// DigestRace is an open race in a digest.
type DigestRace struct {
	ID        int64     `db:"id" json:"-"`
	Code      string    `db:"code" json:"code"`
	Wave      string    `db:"wave" json:"wave"`
	Eligible  int       `db:"eligible" json:"eligible"`
	Reachable int       `db:"reachable" json:"reachable"` // eligible minus undelivered ballots
	Voted     int       `db:"voted" json:"voted"`
	Turnout   float64   `json:"turnout"`
	Closes    time.Time `db:"voting_close" json:"closes"`
	Left      string    `json:"left"` // "2 days 3 hours"
	// MinTurnout is the wave's minimum turnout (0: none), not the
	// endorsement threshold.
	MinTurnout float64 `db:"min_turnout" json:"min_turnout,omitempty"`
}

// DigestProblem is a message that needs a look: a bounce, a send that
// failed for good, quarantined inbound mail.
type DigestProblem struct {
	Kind    string    `db:"kind" json:"kind"` // bounce, failed, quarantined
	ID      int64     `db:"id" json:"id"`
	Address string    `db:"address" json:"address"`
	Detail  string    `db:"detail" json:"detail"`
	At      time.Time `db:"at" json:"at"`
}

// Empty reports whether nothing new happened since the last digest: no
// nomination, no vote, no problem, no result, no answer held back. The vetting queue and open
// races are standing state and do not make a digest worth sending alone.
func (d Digest) Empty() bool {
	return len(d.Nominations) == 0 && len(d.Problems) == 0 && len(d.Results) == 0 && d.NewVotes == 0 && d.HeldAnswers == 0
}

// digestLock serialises digests: the interval timer and `digest send`.
const digestLock = 0x6469676573 // "diges"

// BuildDigest computes the digest as of now, since the last one sent.
func BuildDigest(ctx context.Context, q sqlx.QueryerContext) (Digest, error) {
	var d Digest
	var since time.Time
	if err := sqlx.GetContext(ctx, q, &d.At, `SELECT now()`); err != nil {
		return d, fmt.Errorf("digest: %w", err)
	}
	var last sql.NullTime
	if err := sqlx.GetContext(ctx, q, &last, `SELECT max(sent_at) FROM digests`); err != nil {
		return d, fmt.Errorf("digest: last sent: %w", err)
	}
	if last.Valid {
		since = last.Time
		d.Since = &last.Time
	}
	const cand = `SELECT c.id, r.code AS race, w.name AS wave, c.name, c.status,
		EXISTS (SELECT 1 FROM nominations n WHERE n.candidate_id = c.id) AS nominated,
		ARRAY(SELECT g.name FROM candidate_groups cg JOIN groups g ON g.id = cg.group_id WHERE cg.candidate_id = c.id ORDER BY g.name) AS groups,
		ARRAY(SELECT DISTINCT n.partners FROM nominations n WHERE n.candidate_id = c.id AND n.status = 'accepted' AND n.partners <> '' ORDER BY 1) AS partners,
		coalesce((SELECT n.first_time FROM nominations n WHERE n.candidate_id = c.id AND n.status = 'accepted' AND n.first_time <> ''
			ORDER BY n.updated_at DESC, n.id DESC LIMIT 1), '') AS first_time,
		ARRAY(SELECT DISTINCT n.past_races FROM nominations n WHERE n.candidate_id = c.id AND n.status = 'accepted' AND n.past_races <> '' ORDER BY 1) AS past_races,
		CASE WHEN c.questionnaire_required OR c.questionnaire <> 'none' THEN c.questionnaire ELSE '' END AS questionnaire
		FROM candidates c JOIN races r ON r.id = c.race_id JOIN waves w ON w.id = r.wave_id `
	if err := sqlx.SelectContext(ctx, q, &d.Nominations, cand+`WHERE c.created_at > $1 ORDER BY w.voting_close, w.name, r.code, c.id`, since); err != nil {
		return d, fmt.Errorf("digest: nominations: %w", err)
	}
	if err := sqlx.SelectContext(ctx, q, &d.Vetting, cand+`WHERE c.status = 'nominated' AND r.status = 'draft' ORDER BY w.voting_close, w.name, r.code, c.id`); err != nil {
		return d, fmt.Errorf("digest: vetting queue: %w", err)
	}
	conflicts, err := digestConflicts(ctx, q, d.Vetting)
	if err != nil {
		return d, err
	}
	d.Conflicts = conflicts
	if err := sqlx.SelectContext(ctx, q, &d.Questionnaires, `SELECT c.id, r.code AS race, w.name AS wave, c.name, c.questionnaire, c.campaign_email,
		q.deadline, NOT EXISTS (SELECT 1 FROM candidates c WHERE c.race_id = r.id AND `+onBallot+`) AS blocked
		FROM candidates c JOIN races r ON r.id = c.race_id JOIN waves w ON w.id = r.wave_id
		LEFT JOIN questionnaires q ON q.candidate_id = c.id
		WHERE r.status = 'draft' AND c.status = 'approved' AND c.questionnaire_required AND c.questionnaire <> 'passed'
		ORDER BY w.voting_open, r.code, c.id`); err != nil {
		return d, fmt.Errorf("digest: questionnaires: %w", err)
	}
	if err := sqlx.SelectContext(ctx, q, &d.Open, `SELECT r.id, r.code, w.name AS wave, w.voting_close, w.min_turnout::float8 AS min_turnout,
		(SELECT count(*) FROM ballots b WHERE b.race_id = r.id) AS eligible,
		(SELECT count(*) FROM standing_votes s WHERE s.race_id = r.id) AS voted
		FROM races r JOIN waves w ON w.id = r.wave_id WHERE r.status = 'open' ORDER BY w.voting_close, r.code`); err != nil {
		return d, fmt.Errorf("digest: open races: %w", err)
	}
	for i := range d.Open {
		o := &d.Open[i]
		var unreachable int
		if err := sqlx.GetContext(ctx, q, &unreachable, unreachableCount, o.ID); err != nil {
			return d, fmt.Errorf("digest: reachable in %s: %w", o.Code, err)
		}
		o.Reachable = o.Eligible - unreachable
		if o.Eligible > 0 {
			o.Turnout = float64(o.Voted) / float64(o.Eligible)
		}
		o.Left = Left(o.Closes.Sub(d.At))
	}
	if err := sqlx.GetContext(ctx, q, &d.NewVotes, `SELECT count(*) FROM votes WHERE cast_at > $1`, since); err != nil {
		return d, fmt.Errorf("digest: new votes: %w", err)
	}
	if d.HeldAnswers, err = AnswersHeldSince(ctx, q, since); err != nil {
		return d, fmt.Errorf("digest: %w", err)
	}
	if err := sqlx.SelectContext(ctx, q, &d.Problems, `
		SELECT * FROM (
			SELECT CASE WHEN class = 'bounce' THEN 'bounce' ELSE 'quarantined' END AS kind, id, from_addr AS address,
			       left(CASE WHEN detail <> '' THEN detail ELSE subject END, 200) AS detail, received_at AS at
			FROM inbound_messages WHERE (quarantined OR class = 'bounce') AND received_at > $1
			UNION ALL
			SELECT 'failed', id, recipient, left(CASE WHEN last_reply LIKE last_code::text || ' %' THEN last_reply
				ELSE coalesce(last_code::text || ' ', '') || last_reply END, 200), next_attempt
			FROM outbox WHERE status = 'failed' AND next_attempt > $1
		) p ORDER BY at, id LIMIT 50`, since); err != nil {
		return d, fmt.Errorf("digest: problems: %w", err)
	}
	if err := sqlx.SelectContext(ctx, q, &d.Undelivered, `SELECT reason, count(*) AS count,
		(array_agg(recipient ORDER BY recipient))[1:$1] AS addresses
		FROM (SELECT o.recipient, CASE
				WHEN o.bounce_hard OR o.bounce_status LIKE '5.%' THEN 'bounced'
				WHEN o.status = 'failed' THEN 'failed'
				WHEN o.status = 'deferred' AND o.created_at < now() - interval '1 hour' THEN 'deferred'
			END AS reason
			FROM ballots b JOIN races r ON r.id = b.race_id `+bestBallotCopy+`
			WHERE r.status = 'open' AND o.id IS NOT NULL AND b.id IN `+mayBeUndelivered+`) u
		WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason`, undeliveredFirst); err != nil {
		return d, fmt.Errorf("digest: undelivered ballots: %w", err)
	}
	if d.Delivery, err = deliveryByDomain(ctx, q, scopeOpenRaces); err != nil {
		return d, fmt.Errorf("digest: %w", err)
	}
	if d.Sending, err = sendingPaces(ctx, q); err != nil {
		return d, fmt.Errorf("digest: %w", err)
	}
	var closed []Race
	if err := sqlx.SelectContext(ctx, q, &closed, `SELECT `+raceBaseColumns+` FROM races r JOIN waves w ON w.id = r.wave_id
		WHERE r.status = 'closed' AND r.closed_at > $1 ORDER BY r.closed_at, r.code`, since); err != nil {
		return d, fmt.Errorf("digest: results: %w", err)
	}
	for _, r := range closed {
		t, err := tallyOf(ctx, q, r)
		if err != nil {
			return d, fmt.Errorf("digest: %w", err)
		}
		d.Results = append(d.Results, t)
	}
	return d, nil
}

// digestConflicts is the candidates of the vetting queue that conflict
// with others of their race, as VettingList finds them: the conflicts
// staff have not resolved yet by approving or rejecting.
func digestConflicts(ctx context.Context, q sqlx.QueryerContext, queue []DigestCandidate) ([]DigestCandidate, error) {
	if len(queue) == 0 {
		return nil, nil
	}
	vs, err := VettingList(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("digest: conflicts: %w", err)
	}
	with := make(map[int64][]string, len(vs))
	for _, v := range vs {
		with[v.ID] = v.Conflicts
	}
	var out []DigestCandidate
	for _, c := range queue {
		if cs := with[c.ID]; len(cs) > 0 {
			c.Conflicts = cs
			out = append(out, c)
		}
	}
	return out, nil
}

// jsonOf is v as JSON text: a string, so that lib/pq sends it as text in
// binary_parameters mode (a []byte would go as jsonb's binary form).
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Left writes a duration as people say it: "2 days 3 hours", "40 minutes".
func Left(d time.Duration) string {
	if d <= 0 {
		return "closing now"
	}
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	plural := func(n int, unit string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s", unit)
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case days > 0:
		return plural(days, "day") + " " + plural(hours, "hour")
	case hours > 0:
		return plural(hours, "hour") + " " + plural(mins, "minute")
	case mins > 0:
		return plural(mins, "minute")
	}
	return "less than a minute"
}

// SendDigest builds the digest and, unless nothing is new, enqueues it to
// each staff address and records it, in one transaction under a lock so two
// callers cannot send the same news twice. It reports whether a digest was
// enqueued. With every > 0, a digest is due only that long after the last.
func (s *Store) SendDigest(ctx context.Context, staff []string, every time.Duration) (Digest, bool, error) {
	var d Digest
	var sent bool
	if len(staff) == 0 {
		return d, false, fmt.Errorf("digest: no staff address (set BALLOTD_STAFF)")
	}
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, digestLock); err != nil {
			return fmt.Errorf("digest: lock: %w", err)
		}
		if every > 0 {
			var due bool
			if err := tx.GetContext(ctx, &due, `SELECT coalesce(max(sent_at) <= now() - $1 * interval '1 millisecond', true) FROM digests`,
				every.Milliseconds()); err != nil {
				return fmt.Errorf("digest: due: %w", err)
			}
			if !due {
				return nil
			}
		}
		var err error
		if d, err = BuildDigest(ctx, tx); err != nil {
			return err
		}
		if d.Empty() {
			return nil
		}
		for _, to := range staff {
			if _, err := Enqueue(ctx, tx, Mail{Recipient: to, Payload: d.Mail()}); err != nil {
				return err
			}
		}
		summary := map[string]int{"nominations": len(d.Nominations), "vetting": len(d.Vetting), "conflicts": len(d.Conflicts), "open": len(d.Open),
			"problems": len(d.Problems), "results": len(d.Results), "new_votes": d.NewVotes,
			"held_answers": d.HeldAnswers}
		if _, err := tx.ExecContext(ctx, `INSERT INTO digests (sent_at, recipients, summary) VALUES ($1, $2, $3)`,
			d.At, pq.Array(staff), jsonOf(summary)); err != nil {
			return fmt.Errorf("digest: record: %w", err)
		}
		sent = true
		return nil
	})
	return d, sent, err
}

// Mail is the digest as the payload of its mail: the same report, in the
// types its template reads.
func (d Digest) Mail() templates.Digest {
	m := templates.Digest{Since: d.Since, At: d.At, HeldAnswers: d.HeldAnswers,
		Nominations: digestCandidates(d.Nominations), Vetting: digestCandidates(d.Vetting), Conflicts: digestCandidates(d.Conflicts)}
	for _, r := range d.Open {
		m.Open = append(m.Open, templates.DigestRace{Code: r.Code, Wave: r.Wave, Eligible: r.Eligible, Reachable: r.Reachable,
			Voted: r.Voted, Turnout: r.Turnout, Closes: r.Closes, Left: r.Left, MinTurnout: r.MinTurnout})
	}
	for _, p := range d.Problems {
		m.Problems = append(m.Problems, templates.DigestProblem{Kind: p.Kind, ID: p.ID, Address: p.Address, Detail: p.Detail})
	}
	for _, t := range d.Results {
		r := templates.DigestResult{Race: t.Race, Eligible: t.Eligible, Voted: t.Voted, Turnout: t.Turnout}
		for _, c := range t.Candidates {
			r.Candidates = append(r.Candidates, templates.DigestResultCandidate{Number: c.Number, Name: c.Name, Votes: c.Votes,
				Support: c.Support, Endorsed: c.Endorsed})
		}
		m.Results = append(m.Results, r)
	}
	for _, c := range d.Questionnaires {
		w := templates.DigestQuestionnaire{ID: c.ID, Race: c.Race, Wave: c.Wave, Name: c.Name, Status: c.Status, Blocked: c.Blocked}
		switch {
		case c.Status == "received":
			w.Words = "answers received, to review"
		case c.Status == "failed":
			w.Words = "failed"
		case c.Deadline == nil && c.Campaign == "":
			w.Words = "not sent: no campaign email on any form"
		case c.Deadline == nil:
			w.Words = "not sent"
		case d.At.After(*c.Deadline):
			w.Words = fmt.Sprintf("no answer, %s overdue", overdue(d.At.Sub(*c.Deadline)))
		default:
			w.Words = fmt.Sprintf("sent to %s, no answer yet", c.Campaign)
		}
		m.Questionnaires = append(m.Questionnaires, w)
	}
	for _, u := range d.Undelivered {
		m.Undelivered = append(m.Undelivered, templates.DigestUndelivered{Reason: u.Reason, Count: u.Count, Addresses: u.Addresses})
	}
	m.Delivery = d.Delivery.Mail()
	for _, p := range d.Sending {
		out, known := p.ETA(d.At)
		m.Sending = append(m.Sending, templates.DigestSending{Wave: p.Wave, Remaining: p.Remaining, PerMinute: int(p.PerMinute + 0.5), Out: out, Known: known})
	}
	return m
}

// overdue says how long past a deadline, in days or hours.
func overdue(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	if d >= 2*time.Hour {
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return "less than 2 hours"
}

func digestCandidates(cs []DigestCandidate) []templates.VettingCandidate {
	var out []templates.VettingCandidate
	for _, c := range cs {
		out = append(out, templates.VettingCandidate{ID: c.ID, Race: c.Race, Wave: c.Wave, Name: c.Name, Status: c.Status,
			Groups: c.Groups, Nominated: c.Nominated, Conflicts: c.Conflicts, Partners: c.Partners, FirstTime: c.FirstTime,
			PastRaces: c.PastRaces, Questionnaire: c.Questionnaire})
	}
	return out
}

// DigestNow builds the digest as of now without sending or recording it
// (BuildDigest on the store's pool): what `ballotd bench scale` times.
func (s *Store) DigestNow(ctx context.Context) (Digest, error) {
	return BuildDigest(ctx, s.db)
}
