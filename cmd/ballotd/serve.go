package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// daemon is the wired pieces of serve.
type daemon struct {
	store  *ballots.Store
	outbox *mailer.Outbox
	reader *inbound.Reader
	tokens *token.Key
	sched  *ballots.Scheduler
	obs    *observer // metrics and health, set by serveDaemon
}

func buildDaemon(ctx context.Context, e *env, cfg Config) (*daemon, error) {
	st, err := ballots.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	toks, err := token.NewKey(cfg.Secret)
	if err != nil {
		st.Close()
		return nil, configError{"BALLOTD_SECRET: " + err.Error()}
	}
	if err := keepOAuth(cfg, st, e.log); err != nil {
		st.Close()
		return nil, err
	}
	if cfg.Templates != "" {
		if err := templatesDir(cfg.Templates); err != nil {
			st.Close()
			return nil, configError{err.Error()}
		}
	}
	tpl, err := templates.Load(cfg.Templates)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("BALLOTD_TEMPLATES: %w", err)
	}
	id := mailer.Identity{Local: cfg.Mailbox, Domain: cfg.Domain, FromName: cfg.From, PublicURL: cfg.PublicURL, Org: cfg.Org, StaffTZ: cfg.StaffTZ}
	rd0 := &mailer.Renderer{Store: st, Templates: tpl, Tokens: toks, ID: id}
	if cfg.DKIMKey != "" {
		key, err := mailer.LoadDKIMKey(cfg.DKIMKey)
		if err != nil {
			st.Close()
			return nil, configError{"BALLOTD_DKIM_KEY: " + err.Error()}
		}
		rd0.DKIM = &mailer.DKIM{Domain: cfg.Domain, Selector: cfg.DKIMSelector, Key: key}
	}
	ob := &mailer.Outbox{
		Store:    st,
		Renderer: rd0,
		Relays:   mailerRelays(cfg),
		Workers:  cfg.SMTPConns,
		Lease:    cfg.OutboxLease,
		Retry:    cfg.OutboxRetry,
		Logger:   e.log.With("part", "outbox"),
	}
	rd := &inbound.Reader{
		Config: cfg.IMAP,
		Processor: &inbound.Processor{Store: st, Tokens: toks, Box: message.Mailbox{Local: cfg.Mailbox, Domain: cfg.Domain},
			Logger: e.log.With("part", "inbound"), Enqueued: ob.Wake, Staff: cfg.Staff, AuthservID: cfg.AuthservID, Questions: cfg.Questions,
			StrangerAnswersPerHour: cfg.StrangerAnswers, AnswersWait: inbound.DefaultAnswersWait, AnswersBehind: inbound.DefaultAnswersBehind},
		Logger: e.log.With("part", "imap"),
	}
	sc := &ballots.Scheduler{Store: st, Staff: cfg.Staff, Tick: cfg.Tick, RemindBefore: cfg.RemindBefore,
		DigestEvery: cfg.DigestEvery, Logger: e.log.With("part", "scheduler"), Enqueued: ob.Wake, Retain: cfg.Retain}
	return &daemon{store: st, outbox: ob, reader: rd, tokens: toks, sched: sc}, nil
}

// keepOAuth makes the OAuth2 token source, when there is one, keep the
// refresh tokens the provider rotates in the database, so that a restart
// goes on from the latest rather than the configured one, which the
// provider may have let expire. Call it before anything asks for a token.
func keepOAuth(cfg Config, st *ballots.Store, log *slog.Logger) error {
	tokens := cfg.IMAP.Tokens
	if tokens == nil {
		tokens = cfg.SMTP.Tokens
	}
	if tokens == nil {
		return nil
	}
	kept, err := st.RefreshTokens(cfg.Secret)
	if err != nil {
		return err
	}
	tokens.Keep(kept, log.With("part", "oauth2"))
	return nil
}

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := flags("serve")
	migrate := fs.Bool("migrate", false, "apply pending migrations first (without it, serve refuses a database with any)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(e.getenv, need{mail: true})
	if err != nil {
		return err
	}
	return serveDaemon(ctx, e, cfg, *migrate, nil)
}

// serveDaemon runs the daemon until ctx ends: the mailbox reader and the
// outbox workers. ready, if set, is called once everything is wired.
func serveDaemon(ctx context.Context, e *env, cfg Config, migrate bool, ready func(*daemon)) error {
	d, err := buildDaemon(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer d.store.Close()
	if err := prepareSchema(ctx, e, d.store, migrate); err != nil {
		return err
	}
	warnInsecure(e, cfg)
	go logChecks(ctx, e, cfg)
	d.obs = newObserver(d.store)
	d.obs.attach(d)
	e.log.Info("ballotd serving", "mailbox", cfg.Mailbox+"@"+cfg.Domain, "imap", cfg.IMAP.Addr, "smtp", cfg.SMTP.Addr, "connections", cfg.SMTPConns)
	if ready != nil {
		ready(d)
	}
	err = runDaemon(ctx, e, cfg, d)
	e.log.Info("ballotd stopped")
	return err
}

// prepareSchema applies the migrations the database lacks (serve
// --migrate), or refuses a database whose schema is not this binary's.
func prepareSchema(ctx context.Context, e *env, st *ballots.Store, migrate bool) error {
	if !migrate {
		if err := usableSchema(ctx, st); err != nil {
			return fmt.Errorf("serve: %w (or serve --migrate)", err)
		}
		return nil
	}
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	for _, a := range applied {
		e.log.Info("migration applied", "name", a)
	}
	return nil
}

// runDaemon runs the scheduler, the outbox, the mailbox reader and the
// doors (HTTP, admin HTTP, LMTP) that cfg opens, until ctx ends or a door
// fails.
func runDaemon(ctx context.Context, e *env, cfg Config, d *daemon) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &doors{cancel: cancel}
	g.wg.Add(3)
	go func() { defer g.wg.Done(); d.sched.Run(ctx) }()
	go func() { defer g.wg.Done(); d.outbox.Run(ctx) }()
	go func() {
		// A race open in another process (the CLI) wakes the outbox at
		// each chunk it commits; without the listener the poll finds them.
		if err := d.store.ListenOutbox(ctx, d.outbox.Wake); err != nil {
			e.log.Warn("outbox wake-ups from race opens off; the outbox polls", "err", err)
		}
	}()
	go func() { defer g.wg.Done(); d.reader.Run(ctx) }()
	httpLog := e.log.With("part", "http")
	if cfg.HTTPAddr != "" {
		h := &unsubscribeHandler{store: d.store, tokens: d.tokens, log: httpLog}
		mux := publicMux(h, d.obs, cfg.MetricsToken)
		// The results page with its receipt check, BALLOTD_PUBLIC_URL/results.
		mux.Handle("/results", &resultsHandler{store: d.store, log: httpLog, org: cfg.Org})
		g.open(e.log, "http", "BALLOTD_HTTP_ADDR "+cfg.HTTPAddr, func() error { return serveHTTP(ctx, "http", cfg.HTTPAddr, mux, httpLog) })
	}
	if cfg.AdminAddr != "" {
		mux := adminMux(d.obs, cfg.MetricsToken)
		g.open(e.log, "admin http", "BALLOTD_ADMIN_ADDR "+cfg.AdminAddr, func() error { return serveHTTP(ctx, "admin http", cfg.AdminAddr, mux, httpLog) })
	}
	if cfg.LMTPAddr != "" {
		// An MTA is delivering here: the daemon does not run without it.
		g.open(e.log, "lmtp door", "BALLOTD_LMTP_ADDR "+cfg.LMTPAddr, func() error {
			return serveLMTP(ctx, cfg.LMTPAddr, d.reader.Processor, e.log.With("part", "lmtp"))
		})
	}
	g.wg.Wait()
	return g.err
}

// doors are the daemon's listeners. The daemon does not run without them:
// one that stops stops the daemon (cancel), and says why in err.
type doors struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	cancel func()
}

// open runs serve, the door name (for the log) of what (its setting and
// address, for the error), until it returns.
func (g *doors) open(log *slog.Logger, name, what string, serve func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := serve(); err != nil {
			log.Error(name+" stopped", "err", err)
			g.mu.Lock()
			g.err = errors.Join(g.err, fmt.Errorf("%s: %w", what, err))
			g.mu.Unlock()
			g.cancel()
		}
	}()
}

// cmdSend sends everything due in the outbox and exits.
func cmdSend(ctx context.Context, e *env, args []string) error {
	if err := noArgs(flags("send"), args); err != nil {
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
	if err := usableSchema(ctx, d.store); err != nil {
		return err
	}
	var sent atomic.Int64
	d.outbox.Sent = func(err error, _ time.Duration) {
		if err == nil {
			sent.Add(1)
		}
	}
	n, err := d.outbox.Drain(ctx)
	s := int(sent.Load())
	fmt.Fprintf(e.stdout, "%d outbox rows handled: %d sent, %d deferred or failed (ballotd outbox shows why)\n", n, s, n-s)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if n > 0 && s == 0 {
		return exitError{fmt.Errorf("send: none of the %d rows due could be sent", n), 3}
	}
	return nil
}

// logChecks runs the checks of `ballotd check` once at start and logs
// each part. A failing IMAP or SMTP part does not stop the daemon: the
// reader and the outbox retry; the log says what to change.
func logChecks(ctx context.Context, e *env, cfg Config) {
	for _, r := range runChecks(ctx, cfg) {
		if ctx.Err() != nil {
			return
		}
		if r.OK {
			e.log.Info("check: "+r.Part+" OK", "detail", r.Detail)
		} else {
			e.log.Error("check: "+r.Part+" FAILED; retrying in the background", "detail", r.Detail)
		}
	}
}
