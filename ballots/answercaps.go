package ballots

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ballotd/ballotd/templates"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// CapPeriod is the window an answer cap counts in.
type CapPeriod string

// The windows of answer caps, in UTC.
const (
	CapDay  CapPeriod = "day"
	CapHour CapPeriod = "hour"
)

// AnswerCap is one bound an automatic answer must fit under: at most Max
// answers counted under Scope in the current Period.
type AnswerCap struct {
	Scope  string
	Period CapPeriod
	Max    int
}

// TakeAnswerCaps counts one answer under each of caps, in tx, when every
// one of them has room, and returns ok; otherwise it counts nothing and
// returns the first cap that was full. All caps are counted in one upsert,
// whose row locks serialise concurrent transactions, so a cap holds under
// concurrency; the counts of a refused answer are given back at once.
func TakeAnswerCaps(ctx context.Context, tx *sqlx.Tx, caps []AnswerCap) (full AnswerCap, ok bool, err error) {
	for _, c := range caps {
		if c.Max <= 0 {
			return c, false, nil
		}
	}
	scopes, periods, maxes := capColumns(caps)
	var taken []struct {
		Scope  string    `db:"scope"`
		Period time.Time `db:"period"`
	}
	// In scope order, so that two transactions lock shared rows (the
	// strangers' hour) in the same order.
	err = tx.SelectContext(ctx, &taken, `INSERT INTO answer_counts (scope, period, n, cap)
		SELECT c.scope, date_trunc(c.per, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 1, c.mx
		FROM unnest($1::text[], $2::text[], $3::int[]) AS c(scope, per, mx) ORDER BY c.scope
		ON CONFLICT (scope, period) DO UPDATE SET n = answer_counts.n + 1, cap = EXCLUDED.cap WHERE answer_counts.n < EXCLUDED.cap
		RETURNING scope, period`, pq.Array(scopes), pq.Array(periods), pq.Array(maxes))
	if err != nil {
		return AnswerCap{}, false, fmt.Errorf("answer caps %s: %w", strings.Join(scopes, ", "), err)
	}
	if len(taken) == len(caps) {
		return AnswerCap{}, true, nil
	}
	got := map[string]bool{}
	back, at := make([]string, len(taken)), make([]time.Time, len(taken))
	for i, t := range taken {
		got[t.Scope] = true
		back[i], at[i] = t.Scope, t.Period
	}
	for _, c := range caps {
		if !got[textColumn(c.Scope)] {
			full = c
			break
		}
	}
	return full, false, giveBack(ctx, tx, back, at)
}

// giveBack uncounts one answer under each scope and period given.
func giveBack(ctx context.Context, tx *sqlx.Tx, scopes []string, periods []time.Time) error {
	if len(scopes) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE answer_counts a SET n = a.n - 1
		FROM unnest($1::text[], $2::timestamptz[]) AS t(scope, period) WHERE a.scope = t.scope AND a.period = t.period`,
		pq.Array(scopes), pq.Array(periods)); err != nil {
		return fmt.Errorf("answer caps: give back %s: %w", strings.Join(scopes, ", "), err)
	}
	return nil
}

// ClaimAnswer is ClaimAnswerSlot and then TakeAnswerCaps, in one statement
// when the first of reason's slots for sender today is free (the usual
// case), else as those two do it. It returns the slot claimed ("" when
// all were used today: nothing is counted), and, when a cap was full, that
// cap and ok false (the slot and the counts are given back). It is
// ClaimAnswers with one claim.
func ClaimAnswer(ctx context.Context, tx *sqlx.Tx, sender, reason string, slots int, inboundID int64, caps []AnswerCap) (slot string, full AnswerCap, ok bool, err error) {
	got, err := ClaimAnswers(ctx, tx, []AnswerClaim{{Sender: sender, Reason: reason, Slots: slots, InboundID: inboundID, Caps: caps}})
	if err != nil {
		return "", AnswerCap{}, false, err
	}
	return got[0].Slot, got[0].Full, got[0].OK, nil
}

// claimAlone is ClaimAnswerSlot and then TakeAnswerCaps for c, giving the
// slot back when a cap was full: how a claim that cannot go with others,
// or whose first slot was used, is claimed.
func claimAlone(ctx context.Context, tx *sqlx.Tx, c AnswerClaim) (AnswerClaimed, error) {
	slot, err := ClaimAnswerSlot(ctx, tx, c.Sender, c.Reason, c.Slots, c.InboundID)
	if err != nil || slot == "" {
		return AnswerClaimed{}, err
	}
	full, ok, err := TakeAnswerCaps(ctx, tx, c.Caps)
	if err != nil || ok {
		return AnswerClaimed{Slot: slot, OK: ok}, err
	}
	return AnswerClaimed{Full: full}, ReleaseAnswerSlot(ctx, tx, c.Sender, slot)
}

// AnswerClaim is one answer's claim on the answer policy, as ClaimAnswer
// takes it: reason's slots (Slots of them a day) for Sender, the message
// it answers, and the caps it counts against.
type AnswerClaim struct {
	Sender    string
	Reason    string
	Slots     int
	InboundID int64
	Caps      []AnswerCap
}

// AnswerClaimed is what became of one AnswerClaim, as ClaimAnswer returns it:
// the slot claimed ("" when all were used today), and, when a cap was
// full, that cap and OK false.
type AnswerClaimed struct {
	Slot string
	Full AnswerCap
	OK   bool
}

// ClaimAnswers is ClaimAnswer for each of claims, in order, with the same
// results and the same counts and slots left in tx. The claims that share
// no sender and no cap scope with another claim of the call are claimed in
// one statement (a batch of replies, each from its own voter, is one
// round trip where it was one a reply); a claim whose first slot was taken
// already, that shares its sender or a scope, or that has a cap of no
// answers at all, is then claimed alone, in order (claimAlone). Every
// claim must have a reason.
func ClaimAnswers(ctx context.Context, tx *sqlx.Tx, claims []AnswerClaim) ([]AnswerClaimed, error) {
	out := make([]AnswerClaimed, len(claims))
	alone := make([]bool, len(claims))
	senders, scopes := map[string]int{}, map[string]int{}
	for _, c := range claims {
		if c.Reason == "" {
			return nil, fmt.Errorf("answer claims: a claim to %s without a reason", c.Sender)
		}
		senders[strings.ToLower(textColumn(strings.TrimSpace(c.Sender)))]++
		for _, cp := range c.Caps {
			scopes[textColumn(cp.Scope)]++
		}
	}
	var (
		ords, mx, capOrd     []int64
		who, why, scope, per []string
		inbound              []int64
		together             []int
	)
	for i, c := range claims {
		shared := senders[strings.ToLower(textColumn(strings.TrimSpace(c.Sender)))] > 1 || len(c.Caps) == 0
		for _, cp := range c.Caps {
			shared = shared || cp.Max <= 0 || scopes[textColumn(cp.Scope)] > 1
		}
		if shared {
			alone[i] = true
			continue
		}
		together = append(together, i)
		ords = append(ords, int64(i))
		who, why, inbound = append(who, textColumn(strings.TrimSpace(c.Sender))), append(why, c.Reason), append(inbound, c.InboundID)
		for _, cp := range c.Caps {
			capOrd, scope, per, mx = append(capOrd, int64(i)), append(scope, textColumn(cp.Scope)), append(per, string(cp.Period)), append(mx, int64(cp.Max))
		}
	}
	if len(together) > 0 {
		var rows []struct {
			Ord     int            `db:"ord"`
			Slotted bool           `db:"slotted"`
			Scopes  pq.StringArray `db:"scopes"`
			Periods pq.StringArray `db:"periods"`
		}
		// As ClaimAnswer's statement, for many claims: the slots, then the
		// caps of the claims whose slot was free, in scope order; the
		// results joined to the claims once (a subquery per claim over
		// what was taken made the statement quadratic in the batch).
		err := tx.SelectContext(ctx, &rows, `WITH input AS (
				SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[]) AS i(ord, sender, reason, inbound_id)
			), slot AS (
				INSERT INTO answer_limits (sender, reason, day, inbound_id)
				SELECT lower(i.sender), i.reason, (now() AT TIME ZONE 'UTC')::date, nullif(i.inbound_id, 0) FROM input i ORDER BY i.ord
				ON CONFLICT DO NOTHING RETURNING sender, reason
			), want AS (
				SELECT c.ord, c.scope, c.per, c.mx FROM unnest($5::int[], $6::text[], $7::text[], $8::int[]) AS c(ord, scope, per, mx)
				JOIN input i ON i.ord = c.ord JOIN slot s ON s.sender = lower(i.sender) AND s.reason = i.reason
			), taken AS (
				INSERT INTO answer_counts (scope, period, n, cap)
				SELECT w.scope, date_trunc(w.per, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 1, w.mx FROM want w ORDER BY w.scope
				ON CONFLICT (scope, period) DO UPDATE SET n = answer_counts.n + 1, cap = EXCLUDED.cap WHERE answer_counts.n < EXCLUDED.cap
				RETURNING scope, period
			)
			SELECT i.ord, s.sender IS NOT NULL AS slotted, coalesce(g.scopes, '{}') AS scopes, coalesce(g.periods, '{}') AS periods
			FROM input i
			LEFT JOIN slot s ON s.sender = lower(i.sender) AND s.reason = i.reason
			LEFT JOIN (
				SELECT w.ord, array_agg(t.scope ORDER BY t.scope) AS scopes,
					array_agg(to_char(t.period AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') ORDER BY t.scope) AS periods
				FROM taken t JOIN want w ON w.scope = t.scope GROUP BY w.ord
			) g ON g.ord = i.ord
			ORDER BY i.ord`,
			pq.Array(ords), pq.Array(who), pq.Array(why), pq.Array(inbound), pq.Array(capOrd), pq.Array(scope), pq.Array(per), pq.Array(mx))
		if err != nil {
			return nil, fmt.Errorf("answer claims: %d answers: %w", len(together), err)
		}
		if len(rows) != len(together) {
			return nil, fmt.Errorf("answer claims: %d results for %d answers", len(rows), len(together))
		}
		for _, r := range rows {
			c := claims[r.Ord]
			switch {
			case !r.Slotted:
				// The first slot is used today: the others, one by one.
				alone[r.Ord] = c.Slots > 1
			case len(r.Scopes) == len(c.Caps):
				out[r.Ord] = AnswerClaimed{Slot: c.Reason, OK: true}
			default:
				full, err := giveBackClaim(ctx, tx, c, r.Scopes, r.Periods)
				if err != nil {
					return nil, err
				}
				out[r.Ord] = AnswerClaimed{Full: full}
			}
		}
	}
	for i, c := range claims {
		if !alone[i] {
			continue
		}
		var err error
		if out[i], err = claimAlone(ctx, tx, c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// giveBackClaim undoes claim c, whose slot was claimed and of whose caps
// only those under scopes (in periods) had room: it gives those back,
// releases the slot and returns the first cap that was full.
func giveBackClaim(ctx context.Context, tx *sqlx.Tx, c AnswerClaim, scopes, periods []string) (AnswerCap, error) {
	got := map[string]bool{}
	at := make([]time.Time, len(periods))
	for i, sc := range scopes {
		got[sc] = true
		var err error
		if at[i], err = time.Parse(time.RFC3339, periods[i]); err != nil {
			return AnswerCap{}, fmt.Errorf("answer caps: period %q: %w", periods[i], err)
		}
	}
	var full AnswerCap
	for _, cp := range c.Caps {
		if !got[textColumn(cp.Scope)] {
			full = cp
			break
		}
	}
	if err := giveBack(ctx, tx, scopes, at); err != nil {
		return full, err
	}
	return full, ReleaseAnswerSlot(ctx, tx, c.Sender, c.Reason)
}

// capColumns are caps as the columns of an unnest.
func capColumns(caps []AnswerCap) (scopes, periods []string, maxes []int64) {
	scopes, periods, maxes = make([]string, len(caps)), make([]string, len(caps)), make([]int64, len(caps))
	for i, c := range caps {
		scopes[i], periods[i], maxes[i] = textColumn(c.Scope), string(c.Period), int64(c.Max)
	}
	return scopes, periods, maxes
}

// HoldAnswer records, in tx, that an answer of kind to recipient was not
// sent, and why: the digest counts these.
func HoldAnswer(ctx context.Context, tx *sqlx.Tx, inboundID int64, recipient string, kind templates.Kind, why string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO answers_held (inbound_id, recipient, kind, why) VALUES ($1, lower($2), $3, $4)`,
		nullID(inboundID), textColumn(truncate(strings.TrimSpace(recipient), 320)), kind, truncate(why, 500))
	if err != nil {
		return fmt.Errorf("hold %s answer to %s: %w", kind, recipient, err)
	}
	return nil
}

// AnswersHeldSince counts the answers held back since t.
func AnswersHeldSince(ctx context.Context, q sqlx.QueryerContext, t time.Time) (int, error) {
	var n int
	if err := sqlx.GetContext(ctx, q, &n, `SELECT count(*) FROM answers_held WHERE held_at > $1`, t); err != nil {
		return 0, fmt.Errorf("answers held since %s: %w", t.Format(time.RFC3339), err)
	}
	return n, nil
}

// KnownAddress reports whether addr belongs to an active member or to a
// group leader: someone ballotd knows, as opposed to a stranger (a
// pending sign-up is still a stranger: anyone can create one).
func KnownAddress(ctx context.Context, q sqlx.QueryerContext, addr string) (bool, error) {
	var known bool
	err := sqlx.GetContext(ctx, q, &known, `SELECT EXISTS (SELECT 1 FROM members WHERE email = lower($1) AND status = 'active')
		OR EXISTS (SELECT 1 FROM group_leaders WHERE email = lower($1))`, textColumn(strings.TrimSpace(addr)))
	if err != nil {
		return false, fmt.Errorf("known address %s: %w", addr, err)
	}
	return known, nil
}

// AllowAnswer claims one of the slots automatic answers of reason have per
// sender per UTC day (usually one), in tx. It reports false when all were
// used today: the caller records its outcome and sends nothing. A
// rolled-back tx gives the claim back.
func AllowAnswer(ctx context.Context, tx *sqlx.Tx, sender, reason string, slots int, inboundID int64) (bool, error) {
	slot, err := ClaimAnswerSlot(ctx, tx, sender, reason, slots, inboundID)
	return slot != "", err
}

// ClaimAnswerSlot is AllowAnswer, returning the slot it claimed ("" for
// none), which ReleaseAnswerSlot gives back.
func ClaimAnswerSlot(ctx context.Context, tx *sqlx.Tx, sender, reason string, slots int, inboundID int64) (string, error) {
	for k := 1; k <= max(1, slots); k++ {
		r := reason
		if k > 1 {
			r = fmt.Sprintf("%s#%d", reason, k)
		}
		var n []int
		err := tx.SelectContext(ctx, &n, `INSERT INTO answer_limits (sender, reason, day, inbound_id)
			VALUES (lower($1), $2, (now() AT TIME ZONE 'UTC')::date, $3) ON CONFLICT DO NOTHING RETURNING 1`,
			textColumn(strings.TrimSpace(sender)), r, nullID(inboundID))
		if err != nil {
			return "", fmt.Errorf("answer limit %s to %s: %w", reason, sender, err)
		}
		if len(n) > 0 {
			return r, nil
		}
	}
	return "", nil
}

// ReleaseAnswerSlot gives back today's slot claimed for sender (an answer
// that was not sent after all).
func ReleaseAnswerSlot(ctx context.Context, tx *sqlx.Tx, sender, slot string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM answer_limits WHERE sender = lower($1) AND reason = $2 AND day = (now() AT TIME ZONE 'UTC')::date`,
		textColumn(strings.TrimSpace(sender)), slot)
	if err != nil {
		return fmt.Errorf("answer limit %s to %s: give back: %w", slot, sender, err)
	}
	return nil
}
