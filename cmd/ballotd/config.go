package main

import (
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/mailer"
)

// Config is everything ballotd reads from its environment.
type Config struct {
	DatabaseURL string
	Domain      string
	Mailbox     string
	From        string
	IMAP        inbound.IMAPConfig
	SMTP        mailer.SMTPConfig
	SMTPConns   int
	Staff       []string
	Secret      string
	HTTPAddr    string
	Templates   string
	// AuthservID is the authserv-id of the trusted server whose
	// Authentication-Results decide whether a vote's sender is authentic
	// (BALLOTD_AUTHSERV_ID; "" trusts every From).
	AuthservID string
}

// configError is a missing or malformed setting: one line naming it, exit 2.
type configError struct{ msg string }

func (e configError) Error() string { return e.msg }

func missing(name, what string) error {
	return configError{fmt.Sprintf("%s is not set (%s)", name, what)}
}

func bad(name, value, want string) error {
	return configError{fmt.Sprintf("%s=%q is malformed: want %s", name, value, want)}
}

// need says which parts of the configuration a command needs.
type need struct {
	mail bool // domain, secret, IMAP and SMTP: the daemon
}

// loadConfig reads the environment. Only what the command needs is
// required; anything set is checked.
func loadConfig(getenv func(string) string, n need) (Config, error) {
	c := Config{
		DatabaseURL: getenv("DATABASE_URL"),
		Domain:      strings.ToLower(strings.TrimSpace(getenv("BALLOTD_DOMAIN"))),
		Mailbox:     strings.ToLower(strings.TrimSpace(getenv("BALLOTD_MAILBOX"))),
		From:        getenv("BALLOTD_FROM"),
		Secret:      getenv("BALLOTD_SECRET"),
		HTTPAddr:    getenv("BALLOTD_HTTP_ADDR"),
		Templates:   getenv("BALLOTD_TEMPLATES"),
		AuthservID:  strings.TrimSpace(getenv("BALLOTD_AUTHSERV_ID")),
	}
	if strings.ContainsAny(c.AuthservID, "\t;@") || strings.Contains(strings.ReplaceAll(c.AuthservID, ", ", ","), " ") {
		return c, bad("BALLOTD_AUTHSERV_ID", c.AuthservID, "the authserv-id your mail server writes in Authentication-Results, e.g. mx.example.org (several: comma-separated)")
	}
	if c.DatabaseURL == "" {
		return c, missing("DATABASE_URL", "the PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/ballotd?sslmode=disable")
	}
	if c.Mailbox == "" {
		c.Mailbox = "ballots"
	}
	if strings.ContainsAny(c.Mailbox, "+@ \t") {
		return c, bad("BALLOTD_MAILBOX", c.Mailbox, "a plain local part such as ballots")
	}
	if c.From == "" {
		c.From = "Endorsement ballots"
	}
	if c.Domain != "" && (strings.ContainsAny(c.Domain, "@ \t/") || !strings.Contains(c.Domain, ".") && c.Domain != "localhost") {
		return c, bad("BALLOTD_DOMAIN", c.Domain, "a mail domain such as example.org")
	}
	for _, s := range strings.Split(getenv("BALLOTD_STAFF"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := mail.ParseAddress(s)
		if err != nil {
			return c, bad("BALLOTD_STAFF", s, "a comma-separated list of email addresses")
		}
		c.Staff = append(c.Staff, strings.ToLower(a.Address))
	}
	var err error
	c.IMAP = inbound.IMAPConfig{
		Addr: getenv("BALLOTD_IMAP_ADDR"), Username: getenv("BALLOTD_IMAP_USER"),
		Password: getenv("BALLOTD_IMAP_PASSWORD"), Mailbox: getenv("BALLOTD_IMAP_MAILBOX"),
	}
	if c.IMAP.TLS, err = tlsMode("BALLOTD_IMAP_TLS", getenv("BALLOTD_IMAP_TLS")); err != nil {
		return c, err
	}
	if v := getenv("BALLOTD_IMAP_POLL"); v != "" {
		if c.IMAP.Poll, err = time.ParseDuration(v); err != nil || c.IMAP.Poll <= 0 {
			return c, bad("BALLOTD_IMAP_POLL", v, "a duration such as 30s")
		}
	}
	c.SMTP = mailer.SMTPConfig{
		Addr: getenv("BALLOTD_SMTP_ADDR"), Username: getenv("BALLOTD_SMTP_USER"),
		Password: getenv("BALLOTD_SMTP_PASSWORD"), HeloName: c.Domain,
	}
	if c.SMTP.TLS, err = tlsMode("BALLOTD_SMTP_TLS", getenv("BALLOTD_SMTP_TLS")); err != nil {
		return c, err
	}
	c.SMTPConns = 4
	if v := getenv("BALLOTD_SMTP_CONNS"); v != "" {
		if c.SMTPConns, err = strconv.Atoi(v); err != nil || c.SMTPConns < 1 || c.SMTPConns > 256 {
			return c, bad("BALLOTD_SMTP_CONNS", v, "a number of connections from 1 to 256")
		}
	}
	for _, a := range []struct{ name, v string }{{"BALLOTD_IMAP_ADDR", c.IMAP.Addr}, {"BALLOTD_SMTP_ADDR", c.SMTP.Addr}, {"BALLOTD_HTTP_ADDR", c.HTTPAddr}} {
		if a.v == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.v); err != nil || port == "" {
			return c, bad(a.name, a.v, "host:port")
		}
	}
	if c.Secret != "" && len(c.Secret) < 16 {
		return c, bad("BALLOTD_SECRET", "…", "at least 16 characters (a long random string; tokens are keyed by it)")
	}
	if !n.mail {
		return c, nil
	}
	switch {
	case c.Domain == "":
		return c, missing("BALLOTD_DOMAIN", "the mail domain of the ballot mailbox, e.g. example.org")
	case c.Secret == "":
		return c, missing("BALLOTD_SECRET", "a long random string that keys ballot tokens; keep it for the life of a wave")
	case c.IMAP.Addr == "":
		return c, missing("BALLOTD_IMAP_ADDR", "host:port of the IMAP server holding the ballot mailbox")
	case c.IMAP.Username == "":
		return c, missing("BALLOTD_IMAP_USER", "the IMAP login of the ballot mailbox")
	case c.SMTP.Addr == "":
		return c, missing("BALLOTD_SMTP_ADDR", "host:port of the SMTP relay")
	}
	return c, nil
}

func tlsMode(name, v string) (string, error) {
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "", "none":
		return "none", nil
	case "starttls", "tls":
		return v, nil
	}
	return "", bad(name, v, "none, starttls or tls")
}
