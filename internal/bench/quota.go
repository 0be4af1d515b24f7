package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/devdb"
	"github.com/ballotd/ballotd/internal/pgtemp"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// quotaDomains are the recipient domains the quota bench spreads its
// members over.
var quotaDomains = []string{"gmail.com", "outlook.com", "yahoo.com", "icloud.com", "example.net"}

// Quota runs `ballotd bench quota`: issue 22's acceptance run. A wave of
// o.Members ballots goes through a loopback relay that answers 452 4.5.3
// once it has taken o.PerMinute messages in a minute and 550 5.1.1 to 1 %
// of recipients; the outbox runs as serve runs it until every row is
// settled. It verifies that every valid recipient got one copy, the 1 %
// failed with their enhanced code, no row took more than one attempt and
// the per-domain report agrees with the relay, and prints the time
// against the least the relay's quota allows, and the peak memory.
func Quota(ctx context.Context, o Options, w io.Writer) error {
	server := o.DatabaseURL
	if server == "" {
		var err error
		if server, err = pgtemp.Locate(ctx); err != nil {
			return fmt.Errorf("bench: find PostgreSQL: %w", err)
		}
	}
	if server == "" {
		c, err := pgtemp.Start(ctx)
		if err != nil {
			return fmt.Errorf("bench: start PostgreSQL: %w", err)
		}
		defer c.Stop()
		server = c.URL
	}
	admin, err := devdb.OpenServer(server)
	if err != nil {
		return err
	}
	defer admin.Close()
	name := devdb.ScratchName("ballotd_bench_quota")
	if err := admin.Create(ctx, name, false); err != nil {
		return fmt.Errorf("create scratch database: %w", err)
	}
	defer func() {
		if err := admin.Drop(context.WithoutCancel(ctx), name); err != nil {
			fmt.Fprintf(o.Stderr, "ballotd: drop scratch database %s: %v\n", name, err)
		}
	}()
	dbURL, err := pgtemp.ConnectURL(server, name)
	if err != nil {
		return err
	}
	st, err := ballots.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "bench quota: %d members over %d domains, relay: 452 4.5.3 after %d a minute, 550 5.1.1 for 1 %%; %d connections, GOMAXPROCS %d\n",
		o.Members, len(quotaDomains), o.PerMinute, o.Conns, runtime.GOMAXPROCS(0))
	if _, err := benchWave(ctx, st, o.Members, "Served two terms in the state senate."); err != nil {
		return err
	}
	if err := st.SpreadBenchDomains(ctx, quotaDomains); err != nil {
		return err
	}
	if n, err := st.OpenRace(ctx, "MA-SEN"); err != nil || n != o.Members {
		return fmt.Errorf("race open: %d ballots, %v; want %d", n, err, o.Members)
	}
	if err := st.AnalyzeBallots(ctx); err != nil {
		return err
	}
	relay, err := startQuotaRelay(o.PerMinute)
	if err != nil {
		return err
	}
	defer relay.srv.Close()
	took, peak, err := quotaSend(ctx, o, w, st, name, relay)
	if err != nil {
		return err
	}
	return quotaVerify(ctx, o, w, st, relay, took, peak)
}

// quotaSend runs the outbox until no row is left to send, printing the
// progress and status's ETA now and then; it returns how long it took and
// the peak resident memory.
func quotaSend(ctx context.Context, o Options, w io.Writer, st *ballots.Store, name string, relay *quotaRelay) (time.Duration, int64, error) {
	toks, err := token.NewKey("bench-secret-" + name)
	if err != nil {
		return 0, 0, err
	}
	tpl, err := templates.Load("")
	if err != nil {
		return 0, 0, err
	}
	smtpCfg := mailer.SMTPConfig{Addr: relay.addr, HeloName: "bench.example"}
	ob := &mailer.Outbox{
		Store:    st,
		Renderer: &mailer.Renderer{Store: st, Templates: tpl, Tokens: toks, ID: mailer.Identity{Local: "ballots", Domain: "bench.example", FromName: "Endorsement ballots"}},
		Relays:   []*mailer.Relay{{Name: relay.addr, NewSender: func() mailer.Sender { return mailer.NewSMTPSender(smtpCfg) }}},
		Workers:  o.Conns,
		Batch:    o.Batch,
		Logger:   o.Log.With("part", "outbox"),
	}
	runtime.GC()
	resetPeakRSS()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- ob.Run(rctx) }()
	defer func() { cancel(); <-done }()
	lastReport := time.Now()
	for {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(time.Second):
		}
		cs, err := st.OutboxStatusCounts(ctx)
		if err != nil {
			return 0, 0, err
		}
		left := cs[ballots.OutboxQueued] + cs[ballots.OutboxDeferred] + cs[ballots.OutboxSending]
		if left == 0 {
			break
		}
		if time.Since(lastReport) >= 15*time.Second {
			lastReport = time.Now()
			p, err := st.WaveSendPace(ctx, "Bench")
			if err != nil {
				return 0, 0, err
			}
			fmt.Fprintf(w, "  %6.0fs  %6d sent, %5d failed, %6d left; status: %s\n", time.Since(t0).Seconds(),
				cs[ballots.OutboxSent], cs[ballots.OutboxFailed], left, p.Describe(time.Now(), time.UTC))
		}
	}
	took := time.Since(t0)
	return took, peakRSS(), nil
}

// quotaVerify checks the run's outcome against the relay's record and
// prints the figures.
func quotaVerify(ctx context.Context, o Options, w io.Writer, st *ballots.Store, relay *quotaRelay, took time.Duration, peak int64) error {
	relay.mu.Lock()
	defer relay.mu.Unlock()
	bad := 0
	for n := 1; n <= o.Members; n++ {
		if unknown(fmt.Sprintf("member%d@", n)) {
			bad++
		}
	}
	valid := o.Members - bad
	minimum := time.Duration((valid-1)/o.PerMinute) * time.Minute
	fmt.Fprintf(w, "  sent                %10d accepted, %d refused 550 5.1.1, %d quota replies (452 4.5.3) in %d windows, in %v\n",
		relay.accepted, relay.bounced, relay.quota, relay.windows, took.Round(time.Second))
	fmt.Fprintf(w, "  quota-bound minimum %10v (the relay takes %d a minute); ratio %.2f\n", minimum, o.PerMinute, took.Seconds()/max(minimum.Seconds(), 1))
	fmt.Fprintf(w, "  peak memory         %10.1f MB RSS (VmHWM: outbox and relay in this process)\n", float64(peak)/1e6)
	var problems []string
	if relay.accepted != valid || len(relay.got) != valid || relay.dups != 0 {
		problems = append(problems, fmt.Sprintf("relay accepted %d messages for %d recipients (%d repeated); want %d once each", relay.accepted, len(relay.got), relay.dups, valid))
	}
	over, err := st.AttemptsOver(ctx, 1)
	if err != nil {
		return err
	}
	if over != 0 {
		problems = append(problems, fmt.Sprintf("%d rows took more than one attempt", over))
	}
	fails, err := st.OutboxFailures(ctx, o.Members)
	if err != nil {
		return err
	}
	for _, f := range fails {
		if f.Code != 550 || !strings.HasPrefix(f.Reply, "550 5.1.1 ") || !relay.refused[f.Recipient] {
			problems = append(problems, fmt.Sprintf("row %d to %s failed with %q", f.ID, f.Recipient, f.Reply))
			break
		}
	}
	if len(fails) != bad {
		problems = append(problems, fmt.Sprintf("%d rows failed; want the %d refused", len(fails), bad))
	}
	d, err := st.DeliveryByDomain(ctx, "Bench")
	if err != nil {
		return err
	}
	for _, dom := range d.Domains {
		want := relay.byClass[dom.Class]
		fmt.Fprintf(w, "  delivery %-10s %10d sent, %d bounced, %d deferred, %d pending\n", dom.Class, dom.Sent, dom.Bounced, dom.Deferred, dom.Pending)
		if dom.Sent != want[0] || dom.Bounced != want[1] || dom.Deferred != 0 || dom.Pending != 0 {
			problems = append(problems, fmt.Sprintf("delivery report for %s: %d sent, %d bounced; the relay took %d and refused %d", dom.Class, dom.Sent, dom.Bounced, want[0], want[1]))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("bench quota: %s", strings.Join(problems, "; "))
	}
	fmt.Fprintf(w, "  verified            every valid recipient sent once, the 1 %% failed 550 5.1.1, no row over one attempt, the per-domain report agrees with the relay\n")
	return nil
}

// quotaRelay is the loopback relay of the quota bench.
type quotaRelay struct {
	addr      string
	srv       *smtp.Server
	perMinute int

	mu                sync.Mutex
	windowStart       time.Time
	taken             int
	windows           int
	accepted, bounced int
	quota, dups       int
	got               map[string]int
	refused           map[string]bool
	byClass           map[string][2]int // domain class → accepted, refused
}

func startQuotaRelay(perMinute int) (*quotaRelay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	r := &quotaRelay{addr: ln.Addr().String(), perMinute: perMinute, got: map[string]int{}, refused: map[string]bool{}, byClass: map[string][2]int{}}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &quotaSession{r: r}, nil }))
	r.srv.Domain = "relay.bench.example"
	r.srv.MaxMessageBytes = 10 << 20
	r.srv.MaxRecipients = 1
	go r.srv.Serve(ln)
	return r, nil
}

// unknown says whether rcpt is one of the 1 % the relay does not know:
// memberN@ with N's last two digits those of N/100 (one in each hundred,
// spread over the domains, which go by N modulo their number).
func unknown(rcpt string) bool {
	local, _, _ := strings.Cut(rcpt, "@")
	n, err := strconv.Atoi(strings.TrimPrefix(local, "member"))
	return err == nil && n%100 == n/100%100
}

// rcpt decides a RCPT: 550 5.1.1 for an unknown recipient, 452 4.5.3 once
// the minute's window holds perMinute messages, else taken.
func (r *quotaRelay) rcpt(to string) *smtp.SMTPError {
	r.mu.Lock()
	defer r.mu.Unlock()
	if unknown(to) {
		r.bounced++
		r.refused[to] = true
		c := r.byClass[ballots.DomainClass(to)]
		c[1]++
		r.byClass[ballots.DomainClass(to)] = c
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "user unknown"}
	}
	if now := time.Now(); now.Sub(r.windowStart) >= time.Minute {
		r.windowStart, r.taken = now, 0
		r.windows++
	}
	if r.taken >= r.perMinute {
		r.quota++
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "sending quota exceeded, try later"}
	}
	r.taken++
	return nil
}

// delivered records a message taken to to.
func (r *quotaRelay) delivered(to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted++
	if r.got[to]++; r.got[to] > 1 {
		r.dups++
	}
	c := r.byClass[ballots.DomainClass(to)]
	c[0]++
	r.byClass[ballots.DomainClass(to)] = c
}

type quotaSession struct {
	r  *quotaRelay
	to string
}

func (s *quotaSession) Reset()                               { s.to = "" }
func (s *quotaSession) Logout() error                        { return nil }
func (s *quotaSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *quotaSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.r.rcpt(to); err != nil {
		return err
	}
	s.to = to
	return nil
}

func (s *quotaSession) Data(rd io.Reader) error {
	if _, err := io.Copy(io.Discard, rd); err != nil {
		return err
	}
	s.r.delivered(s.to)
	return nil
}
