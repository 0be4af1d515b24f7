package main

import (
	"fmt"
	"strings"
)

// setting is one setting ballotd reads from its environment or its
// settings file. The table below is the one place a setting is declared:
// loadConfig parses through it, the settings file is checked against it
// (parseSettings, withConfigFile), check's report names its secrets, and
// contrib/ballotd.env.example is written from it (exampleFile;
// TestEnvExample keeps the checked-in file equal, go test -run
// TestEnvExample -update rewrites it).
type setting struct {
	name string
	// secret: its value keys or unlocks something; the settings file must
	// not be readable by others when it holds one.
	secret bool
	// section, when set, opens a section of the example file: its first
	// line is the heading, further lines introduce it; gap opens a new
	// paragraph without a heading.
	section string
	gap     bool
	// doc is what the example file says about it, one comment line a line.
	doc string
	// example is the value the example file shows; set says whether the
	// line is a setting there (else it is commented out).
	example string
	set     bool
	// def is the value parse gets when the setting is unset ("" for none).
	def string
	// parse checks the value and stores it in the Config. The settings
	// are parsed in the order of the table, so a parse may read what
	// settings above it stored; what needs several at once is checked
	// after them all (configSteps). nil: read before the Config (the log
	// settings, by newLogger).
	parse func(c *Config, v string) error
}

// settingsTable is every setting, in the order of the example file.
var settingsTable = withRelaySettings([]setting{
	{name: "DATABASE_URL", secret: true, parse: parseDatabaseURL, section: `Database (required)`,
		doc:     `PostgreSQL URL. sslmode=verify-full when the database is on another host.`,
		example: "postgres://ballotd@127.0.0.1:5432/ballotd?sslmode=disable", set: true},
	{name: "BALLOTD_DOMAIN", parse: parseDomain, section: `Identity (required for serve)`,
		doc:     `Mail domain of the ballot mailbox; also the EHLO name.`,
		example: "example.org", set: true},
	{name: "BALLOTD_MAILBOX", def: "ballots", parse: parseMailbox,
		doc: `Local part of the ballot mailbox: ballots@example.org receives replies
at ballots+TAG@example.org (plus addressing must reach the same mailbox).`,
		example: "ballots", set: true},
	{name: "BALLOTD_ORG_NAME", parse: parseOrgName,
		doc: `The organisation that sends the ballots. Its name is the display name of
From (unless BALLOTD_FROM is set), ends every member mail's subject
("Your ballot: ... — Working Families") and the digest's, and names it in
the footer of every member mail ("You get this because you are a member
of Working Families in MA-07", with how to stop) and on the public page.
Unset: no organisation is named anywhere, as before.`,
		example: "Working Families"},
	{name: "BALLOTD_ORG_ADDRESS", parse: parseOrgAddress,
		doc: `Optional: a postal address, one line, in the footer of every member mail
(bulk-mail rules such as CAN-SPAM ask for one), and the organisation's
web site, linked from the footer and the public page.`,
		example: "1 Main Street, Boston, MA 02110"},
	{name: "BALLOTD_ORG_URL", parse: parseOrgURL,
		example: "https://example.org"},
	{name: "BALLOTD_FROM", parse: parseFrom,
		doc:     `Display name of From (default: BALLOTD_ORG_NAME, else Endorsement ballots).`,
		example: "Endorsement ballots"},
	{name: "BALLOTD_SECRET", secret: true, parse: parseSecret,
		doc: `Key of every ballot token: at least 16 characters, random; keep it for the
life of a wave (changing it voids every ballot sent). e.g. openssl rand -base64 32`,
		example: "change-me-to-a-long-random-string", set: true},
	{name: "BALLOTD_IMAP_ADDR", parse: parseIMAPAddr, section: `IMAP: the ballot mailbox (required for serve)`,
		doc:     `host:port; 993 with tls, 143 with starttls.`,
		example: "imap.example.org:993", set: true},
	{name: "BALLOTD_IMAP_TLS", def: "none", parse: parseIMAPTLS,
		doc:     `none, starttls or tls (default none: only for loopback).`,
		example: "tls", set: true},
	{name: "BALLOTD_IMAP_USER", parse: raw(func(c *Config) *string { return &c.IMAP.Username }),
		example: "ballots@example.org", set: true},
	{name: "BALLOTD_IMAP_PASSWORD", secret: true, parse: raw(func(c *Config) *string { return &c.IMAP.Password }),
		example: "", set: true},
	{name: "BALLOTD_IMAP_AUTH", parse: parseIMAPAuth,
		doc: `How to log in: login (the LOGIN command, default), plain (AUTHENTICATE
PLAIN), or xoauth2 / oauthbearer with an OAuth2 token (see OAuth2 below;
no password then).`,
		example: "login"},
	{name: "BALLOTD_IMAP_MAILBOX", parse: raw(func(c *Config) *string { return &c.IMAP.Mailbox }),
		doc:     `Folder to read (default INBOX).`,
		example: "INBOX"},
	{name: "BALLOTD_IMAP_POLL", parse: parseIMAPPoll,
		doc:     `How often to look without IDLE, and IDLE's fallback (default 30s).`,
		example: "30s"},
	{name: "BALLOTD_IMAP_RECONNECT", parse: parseIMAPReconnect,
		doc: `Wait before the first reconnect after the IMAP session ended; it doubles
while the server stays away, up to 2 minutes (default 1s).`,
		example: "1s"},
	{name: "BALLOTD_SMTP_ADDR", parse: parseSMTPAddr, section: `SMTP: the relay (address required for serve)`,
		doc: `host:port; 587 with starttls, 465 with tls. Several, comma-separated, are
relays in order of preference (see BALLOTD_SMTP_2_* below).`,
		example: "smtp.example.org:587", set: true},
	{name: "BALLOTD_SMTP_TLS", def: "none", parse: parseSMTPTLS,
		doc:     `none, starttls or tls (default none: only for loopback).`,
		example: "starttls", set: true},
	{name: "BALLOTD_SMTP_USER", parse: raw(func(c *Config) *string { return &c.SMTP.Username }),
		doc:     `AUTH when a user is set.`,
		example: "ballots@example.org", set: true},
	{name: "BALLOTD_SMTP_PASSWORD", secret: true, parse: raw(func(c *Config) *string { return &c.SMTP.Password }),
		example: "", set: true},
	{name: "BALLOTD_SMTP_AUTH", parse: parseSMTPAuth,
		doc: `AUTH mechanism: plain (default), login, or xoauth2 / oauthbearer with an
OAuth2 token (see OAuth2 below; no password then).`,
		example: "plain"},
	{name: "BALLOTD_SMTP_CONNS", def: "4", parse: parseSMTPConns,
		doc:     `Persistent SMTP connections (outbox workers), 1 to 256 (default 4).`,
		example: "4"},
	{name: "BALLOTD_SMTP_RATE", parse: parseSMTPRate,
		doc:     `Messages a second for this process, all workers together (default 0: no limit).`,
		example: "20"},
	{name: "BALLOTD_SMTP_DAILY", parse: parseSMTPDaily,
		doc: `The relay's quota: messages in any 24 hours, all replicas together, counted
in the database (default 0: none). What it leaves is sent when it frees.`,
		example: "50000"},
	{name: "BALLOTD_SMTP_DOMAIN_RATES", parse: parseSMTPDomainRates,
		doc: `Per recipient domain: messages a second (10 or 10/s) or a minute (600/m)
for this process, an hour (/h) or a day (/d) for all replicas together;
several per domain, comma-separated.`,
		example: "gmail.com=20/s,50000/h,500000/d,yahoo.com=5"},
	{name: "BALLOTD_OUTBOX_LEASE", parse: parseOutboxLease,
		doc:     `How long a claimed outbox row is held before another worker may take it (default 5m).`,
		example: "5m"},
	{name: "BALLOTD_OUTBOX_RETRY", parse: parseOutboxRetry,
		doc: `Wait before the first retry of a message the relay deferred or could not
take; it doubles with each attempt, up to an hour (default 10s).`,
		example: "10s"},
	{name: "BALLOTD_OAUTH_PROVIDER", parse: parseOAuthProvider, section: `OAuth2 (Google Workspace, Microsoft 365)
For BALLOTD_IMAP_AUTH / BALLOTD_SMTP_AUTH = xoauth2 or oauthbearer; IMAP and
SMTP share them (one mailbox account). Access tokens are refreshed from the
refresh token as they expire. See README, "Connecting to your mail provider".
google or microsoft fills in the token URL; else set BALLOTD_OAUTH_TOKEN_URL.`,
		example: "google"},
	{name: "BALLOTD_OAUTH_TENANT", parse: trimmed(func(c *Config) *string { return &c.oauth.tenant }),
		doc:     `Microsoft only: the Entra tenant (default common).`,
		example: "common"},
	{name: "BALLOTD_OAUTH_TOKEN_URL", parse: trimmed(func(c *Config) *string { return &c.oauth.tokenURL }),
		example: "https://oauth2.googleapis.com/token"},
	{name: "BALLOTD_OAUTH_CLIENT_ID", parse: trimmed(func(c *Config) *string { return &c.oauth.clientID }),
		doc: `The OAuth2 client the refresh token was issued to (the secret may be
empty for a public client).`,
		example: ""},
	{name: "BALLOTD_OAUTH_CLIENT_SECRET", secret: true, parse: trimmed(func(c *Config) *string { return &c.oauth.secret }),
		example: ""},
	{name: "BALLOTD_OAUTH_REFRESH_TOKEN", secret: true, parse: trimmed(func(c *Config) *string { return &c.oauth.refresh }),
		example: ""},
	{name: "BALLOTD_TLS_CA_FILE", parse: trimmed(func(c *Config) *string { return &c.TLSCAFile }), section: `TLS trust (IMAP and SMTP)`,
		doc: `Certificates are verified against the system roots. A PEM file of further
CAs to trust (a private CA of a self-hosted server):`,
		example: "/etc/ballotd/ca.pem"},
	{name: "BALLOTD_TLS_INSECURE", parse: parseTLSInsecure,
		doc: `1 turns verification off (logged as a warning at every start). Never in
production: anyone on the path could read the password and the votes.`,
		example: "0"},
	{name: "BALLOTD_DKIM_KEY", parse: raw(func(c *Config) *string { return &c.DKIMKey }), section: `Signing and authenticity`,
		doc:     `DKIM: PEM private key (Ed25519 recommended, or RSA) and its selector; both or neither.`,
		example: "/etc/ballotd/dkim.pem"},
	{name: "BALLOTD_DKIM_SELECTOR", parse: parseDKIMSelector,
		example: "ballots2026"},
	{name: "BALLOTD_AUTHSERV_ID", parse: parseAuthservID,
		doc: `Trust Authentication-Results only from this server (its authserv-id); then
a vote, sign-up, confirmation, nomination, withdrawal, staff command,
unsubscribe or resend request whose DMARC (or DKIM/SPF) failed, or that
the server left no results on, is not acted on but kept in quarantine.
Unset: From is trusted and the tokens protect.`,
		example: "mx.example.org"},
	{name: "BALLOTD_STRANGER_ANSWERS_PER_HOUR", parse: parseStrangerAnswersPerHour,
		doc: `Automatic answers (sign-up confirmations, nomination answers, forms...) to
addresses that are not members, leaders or staff, all together, per hour
(default 50; 0: none). Each address also gets only a few answers a day.`,
		example: "50"},
	{name: "BALLOTD_STAFF", parse: parseStaff, section: `Staff`,
		doc: `Comma-separated staff addresses: vetting notices, digests, held results,
staff commands by reply.`,
		example: "staff@example.org,chair@example.org"},
	{name: "BALLOTD_QUESTIONNAIRE", def: "default", parse: parseQuestionnaire,
		doc: `The policy questionnaire: "default" (the questions ballotd ships), the path
of a text file of numbered questions (1. ... 2. ...), or "off". When on, each
candidate's campaign email (from the nomination form) gets the questions,
staff get the answers (PASS n / FAIL n reason), and a candidate goes on a
ballot only when approved and with a passed questionnaire. Default: default.`,
		example: "default"},
	{name: "BALLOTD_HTTP_ADDR", parse: parseHTTPAddr, section: `HTTP: one-click unsubscribe (public), /healthz and /metrics (admin)`,
		doc: `host:port of the public side: the RFC 8058 one-click unsubscribe and /results,
the results page with its receipt check
(unset: no HTTP). It serves /healthz and /metrics only with
BALLOTD_METRICS_TOKEN set, and then only to that bearer token.`,
		example: "127.0.0.1:8080"},
	{name: "BALLOTD_ADMIN_ADDR", parse: parseAdminAddr,
		doc: `host:port of the admin side: /healthz (JSON, with raw errors) and /metrics
(Prometheus, live turnout); bind it to loopback or a private network
(unset: not served). ` + "`ballotd status`" + ` asks it for /healthz.`,
		example: "127.0.0.1:9090"},
	{name: "BALLOTD_METRICS_TOKEN", secret: true, parse: parseMetricsToken,
		doc: `When set (16+ characters), /healthz and /metrics answer only requests with
"Authorization: Bearer TOKEN", on both listeners.`,
		example: ""},
	{name: "BALLOTD_LMTP_ADDR", parse: parseLMTPAddr, gap: true,
		doc: `Optional: an LMTP door (RFC 2033) through which the MTA delivers the ballot
mailbox's mail straight to ballotd, beside IMAP reading. host:port, or the
path of a Unix socket. Postfix: transport_maps = inline:{ DOMAIN=lmtp:inet:HOST:PORT }`,
		example: "127.0.0.1:2424"},
	{name: "BALLOTD_PUBLIC_URL", parse: parsePublicURL,
		doc: `Where the HTTP side is reachable from outside: adds the https List-Unsubscribe,
and receipts and announcements link BALLOTD_PUBLIC_URL/results (the vote check).`,
		example: "https://ballots.example.org"},
	{name: "BALLOTD_TICK", def: "5s", parse: parseTick, section: `Scheduler`,
		doc:     `How often the scheduler looks (default 5s).`,
		example: "5s"},
	{name: "BALLOTD_REMIND_BEFORE", def: "24h", parse: parseRemindBefore,
		doc:     `Reminder lead time before a race closes (default 24h; off for none).`,
		example: "24h"},
	{name: "BALLOTD_DIGEST_EVERY", def: "24h", parse: parseDigestEvery,
		doc:     `Staff digest interval (default 24h; off for none).`,
		example: "24h"},
	{name: "BALLOTD_RETAIN", def: "180", parse: parseRetainSetting,
		doc: `Retention: days after a wave closes that its mail is kept (default 180; off
keeps everything). Then the raw bytes of its replies and the words its
answers quoted are pruned, once a day; votes, receipts and tallies stay.
` + "`ballotd prune --dry-run`" + ` says what would go.`,
		example: "180"},
	{name: "BALLOTD_STAFF_TZ", def: "America/New_York", parse: parseStaffTZ,
		doc: `The time zone staff read times in: the digest's (an IANA name; default
America/New_York). Members read a race's times in its state's zone.`,
		example: "America/New_York"},
	{name: "BALLOTD_TEMPLATES", parse: raw(func(c *Config) *string { return &c.Templates }), section: `Presentation`,
		doc:     `Directory whose KIND.txt / KIND.html override the embedded templates.`,
		example: "/etc/ballotd/templates"},
	{name: "BALLOTD_LOG_FORMAT", parse: nil,
		doc:     `text or json (unset: text on a terminal, JSON otherwise, as under systemd).`,
		example: "json"},
	{name: "BALLOTD_LOG_LEVEL", parse: nil,
		doc:     `debug, info, warn or error (unset: info).`,
		example: "info"},
})

// settings are the names in settingsTable. A settings file naming anything
// else is refused: a misspelt BALLOTD_IMAP_PASWORD must stop ballotd, not
// be ignored.
var settings = func() []string {
	names := make([]string, len(settingsTable))
	for i, s := range settingsTable {
		names[i] = s.name
	}
	return names
}()

// secretSettings are the settings that must not be readable by others.
var secretSettings = func() []string {
	var names []string
	for _, s := range settingsTable {
		if s.secret {
			names = append(names, s.name)
		}
	}
	return names
}()

// exampleHeader opens contrib/ballotd.env.example.
const exampleHeader = `/etc/ballotd/ballotd.env: ballotd's settings file (ballotd --config FILE, or
BALLOTD_CONFIG=FILE; the environment overrides it). KEY=value, one per line,
no quotes needed; a name ballotd does not know is refused with its line.
Keep it mode 0640 root:ballotd: it holds the secret, the mail passwords or
the OAuth2 refresh token.
Check it with ` + "`ballotd --config /etc/ballotd/ballotd.env check`" + `.
A missing or malformed setting stops ballotd with one line naming it (exit 2).`

// exampleFile is contrib/ballotd.env.example, written from settingsTable.
func exampleFile() string {
	var b strings.Builder
	comment := func(text string) {
		for _, line := range strings.Split(text, "\n") {
			b.WriteString("# " + line + "\n")
		}
	}
	comment(exampleHeader)
	for _, s := range settingsTable {
		switch {
		case s.section != "":
			title, intro, _ := strings.Cut(s.section, "\n")
			heading := "--- " + title + " "
			fmt.Fprintf(&b, "\n# %s%s\n", heading, strings.Repeat("-", max(3, 74-len([]rune(heading)))))
			if intro != "" {
				comment(intro)
			}
		case s.gap:
			b.WriteString("\n")
		}
		if s.doc != "" {
			comment(s.doc)
		}
		if !s.set {
			b.WriteString("#")
		}
		b.WriteString(s.name + "=" + s.example + "\n")
	}
	return b.String()
}
