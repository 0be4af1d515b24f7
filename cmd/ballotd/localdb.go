package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ballotd/ballotd/internal/pgtemp"
)

// localDatabase finds a database for dev and demo, which must run on a
// fresh machine with nothing but the PostgreSQL binaries: DATABASE_URL if
// set (used as it is); else the server on 127.0.0.1:5432; else a throwaway
// cluster started from the installed binaries and stopped by cleanup. On a
// found or started server it uses database name, created if missing. When
// scratch is true it always makes a fresh database (dropped by cleanup), on
// DATABASE_URL's server when that is set. A database it creates carries
// devMark: only such a one may be keyed by the public dev secret
// (guardDevSecret). fate says in words which database it is and what
// cleanup does to it, for a banner.
func localDatabase(ctx context.Context, e *env, name string, scratch bool) (url, fate string, cleanup func(), err error) {
	server := e.getenv("DATABASE_URL")
	if server != "" && !scratch {
		return server, "DATABASE_URL's database, used as it is and kept", func() {}, nil
	}
	// A scratch database goes beside DATABASE_URL's, never into it: the demo
	// must not write its members into a real list.
	if server == "" {
		var err error
		if server, err = pgtemp.Locate(ctx); err != nil {
			return "", "", nil, err
		}
	}
	stops := []func(){}
	cleanup = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if server == "" {
		e.log.Info("no PostgreSQL server on 127.0.0.1:5432 and no DATABASE_URL: starting a throwaway cluster")
		cl, err := pgtemp.Start(ctx)
		if errors.Is(err, pgtemp.ErrNoBinaries) {
			return "", "", nil, configError{"DATABASE_URL is not set, no PostgreSQL server answers on 127.0.0.1:5432, and no PostgreSQL binaries (initdb, pg_ctl) were found to start one: install postgresql or set DATABASE_URL"}
		}
		if err != nil {
			return "", "", nil, fmt.Errorf("start a throwaway PostgreSQL: %w", err)
		}
		stops = append(stops, func() {
			if err := cl.Stop(); err != nil {
				e.log.Warn("stopping the throwaway PostgreSQL", "err", err)
			}
		})
		server = cl.URL
		fate = fmt.Sprintf("a throwaway PostgreSQL server in %s, stopped and deleted at exit with everything in it", cl.Dir)
	}
	if scratch {
		var b [4]byte
		rand.Read(b[:])
		name = name + "_" + hex.EncodeToString(b[:])
	}
	admin, err := sql.Open("postgres", server)
	if err != nil {
		cleanup()
		return "", "", nil, fmt.Errorf("connect to %s: %w", server, err)
	}
	var exists bool
	if err := admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		admin.Close()
		cleanup()
		return "", "", nil, fmt.Errorf("look for database %s: %w", name, err)
	}
	if !exists {
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
			admin.Close()
			cleanup()
			return "", "", nil, fmt.Errorf("create database %s: %w", name, err)
		}
		if err := markDevDatabase(ctx, admin, name); err != nil {
			admin.Close()
			cleanup()
			return "", "", nil, err
		}
	}
	// Teardown runs in reverse: drop the scratch database, close the pool,
	// then stop the throwaway cluster.
	stops = append(stops, func() { admin.Close() })
	if scratch {
		stops = append(stops, func() {
			if _, err := admin.Exec(`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`); err != nil {
				e.log.Warn("dropping the demo database", "name", name, "err", err)
			}
		})
	}
	url, err = pgtemp.ConnectURL(server, name)
	if err != nil {
		cleanup()
		return "", "", nil, err
	}
	switch {
	case fate != "":
	case scratch:
		fate = fmt.Sprintf("a fresh database %s on %s, dropped at exit", name, redact(server))
	case exists:
		fate = fmt.Sprintf("database %s on %s, as an earlier run left it; kept at exit", name, redact(server))
	default:
		fate = fmt.Sprintf("database %s on %s, created now; kept at exit (drop it to start afresh)", name, redact(server))
	}
	return url, fate, cleanup, nil
}
