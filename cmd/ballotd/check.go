package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/internal/mailauth"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// checkResult is one part of `ballotd check`: OK with what was found, or
// what failed and what to change.
type checkResult struct {
	Part   string `json:"part"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func (r checkResult) String() string {
	if r.OK {
		return r.Part + "  OK " + redact(r.Detail)
	}
	return r.Part + "  FAILED: " + redact(r.Detail)
}

// cmdCheck checks what serve loads against the real servers: PostgreSQL,
// IMAP and SMTP, and when set the DKIM key, the templates directory and
// the HTTP listen address. The parts run at once, each within --timeout;
// it prints one line per part (or --json) and fails if any part does.
func cmdCheck(ctx context.Context, e *env, args []string) error {
	fs := flags("check")
	timeout := fs.Duration("timeout", 15*time.Second, "the longest each part may take (they run at once)")
	asJSON := fs.Bool("json", false, "print the parts as JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError{"check: --timeout must be above 0"}
	}
	cfg, err := loadConfig(e.getenv, need{mail: true})
	if err != nil {
		return err
	}
	warnInsecure(e, cfg)
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
	results := checkAll(ctx, cfg, *timeout)
	if e.config.path != "" {
		results = append([]checkResult{configResult(e.config)}, results...)
	}
	failed := 0
	for i, r := range results {
		results[i].Detail = redact(r.Detail)
		if !r.OK {
			failed++
		}
	}
	if *asJSON {
		if err := printJSON(e.stdout, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			fmt.Fprintln(e.stdout, r)
		}
	}
	if failed > 0 {
		return fmt.Errorf("check: %d of %d parts failed", failed, len(results))
	}
	return nil
}

// checkPart is one part of check: its name, what it waits for (said when
// it times out), and the check.
type checkPart struct {
	name, waits string
	addr        string // a server's host:port, to tell a silent server from an unreachable one
	run         func(context.Context) checkResult
}

// checkAll runs the parts serve loads at once, each bounded by timeout,
// and returns their results in a fixed order. A part that does not finish
// in time is reported as what timed out; it is left to end by itself.
func checkAll(ctx context.Context, cfg Config, timeout time.Duration) []checkResult {
	parts := []checkPart{
		{"database", "PostgreSQL to accept the connection and answer", "", func(ctx context.Context) checkResult { return checkDatabase(ctx, cfg) }},
		{"imap", "the IMAP greeting, TLS, login and select", cfg.IMAP.Addr, func(ctx context.Context) checkResult { return checkIMAP(ctx, cfg) }},
		{"smtp", "the SMTP greeting, EHLO, TLS and AUTH", cfg.SMTP.Addr, func(ctx context.Context) checkResult { return checkSMTP(ctx, cfg) }},
	}
	for i, r := range cfg.MoreRelays {
		name := fmt.Sprintf("smtp %d", i+2)
		parts = append(parts, checkPart{name, "the SMTP greeting, EHLO, TLS and AUTH", r.SMTP.Addr, func(ctx context.Context) checkResult {
			return checkRelay(ctx, name, fmt.Sprintf("SMTP_%d", i+2), r)
		}})
	}
	if tokens := oauthTokens(cfg); tokens != nil {
		parts = append(parts, checkPart{"oauth", "the OAuth2 token endpoint", "", func(ctx context.Context) checkResult { return checkOAuth(ctx, tokens) }})
	}
	if cfg.DKIMKey != "" {
		parts = append(parts, checkPart{"dkim", "the key file to be read", "", func(context.Context) checkResult { return checkDKIM(cfg) }})
	}
	if cfg.Templates != "" {
		parts = append(parts, checkPart{"templates", "the templates to be read", "", func(context.Context) checkResult { return checkTemplates(cfg) }})
	}
	if cfg.HTTPAddr != "" {
		parts = append(parts, checkPart{"http", "the listen address", "", func(ctx context.Context) checkResult { return checkHTTP(ctx, cfg) }})
	}
	out := make([]checkResult, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			done := make(chan checkResult, 1)
			go func() { done <- p.run(pctx) }()
			select {
			case r := <-done:
				out[i] = r
			case <-pctx.Done():
				out[i] = checkResult{p.name, false, timedOut(p, timeout)}
			}
		}()
	}
	wg.Wait()
	return out
}

// timedOut says what a part waited for when it ran out of time, and, for
// a server, whether it took the connection at all.
func timedOut(p checkPart, timeout time.Duration) string {
	what := fmt.Sprintf("timed out after %s waiting for %s", timeout, p.waits)
	if p.addr == "" {
		return what
	}
	proto, n, _ := strings.Cut(p.name, " ") // "smtp 2": the second relay
	setting := "BALLOTD_" + strings.ToUpper(strings.ReplaceAll(p.name, " ", "_")) + "_"
	c, err := net.DialTimeout("tcp", p.addr, 2*time.Second)
	if err != nil {
		return relayAddrWords(fmt.Sprintf("%s: %s cannot be reached (%v) — check %sADDR and the firewall", what, p.addr, err, setting), n)
	}
	c.Close()
	return fmt.Sprintf("%s: %s accepts the connection but does not answer — is it an %s server, and is %sTLS right (tls for an implicit-TLS port)?",
		what, p.addr, strings.ToUpper(proto), setting)
}

// oauthTokens is the OAuth2 token source IMAP and SMTP share, or nil.
func oauthTokens(cfg Config) *mailauth.Tokens {
	if cfg.IMAP.Tokens != nil {
		return cfg.IMAP.Tokens
	}
	return cfg.SMTP.Tokens
}

// checkOAuth gets an access token from the token endpoint as serve does
// (IMAP and SMTP then use the same one).
func checkOAuth(ctx context.Context, tokens *mailauth.Tokens) checkResult {
	if _, err := tokens.Token(ctx); err != nil {
		var referr *mailauth.RefreshError
		if errors.As(err, &referr) {
			return checkResult{"oauth", false, referr.Error() + " — " + refreshAdvice(referr)}
		}
		return checkResult{"oauth", false, err.Error() + " — check the BALLOTD_OAUTH_* settings"}
	}
	return checkResult{"oauth", true, "access token issued by " + tokens.TokenURL() + " (IMAP and SMTP use it)"}
}

// checkDKIM loads the DKIM key as serve does.
func checkDKIM(cfg Config) checkResult {
	key, err := mailer.LoadDKIMKey(cfg.DKIMKey)
	if err != nil {
		return checkResult{"dkim", false, err.Error() + " — check BALLOTD_DKIM_KEY"}
	}
	kind := "RSA"
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		kind = "Ed25519"
	}
	return checkResult{"dkim", true, fmt.Sprintf("%s key %s, selector %s (publish its public key at %s._domainkey.%s)", kind, cfg.DKIMKey, cfg.DKIMSelector, cfg.DKIMSelector, cfg.Domain)}
}

// checkTemplates loads the templates as serve does, from the directory of
// BALLOTD_TEMPLATES over the embedded ones.
func checkTemplates(cfg Config) checkResult {
	if err := templatesDir(cfg.Templates); err != nil {
		return checkResult{"templates", false, err.Error()}
	}
	if _, err := templates.Load(cfg.Templates); err != nil {
		return checkResult{"templates", false, fmt.Sprintf("%v — fix the file in BALLOTD_TEMPLATES=%s", err, cfg.Templates)}
	}
	entries, _ := os.ReadDir(cfg.Templates)
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".txt") || strings.HasSuffix(e.Name(), ".html") {
			n++
		}
	}
	return checkResult{"templates", true, fmt.Sprintf("%s: %d files override the embedded templates, all parse", cfg.Templates, n)}
}

// templatesDir refuses a BALLOTD_TEMPLATES that is not a directory: the
// templates would silently be the embedded ones.
func templatesDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("BALLOTD_TEMPLATES=%s: %w — create it or unset BALLOTD_TEMPLATES for the embedded templates", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("BALLOTD_TEMPLATES=%s is not a directory", dir)
	}
	return nil
}

// checkHTTP checks that serve could listen on BALLOTD_HTTP_ADDR: free, or
// already held by a ballotd serve answering /healthz there.
func checkHTTP(ctx context.Context, cfg Config) checkResult {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err == nil {
		ln.Close()
		return checkResult{"http", true, cfg.HTTPAddr + " free to listen on (unsubscribe, /healthz, /metrics)"}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		// Ask whoever holds it for /healthz, leaving time to say so if it
		// does not answer.
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl.Add(-time.Until(dl)/5))
			defer cancel()
		}
		// /healthz is on the admin listener (or, with a token, on both).
		healthAddr := cfg.AdminAddr
		if healthAddr == "" {
			healthAddr = cfg.HTTPAddr
		}
		if s := serveHealth(ctx, healthAddr, cfg.MetricsToken); s.Error == "" {
			return checkResult{"http", true, cfg.HTTPAddr + " held by a running ballotd serve (its /healthz answers)"}
		}
		return checkResult{"http", false, cfg.HTTPAddr + " is in use by another program (no ballotd /healthz answers there) — change BALLOTD_HTTP_ADDR or stop it"}
	}
	return checkResult{"http", false, fmt.Sprintf("cannot listen on %s: %v — check BALLOTD_HTTP_ADDR", cfg.HTTPAddr, err)}
}

// configResult is check's part for the settings file: how many settings
// it gave, and which of them the environment overrides (a change to the
// file that seems to do nothing).
func configResult(src configSource) checkResult {
	detail := fmt.Sprintf("%s, %d settings", src.path, len(src.keys))
	if len(src.overridden) > 0 {
		detail += "; the environment overrides " + strings.Join(src.overridden, ", ")
	}
	if len(src.exposed) > 0 {
		detail += "; WARNING: " + exposedWarning(src)
	}
	return checkResult{"config", true, detail}
}

// exposedWarning says that the settings file's secrets are readable by
// every user of the machine, and what to do.
func exposedWarning(src configSource) string {
	return fmt.Sprintf("every user can read %s, which holds %s — chmod 640 it (owner root, group ballotd)", src.path, strings.Join(src.exposed, ", "))
}

// warnInsecure logs, loudly, that certificates are not verified, that
// the settings file's secrets are readable by everyone, and that
// BALLOTD_SECRET is weak or published.
func warnInsecure(e *env, cfg Config) {
	warnWeakSecret(e, cfg)
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
	pending, err := st.PendingMigrations(ctx)
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
	return checkRelay(ctx, "smtp", "SMTP", cfg.relays()[0])
}

// checkRelay checks one relay as name; its settings are BALLOTD_prefix_*.
// With limits, it says them.
func checkRelay(ctx context.Context, name, prefix string, r relaySettings) checkResult {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := r.SMTP
	c.Timeout = 20 * time.Second
	if err := mailer.CheckSMTP(ctx, c); err != nil {
		_, n, _ := strings.Cut(name, " ")
		return checkResult{name, false, relayAddrWords(explainMailErr(prefix, c.Addr, c.TLS, c.Username, c.Mechanism, err), n)}
	}
	auth := "no AUTH (BALLOTD_SMTP_USER not set)"
	switch {
	case c.Username == "":
	case c.Mechanism == "" || c.Mechanism == mailauth.Plain:
		auth = "authenticated as " + c.Username
	default:
		auth = "authenticated with " + c.Mechanism + " as " + c.Username
	}
	return checkResult{name, true, fmt.Sprintf("%s (%s), EHLO %s, %s, no mail sent%s", c.Addr, c.TLS, c.HeloName, auth, relayLimitsText(r))}
}

// explainMailErr turns an IMAP or SMTP connection error into what failed
// and which setting to change; mech is the authentication mechanism.
func explainMailErr(proto, addr, mode, user, mech string, err error) string {
	v := "BALLOTD_" + proto + "_"
	if why := explainConnErr(addr, v, err); why != "" {
		return why
	}
	oauth := mailauth.Auth{Mechanism: mech}.OAuth()
	var (
		imerr *imap.Error
		smerr *smtp.SMTPError
	)
	host, _, _ := net.SplitHostPort(addr)
	switch {
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

// explainConnErr is explainMailErr for what fails before a login: the
// OAuth2 token endpoint, the server's certificate, the connection; "" for
// anything else. v is the settings' prefix, BALLOTD_IMAP_ or
// BALLOTD_SMTP_.
func explainConnErr(addr, v string, err error) string {
	var (
		referr *mailauth.RefreshError
		verr   *tls.CertificateVerificationError
		herr   x509.HostnameError
		uaerr  x509.UnknownAuthorityError
		ierr   x509.CertificateInvalidError
		rerr   tls.RecordHeaderError
		operr  *net.OpError
	)
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
		why := operr.Err.Error()
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			why = "connection refused"
		case operr.Timeout():
			why = "timed out"
		}
		return fmt.Sprintf("cannot connect to %s: %s — check %sADDR and that the server is running", addr, why, v)
	}
	return ""
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
