package ballots

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/ballotd/ballotd/internal/race"
)

// Endorsement is one endorsed candidate, as the endorsement list shows them.
type Endorsement struct {
	Wave      string         `db:"wave" json:"wave"`
	State     string         `db:"state" json:"state"`
	Office    race.Office    `db:"office" json:"office"`
	Race      string         `db:"race" json:"race"`
	Candidate string         `db:"candidate" json:"candidate"`
	Groups    pq.StringArray `db:"groups" json:"groups"`
	Reason    string         `db:"reason" json:"reason"` // each nominating group's reason for endorsement, "Group: reason", blank-line separated
	Votes     int            `db:"votes" json:"votes"`
	Voted     int            `db:"voted" json:"voted"`
	Eligible  int            `db:"eligible" json:"eligible"`
	Support   float64        `db:"support" json:"support"`
	Turnout   float64        `db:"turnout" json:"turnout"`
	// Reachable is eligible minus undelivered ballots; TurnoutReachable is
	// voted ÷ reachable.
	Reachable        int       `db:"reachable" json:"reachable"`
	TurnoutReachable float64   `db:"turnout_reachable" json:"turnout_reachable"`
	ClosedAt         time.Time `db:"closed_at" json:"closed_at"`
}

// ReceiptLine is one counted vote, published without its voter: the
// SHA-256 of the receipt code the voter was mailed, and the choice counted.
type ReceiptLine struct {
	Hash   string `json:"sha256"`
	Choice string `json:"choice"`
}

// RaceReceipts is a closed race's published receipt list, sorted by hash.
type RaceReceipts struct {
	Wave     string        `json:"wave"`
	Race     string        `json:"race"`
	Receipts []ReceiptLine `json:"receipts"`
}

// EndorsementList is the published result of closed races.
type EndorsementList struct {
	Wave         string         `json:"wave,omitempty"`
	Endorsements []Endorsement  `json:"endorsements"`
	Receipts     []RaceReceipts `json:"receipts"`
	// Questionnaires are the passed policy questionnaires, with the
	// campaigns' answers, of the candidates on an open or closed race's
	// ballot.
	Questionnaires []PublicQuestionnaire `json:"questionnaires"`
}

// Endorsements lists the endorsed candidates of every closed race (of the
// named wave, or all waves when wave is "") from the frozen tallies, and
// each closed race's receipt hashes with the choice counted. Results held
// for staff are left out until released.
func (s *Store) Endorsements(ctx context.Context, wave string) (EndorsementList, error) {
	l := EndorsementList{Wave: wave, Endorsements: []Endorsement{}, Receipts: []RaceReceipts{}, Questionnaires: []PublicQuestionnaire{}}
	if wave != "" {
		if _, err := currentWave(ctx, s.db, wave); err != nil {
			return l, err
		}
	}
	err := s.db.SelectContext(ctx, &l.Endorsements, `SELECT w.name AS wave, r.state, r.office, r.code AS race, c.name AS candidate,
		ARRAY(SELECT g.name FROM candidate_groups cg JOIN groups g ON g.id = cg.group_id WHERE cg.candidate_id = c.id ORDER BY g.name) AS groups,
		coalesce((SELECT string_agg(CASE WHEN g.name IS NULL THEN n.reason ELSE g.name || ': ' || n.reason END, E'\n\n' ORDER BY n.id)
		          FROM nominations n LEFT JOIN groups g ON g.id = n.group_id
		          WHERE n.candidate_id = c.id AND n.status = 'accepted' AND n.reason <> ''), '') AS reason, tc.votes, t.voted, t.eligible, tc.support::float8 AS support, t.turnout::float8 AS turnout, r.closed_at,
		coalesce(t.reachable, t.eligible) AS reachable,
		CASE WHEN coalesce(t.reachable, t.eligible) > 0 THEN t.voted::float8 / coalesce(t.reachable, t.eligible) ELSE 0 END AS turnout_reachable
		FROM tally_candidates tc JOIN tallies t ON t.race_id = tc.race_id JOIN candidates c ON c.id = tc.candidate_id
		JOIN races r ON r.id = tc.race_id JOIN waves w ON w.id = r.wave_id
		WHERE tc.endorsed AND r.status = 'closed' AND ($1 = '' OR w.name = $1)
		  AND (NOT w.hold_results OR r.released_at IS NOT NULL)
		ORDER BY w.voting_close DESC, r.state, r.office, r.code, c.number`, wave)
	if err != nil {
		return l, fmt.Errorf("endorsements: %w", err)
	}
	var rows []struct {
		Wave    string `db:"wave"`
		Race    string `db:"race"`
		Receipt string `db:"receipt"`
		Choice  string `db:"choice"`
	}
	err = s.db.SelectContext(ctx, &rows, `
		WITH latest AS (
			SELECT DISTINCT ON (v.ballot_id) v.ballot_id, v.receipt, v.choice, v.candidate_id, b.race_id
			FROM votes v JOIN ballots b ON b.id = v.ballot_id JOIN races r ON r.id = b.race_id
			WHERE r.status = 'closed' AND v.cast_at <= r.closed_at
			ORDER BY v.ballot_id, v.cast_at DESC, v.id DESC
		)
		SELECT w.name AS wave, r.code AS race, l.receipt,
		       CASE l.choice WHEN 'none' THEN 'NONE'
		                     WHEN 'no' THEN 'NO: ' || c.name
		                     WHEN 'yes' THEN 'YES: ' || c.name
		                     ELSE c.number || '. ' || c.name END AS choice
		FROM latest l JOIN races r ON r.id = l.race_id JOIN waves w ON w.id = r.wave_id
		LEFT JOIN candidates c ON c.id = l.candidate_id
		WHERE ($1 = '' OR w.name = $1) AND (NOT w.hold_results OR r.released_at IS NOT NULL)
		ORDER BY w.voting_close DESC, r.code`, wave)
	if err != nil {
		return l, fmt.Errorf("receipts: %w", err)
	}
	for _, r := range rows {
		if n := len(l.Receipts); n == 0 || l.Receipts[n-1].Race != r.Race || l.Receipts[n-1].Wave != r.Wave {
			l.Receipts = append(l.Receipts, RaceReceipts{Wave: r.Wave, Race: r.Race})
		}
		rr := &l.Receipts[len(l.Receipts)-1]
		rr.Receipts = append(rr.Receipts, ReceiptLine{Hash: ReceiptHash(r.Receipt), Choice: r.Choice})
	}
	for _, rr := range l.Receipts {
		sort.Slice(rr.Receipts, func(i, j int) bool { return rr.Receipts[i].Hash < rr.Receipts[j].Hash })
	}
	qs, err := publicQuestionnaires(ctx, s.db, wave)
	if err != nil {
		return l, err
	}
	l.Questionnaires = append(l.Questionnaires, qs...)
	return l, nil
}

// SpreadsheetCell makes a text cell of a CSV export safe to open in a
// spreadsheet: a cell that begins with = + - @, a tab or a carriage return
// would be run as a formula (a candidate named =HYPERLINK(…) or
// =cmd|' /C calc'!A0), so it gets a leading single quote, which shows the
// text as it is (OWASP, CSV Injection).
func SpreadsheetCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// ReceiptHash is the published form of a receipt code: the hex SHA-256 of
// the code exactly as mailed (printf %s CODE | sha256sum).
func ReceiptHash(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

// unreachableBallot is the SQL condition, over ballots b, of a ballot that
// could not reach its member: a copy failed for good (a 5xx or too many
// attempts) and none sent on request reached them, or the member is marked
// bounced.
const unreachableBallot = `(EXISTS (SELECT 1 FROM outbox o WHERE ` + ballotCopy + ` AND o.status = 'failed')
		AND NOT EXISTS (SELECT 1 FROM outbox o WHERE ` + ballotCopy + ` AND ` + reachedMember + `))
	OR EXISTS (SELECT 1 FROM members m WHERE m.id = b.member_id AND m.status = 'bounced')`

// mayBeUnreachable is the SQL set of the ballot ids of race $1 that
// unreachableBallot can hold for: those with a failed copy (found through
// outbox_failed) or whose member bounced (members_unreachable). Testing
// the condition on these alone finds the same ballots as testing it on
// every ballot of the race, without reading them all.
const mayBeUnreachable = `(SELECT o.ballot_id FROM outbox o WHERE o.status = 'failed' AND o.ballot_id IS NOT NULL
		UNION SELECT b.id FROM members m JOIN ballots b ON b.member_id = m.id WHERE m.status = 'bounced' AND b.race_id = $1)`

// unreachableCount counts the ballots of race $1 that could not reach
// their members (unreachableBallot).
const unreachableCount = `SELECT count(*) FROM ballots b WHERE b.race_id = $1 AND b.id IN ` + mayBeUnreachable + `
	AND (` + unreachableBallot + `)`
