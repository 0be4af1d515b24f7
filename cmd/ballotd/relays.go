package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/mailauth"
	"github.com/ballotd/ballotd/mailer"
)

// maxRelays is how many relays BALLOTD_SMTP_ADDR may list.
const maxRelays = 3

// relaySettings is one relay as configured: how to reach it and its
// limits. The first is BALLOTD_SMTP_*'s; relay n (2, 3) is the n-th
// address of BALLOTD_SMTP_ADDR with BALLOTD_SMTP_n_*.
type relaySettings struct {
	SMTP mailer.SMTPConfig
	// Rate is messages a second for this process (0: none), DomainRates
	// per recipient domain; Daily the relay's quota in any 24 hours, and
	// DomainQuotas per domain an hour and a day, shared by replicas.
	Rate         float64
	DomainRates  map[string]float64
	Daily        int
	DomainQuotas map[string]ballots.DomainQuota
}

// relays are the configured relays in order of preference.
func (c Config) relays() []relaySettings {
	first := relaySettings{SMTP: c.SMTP, Rate: c.SMTPRate, DomainRates: c.SMTPDomainRates, Daily: c.SMTPDaily, DomainQuotas: c.SMTPDomainQuotas}
	return append([]relaySettings{first}, c.MoreRelays...)
}

// mailerRelays makes the outbox's relays of the configured ones, each
// named by its address (replicas naming it alike share its quotas).
func mailerRelays(c Config) []*mailer.Relay {
	var out []*mailer.Relay
	for _, r := range c.relays() {
		smtpCfg := r.SMTP
		l := mailer.NewLimits(r.Rate, r.DomainRates)
		l.Daily, l.DomainQuotas = r.Daily, r.DomainQuotas
		out = append(out, &mailer.Relay{Name: smtpCfg.Addr, Limits: l,
			NewSender: func() mailer.Sender { return mailer.NewSMTPSender(smtpCfg) }})
	}
	return out
}

// parseSMTPAddr reads BALLOTD_SMTP_ADDR: host:port, or several,
// comma-separated, in order of preference.
func parseSMTPAddr(c *Config, v string) error {
	addrs := strings.Split(v, ",")
	if len(addrs) > maxRelays {
		return bad("BALLOTD_SMTP_ADDR", v, fmt.Sprintf("at most %d relays", maxRelays))
	}
	c.SMTP.Addr = strings.TrimSpace(addrs[0])
	if err := hostPort("BALLOTD_SMTP_ADDR", c.SMTP.Addr); err != nil {
		return err
	}
	c.MoreRelays = nil
	for _, a := range addrs[1:] {
		a = strings.TrimSpace(a)
		if err := hostPort("BALLOTD_SMTP_ADDR", a); err != nil || a == "" {
			return bad("BALLOTD_SMTP_ADDR", v, "host:port, or several comma-separated in order of preference")
		}
		c.MoreRelays = append(c.MoreRelays, relaySettings{SMTP: mailer.SMTPConfig{Addr: a, TLS: "none", Mechanism: mailauth.Plain}})
	}
	return nil
}

func parseSMTPDaily(c *Config, v string) (err error) {
	c.SMTPDaily, err = dailyQuota("BALLOTD_SMTP_DAILY", v)
	return err
}

func dailyQuota(name, v string) (int, error) {
	if strings.TrimSpace(v) == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, bad(name, v, "messages in any 24 hours, such as 50000 (0 for no quota)")
	}
	return n, nil
}

func parseSMTPDomainRates(c *Config, v string) (err error) {
	c.SMTPDomainRates, c.SMTPDomainQuotas, err = domainLimits("BALLOTD_SMTP_DOMAIN_RATES", v)
	return err
}

// domainLimitsWant is what a per-domain limits setting looks like.
const domainLimitsWant = "domain=limit, comma-separated; a limit is messages a second (10, 10/s), a minute (600/m), " +
	"an hour (50000/h) or a day (500000/d), several per domain comma-separated: gmail.com=20/s,50000/h,yahoo.com=5"

// domainLimits reads per-domain limits: "gmail.com=10,yahoo.com=5" (a
// second, as before) or "gmail.com=20/s,50000/h,500000/d,yahoo.com=5": a
// part without "=" adds to the domain before it. Rates (/s, /m) pace this
// process; hourly and daily limits are quotas counted in the database.
func domainLimits(name, v string) (map[string]float64, map[string]ballots.DomainQuota, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil, nil
	}
	rates, quotas := map[string]float64{}, map[string]ballots.DomainQuota{}
	domain := ""
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if d, limit, ok := strings.Cut(part, "="); ok {
			domain, part = strings.ToLower(strings.TrimSpace(d)), strings.TrimSpace(limit)
			if domain == "" || strings.ContainsAny(domain, "@ ") {
				return nil, nil, bad(name, v, domainLimitsWant)
			}
		}
		n, unit, _ := strings.Cut(part, "/")
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		if domain == "" || err != nil || f <= 0 || math.IsInf(f, 0) {
			return nil, nil, bad(name, v, domainLimitsWant)
		}
		q := quotas[domain]
		switch strings.TrimSpace(unit) {
		case "", "s":
			rates[domain] = f
		case "m":
			rates[domain] = f / 60
		case "h":
			q.Hourly = int(f)
		case "d":
			q.Daily = int(f)
		default:
			return nil, nil, bad(name, v, domainLimitsWant)
		}
		if q != (ballots.DomainQuota{}) {
			quotas[domain] = q
		}
	}
	return rates, quotas, nil
}

// relaySettingsFor are the settings of relay n (2, 3): the n-th address
// of BALLOTD_SMTP_ADDR. Unset, a relay has no TLS, no AUTH and no limit,
// as the first has.
func relaySettingsFor(n int) []setting {
	p := fmt.Sprintf("BALLOTD_SMTP_%d_", n)
	at := func(c *Config, name, v string) (*relaySettings, error) {
		if len(c.MoreRelays) < n-1 {
			if strings.TrimSpace(v) == "" {
				return nil, nil
			}
			return nil, configError{fmt.Sprintf("%s is set, but BALLOTD_SMTP_ADDR lists no relay %d", name, n)}
		}
		return &c.MoreRelays[n-2], nil
	}
	each := func(suffix string, set func(r *relaySettings, name, v string) error) func(*Config, string) error {
		return func(c *Config, v string) error {
			r, err := at(c, p+suffix, v)
			if r == nil || err != nil {
				return err
			}
			return set(r, p+suffix, v)
		}
	}
	ss := []setting{
		{name: p + "TLS", parse: each("TLS", func(r *relaySettings, name, v string) (err error) { r.SMTP.TLS, err = tlsMode(name, v); return err })},
		{name: p + "USER", parse: each("USER", func(r *relaySettings, _, v string) error { r.SMTP.Username = v; return nil })},
		{name: p + "PASSWORD", secret: true, parse: each("PASSWORD", func(r *relaySettings, _, v string) error { r.SMTP.Password = v; return nil })},
		{name: p + "AUTH", parse: each("AUTH", parseRelayAuth)},
		{name: p + "RATE", parse: each("RATE", func(r *relaySettings, name, v string) (err error) { r.Rate, err = rateSetting(name, v); return err })},
		{name: p + "DAILY", parse: each("DAILY", func(r *relaySettings, name, v string) (err error) { r.Daily, err = dailyQuota(name, v); return err })},
		{name: p + "DOMAIN_RATES", parse: each("DOMAIN_RATES", func(r *relaySettings, name, v string) (err error) {
			r.DomainRates, r.DomainQuotas, err = domainLimits(name, v)
			return err
		})},
	}
	for i := range ss {
		ss[i].example = map[string]string{"TLS": "starttls", "USER": "apikey", "AUTH": "plain", "RATE": "14", "DAILY": "50000", "DOMAIN_RATES": "gmail.com=20/s,50000/h"}[strings.TrimPrefix(ss[i].name, p)]
	}
	return ss
}

// parseRelayAuth reads a further relay's AUTH mechanism: plain or login
// (the OAuth2 settings are the first relay's mailbox account).
func parseRelayAuth(r *relaySettings, name, v string) (err error) {
	if r.SMTP.Mechanism, err = mechanism(name, v, mailauth.Plain); err != nil {
		return err
	}
	if r.SMTP.Mechanism != mailauth.Plain && r.SMTP.Mechanism != mailauth.Login {
		return bad(name, v, "plain or login (OAuth2 is the first relay's only)")
	}
	return nil
}

// resolveRelays gives the further relays what the first has from other
// settings: the EHLO name and the TLS trust.
func resolveRelays(c *Config) error {
	for i := range c.MoreRelays {
		r := &c.MoreRelays[i].SMTP
		r.HeloName, r.TLSConfig = c.Domain, c.SMTP.TLSConfig
		if r.Password != "" && r.Username == "" {
			return missing(fmt.Sprintf("BALLOTD_SMTP_%d_USER", i+2), "the login that goes with its password")
		}
	}
	return nil
}

// withRelaySettings puts the further relays' settings into table after
// the first relay's, the second's documented in the example file.
func withRelaySettings(table []setting) []setting {
	var out []setting
	for _, s := range table {
		out = append(out, s)
		if s.name != "BALLOTD_SMTP_DOMAIN_RATES" {
			continue
		}
		for n := 2; n <= maxRelays; n++ {
			ss := relaySettingsFor(n)
			if n == 2 {
				ss[0].gap = true
				ss[0].doc = `Further relays: BALLOTD_SMTP_ADDR=smtp.first:587,smtp.second:587 lists them in
order of preference (at most 3); relay n has BALLOTD_SMTP_n_TLS, _USER,
_PASSWORD, _AUTH (plain or login), _RATE, _DAILY and _DOMAIN_RATES, each as
the first relay's (unset: none). When a relay refuses connections, says 421,
is suspended or has used up its daily quota, the next takes over.`
			}
			out = append(out, ss...)
		}
	}
	return out
}

// rateSetting reads messages a second (0 or unset: no limit).
func rateSetting(name, v string) (float64, error) {
	if strings.TrimSpace(v) == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) {
		return 0, bad(name, v, "messages a second, such as 20 or 0.5 (0 for no limit)")
	}
	return f, nil
}

// relayLimitsText says a relay's limits for check: "" when it has none.
func relayLimitsText(r relaySettings) string {
	var parts []string
	if r.Rate > 0 {
		parts = append(parts, fmt.Sprintf("%g/s", r.Rate))
	}
	if r.Daily > 0 {
		parts = append(parts, fmt.Sprintf("%d a day", r.Daily))
	}
	if n := len(r.DomainRates) + len(r.DomainQuotas); n > 0 {
		parts = append(parts, "per-domain limits")
	}
	if len(parts) == 0 {
		return ""
	}
	return "; limits: " + strings.Join(parts, ", ")
}

// relayAddrWords names relay n's address where a message names its
// setting: relay n has no BALLOTD_SMTP_n_ADDR, it is the n-th address of
// BALLOTD_SMTP_ADDR. n "" is the first relay: the message is unchanged.
func relayAddrWords(msg, n string) string {
	if n == "" {
		return msg
	}
	return strings.ReplaceAll(msg, fmt.Sprintf("BALLOTD_SMTP_%s_ADDR", n), "address "+n+" of BALLOTD_SMTP_ADDR")
}
