package ballots

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// CountHandled returns how many inbound messages have been handled
// (processed, whatever the outcome).
func (s *Store) CountHandled(ctx context.Context) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM inbound_messages WHERE processed_at IS NOT NULL`); err != nil {
		return 0, fmt.Errorf("count handled messages: %w", err)
	}
	return n, nil
}

// QuarantineEntry is one quarantined inbound message, as listed for staff.
type QuarantineEntry struct {
	ID       int64     `db:"id" json:"id"`
	Received time.Time `db:"received_at" json:"received"`
	From     string    `db:"from_addr" json:"from"`
	Subject  string    `db:"subject" json:"subject"`
	Class    string    `db:"class" json:"class"`
	Outcome  string    `db:"outcome" json:"outcome"`
	Detail   string    `db:"detail" json:"detail"`
}

// Quarantine lists the quarantined inbound messages, oldest first.
func (s *Store) Quarantine(ctx context.Context) ([]QuarantineEntry, error) {
	var es []QuarantineEntry
	err := s.db.SelectContext(ctx, &es, `SELECT id, received_at, from_addr, subject, class, outcome, detail
		FROM inbound_messages WHERE quarantined ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return es, nil
}

// InboundRaw locks inbound message id in tx (a replay and the reader never
// apply it at the same time) and returns its raw bytes and when it was
// received; ErrPruned once retention has pruned them.
func InboundRaw(ctx context.Context, tx *sqlx.Tx, id int64) ([]byte, time.Time, error) {
	var row struct {
		Raw      []byte    `db:"raw"`
		Received time.Time `db:"received_at"`
	}
	if err := tx.GetContext(ctx, &row, `SELECT raw, received_at FROM inbound_messages WHERE id = $1 FOR UPDATE`, id); err != nil {
		return nil, time.Time{}, notFound(err, fmt.Sprintf("inbound message %d", id))
	}
	if len(row.Raw) == 0 {
		return nil, time.Time{}, fmt.Errorf("inbound message %d: %w", id, ErrPruned)
	}
	return row.Raw, row.Received, nil
}

// SetInboundHeader updates the sender and subject recorded for message id
// (a replay may read them where the first reading could not).
func SetInboundHeader(ctx context.Context, tx *sqlx.Tx, id int64, from, subject string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE inbound_messages SET from_addr = $2, subject = $3 WHERE id = $1`, id, textColumn(from), textColumn(truncate(subject, 500))); err != nil {
		return fmt.Errorf("inbound %d header: %w", id, err)
	}
	return nil
}

// Inbound is the record of one message read from the mailbox.
type Inbound struct {
	MessageKey  string
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Raw         []byte
	From        string
	Subject     string
}

// ErrDuplicate means the message was recorded before: reading it again
// changes nothing.
var ErrDuplicate = errors.New("message already recorded")

// RecordInbound stores the message's raw bytes in tx and returns its id, or
// ErrDuplicate when a message with the same key was recorded before.
func RecordInbound(ctx context.Context, tx *sqlx.Tx, in Inbound) (int64, error) {
	ids, err := RecordInbounds(ctx, tx, []Inbound{in})
	if err != nil {
		return 0, fmt.Errorf("record message %s: %w", in.MessageKey, err)
	}
	if ids[0] == 0 {
		return 0, ErrDuplicate
	}
	return ids[0], nil
}

// RecordInbounds is RecordInbound for a batch, in one statement: ids[i] is
// ins[i]'s id, or 0 when a message with its key was recorded before (or
// earlier in ins).
func RecordInbounds(ctx context.Context, tx *sqlx.Tx, ins []Inbound) ([]int64, error) {
	n := len(ins)
	keys, boxes, validities, uids := make([]string, n), make([]string, n), make([]int64, n), make([]int64, n)
	raws, froms, subjects := make([][]byte, n), make([]string, n), make([]string, n)
	for i, in := range ins {
		keys[i], boxes[i], validities[i], uids[i] = textColumn(in.MessageKey), in.Mailbox, int64(in.UIDValidity), int64(in.UID)
		raws[i], froms[i], subjects[i] = in.Raw, textColumn(in.From), textColumn(truncate(in.Subject, 500))
	}
	var rows []struct {
		ID  int64  `db:"id"`
		Key string `db:"message_key"`
	}
	// In the batch's order, so the first of two copies is the one recorded.
	err := tx.SelectContext(ctx, &rows, `INSERT INTO inbound_messages (message_key, mailbox, uid_validity, uid, raw, from_addr, subject)
		SELECT k, b, v, u, r, f, s FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bytea[], $6::text[], $7::text[])
			WITH ORDINALITY AS t(k, b, v, u, r, f, s, ord) ORDER BY ord
		ON CONFLICT (message_key) DO NOTHING RETURNING id, message_key`,
		pq.Array(keys), pq.Array(boxes), pq.Array(validities), pq.Array(uids), pq.ByteaArray(raws), pq.Array(froms), pq.Array(subjects))
	if err != nil {
		return nil, fmt.Errorf("record %d messages: %w", n, err)
	}
	byKey := make(map[string]int64, len(rows))
	for _, r := range rows {
		byKey[r.Key] = r.ID
	}
	ids := make([]int64, n)
	for i, k := range keys {
		ids[i] = byKey[k]
		delete(byKey, k) // a second copy is a duplicate
	}
	return ids, nil
}

// Outcome is what handling an inbound message came to.
type Outcome struct {
	Class       string
	Outcome     string
	Detail      string
	Quarantined bool
}

// FinishInbound records what became of message id.
func FinishInbound(ctx context.Context, tx *sqlx.Tx, id int64, o Outcome) error {
	if err := FinishInbounds(ctx, tx, []int64{id}, []Outcome{o}); err != nil {
		return fmt.Errorf("finish message %d: %w", id, err)
	}
	return nil
}

// FinishInbounds is FinishInbound for a batch, in one statement: message
// ids[i] came to outs[i].
func FinishInbounds(ctx context.Context, tx *sqlx.Tx, ids []int64, outs []Outcome) error {
	if len(ids) == 0 {
		return nil
	}
	classes, outcomes, details, quarantined := make([]string, len(outs)), make([]string, len(outs)), make([]string, len(outs)), make([]bool, len(outs))
	for i, o := range outs {
		classes[i], outcomes[i], details[i], quarantined[i] = o.Class, o.Outcome, textColumn(truncate(o.Detail, 2000)), o.Quarantined
	}
	_, err := tx.ExecContext(ctx, `UPDATE inbound_messages i SET class = t.c, outcome = t.o, detail = t.d, quarantined = t.q, processed_at = now()
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bool[]) AS t(id, c, o, d, q) WHERE i.id = t.id`,
		pq.Array(ids), pq.Array(classes), pq.Array(outcomes), pq.Array(details), pq.Array(quarantined))
	if err != nil {
		return fmt.Errorf("finish %d messages: %w", len(ids), err)
	}
	return nil
}
