package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
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
