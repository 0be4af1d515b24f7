package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
)

// The sending settings: rates, the public URL, DKIM; each malformed value
// is one clear error naming its setting.
func TestMailerSettings(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/db"}
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string // the setting named, "" for none
		check   func(t *testing.T, c Config)
	}{
		{"defaults", nil, "", func(t *testing.T, c Config) {
			if c.SMTPRate != 0 || c.SMTPDomainRates != nil || c.PublicURL != "" || c.DKIMKey != "" || c.OutboxRetry != 0 || c.IMAP.Reconnect != 0 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"rates", map[string]string{"BALLOTD_SMTP_RATE": "12.5", "BALLOTD_SMTP_DOMAIN_RATES": "Gmail.com=10, yahoo.com=0.5"}, "", func(t *testing.T, c Config) {
			if c.SMTPRate != 12.5 || !reflect.DeepEqual(c.SMTPDomainRates, map[string]float64{"gmail.com": 10, "yahoo.com": 0.5}) {
				t.Errorf("rates: %v %v", c.SMTPRate, c.SMTPDomainRates)
			}
		}},
		{"domain limits an hour and a day", map[string]string{"BALLOTD_SMTP_DOMAIN_RATES": "gmail.com=20/s,50000/h,500000/d,yahoo.com=5, aol.com=120/m",
			"BALLOTD_SMTP_DAILY": "100000"}, "", func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c.SMTPDomainRates, map[string]float64{"gmail.com": 20, "yahoo.com": 5, "aol.com": 2}) ||
				!reflect.DeepEqual(c.SMTPDomainQuotas, map[string]ballots.DomainQuota{"gmail.com": {Hourly: 50000, Daily: 500000}}) || c.SMTPDaily != 100000 {
				t.Errorf("limits: %v %v %d", c.SMTPDomainRates, c.SMTPDomainQuotas, c.SMTPDaily)
			}
		}},
		{"relays", map[string]string{"BALLOTD_SMTP_ADDR": "smtp.a.example:587, smtp.b.example:587", "BALLOTD_SMTP_USER": "a",
			"BALLOTD_SMTP_2_TLS": "tls", "BALLOTD_SMTP_2_USER": "apikey", "BALLOTD_SMTP_2_PASSWORD": "pw", "BALLOTD_SMTP_2_DAILY": "50000",
			"BALLOTD_SMTP_2_DOMAIN_RATES": "gmail.com=1000/h"}, "", func(t *testing.T, c Config) {
			rs := c.relays()
			if len(rs) != 2 || rs[0].SMTP.Addr != "smtp.a.example:587" || rs[0].SMTP.Username != "a" {
				t.Fatalf("relays %+v", rs)
			}
			b := rs[1]
			if b.SMTP.Addr != "smtp.b.example:587" || b.SMTP.TLS != "tls" || b.SMTP.Username != "apikey" || b.SMTP.Password != "pw" ||
				b.Daily != 50000 || b.DomainQuotas["gmail.com"].Hourly != 1000 || b.SMTP.HeloName != c.Domain {
				t.Errorf("second relay %+v", b)
			}
			if ms := mailerRelays(c); len(ms) != 2 || ms[1].Name != "smtp.b.example:587" || ms[1].Limits.Daily != 50000 {
				t.Errorf("outbox relays %+v", ms)
			}
		}},
		{"one relay unchanged", map[string]string{"BALLOTD_SMTP_ADDR": "smtp.a.example:587"}, "", func(t *testing.T, c Config) {
			if rs := c.relays(); len(rs) != 1 || rs[0].SMTP.Addr != "smtp.a.example:587" || len(c.MoreRelays) != 0 {
				t.Errorf("relays %+v", rs)
			}
		}},
		{"relay 2 settings without relay 2", map[string]string{"BALLOTD_SMTP_ADDR": "smtp.a.example:587", "BALLOTD_SMTP_2_USER": "x"}, "BALLOTD_SMTP_2_USER", nil},
		{"four relays", map[string]string{"BALLOTD_SMTP_ADDR": "a:25,b:25,c:25,d:25"}, "BALLOTD_SMTP_ADDR", nil},
		{"relay 2 oauth", map[string]string{"BALLOTD_SMTP_ADDR": "a:25,b:25", "BALLOTD_SMTP_2_USER": "x", "BALLOTD_SMTP_2_AUTH": "xoauth2"}, "BALLOTD_SMTP_2_AUTH", nil},
		{"daily not a number", map[string]string{"BALLOTD_SMTP_DAILY": "lots"}, "BALLOTD_SMTP_DAILY", nil},
		{"domain limit unit", map[string]string{"BALLOTD_SMTP_DOMAIN_RATES": "gmail.com=10/w"}, "BALLOTD_SMTP_DOMAIN_RATES", nil},
		{"public url", map[string]string{"BALLOTD_PUBLIC_URL": "https://ballots.example.org/"}, "", func(t *testing.T, c Config) {
			if c.PublicURL != "https://ballots.example.org" {
				t.Errorf("public url %q", c.PublicURL)
			}
		}},
		{"dkim", map[string]string{"BALLOTD_DKIM_KEY": "/etc/ballotd/dkim.pem", "BALLOTD_DKIM_SELECTOR": "b2026"}, "", func(t *testing.T, c Config) {
			if c.DKIMKey != "/etc/ballotd/dkim.pem" || c.DKIMSelector != "b2026" {
				t.Errorf("dkim %q %q", c.DKIMKey, c.DKIMSelector)
			}
		}},
		{"retry waits", map[string]string{"BALLOTD_OUTBOX_RETRY": "30s", "BALLOTD_IMAP_RECONNECT": "250ms"}, "", func(t *testing.T, c Config) {
			if c.OutboxRetry != 30*time.Second || c.IMAP.Reconnect != 250*time.Millisecond {
				t.Errorf("retry %v, reconnect %v", c.OutboxRetry, c.IMAP.Reconnect)
			}
		}},
		{"retry too short", map[string]string{"BALLOTD_OUTBOX_RETRY": "1ms"}, "BALLOTD_OUTBOX_RETRY", nil},
		{"retry not a duration", map[string]string{"BALLOTD_OUTBOX_RETRY": "soon"}, "BALLOTD_OUTBOX_RETRY", nil},
		{"reconnect too long", map[string]string{"BALLOTD_IMAP_RECONNECT": "1h"}, "BALLOTD_IMAP_RECONNECT", nil},
		{"negative rate", map[string]string{"BALLOTD_SMTP_RATE": "-1"}, "BALLOTD_SMTP_RATE", nil},
		{"rate not a number", map[string]string{"BALLOTD_SMTP_RATE": "fast"}, "BALLOTD_SMTP_RATE", nil},
		{"domain rate malformed", map[string]string{"BALLOTD_SMTP_DOMAIN_RATES": "gmail.com"}, "BALLOTD_SMTP_DOMAIN_RATES", nil},
		{"domain rate zero", map[string]string{"BALLOTD_SMTP_DOMAIN_RATES": "gmail.com=0"}, "BALLOTD_SMTP_DOMAIN_RATES", nil},
		{"public url not http", map[string]string{"BALLOTD_PUBLIC_URL": "ballots.example.org"}, "BALLOTD_PUBLIC_URL", nil},
		{"dkim key without selector", map[string]string{"BALLOTD_DKIM_KEY": "/k.pem"}, "BALLOTD_DKIM_SELECTOR", nil},
		{"dkim selector without key", map[string]string{"BALLOTD_DKIM_SELECTOR": "b"}, "BALLOTD_DKIM_KEY", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range c.env {
				env[k] = v
			}
			cfg, err := loadConfig(func(k string) string { return env[k] }, need{})
			if c.wantErr != "" {
				if _, ok := err.(configError); !ok || !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v; want one configError line naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg)
		})
	}
}
