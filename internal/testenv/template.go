package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/pgtemp"
)

// templateVersion is part of the template's name: bump it when what the
// template holds changes other than by a migration file (ballots.Migrate
// recording migrations differently, say), so that no test runs on a stale
// one.
const templateVersion = 1

// templateLock is the advisory lock key (on the server's maintenance
// database) that serialises building templates across test binaries:
// "ballotd-tmpl" as hex.
const templateLock = 0x62616c6c6f74642d

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// Template returns the name of the migrated template database on the test
// server, building it on the first call of any process: a database with
// every migration applied that nobody connects to, copied by MigratedURL.
//
// Its name is ballotd_tmpl_ and a hash of the migration files, so a changed
// or added migration gets a new template, and test binaries of different
// trees on one server (git worktrees) do not share a wrong one. Old
// templates stay on the server; drop them by hand (DROP DATABASE
// ballotd_tmpl_…) once no tree uses them.
//
// Several test binaries (go test ./... runs packages in parallel) may race
// to build it: the builder holds an advisory lock, migrates a database of
// another name and renames it when it is complete, so the template's name
// appears only on a finished template and a builder that dies leaves no
// half-migrated one.
func Template() (string, error) {
	templateOnce.Do(func() {
		templateName, templateErr = buildTemplate()
	})
	return templateName, templateErr
}

// templateNameFor is the template's name for the embedded migrations.
func templateNameFor() (string, error) {
	migs, err := ballots.Migrations()
	if err != nil {
		return "", fmt.Errorf("testenv: template: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "template %d\n", templateVersion)
	for _, m := range migs {
		fmt.Fprintf(h, "%d %s %s\n", m.Version, m.Name, m.Checksum())
	}
	return "ballotd_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

func buildTemplate() (string, error) {
	name, err := templateNameFor()
	if err != nil {
		return "", err
	}
	srvURL, admin, err := server()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exists := func() (bool, error) {
		var n int
		err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("testenv: template %s: %w", name, err)
		}
		return n > 0, nil
	}
	if ok, err := exists(); ok || err != nil {
		return name, err
	}

	// A session-level lock needs one connection for lock and unlock.
	conn, err := admin.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("testenv: template %s: %w", name, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(templateLock)); err != nil {
		return "", fmt.Errorf("testenv: template %s: lock: %w", name, err)
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(templateLock))
	if ok, err := exists(); ok || err != nil {
		return name, err // another binary built it while we waited
	}

	// Built under another name, renamed when complete. The name of a
	// builder that died is reused: drop what it left.
	build := fmt.Sprintf("ballotd_tmplbuild_%s", name[len("ballotd_tmpl_"):])
	if _, err := conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+build+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("testenv: template %s: drop leftover %s: %w", name, build, err)
	}
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+build+` TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		return "", fmt.Errorf("testenv: template %s: create %s: %w", name, build, err)
	}
	u, err := pgtemp.ConnectURL(srvURL, build)
	if err != nil {
		return "", err
	}
	db, err := open(u)
	if err != nil {
		return "", fmt.Errorf("testenv: template %s: %w", name, err)
	}
	_, err = ballots.Migrate(ctx, db)
	// Closed before the rename and before anyone copies it: neither works
	// while a session is connected to the database.
	db.Close()
	if err != nil {
		return "", fmt.Errorf("testenv: template %s: migrate: %w", name, err)
	}
	// RENAME, like CREATE DATABASE … TEMPLATE, waits up to 5 s for the
	// closed sessions' backends to exit.
	if _, err := conn.ExecContext(ctx, `ALTER DATABASE `+build+` RENAME TO `+name); err != nil {
		return "", fmt.Errorf("testenv: template %s: rename %s: %w", name, build, err)
	}
	return name, nil
}
