package ballots

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Retention (BALLOTD_RETAIN): once a wave has been closed longer than the
// retention period, what members wrote is pruned and what was decided is
// kept. Pruned:
//
//   - the raw bytes of inbound messages (inbound_messages.raw, set to the
//     empty string): the replies, bounces and forms of the wave;
//   - what an outbox row quotes of the message it answered (the data keys
//     quote, read, subject, sender and in_reply_to). The outbox keeps no
//     rendered bodies: rows are rendered at send time from their
//     references, so these keys are all of a member's words it holds.
//
// Kept: every row (inbound messages with their Message-ID key, class,
// outcome and detail; outbox rows with their status, codes and receipt),
// ballots, votes with their receipts, tallies. The same Message-ID read
// again is still a duplicate, and a recount from the votes still gives the
// frozen tally: counting never reads the raw bytes.
//
// A wave is closed when none of its races is open and one at least has
// closed; it is past retention when both its last close and its scheduled
// voting close are older than the period. An inbound message is pruned
// when it is linked (by a vote, an answer, a bounce or a nomination) to a
// race of such a wave and to no other race, or when it is linked to no
// race at all and arrived before the latest close past retention (mail
// that was about no race, such as an unmatched reply, goes with the wave
// it arrived during). An outbox row is pruned once it is finished (sent or
// failed) and belongs to a race of such a wave, or, belonging to no race,
// answered a message that is pruned.

// ErrPruned is returned for an inbound message whose raw bytes were pruned
// by retention: it can no longer be replayed.
var ErrPruned = errors.New("its raw bytes were pruned by retention (BALLOTD_RETAIN)")

// prunedKeys are the outbox data keys that carry what a member wrote.
var prunedKeys = pq.StringArray{"quote", "read", "subject", "sender", "in_reply_to"}

// pruneBatch is how many rows one prune transaction changes: short
// transactions beside a running serve.
const pruneBatch = 1000

// PruneCount is what retention removes of one kind of row.
type PruneCount struct {
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
}

// PruneReport says what a prune removed, or would remove in a dry run.
type PruneReport struct {
	// Before is the cutoff: waves closed before it are past retention.
	Before time.Time `json:"before"`
	// Waves names the waves past retention (pruned now or before).
	Waves []string `json:"waves"`
	// Inbound counts the inbound messages whose raw bytes go.
	Inbound PruneCount `json:"inbound"`
	// Outbox counts the outbox rows whose quoted words go.
	Outbox PruneCount `json:"outbox"`
	DryRun bool       `json:"dry_run"`
}

// retentionCTE finds, with $1 the retention period in seconds, the waves
// past retention (old_waves), their races (old_races) and the inbound
// messages to prune, pruned already or not (old_inbound).
const retentionCTE = `
WITH old_waves AS (
	SELECT w.id, w.name, greatest(max(r.closed_at), w.voting_close) AS closed_at
	FROM waves w JOIN races r ON r.wave_id = w.id
	GROUP BY w.id
	HAVING bool_and(r.status <> 'open') AND bool_or(r.status = 'closed')
	   AND greatest(max(r.closed_at), w.voting_close) < now() - make_interval(secs => $1)
), old_races AS (
	SELECT r.id FROM races r JOIN old_waves w ON w.id = r.wave_id
), links AS (
	SELECT v.inbound_id, b.race_id FROM votes v JOIN ballots b ON b.id = v.ballot_id
	UNION ALL
	SELECT o.inbound_id, coalesce(o.race_id, b.race_id) FROM outbox o LEFT JOIN ballots b ON b.id = o.ballot_id
	WHERE o.inbound_id IS NOT NULL
	UNION ALL
	SELECT o.bounce_inbound_id, coalesce(o.race_id, b.race_id) FROM outbox o LEFT JOIN ballots b ON b.id = o.ballot_id
	WHERE o.bounce_inbound_id IS NOT NULL
	UNION ALL
	SELECT n.inbound_id, c.race_id FROM nominations n JOIN candidates c ON c.id = n.candidate_id
	WHERE n.inbound_id IS NOT NULL
), held AS (
	SELECT DISTINCT l.inbound_id FROM links l
	WHERE l.race_id IS NOT NULL AND l.race_id NOT IN (SELECT id FROM old_races)
), hit AS (
	SELECT DISTINCT l.inbound_id FROM links l JOIN old_races r ON r.id = l.race_id
), old_inbound AS (
	SELECT i.id FROM inbound_messages i
	WHERE (i.id IN (SELECT inbound_id FROM hit) OR i.received_at < (SELECT max(closed_at) FROM old_waves))
	  AND i.id NOT IN (SELECT inbound_id FROM held)
)`

// Prune applies retention: the raw bytes of inbound messages and the quoted
// words of outbox rows of waves closed longer than retain ago are removed
// (see the comment at the top of this file for what goes and what stays).
// With dryRun it changes nothing and reports what would go. Rows pruned
// before are not counted again. It works in short transactions of
// pruneBatch rows, so it can run beside a serve; a second run finds
// nothing left.
func (s *Store) Prune(ctx context.Context, retain time.Duration, dryRun bool) (PruneReport, error) {
	rep := PruneReport{DryRun: dryRun}
	if retain <= 0 {
		return rep, fmt.Errorf("prune: retention must be positive, got %s", retain)
	}
	secs := retain.Seconds()
	if err := s.db.GetContext(ctx, &rep.Before, `SELECT now() - make_interval(secs => $1)`, secs); err != nil {
		return rep, fmt.Errorf("prune: cutoff: %w", err)
	}
	rep.Waves = []string{}
	if err := s.db.SelectContext(ctx, &rep.Waves, retentionCTE+` SELECT name FROM old_waves ORDER BY closed_at, id`, secs); err != nil {
		return rep, fmt.Errorf("prune: waves past retention: %w", err)
	}
	if len(rep.Waves) == 0 {
		return rep, nil
	}

	type sized struct {
		ID    int64 `db:"id"`
		Bytes int64 `db:"bytes"`
	}
	var inbound []sized
	err := s.db.SelectContext(ctx, &inbound, retentionCTE+`
		SELECT i.id, octet_length(i.raw) AS bytes FROM inbound_messages i
		WHERE i.id IN (SELECT id FROM old_inbound) AND octet_length(i.raw) > 0 ORDER BY i.id`, secs)
	if err != nil {
		return rep, fmt.Errorf("prune: inbound messages: %w", err)
	}
	var outbox []sized
	err = s.db.SelectContext(ctx, &outbox, retentionCTE+`
		SELECT o.id, octet_length(o.data::text) - octet_length((o.data - $2::text[])::text) AS bytes
		FROM outbox o LEFT JOIN ballots b ON b.id = o.ballot_id
		WHERE o.status IN ('sent', 'failed') AND o.data ?| $2::text[]
		  AND (coalesce(o.race_id, b.race_id) IN (SELECT id FROM old_races)
		       OR (coalesce(o.race_id, b.race_id) IS NULL AND o.inbound_id IN (SELECT id FROM old_inbound)))
		ORDER BY o.id`, secs, prunedKeys)
	if err != nil {
		return rep, fmt.Errorf("prune: outbox rows: %w", err)
	}
	if dryRun {
		for _, m := range inbound {
			rep.Inbound.Rows, rep.Inbound.Bytes = rep.Inbound.Rows+1, rep.Inbound.Bytes+m.Bytes
		}
		for _, o := range outbox {
			rep.Outbox.Rows, rep.Outbox.Bytes = rep.Outbox.Rows+1, rep.Outbox.Bytes+o.Bytes
		}
		return rep, nil
	}

	// The sizes are taken again as each batch changes its rows: what is
	// reported is what went.
	for start := 0; start < len(inbound); start += pruneBatch {
		ids := make(pq.Int64Array, 0, pruneBatch)
		for _, m := range inbound[start:min(start+pruneBatch, len(inbound))] {
			ids = append(ids, m.ID)
		}
		c, err := pruneRows(ctx, s.db, `
			WITH old AS (
				SELECT id, octet_length(raw) AS bytes FROM inbound_messages
				WHERE id = ANY($1) AND octet_length(raw) > 0 FOR UPDATE
			)
			UPDATE inbound_messages i SET raw = ''::bytea FROM old WHERE i.id = old.id RETURNING old.bytes`, ids)
		if err != nil {
			return rep, fmt.Errorf("prune: raw bytes of %d inbound messages from id %d: %w", len(ids), ids[0], err)
		}
		rep.Inbound.Rows, rep.Inbound.Bytes = rep.Inbound.Rows+c.Rows, rep.Inbound.Bytes+c.Bytes
	}
	for start := 0; start < len(outbox); start += pruneBatch {
		ids := make(pq.Int64Array, 0, pruneBatch)
		for _, o := range outbox[start:min(start+pruneBatch, len(outbox))] {
			ids = append(ids, o.ID)
		}
		c, err := pruneRows(ctx, s.db, `
			WITH old AS (
				SELECT id, octet_length(data::text) - octet_length((data - $2::text[])::text) AS bytes FROM outbox
				WHERE id = ANY($1) AND status IN ('sent', 'failed') AND data ?| $2::text[] FOR UPDATE
			)
			UPDATE outbox o SET data = o.data - $2::text[] FROM old WHERE o.id = old.id RETURNING old.bytes`, ids, prunedKeys)
		if err != nil {
			return rep, fmt.Errorf("prune: data of %d outbox rows from id %d: %w", len(ids), ids[0], err)
		}
		rep.Outbox.Rows, rep.Outbox.Bytes = rep.Outbox.Rows+c.Rows, rep.Outbox.Bytes+c.Bytes
	}
	return rep, nil
}

// pruneRows runs one batch's update, which returns the bytes each row
// lost, and sums them.
func pruneRows(ctx context.Context, db *sqlx.DB, query string, args ...any) (PruneCount, error) {
	var c PruneCount
	var bytes []int64
	if err := db.SelectContext(ctx, &bytes, query, args...); err != nil {
		return c, err
	}
	for _, b := range bytes {
		c.Rows, c.Bytes = c.Rows+1, c.Bytes+b
	}
	return c, nil
}
