package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/mailauth"
	"github.com/ballotd/ballotd/templates"
)

// How each setting of settingsTable parses into the Config; loadConfig
// calls them in the table's order, then configSteps.

// raw stores a setting's value as it is in the field field returns.
func raw(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

// trimmed stores a setting's value without surrounding space.
func trimmed(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = strings.TrimSpace(v); return nil }
}

// hostPort refuses a value of setting name that is set and not host:port.
func hostPort(name, v string) error {
	if v == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return bad(name, v, "host:port")
	}
	return nil
}

func parseDatabaseURL(c *Config, v string) error {
	c.DatabaseURL = v
	if v == "" {
		return missing("DATABASE_URL", "the PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/ballotd?sslmode=disable")
	}
	return checkDatabaseURL(v)
}

func parseDomain(c *Config, v string) error {
	c.Domain = strings.ToLower(strings.TrimSpace(v))
	if c.Domain != "" && (strings.ContainsAny(c.Domain, "@ \t/") || !strings.Contains(c.Domain, ".") && c.Domain != "localhost") {
		return bad("BALLOTD_DOMAIN", c.Domain, "a mail domain such as example.org")
	}
	return nil
}

func parseMailbox(c *Config, v string) error {
	if c.Mailbox = strings.ToLower(strings.TrimSpace(v)); c.Mailbox == "" {
		c.Mailbox = "ballots"
	}
	if strings.ContainsAny(c.Mailbox, "+@ \t") {
		return bad("BALLOTD_MAILBOX", c.Mailbox, "a plain local part such as ballots")
	}
	return nil
}

func parseOrgName(c *Config, v string) error {
	c.Org.Name = strings.Join(strings.Fields(v), " ")
	return nil
}

func parseOrgAddress(c *Config, v string) error {
	c.Org.Address = strings.Join(strings.Fields(v), " ")
	return nil
}

func parseOrgURL(c *Config, v string) error {
	c.Org.URL = strings.TrimSpace(v)
	if c.Org.URL != "" {
		if u, err := url.Parse(c.Org.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("BALLOTD_ORG_URL", c.Org.URL, "the organisation's web address, such as https://example.org")
		}
	}
	return nil
}

// parseFrom defaults to the organisation's name (parsed above it), which
// says who sends, else Endorsement ballots.
func parseFrom(c *Config, v string) error {
	c.From = v
	if c.From == "" {
		c.From = c.Org.Name
	}
	if c.From == "" {
		c.From = "Endorsement ballots"
	}
	return nil
}

func parseSecret(c *Config, v string) error {
	c.Secret = v
	if c.Secret != "" && len(c.Secret) < 16 {
		return bad("BALLOTD_SECRET", "…", "at least 16 characters (a long random string; tokens are keyed by it)")
	}
	return nil
}

func parseIMAPAddr(c *Config, v string) error {
	c.IMAP.Addr = v
	return hostPort("BALLOTD_IMAP_ADDR", v)
}

func parseHTTPAddr(c *Config, v string) error {
	c.HTTPAddr = v
	return hostPort("BALLOTD_HTTP_ADDR", v)
}

// tlsMode reads a TLS setting: none, starttls or tls.
func tlsMode(name, v string) (string, error) {
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "", "none":
		return "none", nil
	case "starttls", "tls":
		return v, nil
	}
	return "", bad(name, v, "none, starttls or tls")
}

func parseIMAPTLS(c *Config, v string) (err error) {
	c.IMAP.TLS, err = tlsMode("BALLOTD_IMAP_TLS", v)
	return err
}

func parseSMTPTLS(c *Config, v string) (err error) {
	c.SMTP.TLS, err = tlsMode("BALLOTD_SMTP_TLS", v)
	return err
}

// mechanisms are the values of BALLOTD_IMAP_AUTH and BALLOTD_SMTP_AUTH.
var mechanisms = map[string]string{"login": mailauth.Login, "plain": mailauth.Plain, "xoauth2": mailauth.XOAuth2, "oauthbearer": mailauth.OAuthBearer}

// mechanism reads an AUTH setting; unset, it is def.
func mechanism(name, v, def string) (string, error) {
	if strings.TrimSpace(v) == "" {
		return def, nil
	}
	m, ok := mechanisms[strings.ToLower(strings.TrimSpace(v))]
	if !ok {
		return "", bad(name, v, "login, plain, xoauth2 or oauthbearer")
	}
	return m, nil
}

// parseIMAPAuth reads how ballotd logs in to IMAP: the LOGIN command by
// default.
func parseIMAPAuth(c *Config, v string) (err error) {
	c.IMAP.Mechanism, err = mechanism("BALLOTD_IMAP_AUTH", v, mailauth.Login)
	return err
}

// parseSMTPAuth reads how ballotd logs in to SMTP: AUTH PLAIN by default;
// set, it needs BALLOTD_SMTP_USER (parsed above it).
func parseSMTPAuth(c *Config, v string) (err error) {
	if c.SMTP.Mechanism, err = mechanism("BALLOTD_SMTP_AUTH", v, mailauth.Plain); err != nil {
		return err
	}
	if strings.TrimSpace(v) != "" && c.SMTP.Username == "" {
		return missing("BALLOTD_SMTP_USER", "the SMTP login for BALLOTD_SMTP_AUTH="+strings.ToLower(strings.TrimSpace(v)))
	}
	return nil
}

func parseIMAPPoll(c *Config, v string) (err error) {
	if v == "" {
		return nil
	}
	if c.IMAP.Poll, err = time.ParseDuration(v); err != nil || c.IMAP.Poll <= 0 {
		return bad("BALLOTD_IMAP_POLL", v, "a duration such as 30s")
	}
	return nil
}

func parseIMAPReconnect(c *Config, v string) (err error) {
	if v == "" {
		return nil
	}
	if c.IMAP.Reconnect, err = time.ParseDuration(v); err != nil || c.IMAP.Reconnect < 10*time.Millisecond || c.IMAP.Reconnect > 2*time.Minute {
		return bad("BALLOTD_IMAP_RECONNECT", v, "a duration from 10ms to 2m, such as 1s")
	}
	return nil
}

func parseSMTPConns(c *Config, v string) (err error) {
	if c.SMTPConns, err = strconv.Atoi(v); err != nil || c.SMTPConns < 1 || c.SMTPConns > 256 {
		return bad("BALLOTD_SMTP_CONNS", v, "a number of connections from 1 to 256")
	}
	return nil
}

func parseSMTPRate(c *Config, v string) (err error) {
	c.SMTPRate, err = rateSetting("BALLOTD_SMTP_RATE", v)
	return err
}

func parseOutboxLease(c *Config, v string) (err error) {
	if v == "" {
		return nil
	}
	if c.OutboxLease, err = time.ParseDuration(v); err != nil || c.OutboxLease < time.Second {
		return bad("BALLOTD_OUTBOX_LEASE", v, "a duration of at least 1s, such as 5m")
	}
	return nil
}

func parseOutboxRetry(c *Config, v string) (err error) {
	if v == "" {
		return nil
	}
	if c.OutboxRetry, err = time.ParseDuration(v); err != nil || c.OutboxRetry < 100*time.Millisecond || c.OutboxRetry > time.Hour {
		return bad("BALLOTD_OUTBOX_RETRY", v, "a duration from 100ms to 1h, such as 10s")
	}
	return nil
}

func parseOAuthProvider(c *Config, v string) error {
	c.oauth.provider = strings.ToLower(strings.TrimSpace(v))
	return nil
}

func parseTLSInsecure(c *Config, v string) error {
	switch v = strings.TrimSpace(v); v {
	case "", "0", "false":
	case "1", "true":
		c.TLSInsecure = true
	default:
		return bad("BALLOTD_TLS_INSECURE", v, "1 to turn certificate verification off (never in production), or unset")
	}
	return nil
}

func parseDKIMSelector(c *Config, v string) error {
	c.DKIMSelector = strings.TrimSpace(v)
	return nil
}

func parseAuthservID(c *Config, v string) error {
	c.AuthservID = strings.TrimSpace(v)
	if strings.ContainsAny(c.AuthservID, "\t;@") || strings.Contains(strings.ReplaceAll(c.AuthservID, ", ", ","), " ") {
		return bad("BALLOTD_AUTHSERV_ID", c.AuthservID, "the authserv-id your mail server writes in Authentication-Results, e.g. mx.example.org (several: comma-separated)")
	}
	return nil
}

// parseStrangerAnswersPerHour: 0 is none, which the Config says as -1
// (0 there is inbound.Processor's default).
func parseStrangerAnswersPerHour(c *Config, v string) error {
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return bad("BALLOTD_STRANGER_ANSWERS_PER_HOUR", v, "a number of answers an hour, such as 50 (0 for none)")
	}
	c.StrangerAnswers = n
	if n == 0 {
		c.StrangerAnswers = -1
	}
	return nil
}

func parseQuestionnaire(c *Config, v string) error {
	text := templates.DefaultQuestions
	switch v = strings.TrimSpace(v); v {
	case "", "off":
		c.Questions = nil
		return nil
	case "default", "on":
	default:
		b, err := os.ReadFile(v)
		if err != nil {
			return fmt.Errorf("BALLOTD_QUESTIONNAIRE: %w", err)
		}
		text = string(b)
	}
	qs, err := message.ParseQuestions(text)
	if err != nil {
		return fmt.Errorf("BALLOTD_QUESTIONNAIRE %s: %w", v, err)
	}
	c.Questions = qs
	return nil
}

func parseStaff(c *Config, v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := mail.ParseAddress(s)
		if err != nil {
			return bad("BALLOTD_STAFF", s, "a comma-separated list of email addresses")
		}
		c.Staff = append(c.Staff, strings.ToLower(a.Address))
	}
	return nil
}

func parsePublicURL(c *Config, v string) error {
	if v = strings.TrimSpace(v); v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return bad("BALLOTD_PUBLIC_URL", v, "the public base URL of the HTTP side, such as https://ballots.example.org")
	}
	c.PublicURL = strings.TrimRight(v, "/")
	return nil
}

// interval reads a scheduler duration; off is 0 where off is allowed.
func interval(name, v string, dst *time.Duration, off bool) (err error) {
	if v == "off" && off {
		*dst = 0
		return nil
	}
	if *dst, err = time.ParseDuration(v); err != nil || *dst < 0 || (*dst == 0 && !off) {
		return bad(name, v, "a duration such as 5s, 30m or 24h")
	}
	return nil
}

func parseTick(c *Config, v string) error {
	return interval("BALLOTD_TICK", v, &c.Tick, false)
}

func parseRemindBefore(c *Config, v string) error {
	return interval("BALLOTD_REMIND_BEFORE", v, &c.RemindBefore, true)
}

func parseDigestEvery(c *Config, v string) error {
	return interval("BALLOTD_DIGEST_EVERY", v, &c.DigestEvery, true)
}

func parseRetainSetting(c *Config, v string) error {
	d, err := parseRetain(v)
	if err != nil {
		return bad("BALLOTD_RETAIN", v, "days such as 180 or 180d, a duration such as 720h, or off")
	}
	c.Retain = d
	return nil
}

func parseStaffTZ(c *Config, v string) error {
	tz := strings.TrimSpace(v)
	if tz == "" {
		tz = "America/New_York"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		return bad("BALLOTD_STAFF_TZ", tz, "an IANA time zone such as America/New_York or America/Chicago")
	}
	c.StaffTZ = loc
	return nil
}

// resolveTLS builds the trust settings IMAP and SMTP share: the system
// roots, plus BALLOTD_TLS_CA_FILE's certificates, or no verification at
// all with BALLOTD_TLS_INSECURE=1.
func resolveTLS(c *Config) error {
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

// resolveOAuth builds, for XOAUTH2 and OAUTHBEARER, the OAuth2 token
// source IMAP and SMTP share (they log in to the one mailbox account)
// from the BALLOTD_OAUTH_* settings. Secrets are never echoed in an error.
func resolveOAuth(c *Config) error {
	o := c.oauth
	imapOAuth := c.IMAP.Mechanism == mailauth.XOAuth2 || c.IMAP.Mechanism == mailauth.OAuthBearer
	smtpOAuth := c.SMTP.Mechanism == mailauth.XOAuth2 || c.SMTP.Mechanism == mailauth.OAuthBearer
	if !imapOAuth && !smtpOAuth {
		if o.provider+o.tokenURL+o.clientID+o.secret+o.refresh != "" {
			return configError{"BALLOTD_OAUTH_* is set, but neither BALLOTD_IMAP_AUTH nor BALLOTD_SMTP_AUTH is xoauth2 or oauthbearer"}
		}
		return nil
	}
	tokenURL, err := o.endpoint()
	if err != nil {
		return err
	}
	switch {
	case tokenURL == "":
		return missing("BALLOTD_OAUTH_TOKEN_URL", "the provider's OAuth2 token endpoint, or BALLOTD_OAUTH_PROVIDER=google or microsoft")
	case !secureURL(tokenURL):
		return bad("BALLOTD_OAUTH_TOKEN_URL", tokenURL, "an https URL such as https://oauth2.googleapis.com/token (http only on loopback)")
	case o.clientID == "":
		return missing("BALLOTD_OAUTH_CLIENT_ID", "the OAuth2 client ID the refresh token was issued to")
	case o.refresh == "":
		return missing("BALLOTD_OAUTH_REFRESH_TOKEN", "the refresh token of the mailbox account, see README, Connecting to your mail provider")
	}
	tokens := mailauth.NewTokens(tokenURL, o.clientID, o.secret, o.refresh)
	c.IMAP.Tokens, c.SMTP.Tokens = tokens, tokens
	return nil
}

// endpoint is the token URL: the provider's, or BALLOTD_OAUTH_TOKEN_URL.
func (o oauthSettings) endpoint() (string, error) {
	switch {
	case o.tenant != "" && o.provider != "microsoft":
		return "", bad("BALLOTD_OAUTH_TENANT", o.tenant, "unset unless BALLOTD_OAUTH_PROVIDER=microsoft")
	case strings.ContainsAny(o.tenant, "/?#% "):
		return "", bad("BALLOTD_OAUTH_TENANT", o.tenant, "a Microsoft Entra tenant: common, organizations, or the directory's id or domain")
	case o.provider != "" && o.tokenURL != "":
		return "", bad("BALLOTD_OAUTH_TOKEN_URL", o.tokenURL, "unset when BALLOTD_OAUTH_PROVIDER is set (it gives the token URL)")
	}
	switch o.provider {
	case "":
		return o.tokenURL, nil
	case "google":
		return mailauth.GoogleTokenURL, nil
	case "microsoft":
		if o.tenant == "" {
			o.tenant = "common"
		}
		return fmt.Sprintf(mailauth.MicrosoftTokenURL, o.tenant), nil
	}
	return "", bad("BALLOTD_OAUTH_PROVIDER", o.provider, "google or microsoft (or set BALLOTD_OAUTH_TOKEN_URL instead)")
}

// resolveDKIM requires the DKIM key and selector together.
func resolveDKIM(c *Config) error {
	switch {
	case c.DKIMKey != "" && c.DKIMSelector == "":
		return missing("BALLOTD_DKIM_SELECTOR", "the DKIM selector published in DNS for BALLOTD_DKIM_KEY")
	case c.DKIMKey == "" && c.DKIMSelector != "":
		return missing("BALLOTD_DKIM_KEY", "the path of the PEM private key for BALLOTD_DKIM_SELECTOR")
	case c.DKIMSelector != "" && strings.ContainsAny(c.DKIMSelector, " ;=@"):
		return bad("BALLOTD_DKIM_SELECTOR", c.DKIMSelector, "a DNS label such as ballots2026")
	}
	return nil
}
