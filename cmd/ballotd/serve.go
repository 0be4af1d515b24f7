package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// daemon is the wired pieces of serve.
type daemon struct {
	store  *ballots.Store
	outbox *mailer.Outbox
	reader *inbound.Reader
}

func buildDaemon(ctx context.Context, e *env, cfg Config) (*daemon, error) {
	st, err := ballots.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	toks, err := ballots.NewTokens(cfg.Secret)
	if err != nil {
		st.Close()
		return nil, configError{"BALLOTD_SECRET: " + err.Error()}
	}
	tpl, err := templates.Load(cfg.Templates)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("BALLOTD_TEMPLATES: %w", err)
	}
	id := mailer.Identity{Local: cfg.Mailbox, Domain: cfg.Domain, FromName: cfg.From}
	ob := &mailer.Outbox{
		Store:     st,
		Renderer:  &mailer.Renderer{Store: st, Templates: tpl, Tokens: toks, ID: id},
		NewSender: func() mailer.Sender { return mailer.NewSMTPSender(cfg.SMTP) },
		Workers:   cfg.SMTPConns,
		Logger:    e.log.With("part", "outbox"),
	}
	rd := &inbound.Reader{
		Config: cfg.IMAP,
		Processor: &inbound.Processor{Store: st, Tokens: toks, Box: inbound.Mailbox{Local: cfg.Mailbox, Domain: cfg.Domain},
			Logger: e.log.With("part", "inbound"), Enqueued: ob.Wake, AuthservID: cfg.AuthservID},
		Logger: e.log.With("part", "imap"),
	}
	return &daemon{store: st, outbox: ob, reader: rd}, nil
}

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := flags("serve")
	migrate := fs.Bool("migrate", false, "apply migrations first")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(e.getenv, need{mail: true})
	if err != nil {
		return err
	}
	d, err := buildDaemon(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer d.store.Close()
	if *migrate {
		applied, err := ballots.Migrate(ctx, d.store.DB)
		if err != nil {
			return err
		}
		for _, a := range applied {
			e.log.Info("migration applied", "name", a)
		}
	}
	e.log.Info("ballotd serving", "mailbox", cfg.Mailbox+"@"+cfg.Domain, "imap", cfg.IMAP.Addr, "smtp", cfg.SMTP.Addr, "connections", cfg.SMTPConns)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.outbox.Run(ctx) }()
	go func() { defer wg.Done(); d.reader.Run(ctx) }()
	wg.Wait()
	e.log.Info("ballotd stopped")
	return nil
}

// cmdSend sends everything due in the outbox and exits.
func cmdSend(ctx context.Context, e *env) error {
	cfg, err := loadConfig(e.getenv, need{mail: true})
	if err != nil {
		return err
	}
	d, err := buildDaemon(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer d.store.Close()
	n, err := d.outbox.Drain(ctx)
	fmt.Fprintf(e.stdout, "%d outbox rows handled\n", n)
	return err
}
