package ballots

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// PendingMigrations returns the names of the embedded migrations the
// database has not applied yet (all of them on an empty database).
func PendingMigrations(ctx context.Context, db *sqlx.DB) ([]string, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT to_regclass('schema_migrations') IS NOT NULL`); err != nil {
		return nil, fmt.Errorf("pending migrations: %w", err)
	}
	done := map[int]bool{}
	if exists {
		var vs []int
		if err := db.SelectContext(ctx, &vs, `SELECT version FROM schema_migrations`); err != nil {
			return nil, fmt.Errorf("pending migrations: %w", err)
		}
		for _, v := range vs {
			done[v] = true
		}
	}
	var out []string
	for _, m := range migs {
		if !done[m.Version] {
			out = append(out, m.Name)
		}
	}
	return out, nil
}
