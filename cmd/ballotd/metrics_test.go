package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/testenv"
)

// TestHealthz: 200 only while every part is ok: 503 "starting" before the
// first IMAP pass, 503 "failing" on an IMAP or SMTP error (before the first
// pass too), a stale poll, or a database gone.
func TestHealthz(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	o := newObserver(st)
	get := func() (int, health) {
		rec := httptest.NewRecorder()
		o.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		var h health
		if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
			t.Fatalf("healthz body %q: %v", rec.Body.String(), err)
		}
		return rec.Code, h
	}
	for _, tc := range []struct {
		name     string
		setup    func()
		code     int
		database string
		imap     string
		status   string
	}{
		{"fresh start, not polled yet", func() {}, 503, "ok", "not polled yet", "starting"},
		{"IMAP refused before the first pass", func() { o.imapErr = "dial tcp: connection refused" }, 503, "ok", "error: dial tcp: connection refused", "failing"},
		{"polled", func() { o.imapErr, o.lastPoll = "", time.Now() }, 200, "ok", "ok", "ok"},
		{"IMAP session failed since", func() { o.imapErr = "imap: connection reset" }, 503, "ok", "error: imap: connection reset", "failing"},
		{"SMTP relay refused", func() { o.imapErr, o.smtpErr = "", "dial tcp: connection refused" }, 503, "ok", "ok", "failing"},
		{"poll stale", func() { o.smtpErr, o.lastPoll = "", time.Now().Add(-6*time.Minute) }, 503, "ok", "no successful poll for 6m0s", "failing"},
		{"database closed", func() { o.lastPoll = time.Now(); st.Close() }, 503, "error: read health: sql: database is closed", "ok", "failing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			code, h := get()
			if code != tc.code || h.Database != tc.database || h.IMAP != tc.imap || h.Status != tc.status || h.OK != (tc.code == 200) {
				t.Errorf("healthz %d %+v; want %d, database %q, imap %q, status %s", code, h, tc.code, tc.database, tc.imap, tc.status)
			}
		})
	}
}

// scrape reads /metrics into "name{labels}" → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// waitMetric waits (bounded) until every metric in want has at least its value.
func waitMetric(t *testing.T, base string, want map[string]float64) map[string]float64 {
	t.Helper()
	var m map[string]float64
	short := ""
	moved := testenv.Poll(30*time.Second, func() bool {
		m, short = scrape(t, base), ""
		for k, v := range want {
			if m[k] < v {
				short += fmt.Sprintf("%s = %v (want ≥ %v); ", k, m[k], v)
			}
		}
		return short == ""
	})
	if !moved {
		t.Fatalf("metrics did not move: %s", short)
	}
	return m
}

// TestMetricsMove runs serve with BALLOTD_ADMIN_ADDR: /metrics counts the
// ballot sent and the vote ingested, and /healthz answers 200 once the
// mailbox was read; the public BALLOTD_HTTP_ADDR serves neither.
func TestMetricsMove(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	addr := closedPort(t)
	h.env["BALLOTD_ADMIN_ADDR"] = addr
	h.env["BALLOTD_HTTP_ADDR"] = closedPort(t)
	base := "http://" + addr
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("groups.csv", "name,state,district,leader_email,leader_name\nIndivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n"))
	h.openRace("alice@example.net,Alice,MA-07\n", "MA-SEN", "Ed Markey", "--group", "Indivisible Somerville")

	stop := h.serve()
	defer stop()
	b := parseSent(t, h.waitSent(1)[0])
	m := waitMetric(t, base, map[string]float64{
		`ballotd_smtp_sends_total{code_class="2xx"}`: 1,
		`ballotd_smtp_send_seconds_count`:            1,
	})
	if m[`ballotd_votes_recorded_total`] != 0 {
		t.Errorf("votes before any reply: %v", m[`ballotd_votes_recorded_total`])
	}
	h.reply("alice@example.net", b.ReplyTo, fmt.Sprintf("From: alice@example.net\nTo: %s\nSubject: Re: %s\nMessage-ID: <alice-1@example.net>\n\nYES\n", b.ReplyTo, b.Subject))
	h.waitSent(2) // the receipt
	waitMetric(t, base, map[string]float64{
		`ballotd_messages_received_total{class="vote",outcome="counted"}`:              1,
		`ballotd_votes_recorded_total`:                                                 1,
		`ballotd_smtp_sends_total{code_class="2xx"}`:                                   2,
		`ballotd_outbox_sent_total{domain_class="other",kind="ballot",result="sent"}`:  1,
		`ballotd_outbox_sent_total{domain_class="other",kind="receipt",result="sent"}`: 1,
		`ballotd_imap_last_poll_timestamp_seconds`:                                     float64(time.Now().Add(-time.Hour).Unix()),
		// The scheduler's first tick takes the lock, then its steps, then
		// says so: on a loaded machine that can come after the receipt.
		`ballotd_scheduler_leader`: 1,
	})
	m = scrape(t, base)
	for name, want := range map[string]float64{`ballotd_quarantine_messages`: 0, `ballotd_database_up`: 1,
		`ballotd_imap_backlog_messages`: 0, `ballotd_scheduler_leader`: 1} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v); want %v", name, got, ok, want)
		}
	}
	relay := `{relay="` + h.env["BALLOTD_SMTP_ADDR"] + `"}`
	if m[`ballotd_smtp_sent_24h`+relay] != 2 || m[`ballotd_smtp_quota_daily`+relay] != 0 {
		t.Errorf("relay gauges: sent in 24 h %v, daily quota %v; want 2 and 0 (none)", m[`ballotd_smtp_sent_24h`+relay], m[`ballotd_smtp_quota_daily`+relay])
	}
	if got, ok := m[`ballotd_outbox_oldest_unsent_seconds`]; !ok || got < 0 || got > 60 {
		t.Errorf("ballotd_outbox_oldest_unsent_seconds = %v (present %v); want a few seconds at most", got, ok)
	}
	for k := range m {
		if strings.HasPrefix(k, "ballotd_outbox_rows") {
			t.Errorf("%s: /metrics counts the outbox at scrape", k)
		}
	}
	v, _, gov := buildVersion()
	if m[`ballotd_build_info{goversion="`+gov+`",revision="",version="`+v+`"}`] != 1 {
		t.Errorf("ballotd_build_info{version=%q} missing: %v", v, m)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var hz health
	json.NewDecoder(resp.Body).Decode(&hz)
	resp.Body.Close()
	if resp.StatusCode != 200 || !hz.OK || hz.Database != "ok" || hz.LastIMAPPollAge == nil {
		t.Errorf("healthz %d %+v; want 200, ok, polled", resp.StatusCode, hz)
	}
	for _, path := range []string{"/metrics", "/healthz"} {
		resp, err := http.Get("http://" + h.env["BALLOTD_HTTP_ADDR"] + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("public listener %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
