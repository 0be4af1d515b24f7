package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// Config is everything ballotd reads from its environment.
type Config struct {
	DatabaseURL string
	Domain      string
	Mailbox     string
	From        string
	// Org is the organisation mail is sent for (BALLOTD_ORG_NAME,
	// BALLOTD_ORG_ADDRESS, BALLOTD_ORG_URL): named in member mail's
	// subjects and footers, the digest and the public page.
	Org templates.Org
	// StaffTZ is the zone staff read times in (BALLOTD_STAFF_TZ,
	// America/New_York by default): the digest's times.
	StaffTZ   *time.Location
	IMAP      inbound.IMAPConfig
	SMTP      mailer.SMTPConfig
	SMTPConns int
	// OutboxLease is how long a claimed outbox row is held before another
	// worker may take it (after a crash, the row is resent once it lapses).
	OutboxLease time.Duration
	// OutboxRetry is the wait before the first retry of a temporary
	// failure (BALLOTD_OUTBOX_RETRY, mailer.DefaultRetry by default).
	OutboxRetry time.Duration
	Staff       []string
	Secret      string
	HTTPAddr    string
	// AdminAddr serves /healthz and /metrics (BALLOTD_ADMIN_ADDR);
	// MetricsToken, when set, guards them and lets the public HTTPAddr
	// serve them too (loadAdmin).
	AdminAddr, MetricsToken string
	// LMTPAddr is where serve takes deliveries by LMTP
	// (BALLOTD_LMTP_ADDR); "" for none.
	LMTPAddr  string
	Templates string
	// The scheduler: how often it looks, the reminder's lead time before a
	// close, and the staff digest's interval (0: no periodic digest).
	Tick         time.Duration
	RemindBefore time.Duration
	// Questions are the policy questionnaire's (BALLOTD_QUESTIONNAIRE);
	// none: the questionnaire step is off.
	Questions   []string
	DigestEvery time.Duration
	// Retain is how long after a wave closes its mail is kept
	// (BALLOTD_RETAIN, 180 days by default; 0 keeps everything).
	Retain time.Duration
	// SMTPRate is the global send rate in messages a second (0: unlimited);
	// SMTPDomainRates optional rates per recipient domain.
	SMTPRate        float64
	SMTPDomainRates map[string]float64
	// SMTPDaily is the relay's quota in any 24 hours (BALLOTD_SMTP_DAILY,
	// 0: none), SMTPDomainQuotas the hourly and daily limits per domain
	// (BALLOTD_SMTP_DOMAIN_RATES' /h and /d): shared by replicas.
	SMTPDaily        int
	SMTPDomainQuotas map[string]ballots.DomainQuota
	// MoreRelays are the relays after the first, in order of preference
	// (BALLOTD_SMTP_ADDR's further addresses, BALLOTD_SMTP_n_*).
	MoreRelays []relaySettings
	// PublicURL is where the HTTP side is reachable from outside, for the
	// one-click unsubscribe link ("" for none).
	PublicURL string
	// DKIMKey is the path of a PEM private key (RSA or Ed25519) to sign
	// with under DKIMSelector; both or neither.
	DKIMKey      string
	DKIMSelector string
	// AuthservID is the authserv-id of the trusted server whose
	// Authentication-Results decide whether a vote's sender is authentic
	// (BALLOTD_AUTHSERV_ID; "" trusts every From).
	AuthservID string
	// StrangerAnswers caps the automatic answers to addresses that are not
	// members, leaders or staff, per hour, all together
	// (BALLOTD_STRANGER_ANSWERS_PER_HOUR; as inbound.Processor's
	// StrangerAnswersPerHour: negative for none).
	StrangerAnswers int
	// TLSCAFile is a PEM file of CAs trusted besides the system roots
	// (BALLOTD_TLS_CA_FILE); TLSInsecure turns certificate verification
	// off for IMAP and SMTP (BALLOTD_TLS_INSECURE=1), logged loudly.
	TLSCAFile   string
	TLSInsecure bool
	// oauth holds the BALLOTD_OAUTH_* settings until resolveOAuth builds
	// IMAP's and SMTP's token source from them.
	oauth oauthSettings
}

// oauthSettings are the BALLOTD_OAUTH_* settings as read.
type oauthSettings struct{ provider, tenant, tokenURL, clientID, secret, refresh string }

// configError is a missing or malformed setting: one line naming it, exit 2.
type configError struct{ msg string }

// Error implements error.
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

// loadConfig reads the environment: each setting of settingsTable, in
// its order, then what needs several at once (configSteps). Only what the
// command needs is required; anything set is checked.
func loadConfig(getenv func(string) string, n need) (Config, error) {
	var c Config
	for _, s := range settingsTable {
		if s.parse == nil {
			continue
		}
		v := getenv(s.name)
		if v == "" {
			v = s.def
		}
		if err := s.parse(&c, v); err != nil {
			return c, err
		}
	}
	for _, step := range configSteps {
		if err := step(&c); err != nil {
			return c, err
		}
	}
	if n.mail {
		return c, needMail(c)
	}
	return c, nil
}

// configSteps are what loadConfig checks and builds from several settings
// at once, after each is parsed.
var configSteps = []func(*Config) error{
	func(c *Config) error { c.SMTP.HeloName = c.Domain; return nil },
	resolveTLS,
	resolveOAuth,
	resolveDKIM,
	resolveRelays,
}

// needMail requires what the daemon needs besides the database: the
// domain, the secret, IMAP and SMTP.
func needMail(c Config) error {
	switch {
	case c.Domain == "":
		return missing("BALLOTD_DOMAIN", "the mail domain of the ballot mailbox, e.g. example.org")
	case c.Secret == "":
		return missing("BALLOTD_SECRET", "a long random string that keys ballot tokens; keep it for the life of a wave")
	case c.IMAP.Addr == "":
		return missing("BALLOTD_IMAP_ADDR", "host:port of the IMAP server holding the ballot mailbox")
	case c.IMAP.Username == "":
		return missing("BALLOTD_IMAP_USER", "the IMAP login of the ballot mailbox")
	case c.SMTP.Addr == "":
		return missing("BALLOTD_SMTP_ADDR", "host:port of the SMTP relay")
	}
	return nil
}

// checkDatabaseURL refuses a DATABASE_URL lib/pq could not read, naming
// the setting and never the password: a postgres:// or postgresql:// URL,
// or key=value settings (host=… dbname=… password=…).
func checkDatabaseURL(v string) error {
	const want = "a URL such as postgres://user:password@host:5432/ballotd?sslmode=require, or host=… dbname=… key=value settings"
	if scheme, _, ok := strings.Cut(v, "://"); ok {
		u, err := url.Parse(v)
		switch {
		case scheme != "postgres" && scheme != "postgresql":
			return configError{fmt.Sprintf("DATABASE_URL is malformed: scheme %q is not postgres:// or postgresql:// (want %s)", redact(scheme), want)}
		case err != nil || u.Host == "" && u.Path == "":
			return configError{fmt.Sprintf("DATABASE_URL is malformed (%s): want %s", redact(v), want)}
		}
		return nil
	}
	for i, kv := range strings.Fields(v) {
		if !strings.Contains(kv, "=") && !strings.Contains(v, "'") { // the word may be a password: not shown
			return configError{fmt.Sprintf("DATABASE_URL is malformed: its word %d is not key=value (want %s)", i+1, want)}
		}
	}
	return nil
}

// secureURL reports whether u is an https URL, or an http one on loopback.
func secureURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return false
	}
	if p.Scheme == "https" {
		return true
	}
	ip := net.ParseIP(p.Hostname())
	return p.Scheme == "http" && (p.Hostname() == "localhost" || ip != nil && ip.IsLoopback())
}
