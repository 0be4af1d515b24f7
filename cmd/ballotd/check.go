package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/internal/mailauth"
	"github.com/ballotd/ballotd/mailer"
)

// checkResult is one part of `ballotd check`: OK with what was found, or
// what failed and what to change.
type checkResult struct {
	Part   string
	OK     bool
	Detail string
}

func (r checkResult) String() string {
	if r.OK {
		return r.Part + "  OK " + redact(r.Detail)
	}
	return r.Part + "  FAILED: " + redact(r.Detail)
}

// cmdCheck checks the configuration against the real servers: PostgreSQL,
// IMAP and SMTP. It prints one line per part and fails if any part does.
func cmdCheck(ctx context.Context, e *env, args []string) error {
	if err := noArgs(flags("check"), args); err != nil {
		return err
	}
	cfg, err := loadConfig(e.getenv, need{mail: true})
	if err != nil {
		return err
	}
	warnInsecure(e, cfg)
	if e.config.path != "" {
		fmt.Fprintln(e.stdout, configLine(e.config))
	}
	// As serve does: with OAuth2, a refresh token the provider rotated is
	// read from, and kept in, the database (when it can be reached; its line
	// says if not).
	if cfg.IMAP.Tokens != nil || cfg.SMTP.Tokens != nil {
		if st, err := ballots.Open(ctx, cfg.DatabaseURL); err == nil {
			defer st.Close()
			if err := keepOAuth(cfg, st, e.log); err != nil {
				return err
			}
		}
	}
	failed := 0
	for _, r := range runChecks(ctx, cfg) {
		fmt.Fprintln(e.stdout, r)
		if !r.OK {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("check: %d of 3 parts failed", failed)
	}
	return nil
}

// configLine is check's line for the settings file: how many settings it
// gave, and which of them the environment overrides (a change to the file
// that seems to do nothing).
func configLine(src configSource) string {
	line := fmt.Sprintf("config  OK %s, %d settings", src.path, len(src.keys))
	if len(src.overridden) > 0 {
		line += "; the environment overrides " + strings.Join(src.overridden, ", ")
	}
	if len(src.exposed) > 0 {
		line += "; WARNING: " + exposedWarning(src)
	}
	return line
}

// exposedWarning says that the settings file's secrets are readable by
// every user of the machine, and what to do.
func exposedWarning(src configSource) string {
	return fmt.Sprintf("every user can read %s, which holds %s — chmod 640 it (owner root, group ballotd)", src.path, strings.Join(src.exposed, ", "))
}

// warnInsecure logs, loudly, that certificates are not verified, and that
// the settings file's secrets are readable by everyone.
func warnInsecure(e *env, cfg Config) {
	if len(e.config.exposed) > 0 {
		e.log.Warn("SETTINGS FILE IS WORLD-READABLE: " + exposedWarning(e.config))
	}
	if cfg.TLSInsecure {
		e.log.Warn("TLS CERTIFICATE VERIFICATION IS OFF (BALLOTD_TLS_INSECURE=1): anyone on the network path can read the mailbox password and the votes")
	}
}

// runChecks checks the database, IMAP and SMTP, in that order, each with a
// bounded time.
func runChecks(ctx context.Context, cfg Config) []checkResult {
	return []checkResult{checkDatabase(ctx, cfg), checkIMAP(ctx, cfg), checkSMTP(ctx, cfg)}
}

func checkDatabase(ctx context.Context, cfg Config) checkResult {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	where := redact(cfg.DatabaseURL)
	if u, err := url.Parse(cfg.DatabaseURL); err == nil && u.Host != "" {
		where = u.Host + u.Path
	}
	st, err := ballots.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		what := "cannot connect to " + where
		if errors.Is(err, syscall.ECONNREFUSED) {
			what += ": connection refused"
		} else {
			what += ": " + strings.TrimPrefix(err.Error(), "connect to database: ")
		}
		return checkResult{"database", false, what + " — check DATABASE_URL and that PostgreSQL is running"}
	}
	defer st.Close()
	pending, err := ballots.PendingMigrations(ctx, st.DB)
	var se *ballots.SchemaError
	switch {
	case errors.Is(err, ballots.ErrSchemaNewer):
		return checkResult{"database", false, fmt.Sprintf("%s: %v — install the ballotd that migrated it", where, err)}
	case errors.As(err, &se):
		return checkResult{"database", false, fmt.Sprintf("%s: %v", where, err)}
	case err != nil:
		return checkResult{"database", false, fmt.Sprintf("%s: %v — check that the DATABASE_URL user may read it", where, err)}
	}
	if len(pending) > 0 {
		return checkResult{"database", false, fmt.Sprintf("%s: %d migrations not applied (%s …) — run ballotd migrate (or serve --migrate)", where, len(pending), pending[0])}
	}
	return checkResult{"database", true, where + ", schema up to date"}
}

func checkIMAP(ctx context.Context, cfg Config) checkResult {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := cfg.IMAP
	box := c.Mailbox
	if box == "" {
		box = "INBOX"
	}
	idle, err := inbound.Check(ctx, c)
	if err != nil {
		return checkResult{"imap", false, explainMailErr("IMAP", c.Addr, c.TLS, c.Username, c.Mechanism, err)}
	}
	support := "IDLE supported"
	if !idle {
		support = fmt.Sprintf("no IDLE: polling every %s", pollOf(c))
	}
	login := "logged in as " + c.Username
	if c.Mechanism != "" && c.Mechanism != mailauth.Login {
		login = "authenticated with " + c.Mechanism + " as " + c.Username
	}
	return checkResult{"imap", true, fmt.Sprintf("%s (%s), %s, mailbox %s selected, %s", c.Addr, c.TLS, login, box, support)}
}

func pollOf(c inbound.IMAPConfig) time.Duration {
	if c.Poll > 0 {
		return c.Poll
	}
	return 30 * time.Second
}

func checkSMTP(ctx context.Context, cfg Config) checkResult {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := cfg.SMTP
	c.Timeout = 20 * time.Second
	if err := mailer.CheckSMTP(ctx, c); err != nil {
		return checkResult{"smtp", false, explainMailErr("SMTP", c.Addr, c.TLS, c.Username, c.Mechanism, err)}
	}
	auth := "no AUTH (BALLOTD_SMTP_USER not set)"
	switch {
	case c.Username == "":
	case c.Mechanism == "" || c.Mechanism == mailauth.Plain:
		auth = "authenticated as " + c.Username
	default:
		auth = "authenticated with " + c.Mechanism + " as " + c.Username
	}
	return checkResult{"smtp", true, fmt.Sprintf("%s (%s), EHLO %s, %s, no mail sent", c.Addr, c.TLS, c.HeloName, auth)}
}

// explainMailErr turns an IMAP or SMTP connection error into what failed
// and which setting to change; mech is the authentication mechanism.
func explainMailErr(proto, addr, mode, user, mech string, err error) string {
	v := "BALLOTD_" + proto + "_"
	oauth := mailauth.Auth{Mechanism: mech}.OAuth()
	var (
		referr *mailauth.RefreshError
		verr   *tls.CertificateVerificationError
		herr   x509.HostnameError
		uaerr  x509.UnknownAuthorityError
		ierr   x509.CertificateInvalidError
		rerr   tls.RecordHeaderError
		operr  *net.OpError
		imerr  *imap.Error
		smerr  *smtp.SMTPError
	)
	host, _, _ := net.SplitHostPort(addr)
	switch {
	case errors.As(err, &referr):
		return referr.Error() + " — " + refreshAdvice(referr)
	case errors.As(err, &herr):
		return fmt.Sprintf("certificate of %s is not valid for that name (%v) — set %sADDR to a name the certificate covers", addr, herr, v)
	case errors.As(err, &uaerr):
		subject := ""
		if uaerr.Cert != nil {
			subject = fmt.Sprintf(" (issued by %q)", uaerr.Cert.Issuer.String())
		}
		return fmt.Sprintf("certificate of %s is signed by an unknown authority%s — set BALLOTD_TLS_CA_FILE to the CA that signed it, or install a publicly trusted certificate", addr, subject)
	case errors.As(err, &ierr):
		return fmt.Sprintf("certificate of %s is not valid (%v) — renew or fix the server's certificate", addr, ierr)
	case errors.As(err, &verr):
		return fmt.Sprintf("certificate of %s cannot be verified (%v) — set BALLOTD_TLS_CA_FILE or fix the server's certificate", addr, verr.Err)
	case errors.As(err, &rerr):
		return fmt.Sprintf("%s does not speak TLS on connect — set %sTLS=starttls (or none), or use the implicit-TLS port", addr, v)
	case errors.As(err, &operr) && operr.Op == "dial":
		why := "unreachable"
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			why = "connection refused"
		case operr.Timeout():
			why = "timed out"
		default:
			why = operr.Err.Error()
		}
		return fmt.Sprintf("cannot connect to %s: %s — check %sADDR and that the server is running", addr, why, v)
	case mode == "none" && (strings.Contains(err.Error(), "doesn't support AUTH") ||
		errors.As(err, &smerr) && smerr.Code == 530 && strings.Contains(strings.ToUpper(smerr.Message), "STARTTLS")):
		return fmt.Sprintf("%s wants TLS before AUTH — set %sTLS=starttls (submission, port 587) or tls (port 465)", addr, v)
	case strings.Contains(err.Error(), "doesn't support AUTH"):
		return fmt.Sprintf("%s offers no AUTH — use its submission port, or unset %sUSER if it relays for this host without a login", addr, v)
	case errors.As(err, &imerr) && strings.Contains(err.Error(), "imap login"):
		return fmt.Sprintf("login as %s refused by %s (%s) — check %sUSER and %sPASSWORD", user, addr, imerr.Text, v, v)
	case errors.As(err, &imerr) && strings.Contains(err.Error(), "imap authenticate") && oauth:
		return fmt.Sprintf("AUTHENTICATE %s as %s refused by %s (%s) — %s", mech, user, addr, imerr.Text, tokenAdvice(proto, err))
	case errors.As(err, &imerr) && strings.Contains(err.Error(), "imap authenticate"):
		return fmt.Sprintf("AUTHENTICATE %s as %s refused by %s (%s) — check %sUSER and %sPASSWORD", mech, user, addr, imerr.Text, v, v)
	case errors.As(err, &imerr) && strings.Contains(err.Error(), "imap select"):
		return fmt.Sprintf("mailbox cannot be selected on %s (%s) — check %sMAILBOX", addr, imerr.Text, v)
	case errors.As(err, &smerr) && strings.Contains(err.Error(), "smtp auth") && oauth:
		return fmt.Sprintf("AUTH %s as %s refused by %s (%d %s) — %s", mech, user, addr, smerr.Code, smerr.Message, tokenAdvice(proto, err))
	case errors.As(err, &smerr) && strings.Contains(err.Error(), "smtp auth"):
		as := "AUTH"
		if mech != "" && mech != mailauth.Plain {
			as += " " + mech
		}
		return fmt.Sprintf("%s as %s refused by %s (%d %s) — check %sUSER and %sPASSWORD", as, user, addr, smerr.Code, smerr.Message, v, v)
	case mode == "starttls" && strings.Contains(err.Error(), "starttls"):
		return fmt.Sprintf("STARTTLS failed on %s (%v) — check %sTLS (tls for an implicit-TLS port, none for no TLS)", host, err, v)
	}
	return fmt.Sprintf("%v — check the %s* settings", err, v)
}

// refreshAdvice says which setting to change when the token endpoint
// refused a refresh (RFC 6749 §5.2 error codes) or could not be reached.
func refreshAdvice(e *mailauth.RefreshError) string {
	switch e.Code {
	case "invalid_grant":
		return "get a new refresh token (BALLOTD_OAUTH_REFRESH_TOKEN)"
	case "invalid_client", "unauthorized_client", "invalid_request":
		return "check BALLOTD_OAUTH_CLIENT_ID and BALLOTD_OAUTH_CLIENT_SECRET (the client the refresh token was issued to)"
	case "":
		return "check BALLOTD_OAUTH_TOKEN_URL (or BALLOTD_OAUTH_PROVIDER) and that it can be reached"
	}
	return "check the BALLOTD_OAUTH_* settings"
}

// tokenAdvice says what to change when the mail server refused an access
// token the endpoint had issued: the wrong account, or a scope that does not
// cover the protocol.
func tokenAdvice(proto string, err error) string {
	scope := ""
	var rerr *mailauth.RefusedError
	if errors.As(err, &rerr) && rerr.Scope != "" {
		scope = fmt.Sprintf(" (the server asks for %q)", rerr.Scope)
	}
	return fmt.Sprintf("check that BALLOTD_%s_USER is the account BALLOTD_OAUTH_REFRESH_TOKEN was issued for, and that the token's scope covers %s%s", proto, proto, scope)
}
