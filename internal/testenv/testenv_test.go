package testenv

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

func TestMain(m *testing.M) { Main(m) }

// Empty databases are each a test's own, and after the test they are
// renamed (wiped for the next one: TestEmptyDatabasesAreWiped), not left
// under the name the test knew.
func TestDatabasesAreIsolatedAndRecycled(t *testing.T) {
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
	// Recycled in the background after the test: wait for it, as Main does.
	if err := settleDrops(); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists under its name after its test's cleanup and the recycling", name)
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

// A migrated database is reused after its test: renamed, emptied and its
// sequences restarted, so the next test sees what a fresh copy holds; one
// whose schema a test changed is wiped into an empty database instead.
func TestMigratedDatabasesAreRecycled(t *testing.T) {
	ctx := context.Background()
	_, admin, err := server()
	if err != nil {
		t.Fatal(err)
	}
	exists := func(name string) bool {
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if err := settleDrops(); err != nil {
		t.Fatal(err)
	}
	poolMu.Lock()
	emptiesBefore := len(pool[empty])
	poolMu.Unlock()
	var used, altered string
	t.Run("use", func(t *testing.T) {
		db := Open(t, MigratedURL(t))
		db.MustExec(`INSERT INTO members (email, name, state, district) VALUES ('a@example.net', 'A', 'MA', 'MA-07')`)
		// A temporary table (an import's staging) leaves its schema
		// behind, which is not a change of the database's schema.
		db.MustExec(`CREATE TEMP TABLE staging (x int)`)
		// An import's first load drops the email index and adds it
		// again: the same schema, under new object ids.
		db.MustExec(`ALTER TABLE members DROP CONSTRAINT members_email_key`)
		db.MustExec(`ALTER TABLE members ADD CONSTRAINT members_email_key UNIQUE (email)`)
		if err := db.Get(&used, "SELECT current_database()"); err != nil {
			t.Fatal(err)
		}
		other := Open(t, MigratedURL(t))
		other.MustExec("ALTER TABLE members ADD COLUMN extra int")
		if err := other.Get(&altered, "SELECT current_database()"); err != nil {
			t.Fatal(err)
		}
	})
	if err := settleDrops(); err != nil {
		t.Fatal(err)
	}
	if exists(used) || exists(altered) {
		t.Fatalf("a database kept its test's name after the test: %s %v, %s %v", used, exists(used), altered, exists(altered))
	}
	poolMu.Lock()
	ready, empties := len(pool[migrated]), len(pool[empty])
	poolMu.Unlock()
	if ready == 0 {
		t.Fatal("no database ready for reuse")
	}
	if empties != emptiesBefore+1 {
		t.Errorf("%d empty databases ready, %d before: want the altered one wiped and among them", empties, emptiesBefore)
	}
	t.Run("reuse", func(t *testing.T) {
		for range ready {
			db := Open(t, MigratedURL(t))
			var name string
			if err := db.Get(&name, "SELECT current_database()"); err != nil {
				t.Fatal(err)
			}
			if name == used {
				t.Errorf("reused under its old name %s", name)
			}
			var members, migrations int
			if err := db.Get(&members, "SELECT count(*) FROM members"); err != nil || members != 0 {
				t.Errorf("%s: %d members, %v; want an empty table", name, members, err)
			}
			if err := db.Get(&migrations, "SELECT count(*) FROM schema_migrations"); err != nil || migrations == 0 {
				t.Errorf("%s: %d migrations recorded, %v; want the template's", name, migrations, err)
			}
			var id int
			if err := db.Get(&id, `INSERT INTO members (email, name, state, district) VALUES ('b@example.net', 'B', 'MA', 'MA-07') RETURNING id`); err != nil || id != 1 {
				t.Errorf("%s: first member id %d, %v; want 1 (sequences restarted)", name, id, err)
			}
			var sync string
			if err := db.Get(&sync, "SHOW synchronous_commit"); err != nil || sync != "off" {
				t.Errorf("%s: synchronous_commit = %q, %v; want off", name, sync, err)
			}
		}
	})
}

// An empty database a test filled (tables, another schema, a type, a
// function, a large object, settings, the dev mark) is wiped for the next
// test: it holds what a fresh copy of template0 holds, and public works.
func TestEmptyDatabasesAreWiped(t *testing.T) {
	ctx := context.Background()
	var used string
	t.Run("fill", func(t *testing.T) {
		db := Database(t)
		if err := db.Get(&used, "SELECT current_database()"); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			"CREATE TABLE votes (id serial PRIMARY KEY, choice text)",
			"INSERT INTO votes (choice) VALUES ('yes')",
			"CREATE SCHEMA other",
			"CREATE TABLE other.t (x int)",
			"CREATE TYPE mood AS ENUM ('ok')",
			"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
			"SELECT lo_create(0)",
			"ALTER DATABASE " + used + " SET work_mem = '7MB'",
			"COMMENT ON DATABASE " + used + " IS 'ballotd dev database'",
		} {
			db.MustExecContext(ctx, q)
		}
	})
	if err := settleDrops(); err != nil {
		t.Fatal(err)
	}
	poolMu.Lock()
	ready := len(pool[empty])
	poolMu.Unlock()
	if ready == 0 {
		t.Fatal("no empty database ready for reuse")
	}
	t.Run("reuse", func(t *testing.T) {
		for range ready {
			db := Database(t)
			var left int
			if err := db.Get(&left, emptyCheck); err != nil || left != 0 {
				t.Errorf("%d objects or settings left, %v", left, err)
			}
			var comment *string
			if err := db.Get(&comment, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"); err != nil || comment != nil {
				t.Errorf("comment %v, %v; want none", comment, err)
			}
			var sync, workMem string
			if err := db.Get(&sync, "SHOW synchronous_commit"); err != nil || sync != "off" {
				t.Errorf("synchronous_commit = %q, %v; want off", sync, err)
			}
			if err := db.Get(&workMem, "SHOW work_mem"); err != nil || workMem == "7MB" {
				t.Errorf("work_mem = %q, %v; want the server's", workMem, err)
			}
			db.MustExecContext(ctx, "CREATE TABLE votes (id int)")
		}
	})
}
