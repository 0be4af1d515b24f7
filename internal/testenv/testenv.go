// Package testenv owns the PostgreSQL side of ballotd's tests: one server per
// test binary (found with pgtemp.Locate or started with pgtemp.Start) and one
// fresh, empty database per test on it, dropped when the test ends.
//
// Use it from a package's tests as
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		db := testenv.Database(t)
//		...
//	}
//
// Set $DATABASE_URL (a postgres:// URL of a superuser, or one allowed to
// CREATE DATABASE) to use an existing server; otherwise a server on
// 127.0.0.1:5432 is used if it answers, else a throwaway cluster is started.
// Set $BALLOTD_TEST_PGTEMP=1 to always start a throwaway cluster instead.
// When no server can be found or started, DatabaseURL fails the test.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
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
)

// Main wraps testing.M: it runs the tests, prints a line for each reason
// tests were skipped with Skip, then, if a throwaway cluster was started
// for them, stops it, and exits with the tests' status. The
// server is located or started on the first call to DatabaseURL, so a test
// binary that never asks for a database starts nothing.
//
// Call as: func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
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
	if admin != nil {
		admin.Close()
	}
	if cluster != nil {
		return cluster.Stop()
	}
	return nil
}

// DatabaseURL creates a fresh empty database named
// ballotd_t_<pid>_<n>_<random> on the test server, and drops it (WITH
// (FORCE), closing leftover connections) in t.Cleanup. It returns the
// database's URL: the server's URL with that database name. It is safe to
// call from parallel tests and from several test binaries at once.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	srvURL, admin, err := server()
	if err != nil {
		t.Fatal(err)
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("ballotd_t_%d_%d_%s", os.Getpid(), dbCounter.Add(1), hex.EncodeToString(rnd[:]))
	dbURL, err := pgtemp.ConnectURL(srvURL, name)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// template0, because CREATE DATABASE from template1 fails while anyone
	// else is connected to template1.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	return dbURL
}

// Store is Database migrated, as a ballots.Store: what most tests start
// from.
func Store(t testing.TB) *ballots.Store {
	t.Helper()
	db := Database(t)
	if _, err := ballots.Migrate(context.Background(), db); err != nil {
		t.Fatalf("testenv: migrate: %v", err)
	}
	return &ballots.Store{DB: db}
}

// Database is DatabaseURL opened with sqlx (driver "postgres", lib/pq). The
// handle is closed in t.Cleanup, before the database is dropped.
func Database(t testing.TB) *sqlx.DB {
	t.Helper()
	u := DatabaseURL(t)
	db, err := sqlx.Open("postgres", ballots.OneRoundTrip(u))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("testenv: connect to %s: %v", u, err)
	}
	return db
}
