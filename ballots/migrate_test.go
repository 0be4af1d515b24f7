package ballots_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// Each applied migration is recorded with its name and checksum; a
// database with a migration this binary does not know, one whose SQL
// changed, or one pending below an applied one is refused by CheckSchema
// and by Migrate, which then applies nothing.
func TestMigrationGuards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	migs, err := ballots.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		breakSQL string
		want     string
		newer    bool
	}{
		{"unknown", `INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_from_the_future.sql', 'x')`,
			"the schema is newer than this ballotd: upgrade it (migration 9999_from_the_future.sql is applied but this ballotd does not know it)", true},
		{"changed", `UPDATE schema_migrations SET checksum = 'deadbeefdeadbeef' WHERE version = 1`,
			"migration " + migs[0].Name + " changed since it was applied", false},
		{"renamed", `UPDATE schema_migrations SET name = '0001_other.sql', checksum = NULL WHERE version = 1`,
			"migration " + migs[0].Name + " changed since it was applied", false},
		{"out of order", `DELETE FROM schema_migrations WHERE version = ` + strconv.Itoa(migs[2].Version),
			"migration " + migs[2].Name + " is not applied but a later one is", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := testenv.Database(t)
			if _, err := ballots.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			states, err := ballots.MigrationStatus(ctx, db)
			if err != nil || len(states) != len(migs) {
				t.Fatalf("status: %v, %d states", err, len(states))
			}
			for i, s := range states {
				if s.State != ballots.MigrationApplied || s.Checksum != migs[i].Checksum() || s.AppliedAt == nil {
					t.Fatalf("state %+v; want applied with checksum %s", s, migs[i].Checksum())
				}
			}
			if _, err := db.ExecContext(ctx, c.breakSQL); err != nil {
				t.Fatal(err)
			}
			_, err = ballots.CheckSchema(ctx, db)
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, ballots.ErrSchemaNewer) != c.newer {
				t.Errorf("CheckSchema: %v; want %q (newer: %v)", err, c.want, c.newer)
			}
			applied, err := ballots.Migrate(ctx, db)
			if err == nil || !strings.Contains(err.Error(), c.want) || len(applied) != 0 {
				t.Errorf("Migrate: %v, applied %v; want refused with %q", err, applied, c.want)
			}
		})
	}
}

// A database migrated before checksums were recorded (schema_migrations
// with version and name only) upgrades cleanly: nothing is applied again,
// and the checksums are recorded.
func TestMigrateRecordsChecksumsOfAnOldDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.Database(t)
	if _, err := ballots.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE schema_migrations DROP COLUMN checksum`); err != nil {
		t.Fatal(err)
	}
	if pending, err := ballots.CheckSchema(ctx, db); err != nil || len(pending) != 0 {
		t.Fatalf("old database: pending %v, %v; want none and no error", pending, err)
	}
	applied, err := ballots.Migrate(ctx, db)
	if err != nil || len(applied) != 0 {
		t.Fatalf("migrate an old database: %v, applied %v", err, applied)
	}
	var missing int
	if err := db.GetContext(ctx, &missing, `SELECT count(*) FROM schema_migrations WHERE checksum IS NULL`); err != nil || missing != 0 {
		t.Fatalf("%d migrations without a checksum after migrate (%v)", missing, err)
	}
}
