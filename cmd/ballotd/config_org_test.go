package main

import (
	"strings"
	"testing"
)

// BALLOTD_ORG_NAME names the sender when BALLOTD_FROM is not set; with
// neither, From is as before. BALLOTD_STAFF_TZ defaults to New York's
// zone; a zone or organisation URL that is not one is refused, naming
// the setting.
func TestConfigOrgAndStaffZone(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/none?sslmode=disable"}
	load := func(set map[string]string) (Config, error) {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range set {
			env[k] = v
		}
		return loadConfig(func(k string) string { return env[k] }, need{})
	}
	cases := []struct {
		set      map[string]string
		from, tz string
	}{
		{nil, "Endorsement ballots", "America/New_York"},
		{map[string]string{"BALLOTD_ORG_NAME": "  Working   Families "}, "Working Families", "America/New_York"},
		{map[string]string{"BALLOTD_ORG_NAME": "Working Families", "BALLOTD_FROM": "WF Ballots"}, "WF Ballots", "America/New_York"},
		{map[string]string{"BALLOTD_STAFF_TZ": "America/Chicago"}, "Endorsement ballots", "America/Chicago"},
	}
	for _, c := range cases {
		cfg, err := load(c.set)
		if err != nil {
			t.Fatalf("%v: %v", c.set, err)
		}
		if cfg.From != c.from || cfg.StaffTZ.String() != c.tz {
			t.Errorf("%v: From %q, staff zone %s; want %q, %s", c.set, cfg.From, cfg.StaffTZ, c.from, c.tz)
		}
	}
	cfg, err := load(map[string]string{"BALLOTD_ORG_NAME": "WF", "BALLOTD_ORG_ADDRESS": "1 Main St,\n Boston", "BALLOTD_ORG_URL": "https://wf.example.org"})
	if err != nil || cfg.Org.Name != "WF" || cfg.Org.Address != "1 Main St, Boston" || cfg.Org.URL != "https://wf.example.org" {
		t.Errorf("org %+v, %v", cfg.Org, err)
	}
	for set, want := range map[[2]string]string{
		{"BALLOTD_STAFF_TZ", "Eastern"}:       `BALLOTD_STAFF_TZ="Eastern" is malformed`,
		{"BALLOTD_STAFF_TZ", "Local"}:         `BALLOTD_STAFF_TZ="Local" is malformed`,
		{"BALLOTD_ORG_URL", "wf.example.org"}: `BALLOTD_ORG_URL="wf.example.org" is malformed`,
		{"BALLOTD_ORG_URL", "javascript:x()"}: `BALLOTD_ORG_URL="javascript:x()" is malformed`,
	} {
		if _, err := load(map[string]string{set[0]: set[1]}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: %v, want %s", set[0], set[1], err, want)
		}
	}
}
