// Package devdb owns the databases ballotd makes for itself: the one dev
// and demo run on when no database is given (on the server at
// DATABASE_URL, else on 127.0.0.1:5432, else in a throwaway cluster
// started from the installed binaries), the scratch databases of the demo
// and the benchmarks, and the mark that tells such a database from a real
// one. Its SQL is the server's (CREATE, DROP, COMMENT ON DATABASE), not
// ballotd's schema, which package ballots owns.
package devdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"

	_ "github.com/lib/pq" // the PostgreSQL driver

	"github.com/ballotd/ballotd/internal/pgtemp"
)

// Mark is the comment dev and demo put on a database they create: only
// such a database may be keyed by the public dev secret.
const Mark = "ballotd dev database: made by ballotd dev or demo; holds no real members"

// Server is a PostgreSQL server reached as its administrator, to create
// and drop databases on it.
type Server struct {
	URL string
	db  *sql.DB
}

// OpenServer connects to the server at url (a connection string naming
// any database on it).
func OpenServer(url string) (*Server, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("connect to the server: %w", err)
	}
	return &Server{URL: url, db: db}, nil
}

// Close closes the connections to the server.
func (s *Server) Close() error { return s.db.Close() }

// Exists reports whether the server has database name.
func (s *Server) Exists(ctx context.Context, name string) (bool, error) {
	var exists bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for database %s: %w", name, err)
	}
	return exists, nil
}

// Create creates database name, with Mark on it when mark is true.
func (s *Server) Create(ctx context.Context, name string, mark bool) error {
	if _, err := s.db.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	if !mark {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `COMMENT ON DATABASE "`+name+`" IS '`+Mark+`'`); err != nil {
		return fmt.Errorf("mark database %s as dev's: %w", name, err)
	}
	return nil
}

// Drop drops database name if it exists, closing its connections.
func (s *Server) Drop(ctx context.Context, name string) error {
	if _, err := s.db.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// ScratchName is prefix followed by _ and eight random hex digits: a
// database name no earlier run used.
func ScratchName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// Identify returns the name of the database at url and whether it carries
// Mark.
func Identify(ctx context.Context, url string) (name string, marked bool, err error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return "", false, fmt.Errorf("connect: %w", err)
	}
	defer db.Close()
	var comment string
	if err := db.QueryRowContext(ctx, `SELECT current_database(), coalesce(shobj_description(d.oid, 'pg_database'), '')
		FROM pg_database d WHERE d.datname = current_database()`).Scan(&name, &comment); err != nil {
		return "", false, fmt.Errorf("read the comment of the database: %w", err)
	}
	return name, comment == Mark, nil
}

// Local is the database Open found or made.
type Local struct {
	URL    string // the database's connection string
	Name   string // its name
	Server string // the server's connection string
	// Throwaway is the directory of the throwaway cluster it is in, ""
	// when on a server that was already running.
	Throwaway string
	Scratch   bool // made fresh for this run, dropped by cleanup
	Existed   bool // there before this run
}

// Options say which database Open is after.
type Options struct {
	// Server is DATABASE_URL: its server is used ("" to look on
	// 127.0.0.1:5432, then start a throwaway cluster).
	Server string
	// Name is the database to use, created (with Mark) if missing; with
	// Scratch, the prefix of a fresh one's name.
	Name    string
	Scratch bool
	Log     *slog.Logger
}

// Open finds a database for dev, demo and the benchmarks, which must run
// on a fresh machine with nothing but the PostgreSQL binaries: on
// o.Server's server, else the one on 127.0.0.1:5432, else a throwaway
// cluster started from the installed binaries (pgtemp.ErrNoBinaries when
// there are none) and stopped by cleanup. cleanup drops a scratch
// database, then stops the throwaway cluster. A database it creates
// carries Mark.
func Open(ctx context.Context, o Options) (l Local, cleanup func(), err error) {
	var stops []func()
	cleanup = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	l = Local{Server: o.Server, Scratch: o.Scratch, Name: o.Name}
	if l.Server == "" {
		if l.Server, err = pgtemp.Locate(ctx); err != nil {
			return l, nil, err
		}
	}
	if l.Server == "" {
		o.Log.Info("no PostgreSQL server on 127.0.0.1:5432 and no DATABASE_URL: starting a throwaway cluster")
		cl, err := pgtemp.Start(ctx)
		if err != nil {
			return l, nil, fmt.Errorf("start a throwaway PostgreSQL: %w", err)
		}
		stops = append(stops, func() {
			if err := cl.Stop(); err != nil {
				o.Log.Warn("stopping the throwaway PostgreSQL", "err", err)
			}
		})
		l.Server, l.Throwaway = cl.URL, cl.Dir
	}
	if err := l.make(ctx, o.Log, &stops); err != nil {
		cleanup()
		return l, nil, err
	}
	return l, cleanup, nil
}

// make creates l's database on l.Server unless it exists, and sets l.URL;
// it adds to stops what undoes it.
func (l *Local) make(ctx context.Context, log *slog.Logger, stops *[]func()) error {
	if l.Scratch {
		l.Name = ScratchName(l.Name)
	}
	srv, err := OpenServer(l.Server)
	if err != nil {
		return err
	}
	*stops = append(*stops, func() { srv.Close() })
	if l.Existed, err = srv.Exists(ctx, l.Name); err != nil {
		return err
	}
	if !l.Existed {
		if err := srv.Create(ctx, l.Name, true); err != nil {
			return err
		}
	}
	if l.Scratch {
		*stops = append(*stops, func() {
			if err := srv.Drop(context.Background(), l.Name); err != nil {
				log.Warn("dropping the demo database", "name", l.Name, "err", err)
			}
		})
	}
	l.URL, err = pgtemp.ConnectURL(l.Server, l.Name)
	return err
}
