package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ballotd/ballotd/internal/devdb"
	"github.com/ballotd/ballotd/internal/pgtemp"
)

// localDatabase finds a database for dev and demo (devdb.Open):
// DATABASE_URL if set (used as it is); else database name on the server
// on 127.0.0.1:5432 or in a throwaway cluster, created if missing. When
// scratch is true it always makes a fresh database (dropped by cleanup),
// on DATABASE_URL's server when that is set: the demo must not write its
// members into a real list. fate says in words which database it is and
// what cleanup does to it, for a banner.
func localDatabase(ctx context.Context, e *env, name string, scratch bool) (url, fate string, cleanup func(), err error) {
	server := e.getenv("DATABASE_URL")
	if server != "" && !scratch {
		return server, "DATABASE_URL's database, used as it is and kept", func() {}, nil
	}
	l, cleanup, err := devdb.Open(ctx, devdb.Options{Server: server, Name: name, Scratch: scratch, Log: e.log})
	if errors.Is(err, pgtemp.ErrNoBinaries) {
		return "", "", nil, configError{"DATABASE_URL is not set, no PostgreSQL server answers on 127.0.0.1:5432, and no PostgreSQL binaries (initdb, pg_ctl) were found to start one: install postgresql or set DATABASE_URL"}
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("local database %s: %w", name, err)
	}
	return l.URL, localFate(l), cleanup, nil
}

// localFate says which database l is and what happens to it at exit.
func localFate(l devdb.Local) string {
	switch {
	case l.Throwaway != "":
		return fmt.Sprintf("a throwaway PostgreSQL server in %s, stopped and deleted at exit with everything in it", l.Throwaway)
	case l.Scratch:
		return fmt.Sprintf("a fresh database %s on %s, dropped at exit", l.Name, redact(l.Server))
	case l.Existed:
		return fmt.Sprintf("database %s on %s, as an earlier run left it; kept at exit", l.Name, redact(l.Server))
	}
	return fmt.Sprintf("database %s on %s, created now; kept at exit (drop it to start afresh)", l.Name, redact(l.Server))
}
