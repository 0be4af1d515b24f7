package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/internal/testenv"
)

// serve refuses a database with pending migrations unless --migrate;
// migrate --status lists them and applies none; once migrated, a database
// that a newer ballotd migrated is refused by every command ("upgrade
// it"), and by check's database line.
func TestMigrationGuardsOnTheCommandLine(t *testing.T) {
	t.Parallel()
	url := testenv.DatabaseURL(t)
	env := map[string]string{"DATABASE_URL": url, "BALLOTD_DOMAIN": "example.org", "BALLOTD_SECRET": "a-long-enough-secret",
		"BALLOTD_IMAP_ADDR": "127.0.0.1:1", "BALLOTD_IMAP_USER": "u", "BALLOTD_SMTP_ADDR": "127.0.0.1:1", "BALLOTD_LOG_FORMAT": "json"}

	code, _, errOut := runWith(env, "serve")
	if code != 1 || !strings.Contains(errOut, "migrations not applied") || !strings.Contains(errOut, "run ballotd migrate first (or serve --migrate)") {
		t.Errorf("serve on an unmigrated database: exit %d, stderr %s; want refused naming the migrations", code, errOut)
	}
	code, _, errOut = runWith(env, "races")
	if code != 1 || !strings.Contains(errOut, "run ballotd migrate first") {
		t.Errorf("races on an unmigrated database: exit %d, stderr %s", code, errOut)
	}
	code, out, _ := runWith(env, "migrate", "--status")
	if code != 0 || !hasRow(out, "0001_foundation.sql pending") || strings.Contains(out, "applied") {
		t.Errorf("migrate --status before migrate: exit %d\n%s", code, out)
	}
	if tables := tablesIn(t, url); len(tables) != 0 {
		t.Fatalf("migrate --status created %v", tables)
	}
	if code, out, errOut := runWith(env, "migrate"); code != 0 || !strings.Contains(out, "applied 0001_foundation.sql") {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runWith(env, "migrate", "--status")
	if code != 0 || strings.Contains(out, "pending") || !hasRow(out, "0001_foundation.sql applied") {
		t.Errorf("migrate --status after migrate: exit %d\n%s", code, out)
	}

	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), `INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_later.sql', 'x')`); err != nil {
		t.Fatal(err)
	}
	const newer = "the schema is newer than this ballotd: upgrade it (migration 9999_later.sql is applied but this ballotd does not know it)"
	for _, args := range [][]string{{"races"}, {"migrate"}, {"serve"}, {"serve", "--migrate"}, {"send"}, {"import", "members", "/dev/null"}} {
		code, _, errOut := runWith(env, args...)
		if code != 1 || !strings.Contains(errOut, newer) {
			t.Errorf("ballotd %s on a newer schema: exit %d, stderr %s", strings.Join(args, " "), code, errOut)
		}
	}
	code, out, _ = runWith(env, "migrate", "--status")
	if code != 1 || !hasRow(out, "9999_later.sql unknown") {
		t.Errorf("migrate --status on a newer schema: exit %d\n%s", code, out)
	}
	if r := checkDatabase(context.Background(), Config{DatabaseURL: url}); r.OK || !strings.Contains(r.Detail, newer) {
		t.Errorf("check on a newer schema: %s", r)
	}
}

// hasRow reports whether a line of the table out starts with the words of
// row, however the columns are aligned.
func hasRow(out, row string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.Join(strings.Fields(line), " "), row) {
			return true
		}
	}
	return false
}
