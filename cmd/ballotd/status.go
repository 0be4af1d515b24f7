package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/ballotd/ballotd/ballots"
)

// raceStatus is one race's line of ballotd status.
type raceStatus struct {
	Race        string    `json:"race"`
	Wave        string    `json:"wave"`
	Status      string    `json:"status"`
	Eligible    int       `json:"eligible"`
	Voted       int       `json:"voted"`
	Turnout     float64   `json:"turnout"`
	VotingClose time.Time `json:"voting_close"`
}

// outboxStatus is the outbox's line of ballotd status.
type outboxStatus struct {
	outboxTotals
	OldestUnsentAge float64 `json:"oldest_unsent_age_seconds"`
}

// sendingStatus is a wave's ballots still to send and when, at this
// pace, they will all be out (AllOutAt nil: none went out lately).
type sendingStatus struct {
	ballots.SendPace
	AllOutAt *time.Time `json:"all_out_at"`
	Words    string     `json:"words"`
}

// readSending reads the pace of the waves of races that still have
// ballots to send.
func readSending(ctx context.Context, st *ballots.Store, races []raceStatus, now time.Time) ([]sendingStatus, error) {
	var out []sendingStatus
	seen := map[string]bool{}
	for _, r := range races {
		if seen[r.Wave] {
			continue
		}
		seen[r.Wave] = true
		p, err := st.WaveSendPace(ctx, r.Wave)
		if err != nil {
			return nil, err
		}
		if p.Remaining == 0 {
			continue
		}
		line := sendingStatus{SendPace: p, Words: p.Describe(now, time.UTC)}
		if at, ok := p.ETA(now); ok {
			line.AllOutAt = &at
		}
		out = append(out, line)
	}
	return out, nil
}

// serveStatus is what a running serve's /healthz says, or why it could
// not be asked.
type serveStatus struct {
	Addr   string  `json:"addr,omitempty"`
	Error  string  `json:"error,omitempty"`
	Health *health `json:"health,omitempty"`
}

// status is the operator's one screen.
type status struct {
	At         time.Time     `json:"at"`
	Database   string        `json:"database"`
	Races      []raceStatus  `json:"races"`
	Outbox     *outboxStatus `json:"outbox,omitempty"`
	Quarantine *int64        `json:"quarantine,omitempty"`
	// Sending is, per current wave with ballots still to send, when at
	// this pace they will all be out.
	Sending []sendingStatus `json:"sending,omitempty"`
	Serve   serveStatus     `json:"serve"`
}

// currentRaces keeps the races of the waves that matter now: a wave with
// an open race or whose voting has not closed, else the latest wave.
// rs comes latest wave first (as Store.Races lists them).
func currentRaces(rs []ballots.Race, now time.Time) []raceStatus {
	current := map[string]bool{}
	for _, r := range rs {
		if r.Status == ballots.RaceOpen || r.VotingClose.After(now) {
			current[r.Wave] = true
		}
	}
	if len(current) == 0 && len(rs) > 0 {
		current[rs[0].Wave] = true
	}
	out := []raceStatus{}
	for _, r := range rs {
		if !current[r.Wave] {
			continue
		}
		line := raceStatus{Race: r.Code, Wave: r.Wave, Status: r.Status, Eligible: r.Ballots, Voted: r.Voted, VotingClose: r.VotingClose}
		if r.Ballots > 0 {
			line.Turnout = float64(r.Voted) / float64(r.Ballots)
		}
		out = append(out, line)
	}
	return out
}

// readStatus gathers the status; a database that does not answer is
// reported in it, not returned as an error, so the rest still shows.
func readStatus(ctx context.Context, e *env) (status, error) {
	cfg, err := loadConfig(e.getenv, need{})
	if err != nil {
		return status{}, err
	}
	s := status{At: time.Now().UTC().Truncate(time.Second), Database: "ok", Races: []raceStatus{}}
	s.Serve = serveHealth(ctx, cfg.AdminAddr, cfg.MetricsToken)
	err = func() error {
		st, err := ballots.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer st.Close()
		rs, err := st.Races(ctx)
		if err != nil {
			return err
		}
		s.Races = currentRaces(rs, time.Now())
		if s.Sending, err = readSending(ctx, st, s.Races, time.Now()); err != nil {
			return err
		}
		cs, err := st.OutboxStatusCounts(ctx)
		if err != nil {
			return err
		}
		h, err := st.ReadHealth(ctx)
		if err != nil {
			return err
		}
		t := outboxTotals{Queued: cs[ballots.OutboxQueued], Sending: cs[ballots.OutboxSending], Deferred: cs[ballots.OutboxDeferred],
			Sent: cs[ballots.OutboxSent], Failed: cs[ballots.OutboxFailed]}
		s.Outbox = &outboxStatus{outboxTotals: t, OldestUnsentAge: h.OldestUnsent}
		s.Quarantine = &h.Quarantined
		return nil
	}()
	if err != nil {
		s.Database = "error: " + redact(err.Error())
	}
	return s, nil
}

// serveHealth asks the serve listening on addr (BALLOTD_ADMIN_ADDR) for
// its /healthz, with the bearer token when one is set.
func serveHealth(ctx context.Context, addr, token string) serveStatus {
	if addr == "" {
		return serveStatus{Error: "BALLOTD_ADMIN_ADDR not set"}
	}
	s := serveStatus{Addr: addr}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+dialable(addr)+"/healthz", nil)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.Error = "not reachable at " + addr
		var op *net.OpError
		if errors.As(err, &op) {
			s.Error += " (" + op.Err.Error() + ")"
		}
		return s
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		s.Error = fmt.Sprintf("%s/healthz answered %s, not its JSON", addr, resp.Status)
		return s
	}
	s.Health = &h
	return s
}

// dialable turns a listening address into one to connect to: ":8080" and
// "0.0.0.0:8080" are this machine.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// age writes seconds as a rounded duration.
func age(seconds float64) string {
	return (time.Duration(seconds * float64(time.Second))).Round(time.Second).String()
}

func writeStatus(w io.Writer, s status) error {
	fmt.Fprintf(w, "ballotd status at %s\n\n", s.At.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	switch {
	case s.Database != "ok":
		fmt.Fprintln(tw, "races: unknown, the database does not answer")
	case len(s.Races) == 0:
		fmt.Fprintln(tw, "no races")
	default:
		fmt.Fprintln(tw, "RACE\tWAVE\tSTATUS\tELIGIBLE\tVOTED\tTURNOUT\tCLOSES")
	}
	for _, r := range s.Races {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f %%\t%s\n", r.Race, r.Wave, r.Status, r.Eligible, r.Voted, r.Turnout*100, r.VotingClose.Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if o := s.Outbox; o != nil {
		oldest := "none"
		if o.pending() > 0 {
			oldest = age(o.OldestUnsentAge) + " old"
		}
		fmt.Fprintf(w, "outbox:     %d queued, %d sending, %d deferred, %d sent, %d failed; oldest unsent: %s\n",
			o.Queued, o.Sending, o.Deferred, o.Sent, o.Failed, oldest)
	}
	for _, p := range s.Sending {
		fmt.Fprintf(w, "sending:    %s: %s\n", p.Wave, p.Words)
	}
	if s.Quarantine != nil {
		switch q := *s.Quarantine; q {
		case 0:
			fmt.Fprintln(w, "quarantine: 0 messages kept for staff")
		case 1:
			fmt.Fprintln(w, "quarantine: 1 message kept for staff (ballotd quarantine list)")
		default:
			fmt.Fprintf(w, "quarantine: %d messages kept for staff (ballotd quarantine list)\n", q)
		}
	}
	db := s.Database
	if db == "ok" {
		db = "OK"
	}
	fmt.Fprintf(w, "database:   %s\n", db)
	_, err := fmt.Fprintf(w, "serve:      %s\n", serveLine(s.Serve))
	return err
}

// serveLine is the serve's health in one line.
func serveLine(s serveStatus) string {
	if s.Health == nil {
		return s.Error
	}
	h := s.Health
	state := "OK"
	switch {
	case h.Status == "starting":
		state = "STARTING"
	case !h.OK:
		state = "NOT OK"
	}
	poll := "never"
	if h.LastIMAPPollAge != nil {
		poll = age(*h.LastIMAPPollAge) + " ago"
	}
	leader := "no"
	if h.SchedulerLeader {
		leader = "yes"
	}
	return fmt.Sprintf("%s at %s: database %s; IMAP %s, last poll %s; SMTP %s; scheduler leader %s", state, s.Addr, h.Database, h.IMAP, poll, h.SMTP, leader)
}

func cmdStatus(ctx context.Context, e *env, args []string) error {
	asJSON, pos, err := jsonFlag("status", args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{"status: want status [--json]"}
	}
	s, err := readStatus(ctx, e)
	if err != nil {
		return err
	}
	if asJSON {
		err = printJSON(e.stdout, s)
	} else {
		err = writeStatus(e.stdout, s)
	}
	if err == nil && s.Database != "ok" {
		return errors.New("status: the database does not answer")
	}
	return err
}
