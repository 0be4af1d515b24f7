package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/ballotd/ballotd/internal/demo"
	"github.com/ballotd/ballotd/internal/mailhub"
)

// cmdDemo runs `ballotd demo` (internal/demo) on a daemon started as
// serve does, on a fresh database of its own.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := flags("demo")
	var o demo.Options
	fs.IntVar(&o.Members, "members", 300, "members to generate")
	fs.BoolVar(&o.Keep, "keep", false, "leave the mail hub and daemon running to browse with a mail client")
	fs.StringVar(&o.OutDir, "out", "ballotd-demo", "directory for the sample messages and results")
	fs.Uint64Var(&o.Seed, "seed", 2026, "random seed for members and their replies")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if o.Members < 10 {
		return usageError{"demo: --members must be at least 10"}
	}
	o.Start = func(ctx context.Context, hub *mailhub.Hub) (demo.Daemon, error) { return startDemo(ctx, e, hub) }
	return demo.Run(ctx, o, e.stdout)
}

// startDemo finds the demo's scratch database and runs the daemon on it
// and on hub, with the demo's settings, exactly as serve does but quietly
// (the demo narrates; warnings still reach stderr).
func startDemo(ctx context.Context, e *env, hub *mailhub.Hub) (demo.Daemon, error) {
	dbURL, fate, cleanup, err := localDatabase(ctx, e, "ballotd_demo", true)
	if err != nil {
		return demo.Daemon{}, err
	}
	getenv := demo.Env(hubEnv(e.getenv, hub, dbURL))
	err = guardDevSecret(ctx, e.getenv, dbURL)
	var cfg Config
	if err == nil {
		cfg, err = loadConfig(getenv, need{mail: true})
	}
	if err != nil {
		cleanup()
		return demo.Daemon{}, err
	}
	de := &env{getenv: getenv, stdout: io.Discard, stderr: e.stderr,
		log: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	dctx, stopDaemon := context.WithCancel(ctx)
	ready := make(chan *daemon, 1)
	done := make(chan error, 1)
	go func() { done <- serveDaemon(dctx, de, cfg, true, func(d *daemon) { ready <- d }) }()
	select {
	case d := <-ready:
		return demo.Daemon{Store: d.store, Tokens: d.tokens, Wake: d.outbox.Wake, Database: fate,
			Mailbox: cfg.Mailbox, Domain: cfg.Domain, From: cfg.From, Org: cfg.Org,
			Stop: func() { stopDaemon(); <-done; cleanup() }}, nil
	case err := <-done:
		stopDaemon()
		cleanup()
		return demo.Daemon{}, fmt.Errorf("start the daemon: %w", err)
	}
}
