package main

import (
	"context"
	"fmt"
	"net"

	"github.com/ballotd/ballotd/internal/mailhub"
)

// devSecret keys tokens in dev and demo when BALLOTD_SECRET is not set. It
// is public, so nothing run with it is secret.
const devSecret = "ballotd-dev-secret-NOT-FOR-PRODUCTION"

// hubEnv returns getenv with the mail settings pointed at hub, for the
// ballot mailbox of domain, and the given database.
func hubEnv(getenv func(string) string, hub *mailhub.Hub, dbURL string) func(string) string {
	domain := getenv("BALLOTD_DOMAIN")
	if domain == "" {
		domain = "example.org"
	}
	mailbox := getenv("BALLOTD_MAILBOX")
	if mailbox == "" {
		mailbox = "ballots"
	}
	set := map[string]string{
		"DATABASE_URL":          dbURL,
		"BALLOTD_DOMAIN":        domain,
		"BALLOTD_IMAP_ADDR":     hub.IMAPAddr,
		"BALLOTD_IMAP_USER":     mailbox + "@" + domain,
		"BALLOTD_IMAP_PASSWORD": hub.Password,
		"BALLOTD_IMAP_TLS":      "none",
		"BALLOTD_SMTP_ADDR":     hub.SMTPAddr,
		"BALLOTD_SMTP_TLS":      "none",
		"BALLOTD_SMTP_USER":     "",
		"BALLOTD_SMTP_PASSWORD": "",
	}
	if getenv("BALLOTD_SECRET") == "" {
		set["BALLOTD_SECRET"] = devSecret
	}
	if getenv("BALLOTD_IMAP_POLL") == "" {
		set["BALLOTD_IMAP_POLL"] = "2s"
	}
	return func(k string) string {
		if v, ok := set[k]; ok {
			return v
		}
		return getenv(k)
	}
}

// cmdDev runs serve against an embedded mail hub on loopback, so ballotd
// runs with no mail server: every address gets a mailbox a mail client can
// open over IMAP, and mail sent over SMTP is filed there.
func cmdDev(ctx context.Context, e *env, args []string) error {
	fs := flags("dev")
	smtpPort := fs.Int("smtp-port", 2525, "SMTP port of the hub (0: any free port)")
	imapPort := fs.Int("imap-port", 1143, "IMAP port of the hub (0: any free port)")
	password := fs.String("password", "ballotd", "the one password of every hub mailbox")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	dbURL, dbFate, cleanup, err := localDatabase(ctx, e, "ballotd", false)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := guardDevSecret(ctx, e.getenv, dbURL); err != nil {
		return err
	}
	hub, err := mailhub.Start(mailhub.Options{SMTPPort: *smtpPort, IMAPPort: *imapPort, Password: *password, Logger: e.log.With("part", "hub")})
	if err != nil {
		return fmt.Errorf("start the mail hub: %w", err)
	}
	defer hub.Close()
	getenv := hubEnv(e.getenv, hub, dbURL)
	cfg, err := loadConfig(getenv, need{mail: true})
	if err != nil {
		return err
	}
	printHub(e, hub, cfg, dbFate)
	return serveDaemon(ctx, e, cfg, true, nil)
}

// secretWords says which key dev's tokens are made with: ballot codes
// and links from a run keyed by the public dev secret work in any other
// such run on the same database, and in no real one.
func secretWords(getenv func(string) string) string {
	if getenv("BALLOTD_SECRET") != "" {
		return "BALLOTD_SECRET from the environment"
	}
	return "the public dev secret: fine to try things, never for a real vote"
}

// printHub is dev's banner: where the hub listens and how to log in, and
// what dev creates and what it throws away when it stops (dbFate, from
// localDatabase: which database, and whether it is kept).
func printHub(e *env, hub *mailhub.Hub, cfg Config, dbFate string) {
	host, smtpPort, _ := net.SplitHostPort(hub.SMTPAddr)
	_, imapPort, _ := net.SplitHostPort(hub.IMAPAddr)
	fmt.Fprintf(e.stdout, `ballotd dev: the daemon and an embedded mail hub on loopback

  ballot mailbox  %s@%s
  IMAP            %s port %s, no encryption, normal password
  SMTP            %s port %s, no encryption, no authentication
  password        %s   (for every mailbox)

What it creates and what it throws away:
  database        %s
  mail            every mailbox is in memory, made on first use: all mail is
                  gone when dev stops
  secret          %s

Every address gets a mailbox on first use. To read a member's ballot in
Thunderbird (or any client): add a mail account with the member's address
(for example alice@example.net, as imported), the password above, and the
IMAP and SMTP servers above. Reply to the ballot and ballotd counts it.

In another terminal, with DATABASE_URL=%s, from a clone:
  ballotd import groups contrib/groups.example.csv
  ballotd import members contrib/members.example.csv
  ballotd wave create … && ballotd candidate add … && ballotd race open MA-07   (see README)

Ctrl-C stops it.
`, cfg.Mailbox, cfg.Domain, host, imapPort, host, smtpPort, hub.Password, dbFate, secretWords(e.getenv), redact(cfg.DatabaseURL))
}
