// Package testenv owns the PostgreSQL side of ballotd's tests: one server per
// test binary (found with pgtemp.Locate or started with pgtemp.Start), one
// migrated template database per server and migration set, and one fresh
// database per test on it, reset for another test after it ends.
//
// Use it from a package's tests as
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		st := testenv.Store(t)   // migrated, as a ballots.Store
//		db := testenv.DB(t, st)  // the same database, for SQL the test checks rows with
//		...
//	}
//
// Store and MigratedURL copy the template (CREATE DATABASE … TEMPLATE), which
// is much cheaper than migrating; Database and DatabaseURL give an empty,
// unmigrated database, for the tests of migrating itself.
//
// A test's database is reset for the next test (see recycle) in the
// background once the test has ended, and Main waits for that before the
// binary exits, leaving the reset databases on the server for the next
// binary (parkPooled): DROP DATABASE waits for a checkpoint, seconds on a
// server with fsync on and tens of seconds while other tests write, which
// every test that waited for it added to its own time. A run of the suite
// drops no database on the test server; the tests whose subject is making
// and dropping databases (the demo's, the benchmarks') do it on a
// throwaway cluster of their own (ScratchServerURL).
//
// Set $DATABASE_URL (a postgres:// URL of a superuser, or one allowed to
// CREATE DATABASE) to use an existing server; otherwise a server on
// 127.0.0.1:5432 is used if it answers, else a throwaway cluster is started.
// Set $BALLOTD_TEST_PGTEMP=1 to always start a throwaway cluster instead.
// When no server can be found or started, the functions that need one fail
// the test.
package testenv

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	_ "github.com/lib/pq" // the "postgres" driver

	"github.com/ballotd/ballotd/internal/pgtemp"
)

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
	cluster    *pgtemp.Cluster // non-nil if this process started the server
	admin      *sql.DB         // pool on the server's maintenance database

	dbCounter atomic.Int64

	// drops are the databases being dropped in the background (dropLater);
	// dropSlots bounds how many drops and resets (recycleLater) run at
	// once: each holds connections, on a server whose 100 the tests share
	// (concurrent drops also share their checkpoints); dropErrs holds what
	// failed, for Main to report.
	drops     sync.WaitGroup
	dropSlots = make(chan struct{}, 4)
	// closing is set when the tests have ended: what is left is dropped,
	// not reset, and up to closeSlots at once (the tests' connections are
	// closed then, and each drop waits for a checkpoint, which concurrent
	// drops share).
	closing    atomic.Bool
	closeSlots = make(chan struct{}, 16)
	dropMu     sync.Mutex
	dropErrs   []error

	// stores maps each Store made by Store to its database's URL and raw
	// handle (*rawDB), for DB.
	stores sync.Map
)

// Main wraps testing.M: it runs the tests, prints a line for each reason
// tests were skipped with Skip, then, if a throwaway cluster was started
// for them, stops it, and exits with the tests' status. The
// server is located or started on the first call that needs a database,
// so a test binary that never asks for one starts nothing.
//
// Unless -test.parallel is given, Main raises it to Parallel(): the tests
// that call t.Parallel mostly wait on PostgreSQL and on the network, not on
// the CPU, so more of them than GOMAXPROCS can run at once.
//
// Call as: func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(Parallel()))
	}
	code := m.Run()
	summary(os.Stdout)
	// go test ./... shows a passing package's output only with -v: the
	// person at the terminal gets the summary there too.
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		summary(tty)
		tty.Close()
	}
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Parallel is how many parallel tests Main lets a test binary run at once
// when -test.parallel is not given: 4 × GOMAXPROCS, at least 8. Most
// tests wait on I/O (a daemon reading mail, a kill, an outage), so more of
// them than there are cores keep the cores busy; it is kept that low
// because every running test holds connections to the one server (the
// `serve` of an end-to-end test several), and `go test ./...` runs several
// binaries at once; PostgreSQL allows 100 by default (a full run here
// peaks well below that: see README's Tests).
func Parallel() int {
	return max(8, 4*runtime.GOMAXPROCS(0))
}

// server locates or starts the server once per process. Without Main (a
// package that forgot TestMain) this still works, but a started cluster is
// never stopped: it outlives the test binary, and its directory under
// os.TempDir stays behind.
func server() (string, *sql.DB, error) {
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var url string
		var err error
		if os.Getenv("BALLOTD_TEST_PGTEMP") != "1" {
			url, err = pgtemp.Locate(ctx)
		}
		if err == nil && url == "" {
			cluster, err = pgtemp.Start(ctx)
			if err == nil {
				url = cluster.URL
			}
		}
		if err != nil {
			serverErr = fmt.Errorf("testenv: no PostgreSQL server: %w", err)
			return
		}
		serverURL = url
		admin, serverErr = sql.Open("postgres", url)
		if serverErr == nil {
			serverErr = admin.PingContext(ctx)
		}
		if serverErr != nil {
			serverErr = fmt.Errorf("testenv: PostgreSQL server %s: %w", url, serverErr)
		}
	})
	return serverURL, admin, serverErr
}

func shutdown() error {
	// Run the Once so that a later (impossible) call cannot start a server.
	serverOnce.Do(func() { serverErr = fmt.Errorf("testenv: used after Main returned") })
	closing.Store(true)
	err := settleDrops() // and the recycling
	if admin != nil {
		parkPooled(admin)
		err = errors.Join(err, settleDrops())
		admin.Close()
	}
	if cluster != nil {
		err = errors.Join(err, cluster.Stop())
	}
	return errors.Join(err, stopScratch())
}

// DatabaseURL gives the test an empty database of its own, unmigrated (a
// copy of template0, or one an ended test used, wiped: see recycle), named
// ballotd_t_<pid>_<n>_<random> on the test server, and returns its URL: the
// server's URL with that database name. After the test it is wiped for the
// next one, in the background. It is safe to call from parallel tests and
// from several test binaries at once.
//
// Most tests want MigratedURL or Store instead: only the tests of
// migrating itself need a database without the schema.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	return takeDatabase(t, empty)
}

// MigratedURL is DatabaseURL with the schema: the new database is a copy
// of the migrated template (see Template).
//
// The database may be one an ended test used, reset to the template's
// state and renamed (see recycle); after the test it is reset again for
// the next one.
func MigratedURL(t testing.TB) string {
	t.Helper()
	return takeDatabase(t, migrated)
}

// takeDatabase gives the test a database of kind k from the pool, or a
// new copy of its template, and recycles it after the test.
func takeDatabase(t testing.TB, k kind) string {
	t.Helper()
	tmpl := "template0"
	if k == migrated {
		var err error
		if tmpl, err = Template(); err != nil {
			t.Fatal(err)
		}
	}
	srvURL, admin, err := server()
	if err != nil {
		t.Fatal(err)
	}
	name := takePooled(admin, k, tmpl)
	if name == "" {
		return createDatabase(t, tmpl, k)
	}
	t.Cleanup(func() { recycleLater(srvURL, admin, name, k) })
	dbURL, err := pgtemp.ConnectURL(srvURL, name)
	if err != nil {
		t.Fatal(err)
	}
	if k == migrated {
		// A parked database was reset and checked against the template
		// by the binary that parked it: if this binary has made no copy
		// yet, its fingerprint is the template's.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := templateFingerprint(ctx, srvURL, name); err != nil {
			t.Fatal(err)
		}
	}
	return dbURL
}

// createDatabase copies template into a new database of kind k and
// recycles it after the test.
func createDatabase(t testing.TB, template string, k kind) string {
	t.Helper()
	srvURL, admin, err := server()
	if err != nil {
		t.Fatal(err)
	}
	name, err := newName()
	if err != nil {
		t.Fatal(err)
	}
	dbURL, err := pgtemp.ConnectURL(srvURL, name)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Never template1 (the default): CREATE DATABASE fails while anyone
	// else is connected to its template, and people connect to template1.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template+" ENCODING 'UTF8'"); err != nil {
		t.Fatalf("testenv: create database %s from %s: %v", name, template, err)
	}
	// A commit need not wait for the WAL to reach the disk: a test's
	// database never outlives a crash of the server, and what a commit
	// makes visible to other sessions is the same. On a server with fsync
	// on (a developer's 127.0.0.1:5432) this spares each commit a disk
	// flush, which is most of a test that commits thousands of them.
	if _, err := admin.ExecContext(ctx, "ALTER DATABASE "+name+" SET synchronous_commit = off"); err != nil {
		dropLater(admin, name)
		t.Fatalf("testenv: database %s: %v", name, err)
	}
	if k == migrated {
		if _, err := templateFingerprint(ctx, srvURL, name); err != nil {
			dropLater(admin, name)
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { recycleLater(srvURL, admin, name, k) })
	return dbURL
}

// dropLater drops database name (WITH (FORCE), closing leftover
// connections) in the background; settleDrops waits for it.
func dropLater(admin *sql.DB, name string) {
	drops.Add(1)
	go func() {
		defer drops.Done()
		slots := dropSlots
		if closing.Load() {
			slots = closeSlots
		}
		slots <- struct{}{}
		defer func() { <-slots }()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			dropMu.Lock()
			dropErrs = append(dropErrs, fmt.Errorf("drop database %s: %w", name, err))
			dropMu.Unlock()
		}
	}()
}

// settleDrops waits until the databases of ended tests are dropped and
// returns what failed.
func settleDrops() error {
	drops.Wait()
	dropMu.Lock()
	defer dropMu.Unlock()
	err := errors.Join(dropErrs...)
	dropErrs = nil
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	return nil
}

// Store is a ballots.Store on a fresh migrated database (MigratedURL),
// closed in t.Cleanup: what most tests start from. DB gives the same
// database as a raw handle.
func Store(t testing.TB) *ballots.Store {
	t.Helper()
	u := MigratedURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := ballots.Open(ctx, u)
	if err != nil {
		t.Fatalf("testenv: open store on %s: %v", u, err)
	}
	raw := &rawDB{url: u}
	stores.Store(st, raw)
	t.Cleanup(func() {
		stores.Delete(st)
		raw.close()
		st.Close()
	})
	return st
}

// rawDB is the raw handle DB opens, once, on a Store's database.
type rawDB struct {
	url  string
	mu   sync.Mutex
	db   *sqlx.DB
	done bool
}

func (r *rawDB) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db != nil {
		r.db.Close()
	}
	r.done = true
}

// DB returns a handle on st's database, for a test that sets up or checks
// rows with SQL of its own; st must come from Store. The handle is opened
// on the first call, shared by later ones, and closed with st.
func DB(t testing.TB, st *ballots.Store) *sqlx.DB {
	t.Helper()
	v, ok := stores.Load(st)
	if !ok {
		t.Fatal("testenv: DB of a store that testenv.Store did not make, or whose test has ended")
	}
	raw := v.(*rawDB)
	raw.mu.Lock()
	defer raw.mu.Unlock()
	if raw.done {
		t.Fatal("testenv: DB of a store whose test has ended")
	}
	if raw.db == nil {
		db, err := open(raw.url)
		if err != nil {
			t.Fatal(err)
		}
		raw.db = db
	}
	return raw.db
}

// Database is DatabaseURL opened with sqlx (driver "postgres", lib/pq): an
// empty database. The handle is closed in t.Cleanup, before the database
// is recycled.
func Database(t testing.TB) *sqlx.DB {
	t.Helper()
	return Open(t, DatabaseURL(t))
}

// Open opens the database at u (a URL from DatabaseURL or MigratedURL) as
// Database does, for a test that hands the URL to ballotd and checks rows
// itself. The handle is closed in t.Cleanup.
func Open(t testing.TB, u string) *sqlx.DB {
	t.Helper()
	db, err := open(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// open opens and pings u as ballots.Open does, without its pool limits.
func open(u string) (*sqlx.DB, error) {
	db, err := sqlx.Open("postgres", ballots.OneRoundTrip(u))
	if err != nil {
		return nil, fmt.Errorf("testenv: open %s: %w", u, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("testenv: connect to %s: %w", u, err)
	}
	return db, nil
}
