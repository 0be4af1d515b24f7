package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/internal/mailauth"
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
	DigestEvery  time.Duration
	// Retain is how long after a wave closes its mail is kept
	// (BALLOTD_RETAIN, 180 days by default; 0 keeps everything).
	Retain time.Duration
	// SMTPRate is the global send rate in messages a second (0: unlimited);
	// SMTPDomainRates optional rates per recipient domain.
	SMTPRate        float64
	SMTPDomainRates map[string]float64
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
}

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
	if err := checkDatabaseURL(c.DatabaseURL); err != nil {
		return c, err
	}
	if c.Mailbox == "" {
		c.Mailbox = "ballots"
	}
	if strings.ContainsAny(c.Mailbox, "+@ \t") {
		return c, bad("BALLOTD_MAILBOX", c.Mailbox, "a plain local part such as ballots")
	}
	c.Org = templates.Org{Name: strings.Join(strings.Fields(getenv("BALLOTD_ORG_NAME")), " "),
		Address: strings.Join(strings.Fields(getenv("BALLOTD_ORG_ADDRESS")), " "), URL: strings.TrimSpace(getenv("BALLOTD_ORG_URL"))}
	if c.Org.URL != "" {
		if u, err := url.Parse(c.Org.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return c, bad("BALLOTD_ORG_URL", c.Org.URL, "the organisation's web address, such as https://example.org")
		}
	}
	if c.From == "" {
		// The organisation's name, when set, says who sends.
		c.From = c.Org.Name
	}
	if c.From == "" {
		c.From = "Endorsement ballots"
	}
	tz := strings.TrimSpace(getenv("BALLOTD_STAFF_TZ"))
	if tz == "" {
		tz = "America/New_York"
	}
	loc, lerr := time.LoadLocation(tz)
	if lerr != nil || tz == "Local" {
		return c, bad("BALLOTD_STAFF_TZ", tz, "an IANA time zone such as America/New_York or America/Chicago")
	}
	c.StaffTZ = loc
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
	if err := loadTLS(&c, getenv); err != nil {
		return c, err
	}
	if err := loadAuth(&c, getenv); err != nil {
		return c, err
	}
	if err := loadAdmin(&c, getenv); err != nil {
		return c, err
	}
	if err := loadLMTP(&c, getenv); err != nil {
		return c, err
	}
	c.SMTPConns = 4
	if v := getenv("BALLOTD_SMTP_CONNS"); v != "" {
		if c.SMTPConns, err = strconv.Atoi(v); err != nil || c.SMTPConns < 1 || c.SMTPConns > 256 {
			return c, bad("BALLOTD_SMTP_CONNS", v, "a number of connections from 1 to 256")
		}
	}
	if v := getenv("BALLOTD_STRANGER_ANSWERS_PER_HOUR"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, bad("BALLOTD_STRANGER_ANSWERS_PER_HOUR", v, "a number of answers an hour, such as 50 (0 for none)")
		}
		c.StrangerAnswers = n
		if n == 0 {
			c.StrangerAnswers = -1
		}
	}
	if v := getenv("BALLOTD_OUTBOX_LEASE"); v != "" {
		if c.OutboxLease, err = time.ParseDuration(v); err != nil || c.OutboxLease < time.Second {
			return c, bad("BALLOTD_OUTBOX_LEASE", v, "a duration of at least 1s, such as 5m")
		}
	}
	if v := getenv("BALLOTD_SMTP_RATE"); v != "" {
		if c.SMTPRate, err = strconv.ParseFloat(v, 64); err != nil || c.SMTPRate < 0 || math.IsInf(c.SMTPRate, 0) {
			return c, bad("BALLOTD_SMTP_RATE", v, "messages a second, such as 20 or 0.5 (0 for no limit)")
		}
	}
	if v := getenv("BALLOTD_SMTP_DOMAIN_RATES"); v != "" {
		c.SMTPDomainRates = map[string]float64{}
		for _, part := range strings.Split(v, ",") {
			d, r, ok := strings.Cut(strings.TrimSpace(part), "=")
			rate, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
			d = strings.ToLower(strings.TrimSpace(d))
			if !ok || err != nil || rate <= 0 || math.IsInf(rate, 0) || d == "" || strings.ContainsAny(d, "@ ") {
				return c, bad("BALLOTD_SMTP_DOMAIN_RATES", v, "domain=messages a second, comma-separated, such as gmail.com=10,yahoo.com=5")
			}
			c.SMTPDomainRates[d] = rate
		}
	}
	if v := strings.TrimSpace(getenv("BALLOTD_PUBLIC_URL")); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return c, bad("BALLOTD_PUBLIC_URL", v, "the public base URL of the HTTP side, such as https://ballots.example.org")
		}
		c.PublicURL = strings.TrimRight(v, "/")
	}
	c.DKIMKey, c.DKIMSelector = getenv("BALLOTD_DKIM_KEY"), strings.TrimSpace(getenv("BALLOTD_DKIM_SELECTOR"))
	switch {
	case c.DKIMKey != "" && c.DKIMSelector == "":
		return c, missing("BALLOTD_DKIM_SELECTOR", "the DKIM selector published in DNS for BALLOTD_DKIM_KEY")
	case c.DKIMKey == "" && c.DKIMSelector != "":
		return c, missing("BALLOTD_DKIM_KEY", "the path of the PEM private key for BALLOTD_DKIM_SELECTOR")
	case c.DKIMSelector != "" && strings.ContainsAny(c.DKIMSelector, " ;=@"):
		return c, bad("BALLOTD_DKIM_SELECTOR", c.DKIMSelector, "a DNS label such as ballots2026")
	}
	for _, a := range []struct{ name, v string }{{"BALLOTD_IMAP_ADDR", c.IMAP.Addr}, {"BALLOTD_SMTP_ADDR", c.SMTP.Addr}, {"BALLOTD_HTTP_ADDR", c.HTTPAddr}} {
		if a.v == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.v); err != nil || port == "" {
			return c, bad(a.name, a.v, "host:port")
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
		zero bool
	}{{"BALLOTD_TICK", &c.Tick, 5 * time.Second, false}, {"BALLOTD_REMIND_BEFORE", &c.RemindBefore, 24 * time.Hour, true},
		{"BALLOTD_DIGEST_EVERY", &c.DigestEvery, 24 * time.Hour, true}} {
		*d.dst = d.def
		v := getenv(d.name)
		if v == "" {
			continue
		}
		if v == "off" && d.zero {
			*d.dst = 0
			continue
		}
		if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst < 0 || (*d.dst == 0 && !d.zero) {
			return c, bad(d.name, v, "a duration such as 5s, 30m or 24h")
		}
	}
	if c.Retain, err = parseRetain(getenv("BALLOTD_RETAIN")); err != nil {
		return c, bad("BALLOTD_RETAIN", getenv("BALLOTD_RETAIN"), "days such as 180 or 180d, a duration such as 720h, or off")
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

func tlsMode(name, v string) (string, error) {
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "", "none":
		return "none", nil
	case "starttls", "tls":
		return v, nil
	}
	return "", bad(name, v, "none, starttls or tls")
}

// loadTLS builds the trust settings IMAP and SMTP share: the system roots,
// plus BALLOTD_TLS_CA_FILE's certificates, or no verification at all with
// BALLOTD_TLS_INSECURE=1.
func loadTLS(c *Config, getenv func(string) string) error {
	c.TLSCAFile = strings.TrimSpace(getenv("BALLOTD_TLS_CA_FILE"))
	switch v := strings.TrimSpace(getenv("BALLOTD_TLS_INSECURE")); v {
	case "", "0", "false":
	case "1", "true":
		c.TLSInsecure = true
	default:
		return bad("BALLOTD_TLS_INSECURE", v, "1 to turn certificate verification off (never in production), or unset")
	}
	if c.TLSCAFile == "" && !c.TLSInsecure {
		return nil
	}
	tc := &tls.Config{InsecureSkipVerify: c.TLSInsecure} //nolint:gosec // explicit operator setting, logged at start
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return configError{fmt.Sprintf("BALLOTD_TLS_CA_FILE: %v", err)}
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return bad("BALLOTD_TLS_CA_FILE", c.TLSCAFile, "a file of PEM certificates (-----BEGIN CERTIFICATE-----)")
		}
		tc.RootCAs = pool
	}
	c.IMAP.TLSConfig, c.SMTP.TLSConfig = tc, tc
	return nil
}

// loadAuth reads how ballotd logs in to IMAP and SMTP: the mechanism of
// each (default: the IMAP LOGIN command and AUTH PLAIN) and, for XOAUTH2
// and OAUTHBEARER, the OAuth2 client and refresh token both share (they log
// in to the one mailbox account). Secrets are never echoed in an error.
func loadAuth(c *Config, getenv func(string) string) error {
	mechs := map[string]string{"login": mailauth.Login, "plain": mailauth.Plain, "xoauth2": mailauth.XOAuth2, "oauthbearer": mailauth.OAuthBearer}
	c.IMAP.Mechanism, c.SMTP.Mechanism = mailauth.Login, mailauth.Plain
	for _, a := range []struct {
		name, v string
		dst     *string
	}{{"BALLOTD_IMAP_AUTH", getenv("BALLOTD_IMAP_AUTH"), &c.IMAP.Mechanism}, {"BALLOTD_SMTP_AUTH", getenv("BALLOTD_SMTP_AUTH"), &c.SMTP.Mechanism}} {
		v := strings.ToLower(strings.TrimSpace(a.v))
		if v == "" {
			continue
		}
		m, ok := mechs[v]
		if !ok {
			return bad(a.name, a.v, "login, plain, xoauth2 or oauthbearer")
		}
		*a.dst = m
		if a.name == "BALLOTD_SMTP_AUTH" && c.SMTP.Username == "" {
			return missing("BALLOTD_SMTP_USER", "the SMTP login for BALLOTD_SMTP_AUTH="+v)
		}
	}
	provider := strings.ToLower(strings.TrimSpace(getenv("BALLOTD_OAUTH_PROVIDER")))
	tenant := strings.TrimSpace(getenv("BALLOTD_OAUTH_TENANT"))
	tokenURL := strings.TrimSpace(getenv("BALLOTD_OAUTH_TOKEN_URL"))
	clientID := strings.TrimSpace(getenv("BALLOTD_OAUTH_CLIENT_ID"))
	secret := strings.TrimSpace(getenv("BALLOTD_OAUTH_CLIENT_SECRET"))
	refresh := strings.TrimSpace(getenv("BALLOTD_OAUTH_REFRESH_TOKEN"))
	imapOAuth := c.IMAP.Mechanism == mailauth.XOAuth2 || c.IMAP.Mechanism == mailauth.OAuthBearer
	smtpOAuth := c.SMTP.Mechanism == mailauth.XOAuth2 || c.SMTP.Mechanism == mailauth.OAuthBearer
	if !imapOAuth && !smtpOAuth {
		if provider+tokenURL+clientID+secret+refresh != "" {
			return configError{"BALLOTD_OAUTH_* is set, but neither BALLOTD_IMAP_AUTH nor BALLOTD_SMTP_AUTH is xoauth2 or oauthbearer"}
		}
		return nil
	}
	switch {
	case tenant != "" && provider != "microsoft":
		return bad("BALLOTD_OAUTH_TENANT", tenant, "unset unless BALLOTD_OAUTH_PROVIDER=microsoft")
	case strings.ContainsAny(tenant, "/?#% "):
		return bad("BALLOTD_OAUTH_TENANT", tenant, "a Microsoft Entra tenant: common, organizations, or the directory's id or domain")
	case provider != "" && tokenURL != "":
		return bad("BALLOTD_OAUTH_TOKEN_URL", tokenURL, "unset when BALLOTD_OAUTH_PROVIDER is set (it gives the token URL)")
	}
	switch provider {
	case "":
	case "google":
		tokenURL = mailauth.GoogleTokenURL
	case "microsoft":
		if tenant == "" {
			tenant = "common"
		}
		tokenURL = fmt.Sprintf(mailauth.MicrosoftTokenURL, tenant)
	default:
		return bad("BALLOTD_OAUTH_PROVIDER", provider, "google or microsoft (or set BALLOTD_OAUTH_TOKEN_URL instead)")
	}
	switch {
	case tokenURL == "":
		return missing("BALLOTD_OAUTH_TOKEN_URL", "the provider's OAuth2 token endpoint, or BALLOTD_OAUTH_PROVIDER=google or microsoft")
	case !secureURL(tokenURL):
		return bad("BALLOTD_OAUTH_TOKEN_URL", tokenURL, "an https URL such as https://oauth2.googleapis.com/token (http only on loopback)")
	case clientID == "":
		return missing("BALLOTD_OAUTH_CLIENT_ID", "the OAuth2 client ID the refresh token was issued to")
	case refresh == "":
		return missing("BALLOTD_OAUTH_REFRESH_TOKEN", "the refresh token of the mailbox account, see README, Connecting to your mail provider")
	}
	tokens := mailauth.NewTokens(tokenURL, clientID, secret, refresh)
	c.IMAP.Tokens, c.SMTP.Tokens = tokens, tokens
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
