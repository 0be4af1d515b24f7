package ballots

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ballotd/ballotd/templates"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Outbox row status values.
const (
	OutboxQueued   = "queued"
	OutboxSending  = "sending"
	OutboxDeferred = "deferred"
	OutboxSent     = "sent"
	OutboxFailed   = "failed"
)

// Mail is a message to enqueue. References point at the rows it is
// rendered from at send time; Payload carries the rest, and its type says
// the kind (templates.Kind).
type Mail struct {
	Recipient string
	MemberID  int64
	BallotID  int64
	RaceID    int64
	InboundID int64
	Payload   templates.Payload
	// Wait, when positive, is how long after now the mail comes due
	// (an answer held while the mailbox has a backlog: see
	// ReleaseHeldAnswers); zero is at once.
	Wait time.Duration
}

// Kind is the mail's kind, its payload's.
func (m Mail) Kind() templates.Kind { return m.Payload.Kind() }

// Enqueue adds m to the outbox in tx: it is sent only if tx commits.
func Enqueue(ctx context.Context, tx *sqlx.Tx, m Mail) (int64, error) {
	if m.Payload == nil {
		return 0, fmt.Errorf("enqueue to %s: no payload, so no kind", m.Recipient)
	}
	data, err := json.Marshal(m.Payload)
	if err != nil {
		return 0, fmt.Errorf("enqueue %s to %s: %w", m.Kind(), m.Recipient, err)
	}
	var id int64
	err = tx.GetContext(ctx, &id, `INSERT INTO outbox (kind, recipient, member_id, ballot_id, race_id, inbound_id, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		m.Kind(), m.Recipient, nullID(m.MemberID), nullID(m.BallotID), nullID(m.RaceID), nullID(m.InboundID), string(data))
	if err != nil {
		return 0, fmt.Errorf("enqueue %s to %s: %w", m.Kind(), m.Recipient, err)
	}
	return id, nil
}

// EnqueueAll is Enqueue for many mails in one statement, in order.
func EnqueueAll(ctx context.Context, tx *sqlx.Tx, ms []Mail) error {
	if len(ms) == 0 {
		return nil
	}
	n := len(ms)
	kinds, rcpts, datas := make([]string, n), make([]string, n), make([]string, n)
	members, ballots, races, inbounds := make([]sql.NullInt64, n), make([]sql.NullInt64, n), make([]sql.NullInt64, n), make([]sql.NullInt64, n)
	waits := make([]int64, n)
	for i, m := range ms {
		if m.Payload == nil {
			return fmt.Errorf("enqueue to %s: no payload, so no kind", m.Recipient)
		}
		data, err := json.Marshal(m.Payload)
		if err != nil {
			return fmt.Errorf("enqueue %s to %s: %w", m.Kind(), m.Recipient, err)
		}
		kinds[i], rcpts[i], datas[i] = string(m.Kind()), m.Recipient, string(data)
		members[i], ballots[i], races[i], inbounds[i] = nullID(m.MemberID), nullID(m.BallotID), nullID(m.RaceID), nullID(m.InboundID)
		waits[i] = max(0, m.Wait.Milliseconds())
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (kind, recipient, member_id, ballot_id, race_id, inbound_id, data, next_attempt)
		SELECT k, r, m, b, ra, i, d::jsonb, now() + w * interval '1 millisecond'
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::bigint[])
			WITH ORDINALITY AS t(k, r, m, b, ra, i, d, w, ord) ORDER BY ord`,
		pq.Array(kinds), pq.Array(rcpts), pq.Array(members), pq.Array(ballots), pq.Array(races), pq.Array(inbounds), pq.Array(datas), pq.Array(waits))
	if err != nil {
		return fmt.Errorf("enqueue %d mails: %w", n, err)
	}
	return nil
}

// ReleaseHeldAnswers makes due now every answer enqueued to wait (Mail.Wait)
// that has not come due yet, and returns how many: the reader holds the
// answers to a wave of replies while the mailbox has a backlog, so that
// the votes are read first, and releases them when it has caught up.
// Such rows are the only rows that answer a message, are due later and
// were never claimed: retries are deferred, and a row a limit put off
// (PostponeOutbox) carries its claim.
func (s *Store) ReleaseHeldAnswers(ctx context.Context) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET next_attempt = now()
		WHERE status = 'queued' AND next_attempt > now() AND inbound_id IS NOT NULL AND claim IS NULL`)
	if err != nil {
		return 0, fmt.Errorf("release held answers: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("release held answers: %w", err)
	}
	return int(n), nil
}

// OutboxRow is a claimed outbox row with what rendering it needs.
type OutboxRow struct {
	ID         int64          `db:"id"`
	Kind       templates.Kind `db:"kind"`
	Recipient  string         `db:"recipient"`
	MemberID   sql.NullInt64  `db:"member_id"`
	MemberName string         `db:"member_name"`
	// MemberDistrict is the member's district ("" for none), for the
	// footer of member mail.
	MemberDistrict string          `db:"member_district"`
	BallotID       sql.NullInt64   `db:"ballot_id"`
	Nonce          []byte          `db:"nonce"`
	RaceID         sql.NullInt64   `db:"race_id"`
	Data           json.RawMessage `db:"data"`
	// Attempts is how many times the row was tried before this claim.
	Attempts int `db:"attempts"`
	// Claim is this claim's token: only a result or release carrying it
	// changes the row (see RecordResults).
	Claim int64 `db:"claim"`
	// NextAttempt is when the row came due: with ID, its place in the queue.
	NextAttempt time.Time `db:"next_attempt"`
}

// ClaimCursor is where a claimer's last batch ended in the queue's order
// (next_attempt, id); the zero value is the start.
type ClaimCursor struct {
	NextAttempt time.Time
	ID          int64
}

// ClaimOutbox leases up to limit rows that are due (queued, deferred past
// their time, or sending with an expired lease, i.e. left by a crashed
// worker) for lease, each under a new claim token. A claim is not an
// attempt: attempts counts sends tried (RecordResults), so a row that
// waited out its lease behind a rate limit and is claimed again has lost
// nothing. FOR UPDATE SKIP LOCKED lets several workers and
// replicas claim side by side without taking the same row. The two kinds
// of due rows are found separately so that each walks its own partial
// index (outbox_ready, outbox_leased) instead of sorting the whole queue;
// the rows claimed are updated, and their members and ballots read, by
// their keys (= ANY of an array, LATERAL … LIMIT 1), whatever the
// planner's statistics say: a queue a race open has just filled has none
// yet, and a hash join over the whole outbox, members and ballots for each
// batch made a send of 100,000 quadratic.
func (s *Store) ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]OutboxRow, error) {
	rows, _, err := s.ClaimOutboxAfter(ctx, ClaimCursor{}, limit, lease)
	return rows, err
}

// ClaimOutboxAfter is ClaimOutbox for a claimer that keeps its place: it
// takes ready rows after cur in the queue's order and returns where this
// batch ended. Claimed rows leave the ready index only when vacuum comes,
// so a scan from the start would step over every row already sent, and a
// send of a hundred thousand would cost quadratic time; from the cursor
// each claim reads only its own rows. A claimer should claim from the
// start again when a claim after its cursor comes back short, so that
// rows due earlier in the order (released, or skipped while another
// replica held them) are not missed.
func (s *Store) ClaimOutboxAfter(ctx context.Context, cur ClaimCursor, limit int, lease time.Duration) ([]OutboxRow, ClaimCursor, error) {
	after := any("-infinity")
	if !cur.NextAttempt.IsZero() {
		after = cur.NextAttempt
	}
	var rows []OutboxRow
	err := s.db.SelectContext(ctx, &rows, `
		WITH expired AS (
			SELECT id FROM outbox
			WHERE status = 'sending' AND lease_until < now()
			ORDER BY lease_until
			LIMIT $1
			FOR UPDATE SKIP LOCKED
		), ready AS (
			SELECT id FROM outbox
			WHERE status IN ('queued', 'deferred') AND next_attempt <= now()
			  AND (next_attempt, id) > ($3::timestamptz, $4::bigint)
			ORDER BY next_attempt, id
			LIMIT $1
			FOR UPDATE SKIP LOCKED
		), due AS (
			(SELECT id FROM expired) UNION ALL (SELECT id FROM ready) LIMIT $1
		), claimed AS (
			UPDATE outbox o SET status = 'sending', lease_until = now() + $2 * interval '1 millisecond', claim = nextval('outbox_claims')
			WHERE o.id = ANY (ARRAY(SELECT id FROM due))
			RETURNING o.id, o.kind, o.recipient, o.member_id, o.ballot_id, o.race_id, o.data, o.attempts, o.claim, o.next_attempt
		)
		SELECT c.id, c.kind, c.recipient, c.member_id, coalesce(m.name, '') AS member_name, coalesce(m.district, '') AS member_district, c.ballot_id,
		       b.nonce, c.race_id, c.data, c.attempts, c.claim, c.next_attempt
		FROM claimed c
		LEFT JOIN LATERAL (SELECT m.name, m.district FROM members m WHERE m.id = c.member_id LIMIT 1) m ON true
		LEFT JOIN LATERAL (SELECT uuid_send(b.nonce) AS nonce FROM ballots b WHERE b.id = c.ballot_id LIMIT 1) b ON true
		ORDER BY c.id`, limit, lease.Milliseconds(), after, cur.ID)
	if err != nil {
		return nil, cur, fmt.Errorf("claim outbox: %w", err)
	}
	for _, r := range rows {
		if r.NextAttempt.After(cur.NextAttempt) || r.NextAttempt.Equal(cur.NextAttempt) && r.ID > cur.ID {
			cur = ClaimCursor{r.NextAttempt, r.ID}
		}
	}
	return rows, cur, nil
}

// Claimed names one claim of one row: a row and the token its claim wrote.
type Claimed struct {
	ID    int64
	Claim int64
}

// ReleaseOutbox gives claimed rows that were not tried back to the queue,
// due now (a shutdown is not a failure). A row claimed by someone else
// since is left alone.
func (s *Store) ReleaseOutbox(ctx context.Context, rows []Claimed) error {
	if len(rows) == 0 {
		return nil
	}
	ids, claims := make([]int64, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		ids[i], claims[i] = r.ID, r.Claim
	}
	_, err := s.db.ExecContext(ctx, `UPDATE outbox o SET status = CASE WHEN o.attempts = 0 THEN 'queued' ELSE 'deferred' END,
			lease_until = NULL, next_attempt = now()
		FROM unnest($1::bigint[], $2::bigint[]) AS u(id, claim)
		WHERE `+heldRows, pq.Array(ids), pq.Array(claims))
	if err != nil {
		return fmt.Errorf("release %d claimed outbox rows: %w", len(rows), err)
	}
	return nil
}

// heldRows is the condition of a statement that changes claimed rows
// named by two arrays, their ids ($1) and claims ($2, joined as u): the
// rows still sending under those claims, found by their keys whatever the
// planner's statistics say. Written as o.status = 'sending', the
// condition lets the planner walk outbox_leased, which holds every row in
// flight, and join each to the arrays in a nested loop: statistics taken
// while the queue was full (nothing sending, as after a race open) make
// that look cheapest, and a send of 100,000 then spent about 40 µs of
// PostgreSQL a row recording its result, growing with the rows in flight.
// In coalesce, it cannot prove the index's predicate, and o.id = ANY ($1)
// leaves the primary key the one way in.
const heldRows = `o.id = ANY ($1::bigint[]) AND o.id = u.id AND o.claim = u.claim AND coalesce(o.status = 'sending', false)`

// SendResult is what happened to one claimed row.
type SendResult struct {
	ID     int64
	Claim  int64     // the claim the row was sent under (OutboxRow.Claim)
	Status string    // OutboxSent, OutboxDeferred or OutboxFailed
	Code   int       // the SMTP reply code, 0 for a network error
	Reply  string    // the server's reply or the error
	Next   time.Time // when to try again, for OutboxDeferred
	// Reason is the failure's class (FailureReasons), "" when sent.
	Reason string
	// NotAttempt: the relay, not the recipient, refused (down, suspended,
	// over its quota or rate): the row is deferred with the reply on
	// record but its attempts do not grow, so no recipient gives up
	// because of the relay.
	NotAttempt bool
}

// RecordResults records the outcome of claimed rows in one statement and
// counts each as one attempt (but a NotAttempt). Only rows still held under the result's
// claim change: a holder whose lease ran out and whose row was claimed
// again since (by another worker or replica) records nothing, so it cannot
// overwrite the current holder's outcome. It returns how many rows changed.
func (s *Store) RecordResults(ctx context.Context, results []SendResult) (int, error) {
	if len(results) == 0 {
		return 0, nil
	}
	sent, other := 0, results[:0:0]
	for _, r := range results {
		if r.Status == OutboxSent && r.Code == 250 && r.Reply == "ok" && r.Reason == "" {
			sent++
		} else {
			other = append(other, r)
		}
	}
	if sent == 0 {
		return s.recordResults(ctx, results)
	}
	// Almost every result of a send is "sent": those go in a leaner
	// statement, the rest (if any) in the general one.
	ids, claims := make([]int64, 0, sent), make([]int64, 0, sent)
	for _, r := range results {
		if r.Status == OutboxSent && r.Code == 250 && r.Reply == "ok" && r.Reason == "" {
			ids, claims = append(ids, r.ID), append(claims, r.Claim)
		}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE outbox o SET status = 'sent', last_code = 250, last_reply = 'ok',
			next_attempt = now(), lease_until = NULL, attempts = o.attempts + 1, reason = '', sent_at = now()
		FROM unnest($1::bigint[], $2::bigint[]) AS u(id, claim)
		WHERE `+heldRows, pq.Array(ids), pq.Array(claims))
	if err != nil {
		return 0, fmt.Errorf("record %d send results: %w", len(results), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("record %d send results: %w", len(results), err)
	}
	m, err := s.recordResults(ctx, other)
	return int(n) + m, err
}

// recordResults is RecordResults for any outcome.
func (s *Store) recordResults(ctx context.Context, results []SendResult) (int, error) {
	if len(results) == 0 {
		return 0, nil
	}
	ids := make([]int64, len(results))
	statuses := make([]string, len(results))
	codes := make([]int64, len(results))
	replies := make([]string, len(results))
	nexts := make([]string, len(results))
	claims := make([]int64, len(results))
	reasons := make([]string, len(results))
	counted := make([]int64, len(results))
	for i, r := range results {
		if !r.NotAttempt {
			counted[i] = 1
		}
		ids[i], statuses[i], codes[i], replies[i] = r.ID, r.Status, int64(r.Code), truncate(r.Reply, 1000)
		claims[i], reasons[i] = r.Claim, r.Reason
		next := r.Next
		if next.IsZero() {
			next = time.Now()
		}
		nexts[i] = next.UTC().Format(time.RFC3339Nano)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE outbox o SET status = u.status, last_code = NULLIF(u.code, 0), last_reply = u.reply,
			next_attempt = u.next, lease_until = NULL, attempts = o.attempts + u.counted, reason = u.reason,
			sent_at = CASE WHEN u.status = 'sent' THEN now() ELSE o.sent_at END
		FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::bigint[], $7::text[], $8::int[])
			AS u(id, status, code, reply, next, claim, reason, counted)
		WHERE `+heldRows,
		pq.Array(ids), pq.Array(statuses), pq.Array(codes), pq.Array(replies), pq.Array(nexts), pq.Array(claims), pq.Array(reasons), pq.Array(counted))
	if err != nil {
		return 0, fmt.Errorf("record %d send results: %w", len(results), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("record %d send results: %w", len(results), err)
	}
	return int(n), nil
}

// OutboxCount is the number of outbox rows of one kind in one status.
type OutboxCount struct {
	Kind   string `db:"kind" json:"kind"`
	Status string `db:"status" json:"status"`
	Count  int    `db:"count" json:"count"`
	// Attempts is the sum of the rows' tries so far (a send tried and
	// recorded; a claim, a lease run out or a release does not count).
	Attempts int `db:"attempts" json:"attempts"`
}

// OutboxCounts counts outbox rows by kind and status.
func (s *Store) OutboxCounts(ctx context.Context) ([]OutboxCount, error) {
	var cs []OutboxCount
	err := s.db.SelectContext(ctx, &cs, `SELECT kind, status, count(*) AS count, coalesce(sum(attempts), 0) AS attempts
		FROM outbox GROUP BY kind, status ORDER BY kind, status`)
	if err != nil {
		return nil, fmt.Errorf("count outbox: %w", err)
	}
	return cs, nil
}

// OutboxStatusCounts counts outbox rows by status, every status present:
// what status and /metrics show. Unlike OutboxCounts it reads only the
// rows not sent, through the partial indexes of the queue (outbox_ready,
// outbox_leased, outbox_failed), and the number of rows, so that an
// outbox of a million sent ballots is not grouped at each scrape; sent is
// the rest, counted in the same snapshot.
func (s *Store) OutboxStatusCounts(ctx context.Context) (map[string]int, error) {
	var c struct {
		Total    int `db:"total"`
		Queued   int `db:"queued"`
		Deferred int `db:"deferred"`
		Sending  int `db:"sending"`
		Failed   int `db:"failed"`
	}
	err := s.db.GetContext(ctx, &c, `SELECT (SELECT count(*) FROM outbox) AS total,
		(SELECT count(*) FROM outbox WHERE status = 'queued') AS queued,
		(SELECT count(*) FROM outbox WHERE status = 'deferred') AS deferred,
		(SELECT count(*) FROM outbox WHERE status = 'sending') AS sending,
		(SELECT count(*) FROM outbox WHERE status = 'failed') AS failed`)
	if err != nil {
		return nil, fmt.Errorf("count outbox by status: %w", err)
	}
	return map[string]int{OutboxQueued: c.Queued, OutboxDeferred: c.Deferred, OutboxSending: c.Sending, OutboxFailed: c.Failed,
		OutboxSent: c.Total - c.Queued - c.Deferred - c.Sending - c.Failed}, nil
}

// OutboxFailure is a row that will not be sent, with the reason on record.
type OutboxFailure struct {
	ID        int64  `db:"id" json:"id"`
	Kind      string `db:"kind" json:"kind"`
	Recipient string `db:"recipient" json:"recipient"`
	Code      int    `db:"code" json:"code"` // the SMTP reply code, 0 when none (network, render)
	Reply     string `db:"reply" json:"reply"`
	Attempts  int    `db:"attempts" json:"attempts"`
}

// OutboxFailures lists up to limit failed rows, oldest first.
func (s *Store) OutboxFailures(ctx context.Context, limit int) ([]OutboxFailure, error) {
	fs := []OutboxFailure{}
	err := s.db.SelectContext(ctx, &fs, `SELECT id, kind, recipient, coalesce(last_code, 0) AS code, last_reply AS reply, attempts
		FROM outbox WHERE status = 'failed' ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list outbox failures: %w", err)
	}
	return fs, nil
}

// OutboxKind returns the kind of outbox row id.
func (s *Store) OutboxKind(ctx context.Context, id int64) (string, error) {
	var kind string
	if err := s.db.GetContext(ctx, &kind, `SELECT kind FROM outbox WHERE id = $1`, id); err != nil {
		return "", fmt.Errorf("the kind of outbox row %d: %w", id, err)
	}
	return kind, nil
}

// ListenOutbox calls wake whenever a race open commits a chunk of ballots
// (NOTIFY OutboxChannel), until ctx ends: serve wakes its outbox with it,
// so ballots a `ballotd race open` in another process makes go out at
// once rather than at the outbox's next poll. The listener has its own
// connection and reconnects by itself; while it is away the poll still
// finds the rows.
func (s *Store) ListenOutbox(ctx context.Context, wake func()) error {
	if s.url == "" {
		return errors.New("listen for the outbox: the store has no connection string")
	}
	l := pq.NewListener(s.url, time.Second, time.Minute, nil)
	defer l.Close()
	if err := l.Listen(OutboxChannel); err != nil {
		return fmt.Errorf("listen for the outbox: %w", err)
	}
	// What was committed before the listener listened is found now.
	wake()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.Notify:
			// A nil notification follows a reconnect: rows may have come
			// meanwhile, so wake then too.
			wake()
		}
	}
}
