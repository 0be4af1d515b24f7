package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ballotd/ballotd/internal/pgtemp"
)

// A database whose test has ended is not dropped but reset and handed to
// the next test that asks for one of its kind: DROP DATABASE waits for a
// checkpoint (seconds on a server with fsync on, tens of seconds while
// other tests write: every file any test dirtied is synced), and CREATE
// DATABASE … TEMPLATE writes the whole copy to the WAL; a run of the suite
// made some 400 of each. Reuse is taken only when it is safe:
//
//   - the database is renamed first (ALTER DATABASE … RENAME, once every
//     session on it is terminated), so nothing the ended test left behind
//     can reach it under the name that test knew;
//   - a migrated database whose schema (tables, columns, indexes,
//     constraints, sequences, functions, triggers, views, types,
//     extensions, database settings) and schema_migrations rows are still
//     the template's, compared by a fingerprint taken on a fresh copy, has
//     every other table emptied (TRUNCATE … RESTART IDENTITY) and every
//     sequence restarted, which is what a fresh copy holds: the template
//     has rows in schema_migrations only;
//   - any other database (an empty one a test of migrating used, or a
//     migrated one whose test migrated, altered or added anything) is
//     wiped: every schema dropped with what it holds, public made again as
//     a fresh database has it, its settings and comment reset, and then
//     checked to hold nothing; it becomes an empty database for DatabaseURL.
//
// A database is dropped only when that fails. When the tests have ended,
// Main parks the pooled databases on the server for the next test binary
// (parkPooled), so that a run of the suite drops none.
var (
	poolMu sync.Mutex
	pool   [2][]string // reset databases by kind, ready for a test

	// fingerprint is the template's, taken on its first copy.
	fingerprintOnce sync.Once
	fingerprint     string
	fingerprintErr  error
)

// kind is what a pooled database holds.
type kind int

const (
	migrated kind = iota // the migrated template's schema, no rows
	empty                // nothing: a fresh copy of template0
)

// newName is a fresh database name: ballotd_t_<pid>_<n>_<random>.
func newName() (string, error) {
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("ballotd_t_%d_%d_%s", os.Getpid(), dbCounter.Add(1), hex.EncodeToString(rnd[:])), nil
}

// takePooled returns a reset database of kind k from the pool, or one an
// earlier test binary parked (parkPooled) and this one claimed by renaming
// it, or "" if none is ready; template is the migrated template's name.
func takePooled(admin *sql.DB, k kind, template string) string {
	poolMu.Lock()
	if n := len(pool[k]); n > 0 {
		name := pool[k][n-1]
		pool[k] = pool[k][:n-1]
		poolMu.Unlock()
		return name
	}
	poolMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prefix := parkedPrefix(k, template)
	rows, err := admin.QueryContext(ctx, `SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1 ORDER BY random() LIMIT 4`, prefix)
	if err != nil {
		return ""
	}
	var parked []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			parked = append(parked, n)
		}
	}
	rows.Close()
	for _, p := range parked {
		name, err := newName()
		if err != nil {
			return ""
		}
		// Only one binary's rename of a parked database succeeds.
		if _, err := admin.ExecContext(ctx, "ALTER DATABASE "+p+" RENAME TO "+name); err == nil {
			return name
		}
	}
	return ""
}

// parkedPrefix starts the names of the reset databases of kind k a test
// binary left on the server for later ones (parkPooled): for a migrated
// one ballotd_p_ and the template's hash, so that a database of another
// schema is never taken; for an empty one ballotd_e_.
func parkedPrefix(k kind, template string) string {
	if k == empty {
		return "ballotd_e_"
	}
	return "ballotd_p_" + strings.TrimPrefix(template, "ballotd_tmpl_") + "_"
}

// schemaFingerprint describes what a test could change in a migrated
// database other than rows: two databases with the same fingerprint and
// empty tables (but schema_migrations, which it covers) hold the same. It
// reads the catalogs' own columns rather than deparsing definitions
// (pg_get_indexdef and the like), which cost several times as much.
// Relations, indexes, constraints and triggers are named, not numbered:
// an import's first load drops the email index and adds it again, the same
// under a new object id (numbered, every such database was taken as
// changed and wiped); temporary tables and their schemas are left out.
const schemaFingerprint = `SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
	SELECT 'c ' || oid::regclass::text || ' ' || relnamespace || ' ' || relkind::text || relpersistence::text || ' ' ||
		relnatts || ' ' || relchecks || ' ' || relhastriggers || ' ' || relrowsecurity AS x
		FROM pg_class WHERE oid >= 16384 AND relpersistence <> 't'
	UNION ALL SELECT 'a ' || attrelid::regclass::text || ' ' || attnum || ' ' || attname || ' ' || atttypid || ' ' || atttypmod || ' ' ||
		attnotnull || attisdropped || atthasdef || attidentity::text || attgenerated::text
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE attrelid >= 16384 AND c.relpersistence <> 't'
	UNION ALL SELECT 'd ' || adrelid::regclass::text || ' ' || adnum || ' ' || md5(adbin::text) FROM pg_attrdef
	UNION ALL SELECT 'i ' || indexrelid::regclass::text || ' ' || indrelid::regclass::text || ' ' || indkey::text || ' ' || indclass::text || ' ' || indisunique || ' ' ||
		md5(coalesce(indexprs::text, '') || coalesce(indpred::text, '')) FROM pg_index WHERE indexrelid >= 16384
	UNION ALL SELECT 'k ' || conname || ' ' || contype::text || ' ' || conrelid::regclass::text || ' ' || confrelid::regclass::text || ' ' ||
		coalesce(conkey::text, '') || coalesce(confkey::text, '') || ' ' || md5(coalesce(conbin::text, '')) FROM pg_constraint WHERE oid >= 16384
	UNION ALL SELECT 'f ' || oid || ' ' || proname || ' ' || md5(prosrc) FROM pg_proc WHERE oid >= 16384
	UNION ALL SELECT 't ' || tgname || ' ' || tgrelid::regclass::text || ' ' || tgfoid || ' ' || tgtype || ' ' || tgenabled::text FROM pg_trigger WHERE oid >= 16384
	UNION ALL SELECT 'r ' || ev_class::regclass::text || ' ' || rulename || ' ' || md5(ev_action::text) FROM pg_rewrite WHERE oid >= 16384
	UNION ALL SELECT 'y ' || t.oid || ' ' || typname FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
		WHERE t.oid >= 16384 AND coalesce(c.relpersistence, 'p') <> 't' AND t.typnamespace NOT IN (SELECT oid FROM pg_namespace WHERE nspname ~ '^pg_(toast_)?temp_')
	UNION ALL SELECT 'e ' || oid || ' ' || enumlabel FROM pg_enum WHERE oid >= 16384
	UNION ALL SELECT 'n ' || oid || ' ' || nspname FROM pg_namespace WHERE oid >= 16384 AND nspname !~ '^pg_(toast_)?temp_'
	UNION ALL SELECT 'x ' || oid || ' ' || extname || extversion FROM pg_extension WHERE oid >= 16384
	UNION ALL SELECT 'p ' || polname || ' ' || polrelid::regclass::text FROM pg_policy
	UNION ALL SELECT 'q ' || seqrelid::regclass::text || ' ' || seqstart || ' ' || seqincrement FROM pg_sequence
	UNION ALL SELECT 's ' || setrole || ' ' || array_to_string(setconfig, ',') FROM pg_db_role_setting
		WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
	UNION ALL SELECT 'l ' || count(*) FROM pg_largeobject_metadata
	UNION ALL SELECT 'm ' || coalesce(md5(string_agg(m::text, ',' ORDER BY m::text)), '') FROM schema_migrations m
) f`

// takeFingerprint returns the fingerprint of database name.
func takeFingerprint(ctx context.Context, srvURL, name string) (string, error) {
	db, err := openOne(srvURL, name)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var fp string
	if err := db.QueryRowContext(ctx, schemaFingerprint).Scan(&fp); err != nil {
		return "", fmt.Errorf("testenv: fingerprint of %s: %w", name, err)
	}
	return fp, nil
}

// templateFingerprint takes the template's fingerprint on name, a fresh
// copy of it, the first time it is called: MigratedURL calls it on the
// first database it creates, before any is recycled.
func templateFingerprint(ctx context.Context, srvURL, name string) (string, error) {
	fingerprintOnce.Do(func() {
		fingerprint, fingerprintErr = takeFingerprint(ctx, srvURL, name)
	})
	return fingerprint, fingerprintErr
}

// openOne opens one connection's worth of pool on database name.
func openOne(srvURL, name string) (*sql.DB, error) {
	u, err := pgtemp.ConnectURL(srvURL, name)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("postgres", u)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// recycleLater resets database name, of kind k, whose test has ended, in
// the background and puts it in the pool under a new name (see recycle); a
// database that cannot be reset is dropped instead.
func recycleLater(srvURL string, admin *sql.DB, name string, k kind) {
	drops.Add(1)
	go func() {
		defer drops.Done()
		dropSlots <- struct{}{}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cur, got, err := recycle(ctx, srvURL, admin, name, k)
		cancel()
		<-dropSlots
		if err != nil {
			dropLater(admin, cur)
			return
		}
		poolMu.Lock()
		pool[got] = append(pool[got], cur)
		poolMu.Unlock()
	}()
}

// recycle renames database name, of kind k, and resets it: a migrated one
// whose schema is the template's to the template's rows, any other to
// empty. It returns the name the database has now, reset or not, and the
// kind it was reset to.
func recycle(ctx context.Context, srvURL string, admin *sql.DB, name string, k kind) (string, kind, error) {
	next, err := newName()
	if err != nil {
		return name, k, err
	}
	// Terminate what the test left connected, then rename: RENAME fails
	// while anyone is connected, so a client that reconnected in between
	// gets another round.
	renamed := false
	for try := 0; try < 5 && !renamed; try++ {
		if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
			return name, k, err
		}
		if _, err = admin.ExecContext(ctx, "ALTER DATABASE "+name+" RENAME TO "+next); err == nil {
			renamed = true
		} else {
			time.Sleep(20 * time.Millisecond) // the terminated sessions to exit
		}
	}
	if !renamed {
		return name, k, fmt.Errorf("testenv: rename %s: %w", name, err)
	}
	// A test may have marked its database (devdb.Mark): the next one must
	// not find the mark.
	if _, err := admin.ExecContext(ctx, "COMMENT ON DATABASE "+next+" IS NULL"); err != nil {
		return next, k, fmt.Errorf("testenv: reset %s: %w", next, err)
	}
	db, err := openOne(srvURL, next)
	if err != nil {
		return next, k, err
	}
	defer db.Close()
	if k == migrated {
		want, err := templateFingerprint(ctx, srvURL, next)
		if err != nil {
			return next, k, err
		}
		var got string
		if err := db.QueryRowContext(ctx, schemaFingerprint).Scan(&got); err != nil {
			return next, k, err
		}
		if got == want {
			return next, migrated, emptyTables(ctx, db, next)
		}
	}
	return next, empty, wipe(ctx, admin, db, next)
}

// emptyTables empties every table of database name (open as db) but
// schema_migrations and restarts every sequence a test used. Only the
// tables holding rows are touched, with DELETE (foreign keys and triggers
// quiet): TRUNCATE, and ALTER SEQUENCE … RESTART, give a table, each of
// its indexes and a sequence a new file, which the next checkpoint must
// sync; for the fifty-odd tables of a test's database, most of them
// empty, that was some 700 files a test and checkpoints syncing 90,000
// files while the suite ran.
func emptyTables(ctx context.Context, db *sql.DB, name string) error {
	var probe sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT string_agg(format('SELECT %L AS t WHERE EXISTS (SELECT 1 FROM %I.%I)',
			format('%I.%I', schemaname, tablename), schemaname, tablename), ' UNION ALL ')
		FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND NOT (schemaname = 'public' AND tablename = 'schema_migrations')`).Scan(&probe); err != nil {
		return fmt.Errorf("testenv: reset %s: %w", name, err)
	}
	var used []string
	if probe.Valid {
		rows, err := db.QueryContext(ctx, probe.String)
		if err != nil {
			return fmt.Errorf("testenv: reset %s: %w", name, err)
		}
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return fmt.Errorf("testenv: reset %s: %w", name, err)
			}
			used = append(used, "DELETE FROM "+t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("testenv: reset %s: %w", name, err)
		}
	}
	// session_replication_role = replica keeps the foreign keys' and
	// other triggers quiet, so the tables empty in any order and no
	// trigger writes elsewhere (it needs a superuser; without one the
	// database is dropped instead).
	q := "SET session_replication_role = replica"
	if len(used) > 0 {
		q += "; " + strings.Join(used, "; ")
	}
	q += `; SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false) FROM pg_sequences
		WHERE last_value IS NOT NULL AND schemaname NOT IN ('pg_catalog', 'information_schema')`
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("testenv: reset %s: %w", name, err)
	}
	return nil
}

// emptyCheck counts what database holds that a fresh copy of template0
// does not (objects of its own, large objects, settings but
// synchronous_commit) and whether it lacks schema public: 0 when it is
// empty.
const emptyCheck = `SELECT (SELECT count(*) FROM pg_class WHERE oid >= 16384)
	+ (SELECT count(*) FROM pg_proc WHERE oid >= 16384)
	+ (SELECT count(*) FROM pg_type WHERE oid >= 16384)
	+ (SELECT count(*) FROM pg_namespace WHERE oid >= 16384 AND nspname <> 'public' AND nspname !~ '^pg_(toast_)?temp_')
	+ (SELECT count(*) FROM pg_extension WHERE oid >= 16384)
	+ (SELECT count(*) FROM pg_event_trigger)
	+ (SELECT count(*) FROM pg_largeobject_metadata)
	+ (SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND (setrole <> 0 OR setconfig <> '{synchronous_commit=off}'))
	+ (SELECT count(*) FROM pg_namespace WHERE nspname = 'public') - 1`

// wipe makes database name (open as db) empty, as a fresh copy of
// template0 with synchronous_commit off: every schema dropped with what it
// holds (tables, types, functions, extensions), every large object
// unlinked, public made again as PostgreSQL 15 makes it, and the
// database's settings reset. It fails unless emptyCheck then finds nothing.
func wipe(ctx context.Context, admin, db *sql.DB, name string) error {
	var dropSchemas sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT string_agg(format('DROP SCHEMA %I CASCADE', nspname), '; ') FROM pg_namespace
		WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname !~ '^pg_(toast_)?temp_'`).Scan(&dropSchemas); err != nil {
		return fmt.Errorf("testenv: wipe %s: %w", name, err)
	}
	for _, q := range []string{dropSchemas.String,
		`SELECT lo_unlink(oid) FROM pg_largeobject_metadata`,
		`CREATE SCHEMA public AUTHORIZATION pg_database_owner`,
		`GRANT USAGE ON SCHEMA public TO PUBLIC`,
		`COMMENT ON SCHEMA public IS 'standard public schema'`,
	} {
		if q == "" {
			continue
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("testenv: wipe %s: %w", name, err)
		}
	}
	for _, q := range []string{"ALTER DATABASE " + name + " RESET ALL", "ALTER DATABASE " + name + " SET synchronous_commit = off"} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("testenv: wipe %s: %w", name, err)
		}
	}
	var left int
	if err := db.QueryRowContext(ctx, emptyCheck).Scan(&left); err != nil {
		return fmt.Errorf("testenv: wipe %s: %w", name, err)
	}
	if left != 0 {
		return fmt.Errorf("testenv: wipe %s: %d objects or settings left", name, left)
	}
	return nil
}

// maxParkedEmpty is how many empty databases may wait on the server for
// later test binaries.
const maxParkedEmpty = 16

// parkPooled leaves the pooled databases, reset, on the server for the
// next test binary (renamed to their kind's parkedPrefix and a random
// suffix): parking is a rename, where dropping them would wait for
// checkpoints, tens of seconds on a busy server. One that cannot be
// renamed is dropped.
func parkPooled(admin *sql.DB) {
	poolMu.Lock()
	ready := pool
	pool = [2][]string{}
	poolMu.Unlock()
	tmpl, err := Template()
	// Empty databases are parked up to maxParkedEmpty on the server (a
	// migrated one whose schema a test changed becomes one, and few tests
	// ask for one): the rest are dropped.
	room := maxParkedEmpty
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var parked int
		if admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_database WHERE left(datname, length($1)) = $1`, parkedPrefix(empty, tmpl)).Scan(&parked) == nil {
			room -= parked
		}
		cancel()
	}
	for k, names := range ready {
		for _, name := range names {
			if kind(k) == empty {
				if room <= 0 {
					dropLater(admin, name)
					continue
				}
				room--
			}
			var rnd [4]byte
			if err == nil {
				_, err = rand.Read(rnd[:])
			}
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err = admin.ExecContext(ctx, "ALTER DATABASE "+name+" RENAME TO "+parkedPrefix(kind(k), tmpl)+hex.EncodeToString(rnd[:]))
				cancel()
			}
			if err != nil {
				dropLater(admin, name)
			}
		}
	}
}
