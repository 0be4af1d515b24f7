package testenv

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestDatabasesAreIsolatedAndDropped(t *testing.T) {
	ctx := context.Background()
	var names []string

	t.Run("two", func(t *testing.T) {
		urlA, urlB := DatabaseURL(t), DatabaseURL(t)
		nameA, nameB := dbName(t, urlA), dbName(t, urlB)
		names = append(names, nameA, nameB)
		if nameA == nameB {
			t.Fatalf("both databases are named %s", nameA)
		}
		if !strings.HasPrefix(nameA, "ballotd_t_") {
			t.Errorf("database name %s lacks prefix ballotd_t_", nameA)
		}

		a := Database(t) // a third one, to exercise Database as well
		b := Database(t)
		a.MustExecContext(ctx, "CREATE TABLE votes (id int); INSERT INTO votes VALUES (1), (2)")
		var n int
		if err := a.GetContext(ctx, &n, "SELECT count(*) FROM votes"); err != nil || n != 2 {
			t.Fatalf("count in a = %d, %v; want 2", n, err)
		}
		var exists bool
		if err := b.GetContext(ctx, &exists, "SELECT to_regclass('votes') IS NOT NULL"); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Error("table created in one database is visible in the other")
		}
		var cur string
		if err := a.GetContext(ctx, &cur, "SELECT current_database()"); err != nil {
			t.Fatal(err)
		}
		names = append(names, cur) // has a live pool until its Cleanup
	})

	_, admin, err := server()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after its test's cleanup", name)
		}
	}
}

func TestParallel(t *testing.T) {
	for i := 0; i < 4; i++ {
		t.Run("p", func(t *testing.T) {
			t.Parallel()
			db := Database(t)
			db.MustExec("CREATE TABLE t (x int)")
		})
	}
}

func dbName(t *testing.T, s string) string {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}
