package ballots

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// LastUID returns the highest UID whose handling committed in mailbox
// under uidValidity (0 when none).
func (s *Store) LastUID(ctx context.Context, mailbox string, uidValidity uint32) (uint32, error) {
	var uid []int64
	err := s.db.SelectContext(ctx, &uid, `SELECT last_uid FROM mailbox_cursors WHERE mailbox = $1 AND uid_validity = $2`,
		mailbox, int64(uidValidity))
	if err != nil {
		return 0, fmt.Errorf("last uid of %s: %w", mailbox, err)
	}
	if len(uid) == 0 {
		return 0, nil
	}
	return uint32(uid[0]), nil
}

// AdvanceCursor records in tx that mailbox has been read up to uid.
func AdvanceCursor(ctx context.Context, tx *sqlx.Tx, mailbox string, uidValidity, uid uint32) error {
	if mailbox == "" || uid == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO mailbox_cursors (mailbox, uid_validity, last_uid) VALUES ($1, $2, $3)
		ON CONFLICT (mailbox, uid_validity) DO UPDATE SET last_uid = greatest(mailbox_cursors.last_uid, EXCLUDED.last_uid)`,
		mailbox, int64(uidValidity), int64(uid))
	if err != nil {
		return fmt.Errorf("advance %s to uid %d: %w", mailbox, uid, err)
	}
	return nil
}
