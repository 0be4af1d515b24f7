package testenv

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
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
	// Dropped in the background after the test: wait for it, as Main does.
	if err := settleDrops(); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after its test's cleanup and the drops", name)
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

// A Store's database is migrated, a copy of the template, and DB reaches
// the same database.
func TestStoreFromTemplate(t *testing.T) {
	t.Parallel()
	st := Store(t)
	db := DB(t, st)
	var n int
	if err := db.Get(&n, "SELECT count(*) FROM schema_migrations"); err != nil || n == 0 {
		t.Fatalf("schema_migrations rows = %d, %v; want the migrations applied", n, err)
	}
	var sync string
	if err := db.Get(&sync, "SHOW synchronous_commit"); err != nil || sync != "off" {
		t.Errorf("synchronous_commit = %q, %v; want off", sync, err)
	}
	db.MustExec("CREATE TABLE probe (x int)")
	var exists bool
	if err := st.InTx(context.Background(), func(tx *sqlx.Tx) error {
		return tx.Get(&exists, "SELECT to_regclass('probe') IS NOT NULL")
	}); err != nil || !exists {
		t.Fatalf("the store does not see the table made through DB: %v %v", exists, err)
	}
	tmpl, err := Template()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tmpl, "ballotd_tmpl_") {
		t.Errorf("template %s", tmpl)
	}
	// Nobody stays connected to the template: copying it needs that.
	_, admin, _ := server()
	var conns int
	if err := admin.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", tmpl).Scan(&conns); err != nil || conns != 0 {
		t.Errorf("%d sessions on the template, %v", conns, err)
	}
}

// The template's name changes with the migrations: it is derived from
// their checksums, so it is stable for one set.
func TestTemplateName(t *testing.T) {
	t.Parallel()
	a, err := templateNameFor()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := templateNameFor()
	if a != b || len(a) != len("ballotd_tmpl_")+16 {
		t.Errorf("template names %q, %q", a, b)
	}
}

// An empty database stays empty: the tests of migrating need one.
func TestDatabaseIsEmpty(t *testing.T) {
	t.Parallel()
	var exists bool
	if err := Database(t).Get(&exists, "SELECT to_regclass('schema_migrations') IS NOT NULL"); err != nil || exists {
		t.Fatalf("schema_migrations in an empty database: %v %v", exists, err)
	}
}
