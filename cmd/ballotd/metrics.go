package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/templates"
)

// pollStale is how old the last successful IMAP pass may be before
// /healthz answers 503.
const pollStale = 5 * time.Minute

// observer counts what the daemon does for /metrics and remembers what
// /healthz reports. Its hooks are called from the daemon's goroutines.
type observer struct {
	store   *ballots.Store
	reg     *prometheus.Registry
	started time.Time

	received   *prometheus.CounterVec
	votes      prometheus.Counter
	sends      *prometheus.CounterVec
	outcomes   *prometheus.CounterVec
	latency    prometheus.Histogram
	reconnects prometheus.Counter
	steps      *prometheus.CounterVec

	mu       sync.Mutex
	backlog  int       // IMAP messages past the cursor, as the reader last saw them
	lastPoll time.Time // zero: no pass yet
	imapErr  string    // the error that ended the last IMAP session, until a pass succeeds
	smtpErr  string    // the last connection error of a send, until one is accepted
	leading  bool
}

// The gauges read at scrape. Nothing here counts the outbox: the flows are
// counters kept as the work happens (ballotd_outbox_sent_total), and the
// outbox's age is read from the first entry of an index (ReadHealth).
var (
	oldestUnsentDesc = prometheus.NewDesc("ballotd_outbox_oldest_unsent_seconds",
		"Age of the oldest outbox row not yet sent or failed (queued, sending or deferred), 0 when none.", nil, nil)
	quarantineDesc = prometheus.NewDesc("ballotd_quarantine_messages", "Inbound messages kept for staff (quarantined).", nil, nil)
	databaseUpDesc = prometheus.NewDesc("ballotd_database_up", "1 when the database answered this scrape within 5 s, else 0.", nil, nil)
	lastPollDesc   = prometheus.NewDesc("ballotd_imap_last_poll_timestamp_seconds",
		"Unix time of this replica's last completed IMAP pass, 0 before the first.", nil, nil)
	backlogDesc = prometheus.NewDesc("ballotd_imap_backlog_messages",
		"Messages in the mailbox past the cursor, not yet handled, as this replica's reader last saw them.", nil, nil)
	leaderDesc = prometheus.NewDesc("ballotd_scheduler_leader", "1 when this replica holds the scheduler lock, else 0.", nil, nil)
	// The relays' daily quotas: one series per configured relay (at most
	// three), read from the send counts all replicas share.
	quotaDailyDesc = prometheus.NewDesc("ballotd_smtp_quota_daily",
		"The relay's quota in any 24 hours (BALLOTD_SMTP_DAILY), 0 when none.", []string{"relay"}, nil)
	sent24hDesc = prometheus.NewDesc("ballotd_smtp_sent_24h",
		"Messages given to the relay in the last 24 hours, all replicas together.", []string{"relay"}, nil)
)

func newObserver(st *ballots.Store) *observer {
	o := &observer{
		store:   st,
		reg:     prometheus.NewRegistry(),
		started: time.Now(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ballotd_messages_received_total",
			Help: "Inbound messages handled, by class and outcome."}, []string{"class", "outcome"}),
		votes: prometheus.NewCounter(prometheus.CounterOpts{Name: "ballotd_votes_recorded_total",
			Help: "Votes counted."}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ballotd_smtp_sends_total",
			Help: "SMTP send attempts by reply code class (2xx, 4xx, 5xx, or network)."}, []string{"code_class"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ballotd_outbox_sent_total",
			Help: "Outbox rows tried, by mail kind, result (sent, deferred, failed) and recipient domain class (gmail, microsoft, yahoo, icloud, other)."},
			[]string{"kind", "result", "domain_class"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ballotd_smtp_send_seconds",
			Help: "Time of one SMTP transaction (MAIL, RCPT, DATA), including a dial.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "ballotd_imap_reconnects_total",
			Help: "IMAP sessions that ended and were reconnected."}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ballotd_scheduler_steps_total",
			Help: "Scheduled steps taken by this replica, by step."}, []string{"step"}),
	}
	o.reg.MustRegister(o.received, o.votes, o.sends, o.outcomes, o.latency, o.reconnects, o.steps, o, buildInfo(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return o
}

// attach sets the daemon's hooks to count into o.
func (o *observer) attach(d *daemon) {
	o.attachReader(d)
	o.attachOutbox(d)
	d.sched.Ticked = func(leading bool, rep ballots.StepReport) {
		o.mu.Lock()
		o.leading = leading
		o.mu.Unlock()
		for step, n := range map[string]int{"vetting": len(rep.Vetting), "open": len(rep.Opened), "remind": len(rep.Reminded), "close": len(rep.Closed)} {
			if n > 0 {
				o.steps.WithLabelValues(step).Add(float64(n))
			}
		}
	}
}

// attachReader sets the mailbox reader's hooks.
func (o *observer) attachReader(d *daemon) {
	d.reader.Processor.Handled = func(r inbound.Result) {
		o.received.WithLabelValues(string(r.Class), r.Outcome).Inc()
		if r.Class == message.ClassVote && r.Outcome == inbound.OutcomeCounted {
			o.votes.Inc()
		}
	}
	polled := d.reader.Polled
	d.reader.Polled = func(n int) {
		o.mu.Lock()
		o.lastPoll, o.imapErr = time.Now(), ""
		o.mu.Unlock()
		if polled != nil {
			polled(n)
		}
	}
	d.reader.Backlog = func(n int) {
		o.mu.Lock()
		o.backlog = n
		o.mu.Unlock()
	}
	d.reader.Reconnecting = func(err error) {
		o.reconnects.Inc()
		o.mu.Lock()
		o.imapErr = err.Error()
		o.mu.Unlock()
	}
}

// attachOutbox sets the outbox's hooks.
func (o *observer) attachOutbox(d *daemon) {
	d.outbox.Sent = func(err error, took time.Duration) {
		o.latency.Observe(took.Seconds())
		class := "2xx"
		var se *smtp.SMTPError
		switch {
		case err == nil:
		case errors.As(err, &se):
			class = fmt.Sprintf("%dxx", se.Code/100)
		default:
			class = "network"
		}
		o.sends.WithLabelValues(class).Inc()
		o.mu.Lock()
		if class == "network" {
			o.smtpErr = err.Error()
		} else {
			o.smtpErr = ""
		}
		o.mu.Unlock()
	}
	d.outbox.Finished = func(kind templates.Kind, domainClass string, res ballots.SendResult) {
		o.outcomes.WithLabelValues(string(kind), res.Status, domainClass).Inc()
	}
}

// Describe implements prometheus.Collector for the gauges read at scrape.
func (o *observer) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{oldestUnsentDesc, quarantineDesc, databaseUpDesc, lastPollDesc, backlogDesc, leaderDesc, quotaDailyDesc, sent24hDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the outbox's oldest unsent row
// and the quarantine's size from the database (one query on partial
// indexes, whatever the outbox holds; left out, and ballotd_database_up 0,
// when the database does not answer), each relay's daily quota and use,
// and what this replica saw last.
func (o *observer) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := 0.0
	if h, err := o.store.ReadHealth(ctx); err == nil {
		up = 1
		ch <- prometheus.MustNewConstMetric(oldestUnsentDesc, prometheus.GaugeValue, h.OldestUnsent)
		ch <- prometheus.MustNewConstMetric(quarantineDesc, prometheus.GaugeValue, float64(h.Quarantined))
		if rs, err := o.store.RelayUsage(ctx); err == nil {
			for _, r := range rs {
				ch <- prometheus.MustNewConstMetric(quotaDailyDesc, prometheus.GaugeValue, float64(r.Daily), r.Relay)
				ch <- prometheus.MustNewConstMetric(sent24hDesc, prometheus.GaugeValue, float64(r.UsedDay), r.Relay)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, up)
	o.mu.Lock()
	defer o.mu.Unlock()
	last, leader := 0.0, 0.0
	if !o.lastPoll.IsZero() {
		last = float64(o.lastPoll.UnixNano()) / 1e9
	}
	if o.leading {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(lastPollDesc, prometheus.GaugeValue, last)
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(o.backlog))
	ch <- prometheus.MustNewConstMetric(leaderDesc, prometheus.GaugeValue, leader)
}

// health is the /healthz answer. Status is starting until the first
// IMAP pass (200 only once it is ok), ok, or failing; OK is Status == ok.
type health struct {
	Status                string   `json:"status"`
	Database              string   `json:"database"`
	IMAP                  string   `json:"imap"`
	SMTP                  string   `json:"smtp"`
	SchedulerLeader       bool     `json:"scheduler_leader"`
	LastIMAPPollAge       *float64 `json:"last_imap_poll_age_seconds"`
	OldestUnsentOutboxAge *float64 `json:"oldest_unsent_outbox_age_seconds"`
	OK                    bool     `json:"ok"`
}

func (o *observer) health(ctx context.Context) health {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h := health{Database: "ok", IMAP: "ok", SMTP: "ok"}
	if dh, err := o.store.ReadHealth(ctx); err != nil {
		h.Database = "error: " + err.Error()
	} else {
		h.OldestUnsentOutboxAge = &dh.OldestUnsent
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	h.SchedulerLeader = o.leading
	since := o.started
	if !o.lastPoll.IsZero() {
		age := time.Since(o.lastPoll).Seconds()
		h.LastIMAPPollAge = &age
		since = o.lastPoll
	} else {
		h.IMAP = "not polled yet"
	}
	if o.imapErr != "" {
		h.IMAP = "error: " + o.imapErr
	}
	if o.smtpErr != "" {
		h.SMTP = "error: " + o.smtpErr
	}
	stale := time.Since(since) > pollStale
	if stale && o.imapErr == "" {
		h.IMAP = fmt.Sprintf("no successful poll for %s", time.Since(since).Round(time.Second))
	}
	// Healthy is every part ok: the database answers, the mailbox was read
	// and its last session did not fail, the relay took the last message.
	// Before the first pass, with nothing failed yet, it is starting.
	switch {
	case h.Database == "ok" && h.IMAP == "ok" && h.SMTP == "ok":
		h.Status = "ok"
	case h.Database == "ok" && o.lastPoll.IsZero() && o.imapErr == "" && o.smtpErr == "" && !stale:
		h.Status = "starting"
	default:
		h.Status = "failing"
	}
	h.OK = h.Status == "ok"
	return h
}

// ServeHTTP answers /healthz: 200 when healthy, 503 otherwise.
func (o *observer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := o.health(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !h.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}

// routes adds /healthz and /metrics to mux, behind the bearer token
// (none when "").
func (o *observer) routes(mux *http.ServeMux, token string) {
	mux.Handle("/healthz", bearer(token, o))
	mux.Handle("/metrics", bearer(token, promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{})))
}
