package ballots

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// DomainQuota is one relay's limit for one recipient domain: messages in
// any hour and in any 24 hours (0: none).
type DomainQuota struct {
	Hourly int
	Daily  int
}

// SendQuota is one relay's quotas, counted across replicas in send_counts:
// Daily messages in any 24 hours (0: none), and per recipient domain
// (lowercase).
type SendQuota struct {
	Daily   int
	Domains map[string]DomainQuota
}

// Limited reports whether q limits anything, i.e. whether a reservation
// must read the counts under the relay's lock (else it only counts).
func (q SendQuota) Limited() bool { return q.Daily > 0 || len(q.Domains) > 0 }

// Reservation is what ReserveSends granted.
type Reservation struct {
	// Admitted says, per recipient domain asked for, whether that message
	// may go through the relay now.
	Admitted []bool
	// Bucket is the minute the admitted messages were counted in: give
	// back the ones not sent with it (GiveBackSends).
	Bucket time.Time
	// RelayFullUntil, when not zero, is when the relay's daily quota,
	// used up, has room again (at least one message).
	RelayFullUntil time.Time
	// DomainFullUntil is, for each domain whose hourly or daily limit
	// refused a message, when it has room again.
	DomainFullUntil map[string]time.Time
}

// sendCountsLock is the first key of the advisory lock a reservation
// takes per relay (the second is the relay's name hashed).
const sendCountsLock = 7_220_016

// ReserveSends counts messages to the recipient domains domains (one
// entry a message, lowercase) against relay's quotas and admits those
// that fit, in order: each admitted one is counted now, in this minute's
// bucket, whether it is then sent or not (GiveBackSends returns what was
// not). With no quota it admits every one and only counts. Replicas
// reserving for one relay take turns on an advisory lock, so two cannot
// both take the last of a quota.
func (s *Store) ReserveSends(ctx context.Context, relay string, q SendQuota, domains []string) (Reservation, error) {
	r := Reservation{Admitted: make([]bool, len(domains))}
	if len(domains) == 0 {
		return r, nil
	}
	if !q.Limited() {
		// Only counting: one statement, no lock.
		for i := range r.Admitted {
			r.Admitted[i] = true
		}
		err := s.db.GetContext(ctx, &r.Bucket, `INSERT INTO send_counts AS c (relay, domain, bucket, n)
			VALUES ($1, '', date_trunc('minute', now()), $2)
			ON CONFLICT (relay, domain, bucket) DO UPDATE SET n = c.n + excluded.n
			RETURNING bucket`, relay, len(domains))
		if err != nil {
			return Reservation{}, fmt.Errorf("count %d sends on relay %s: %w", len(domains), relay, err)
		}
		return r, nil
	}
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, sendCountsLock, relay); err != nil {
			return err
		}
		used, err := usedSends(ctx, tx, relay, q, domains)
		if err != nil {
			return err
		}
		counts := admit(&r, q, used, domains)
		if len(counts) == 0 {
			return tx.GetContext(ctx, &r.Bucket, `SELECT date_trunc('minute', now())`)
		}
		names, ns := make([]string, 0, len(counts)), make([]int64, 0, len(counts))
		for d, n := range counts {
			names, ns = append(names, d), append(ns, int64(n))
		}
		return tx.GetContext(ctx, &r.Bucket, `INSERT INTO send_counts AS c (relay, domain, bucket, n)
			SELECT $1, u.d, date_trunc('minute', now()), u.n FROM unnest($2::text[], $3::bigint[]) AS u(d, n)
			ON CONFLICT (relay, domain, bucket) DO UPDATE SET n = c.n + excluded.n
			RETURNING bucket`, relay, pq.Array(names), pq.Array(ns))
	})
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve %d sends on relay %s: %w", len(domains), relay, err)
	}
	return r, nil
}

// usedCount is what one relay sent to one domain ("": all) in the
// windows, and the oldest minute still in each window.
type usedCount struct {
	Domain     string       `db:"domain"`
	Hour       int          `db:"hour"`
	Day        int          `db:"day"`
	OldestHour sql.NullTime `db:"oldest_hour"`
	OldestDay  sql.NullTime `db:"oldest_day"`
}

// usedSends reads, for a reservation, what relay sent in the last hour
// and day to the domains of domains with a quota and in all. A bucket
// is in a window when any of its minute is, so a quota is never exceeded
// (it may be under-used by a minute's worth).
func usedSends(ctx context.Context, tx *sqlx.Tx, relay string, q SendQuota, domains []string) (map[string]usedCount, error) {
	used := map[string]usedCount{}
	want := []string{""}
	for _, d := range domains {
		if _, ok := q.Domains[d]; ok && !contains(want, d) {
			want = append(want, d)
		}
	}
	var rows []usedCount
	err := tx.SelectContext(ctx, &rows, `SELECT domain,
			coalesce(sum(n) FILTER (WHERE bucket >= date_trunc('minute', now()) - interval '1 hour'), 0) AS hour,
			coalesce(sum(n), 0) AS day,
			min(bucket) FILTER (WHERE n > 0 AND bucket >= date_trunc('minute', now()) - interval '1 hour') AS oldest_hour,
			min(bucket) FILTER (WHERE n > 0) AS oldest_day
		FROM send_counts
		WHERE relay = $1 AND domain = ANY($2) AND bucket >= date_trunc('minute', now()) - interval '1 day'
		GROUP BY domain`, relay, pq.Array(want))
	if err != nil {
		return nil, err
	}
	for _, u := range rows {
		used[u.Domain] = u
	}
	return used, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// admit decides which messages fit, in order, and returns the counts to
// add: "" (the relay's total) and each domain with a quota.
func admit(r *Reservation, q SendQuota, used map[string]usedCount, domains []string) map[string]int {
	counts := map[string]int{}
	// fullUntil is when the oldest counted minute of a window leaves it.
	fullUntil := func(oldest sql.NullTime, window time.Duration) time.Time {
		if !oldest.Valid { // all of the window's count is this minute's
			return time.Now().Truncate(time.Minute).Add(window + time.Minute)
		}
		return oldest.Time.Add(window + time.Minute)
	}
	total := used[""]
	for i, d := range domains {
		if q.Daily > 0 && total.Day+counts[""] >= q.Daily {
			r.RelayFullUntil = fullUntil(total.OldestDay, 24*time.Hour)
			break
		}
		if dq, ok := q.Domains[d]; ok {
			u := used[d]
			if dq.Hourly > 0 && u.Hour+counts[d] >= dq.Hourly {
				r.noteDomainFull(d, fullUntil(u.OldestHour, time.Hour))
				continue
			}
			if dq.Daily > 0 && u.Day+counts[d] >= dq.Daily {
				r.noteDomainFull(d, fullUntil(u.OldestDay, 24*time.Hour))
				continue
			}
			counts[d]++
		}
		counts[""]++
		r.Admitted[i] = true
	}
	return counts
}

func (r *Reservation) noteDomainFull(d string, until time.Time) {
	if r.DomainFullUntil == nil {
		r.DomainFullUntil = map[string]time.Time{}
	}
	if until.After(r.DomainFullUntil[d]) {
		r.DomainFullUntil[d] = until
	}
}

// SendCount is a number of messages reserved for one relay and domain
// ("" for its total) in one minute's bucket.
type SendCount struct {
	Relay  string
	Domain string
	Bucket time.Time
	N      int
}

// GiveBackSends takes back reserved messages that were not sent (a lease
// that ran out, a shutdown, a relay that refused them all), so that they
// count against no quota.
func (s *Store) GiveBackSends(ctx context.Context, cs []SendCount) error {
	if len(cs) == 0 {
		return nil
	}
	relays, domains, buckets, ns := make([]string, len(cs)), make([]string, len(cs)), make([]string, len(cs)), make([]int64, len(cs))
	for i, c := range cs {
		relays[i], domains[i], buckets[i], ns[i] = c.Relay, c.Domain, c.Bucket.UTC().Format(time.RFC3339Nano), int64(c.N)
	}
	_, err := s.db.ExecContext(ctx, `UPDATE send_counts c SET n = c.n - u.n
		FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[]) AS u(relay, domain, bucket, n)
		WHERE c.relay = u.relay AND c.domain = u.domain AND c.bucket = u.bucket`,
		pq.Array(relays), pq.Array(domains), pq.Array(buckets), pq.Array(ns))
	if err != nil {
		return fmt.Errorf("give back %d send counts: %w", len(cs), err)
	}
	return nil
}

// PruneSendCounts deletes the counts older than two days: no window
// reaches them.
func (s *Store) PruneSendCounts(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM send_counts WHERE bucket < now() - interval '2 days'`); err != nil {
		return fmt.Errorf("prune send counts: %w", err)
	}
	return nil
}

// RelayLimits is one relay's limits as recorded for status and the digest.
type RelayLimits struct {
	Relay     string  `db:"relay" json:"relay"`
	PerSecond float64 `db:"per_second" json:"per_second"` // 0: none
	Daily     int     `db:"daily" json:"daily"`           // 0: none
	// UsedDay is what it was given in the last 24 hours.
	UsedDay int `db:"used_day" json:"used_day"`
}

// RecordRelays records the relays' limits in order of preference (an
// outbox does at start), so that status and the digest can reckon with
// them; relays not listed are forgotten.
func (s *Store) RecordRelays(ctx context.Context, rs []RelayLimits) error {
	names, rates, dailies := make([]string, len(rs)), make([]float64, len(rs)), make([]int64, len(rs))
	for i, r := range rs {
		names[i], rates[i], dailies[i] = r.Relay, r.PerSecond, int64(r.Daily)
	}
	return s.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM send_relays WHERE relay <> ALL($1)`, pq.Array(names)); err != nil {
			return fmt.Errorf("record relays: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO send_relays AS s (relay, position, per_second, daily)
			SELECT u.relay, u.pos, u.rate, u.daily FROM unnest($1::text[], $2::float8[], $3::bigint[]) WITH ORDINALITY AS u(relay, rate, daily, pos)
			ON CONFLICT (relay) DO UPDATE SET position = excluded.position, per_second = excluded.per_second, daily = excluded.daily, seen_at = now()`,
			pq.Array(names), pq.Array(rates), pq.Array(dailies))
		if err != nil {
			return fmt.Errorf("record relays: %w", err)
		}
		return nil
	})
}

// SendPace is how fast a wave's ballots are going out: what ETA reckons
// with.
type SendPace struct {
	Wave string `json:"wave"`
	// Remaining is the wave's ballots not yet sent (queued, being sent or
	// deferred).
	Remaining int `json:"remaining"`
	// PerMinute is the messages a minute all relays were given over the
	// last ten minutes (or since sending began, when later).
	PerMinute float64 `json:"per_minute"`
	// Relays are the relays' limits, in order of preference.
	Relays []RelayLimits `json:"relays"`
}

// paceWindow is how far back the recent pace is measured.
const paceWindow = 10 * time.Minute

// WaveSendPace reads the pace of wave's ballots (by name).
func (s *Store) WaveSendPace(ctx context.Context, wave string) (SendPace, error) {
	return wavePace(ctx, s.db, wave)
}

func wavePace(ctx context.Context, q sqlx.QueryerContext, wave string) (SendPace, error) {
	p := SendPace{Wave: wave, Relays: []RelayLimits{}}
	// The rows waiting (outbox_ready) and those in flight (outbox_leased)
	// are counted apart, each through its own partial index.
	err := sqlx.GetContext(ctx, q, &p.Remaining, `WITH wr AS (SELECT r.id FROM races r JOIN waves w ON w.id = r.wave_id WHERE w.name = $1)
		SELECT (SELECT count(*) FROM outbox o WHERE o.status IN ('queued', 'deferred') AND o.kind = 'ballot' AND o.race_id IN (SELECT id FROM wr))
		     + (SELECT count(*) FROM outbox o WHERE o.status = 'sending' AND o.kind = 'ballot' AND o.race_id IN (SELECT id FROM wr))`, wave)
	if err != nil {
		return p, fmt.Errorf("pace of wave %s: %w", wave, err)
	}
	var recent struct {
		N      int          `db:"n"`
		Oldest sql.NullTime `db:"oldest"`
		Now    time.Time    `db:"now"`
	}
	err = sqlx.GetContext(ctx, q, &recent, `SELECT coalesce(sum(n), 0) AS n, min(bucket) FILTER (WHERE n > 0) AS oldest, now() AS now
		FROM send_counts WHERE domain = '' AND bucket >= date_trunc('minute', now()) - $1 * interval '1 second'`, paceWindow.Seconds())
	if err != nil {
		return p, fmt.Errorf("pace of wave %s: %w", wave, err)
	}
	if recent.N > 0 && recent.Oldest.Valid {
		span := max(recent.Now.Sub(recent.Oldest.Time), time.Minute)
		p.PerMinute = float64(recent.N) / span.Minutes()
	}
	if p.Relays, err = relayUsage(ctx, q); err != nil {
		return p, fmt.Errorf("pace of wave %s: %w", wave, err)
	}
	return p, nil
}

// RelayUsage is each recorded relay's limits and what it was given in the
// last 24 hours, in order of preference (/metrics).
func (s *Store) RelayUsage(ctx context.Context) ([]RelayLimits, error) {
	return relayUsage(ctx, s.db)
}

func relayUsage(ctx context.Context, q sqlx.QueryerContext) ([]RelayLimits, error) {
	rs := []RelayLimits{}
	err := sqlx.SelectContext(ctx, q, &rs, `SELECT r.relay, r.per_second, r.daily,
			coalesce((SELECT sum(n) FROM send_counts c WHERE c.relay = r.relay AND c.domain = ''
			          AND c.bucket >= date_trunc('minute', now()) - interval '1 day'), 0) AS used_day
		FROM send_relays r ORDER BY r.position`)
	if err != nil {
		return nil, fmt.Errorf("relays' usage: %w", err)
	}
	return rs, nil
}

// ETA is when, at this pace and under the relays' limits, the wave's
// ballots will all be out: now when none remain; false when nothing is
// going out (no recent sends), so no time can be told. The recent pace
// is capped by the relays' rates, and the part beyond what their daily
// quotas have left waits for the quotas to free: a day's quota a day.
func (p SendPace) ETA(now time.Time) (time.Time, bool) {
	if p.Remaining == 0 {
		return now, true
	}
	rate := p.PerMinute / 60 // a second
	capRate, capped := 0.0, true
	daily, left, quotaed := 0, 0, true
	for _, r := range p.Relays {
		if r.PerSecond <= 0 {
			capped = false
		}
		capRate += r.PerSecond
		if r.Daily <= 0 {
			quotaed = false
		}
		daily, left = daily+r.Daily, left+max(0, r.Daily-r.UsedDay)
	}
	if capped && len(p.Relays) > 0 {
		rate = min(rate, capRate)
	}
	if rate <= 0 {
		return time.Time{}, false
	}
	d := time.Duration(float64(p.Remaining) / rate * float64(time.Second))
	if quotaed && len(p.Relays) > 0 && daily > 0 && p.Remaining > left {
		wait := time.Duration(float64(p.Remaining-left) / float64(daily) * float64(24*time.Hour))
		d = max(d, wait)
	}
	return now.Add(d).Truncate(time.Second), true
}

// Describe says the ETA in words for status and the digest: "all out in
// 2h10m (about 14:20 UTC)", "all out", or why no time can be told.
func (p SendPace) Describe(now time.Time, loc *time.Location) string {
	if p.Remaining == 0 {
		return "all out"
	}
	at, ok := p.ETA(now)
	if !ok {
		return fmt.Sprintf("%d to send; none went out in the last %.0f minutes", p.Remaining, paceWindow.Minutes())
	}
	left := at.Sub(now).Round(time.Minute)
	var b strings.Builder
	fmt.Fprintf(&b, "%d to send at %.0f a minute: all out in %s (about %s)", p.Remaining, p.PerMinute,
		strings.TrimSuffix(max(left, time.Minute).String(), "0s"), at.In(loc).Format("Mon 15:04 MST"))
	return b.String()
}

// sendingPaces is the pace of each wave with an open race and ballots
// still to send, for the digest.
func sendingPaces(ctx context.Context, q sqlx.QueryerContext) ([]SendPace, error) {
	var ws []string
	err := sqlx.SelectContext(ctx, q, &ws, `SELECT DISTINCT w.name FROM waves w JOIN races r ON r.wave_id = w.id WHERE r.status = 'open' ORDER BY w.name`)
	if err != nil {
		return nil, fmt.Errorf("waves sending: %w", err)
	}
	var out []SendPace
	for _, w := range ws {
		p, err := wavePace(ctx, q, w)
		if err != nil {
			return nil, err
		}
		if p.Remaining > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}
