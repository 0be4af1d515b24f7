package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/devdb"
	"github.com/ballotd/ballotd/internal/pgtemp"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// benchResult is what one run measured.
type benchResult struct {
	members     int
	membersRate float64 // members created per second
	openRate    float64 // ballots created and enqueued per second, alone
	ballotdRate float64 // msg/s, the send alone (after the open)
	e2eRate     float64 // msg/s from race open to the last message accepted
	rawRate     float64 // msg/s
	peakRSS     int64   // bytes, VmHWM during ballotd's sends (the larger)
	peakHeap    uint64  // bytes of live heap objects, sampled
	avgSize     int     // bytes per message
	ballotdCPU  float64 // µs of this process's CPU per message (sink included), send alone
	e2eCPU      float64 // the same, end to end
	openPG      float64 // µs of PostgreSQL's CPU per ballot (this database's sessions), the open alone
	ballotdPG   float64 // the same per message, send alone
	e2ePG       float64 // the same, end to end (the open included)
	rawCPU      float64
}

// Send runs `ballotd bench send`: ballotd's outbox against a raw go-smtp
// client on one loopback discard sink, in a scratch database, o.Runs
// times, and prints the figures to w.
func Send(ctx context.Context, o Options, w io.Writer) error {
	server := o.DatabaseURL
	if server == "" {
		var err error
		if server, err = pgtemp.Locate(ctx); err != nil {
			return fmt.Errorf("bench: find PostgreSQL: %w", err)
		}
	}
	if server == "" {
		fmt.Fprintln(w, "no PostgreSQL at $DATABASE_URL or 127.0.0.1:5432: starting a throwaway cluster")
		c, err := pgtemp.Start(ctx)
		if err != nil {
			return fmt.Errorf("bench: start PostgreSQL: %w", err)
		}
		defer c.Stop()
		server = c.URL
	}

	var prof *os.File
	if o.CPUProfile != "" {
		var err error
		if prof, err = os.Create(o.CPUProfile); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer prof.Close()
	}

	how := "BDAT (the sink offers CHUNKING)"
	if o.NoChunking {
		how = "pipelined DATA (--no-chunking)"
	}
	fmt.Fprintf(w, "bench send: %d members, %d connections, %d run(s), GOMAXPROCS %d; ballotd sends by %s, the raw client by DATA\n",
		o.Members, o.Conns, o.Runs, runtime.GOMAXPROCS(0), how)
	var results []benchResult
	var failed error
	for i := 1; i <= o.Runs; i++ {
		if o.Runs > 1 {
			fmt.Fprintf(w, "\nrun %d of %d\n", i, o.Runs)
		}
		r, err := sendRun(ctx, o, w, server, prof, i == 1)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = err
			fmt.Fprintf(w, "  FAILED: %v\n", err)
			continue
		}
		results = append(results, r)
	}
	if len(results) > 1 {
		printMedians(w, o, results)
	}
	if failed != nil {
		return fmt.Errorf("bench send: %w", failed)
	}
	return nil
}

// printMedians writes the medians of several runs' figures.
func printMedians(w io.Writer, o Options, results []benchResult) {
	med := func(f func(benchResult) float64) float64 {
		v := make([]float64, len(results))
		for i, r := range results {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	fmt.Fprintf(w, "\nmedians of %d runs (%d members, %d connections)\n", len(results), o.Members, o.Conns)
	fmt.Fprintf(w, "  race open alone     %10.0f ballots/s\n", med(func(r benchResult) float64 { return r.openRate }))
	fmt.Fprintf(w, "  ballotd send alone  %10.0f msg/s\n", med(func(r benchResult) float64 { return r.ballotdRate }))
	fmt.Fprintf(w, "  ballotd end to end  %10.0f msg/s (race open to the last message accepted)\n", med(func(r benchResult) float64 { return r.e2eRate }))
	fmt.Fprintf(w, "  raw go-smtp client  %10.0f msg/s\n", med(func(r benchResult) float64 { return r.rawRate }))
	fmt.Fprintf(w, "  ratio send alone    %10.2f\n", med(func(r benchResult) float64 { return r.ballotdRate / r.rawRate }))
	fmt.Fprintf(w, "  ratio end to end    %10.2f\n", med(func(r benchResult) float64 { return r.e2eRate / r.rawRate }))
	fmt.Fprintf(w, "  ratio by CPU        %10.2f send alone, %.2f end to end (raw's CPU ÷ ballotd's with PostgreSQL's)\n",
		med(func(r benchResult) float64 { return r.rawCPU / (r.ballotdCPU + r.ballotdPG) }), med(func(r benchResult) float64 { return r.rawCPU / (r.e2eCPU + r.e2ePG) }))
	fmt.Fprintf(w, "  CPU/msg send alone  %10.0f µs (this process, sink included)\n", med(func(r benchResult) float64 { return r.ballotdCPU }))
	fmt.Fprintf(w, "  CPU/msg end to end  %10.0f µs\n", med(func(r benchResult) float64 { return r.e2eCPU }))
	fmt.Fprintf(w, "  PostgreSQL CPU/msg  %10.0f µs open alone, %.0f µs send alone, %.0f µs end to end\n", med(func(r benchResult) float64 { return r.openPG }),
		med(func(r benchResult) float64 { return r.ballotdPG }), med(func(r benchResult) float64 { return r.e2ePG }))
	fmt.Fprintf(w, "  CPU/msg raw         %10.0f µs\n", med(func(r benchResult) float64 { return r.rawCPU }))
	fmt.Fprintf(w, "  peak RSS            %10.1f MB\n", med(func(r benchResult) float64 { return float64(r.peakRSS) / 1e6 }))
	fmt.Fprintf(w, "  peak Go heap        %10.1f MB\n", med(func(r benchResult) float64 { return float64(r.peakHeap) / 1e6 }))
}

// sendRun is one whole run in its own scratch database.
func sendRun(ctx context.Context, o Options, w io.Writer, server string, prof *os.File, profile bool) (benchResult, error) {
	res := benchResult{members: o.Members}
	admin, err := devdb.OpenServer(server)
	if err != nil {
		return res, err
	}
	defer admin.Close()
	name := devdb.ScratchName("ballotd_bench")
	if err := admin.Create(ctx, name, false); err != nil {
		return res, fmt.Errorf("create scratch database: %w", err)
	}
	defer func() {
		if err := admin.Drop(context.WithoutCancel(ctx), name); err != nil {
			fmt.Fprintf(o.Stderr, "ballotd: drop scratch database %s: %v\n", name, err)
		}
	}()
	dbURL, err := pgtemp.ConnectURL(server, name)
	if err != nil {
		return res, err
	}
	st, err := ballots.Open(ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return res, err
	}
	fmt.Fprintf(w, "  scratch database    %s\n", name)

	if err := openPhase(ctx, o, w, st, &res); err != nil {
		return res, err
	}
	sink, err := startSink()
	if err != nil {
		return res, err
	}
	defer sink.close()

	if err := ballotdPhase(ctx, o, w, st, name, sink, prof, profile, &res); err != nil {
		return res, err
	}
	if err := endToEndPhase(ctx, o, w, st, name, sink, &res); err != nil {
		return res, err
	}
	if err := rawPhase(ctx, o, w, sink, &res); err != nil {
		return res, err
	}
	return res, nil
}

// openPhase makes the members, a wave and one candidate, then opens the
// race (timed), into res.
func openPhase(ctx context.Context, o Options, w io.Writer, st *ballots.Store, res *benchResult) error {
	bio := strings.Repeat("Served two terms in the state senate; led the campaign for clean energy and fair wages. ", 6)
	membersTime, err := benchWave(ctx, st, o.Members, bio)
	if err != nil {
		return err
	}
	res.membersRate = float64(o.Members) / membersTime.Seconds()
	// The race of the end-to-end phase, for the same members.
	if _, err := st.AddCandidate(ctx, "MA-GOV", "", "Maura Healey", bio, nil); err != nil {
		return err
	}
	pg0 := serverCPU(ctx, st)
	t0 := time.Now()
	n, err := st.OpenRace(ctx, "MA-SEN")
	if err != nil {
		return err
	}
	openTime := time.Since(t0)
	res.openRate = float64(n) / openTime.Seconds()
	res.openPG = float64((serverCPU(ctx, st) - pg0).Microseconds()) / float64(max(n, 1))
	fmt.Fprintf(w, "  members             %10d created in %v (%.0f/s)\n", o.Members, membersTime.Round(time.Millisecond), res.membersRate)
	fmt.Fprintf(w, "  race open alone     %10d ballots created and enqueued in %v: %.0f ballots/s (PostgreSQL %.0f µs CPU/ballot)\n",
		n, openTime.Round(time.Millisecond), res.openRate, res.openPG)
	if n != o.Members {
		return fmt.Errorf("race open made %d ballots for %d members", n, o.Members)
	}
	if err := st.AnalyzeBallots(ctx); err != nil {
		return err
	}
	return nil
}

// ballotdPhase sends every ballot with the real outbox, renderer and SMTP
// senders, as serve wires them, to sink (timed; with a CPU profile when
// profile), and verifies what the sink got, into res.
func ballotdPhase(ctx context.Context, o Options, w io.Writer, st *ballots.Store, name string, sink *sink, prof *os.File, profile bool, res *benchResult) error {
	ob, toks, err := benchOutbox(o, st, name, sink)
	if err != nil {
		return err
	}
	runtime.GC()
	resetPeakRSS()
	stopHeap := sampleHeap()
	if profile && prof != nil {
		if err := pprof.StartCPUProfile(prof); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
	}
	pg0, cpu0 := serverCPU(ctx, st), processCPU()
	t0 := time.Now()
	handled, err := ob.Drain(ctx)
	sendTime := time.Since(t0)
	sendCPU, pgCPU := processCPU()-cpu0, serverCPU(ctx, st)-pg0
	if profile && prof != nil {
		pprof.StopCPUProfile()
	}
	res.peakHeap = stopHeap()
	res.peakRSS = peakRSS()
	if err != nil {
		return fmt.Errorf("ballotd send: %w", err)
	}
	got := sink.snapshot()
	res.ballotdRate = float64(got.messages) / sendTime.Seconds()
	if got.messages > 0 {
		res.avgSize = int(got.bytes / got.messages)
		res.ballotdCPU = float64(sendCPU.Microseconds()) / float64(got.messages)
		res.ballotdPG = float64(pgCPU.Microseconds()) / float64(got.messages)
	}
	fmt.Fprintf(w, "  ballotd send alone  %10d messages in %v: %.0f msg/s (%d rows handled, avg %d bytes, %.0f µs CPU/msg, PostgreSQL %.0f µs)\n",
		got.messages, sendTime.Round(time.Millisecond), res.ballotdRate, handled, res.avgSize, res.ballotdCPU, res.ballotdPG)
	fmt.Fprintf(w, "  ballotd peak memory %10.1f MB RSS (VmHWM), %.1f MB Go heap\n", float64(res.peakRSS)/1e6, float64(res.peakHeap)/1e6)
	if err := verifyBench(ctx, st, toks, "MA-SEN", got, o.Members); err != nil {
		return err
	}
	fmt.Fprintf(w, "  verified            %10d members: one message each, %d distinct ballot tokens, every outbox row sent\n", o.Members, len(got.tokens))
	return nil
}

// benchOutbox is the outbox serve would wire, with the real renderer and
// SMTP senders, sending to sink, with its token key.
func benchOutbox(o Options, st *ballots.Store, name string, sink *sink) (*mailer.Outbox, *token.Key, error) {
	toks, err := token.NewKey("bench-secret-" + name)
	if err != nil {
		return nil, nil, err
	}
	ob, err := newOutbox(st, toks, mailer.SMTPConfig{Addr: sink.addr, HeloName: "bench.example", NoChunking: o.NoChunking})
	if err != nil {
		return nil, nil, err
	}
	ob.Workers, ob.Batch, ob.Logger = o.Conns, o.Batch, o.Log.With("part", "outbox")
	return ob, toks, nil
}

// newOutbox is the outbox serve would wire for bench.example, with the
// real renderer (tokens keyed by toks) and SMTP senders to smtpCfg.
func newOutbox(st *ballots.Store, toks *token.Key, smtpCfg mailer.SMTPConfig) (*mailer.Outbox, error) {
	tpl, err := templates.Load("")
	if err != nil {
		return nil, err
	}
	return &mailer.Outbox{
		Store:     st,
		Renderer:  &mailer.Renderer{Store: st, Templates: tpl, Tokens: toks, ID: mailer.Identity{Local: "ballots", Domain: "bench.example", FromName: "Endorsement ballots"}},
		NewSender: func() mailer.Sender { return mailer.NewSMTPSender(smtpCfg) },
	}, nil
}

// endToEndPhase times what a member waits for: from `race open` of a
// second race (MA-GOV, the same members) to the last ballot accepted by
// sink, with the outbox running as in serve (woken by the open's
// notifications) while the race opens; then it verifies what the sink got,
// into res.
func endToEndPhase(ctx context.Context, o Options, w io.Writer, st *ballots.Store, name string, sink *sink, res *benchResult) error {
	ob, toks, err := benchOutbox(o, st, name, sink)
	if err != nil {
		return err
	}
	sink.reset()
	reached := sink.expect(int64(o.Members))
	stop, err := runAsServe(ctx, st, ob)
	if err != nil {
		return fmt.Errorf("end to end: %w", err)
	}
	defer stop()
	runtime.GC()
	resetPeakRSS()
	stopHeap := sampleHeap()
	pg0, cpu0 := serverCPU(ctx, st), processCPU()
	t0 := time.Now()
	n, err := st.OpenRace(ctx, "MA-GOV")
	openTime := time.Since(t0)
	if err != nil {
		return fmt.Errorf("end to end: race open: %w", err)
	}
	var last time.Time
	select {
	case last = <-reached:
	case <-ctx.Done():
		return ctx.Err()
	}
	took := last.Sub(t0)
	cpu, pgCPU := processCPU()-cpu0, serverCPU(ctx, st)-pg0
	if err := stop(); err != nil {
		return fmt.Errorf("end to end: outbox: %w", err)
	}
	heap, rss := stopHeap(), peakRSS()
	res.peakHeap, res.peakRSS = max(res.peakHeap, heap), max(res.peakRSS, rss)
	got := sink.snapshot()
	res.e2eRate = float64(o.Members) / took.Seconds()
	res.e2eCPU = float64(cpu.Microseconds()) / float64(o.Members)
	res.e2ePG = float64(pgCPU.Microseconds()) / float64(o.Members)
	fmt.Fprintf(w, "  end to end          %10d ballots from race open to the last accepted in %v: %.0f msg/s (the open took %v, %.0f µs CPU/msg, PostgreSQL %.0f µs)\n",
		n, took.Round(time.Millisecond), res.e2eRate, openTime.Round(time.Millisecond), res.e2eCPU, res.e2ePG)
	fmt.Fprintf(w, "  end to end memory   %10.1f MB RSS (VmHWM), %.1f MB Go heap\n", float64(rss)/1e6, float64(heap)/1e6)
	if err := verifyBench(ctx, st, toks, "MA-GOV", got, o.Members); err != nil {
		return fmt.Errorf("end to end: %w", err)
	}
	fmt.Fprintf(w, "  verified            %10d members: one message each, %d distinct ballot tokens, every outbox row sent\n", o.Members, len(got.tokens))
	return nil
}

// runAsServe runs ob as serve does, woken by the notifications of what is
// enqueued (Store.ListenOutbox), once the listener is up; stop ends both
// and returns the outbox's error (it may be called more than once).
func runAsServe(ctx context.Context, st *ballots.Store, ob *mailer.Outbox) (stop func() error, err error) {
	rctx, cancel := context.WithCancel(ctx)
	listening := make(chan struct{})
	var once, stopped sync.Once
	var wg sync.WaitGroup
	var runErr, listenErr error
	wg.Add(2)
	go func() { defer wg.Done(); runErr = ob.Run(rctx) }()
	go func() {
		defer wg.Done()
		listenErr = st.ListenOutbox(rctx, func() { once.Do(func() { close(listening) }); ob.Wake() })
	}()
	stop = func() error {
		stopped.Do(func() { cancel(); wg.Wait() })
		return runErr
	}
	select {
	case <-listening:
		return stop, nil
	case <-time.After(10 * time.Second):
		stop()
		return nil, errors.Join(errors.New("the outbox listener did not start"), listenErr)
	}
}

// rawPhase sends pre-rendered messages of the same size to the same sink
// over the same number of connections with a raw client (timed), into
// res.
func rawPhase(ctx context.Context, o Options, w io.Writer, sink *sink, res *benchResult) error {
	sink.reset()
	cpu0 := processCPU()
	t0 := time.Now()
	if err := rawSend(ctx, sink.addr, o.Conns, o.Members, res.avgSize); err != nil {
		return fmt.Errorf("raw client: %w", err)
	}
	rawTime := time.Since(t0)
	rawCPU := processCPU() - cpu0
	raw := sink.snapshot()
	res.rawRate = float64(raw.messages) / rawTime.Seconds()
	res.rawCPU = float64(rawCPU.Microseconds()) / float64(max(raw.messages, 1))
	fmt.Fprintf(w, "  raw go-smtp client  %10d messages in %v: %.0f msg/s (avg %d bytes, %.0f µs CPU/msg)\n",
		raw.messages, rawTime.Round(time.Millisecond), res.rawRate, raw.bytes/max(raw.messages, 1), res.rawCPU)
	if raw.messages != int64(o.Members) || len(raw.tokens) != o.Members {
		return fmt.Errorf("raw client: sink got %d messages with %d distinct tokens, want %d", raw.messages, len(raw.tokens), o.Members)
	}
	fmt.Fprintf(w, "  ratio ballotd/raw   %10.2f send alone, %.2f end to end (CPU per message: raw/ballotd %.2f and %.2f; PostgreSQL's CPU not included)\n",
		res.ballotdRate/res.rawRate, res.e2eRate/res.rawRate, res.rawCPU/res.ballotdCPU, res.rawCPU/res.e2eCPU)
	fmt.Fprintf(w, "  ratio by CPU        %10.2f send alone, %.2f end to end (raw's CPU per message ÷ ballotd's with PostgreSQL's: the ratio of rates on a machine whose cores are the limit, whatever else runs on it)\n",
		res.rawCPU/(res.ballotdCPU+res.ballotdPG), res.rawCPU/(res.e2eCPU+res.e2ePG))
	return nil
}

// benchWave makes what the bench commands run on: n generated members in
// Massachusetts (every tenth with a non-ASCII name), a wave voting from
// now, and one candidate, Ed Markey with bio, in MA-SEN; the race is left
// for the caller to open. It returns how long creating the members took.
func benchWave(ctx context.Context, st *ballots.Store, n int, bio string) (time.Duration, error) {
	t0 := time.Now()
	if err := st.AddBenchMembers(ctx, n); err != nil {
		return 0, err
	}
	took := time.Since(t0)
	if err := st.AnalyzeMembers(ctx); err != nil {
		return took, err
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "Bench", NominationsClose: now, VotingOpen: now,
		VotingClose: now.Add(24 * time.Hour), Threshold: 0.6}); err != nil {
		return took, err
	}
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", bio, nil); err != nil {
		return took, err
	}
	return took, nil
}

// verifyBench checks that the sink got exactly one message per member,
// each carrying a distinct, genuine ballot token of this race, and that the
// outbox recorded every row as sent.
func verifyBench(ctx context.Context, st *ballots.Store, toks *token.Key, race string, got sinkSnapshot, members int) error {
	if got.messages != int64(members) {
		return fmt.Errorf("sink received %d messages for %d members", got.messages, members)
	}
	if len(got.tokens) != members || got.dups != 0 || got.missing != 0 {
		return fmt.Errorf("sink received %d distinct ballot tokens (%d repeated, %d messages without one) for %d members",
			len(got.tokens), got.dups, got.missing, members)
	}
	ids := make([]int64, 0, len(got.tokens))
	for t := range got.tokens {
		id, err := toks.ID(t)
		if err != nil {
			return fmt.Errorf("sink received a malformed ballot token %q", t)
		}
		ids = append(ids, id)
	}
	ballotsFound, err := st.CountBallots(ctx, race, ids)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	sent, err := st.CountSent(ctx, race)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if ballotsFound != members || sent != members {
		return fmt.Errorf("tokens name %d ballots and %d outbox rows are sent; want %d", ballotsFound, sent, members)
	}
	return nil
}

// rawSend sends n messages of size bytes over conns persistent go-smtp
// connections: MAIL, RCPT, DATA, no RSET. The messages are prepared before
// the clock starts; each connection only patches a 29-character token into
// its buffer, so every message is distinct.
func rawSend(ctx context.Context, addr string, conns, n, size int) error {
	const tok = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // 29 characters, a ballot token's length
	head := "From: \"Endorsement ballots\" <ballots@bench.example>\r\nTo: <member@bench.example>\r\n" +
		"Reply-To: \"Endorsement ballots\" <ballots+v-" + tok + "@bench.example>\r\nSubject: Your ballot\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	var b strings.Builder
	b.WriteString(head)
	for b.Len() < size {
		b.WriteString(strings.Repeat("x", min(76, max(size-b.Len()-2, 1))))
		b.WriteString("\r\n")
	}
	base := []byte(b.String())
	at := bytes.Index(base, []byte(tok))
	bufs := make([][]byte, conns)
	clients := make([]*smtp.Client, conns)
	for i := range bufs {
		bufs[i] = slices.Clone(base)
		c, err := smtp.Dial(addr)
		if err != nil {
			return err
		}
		if err := c.Hello("bench.example"); err != nil {
			return err
		}
		clients[i] = c
	}
	var next atomic.Int64
	errs := make(chan error, conns)
	for i := range clients {
		go func(c *smtp.Client, buf []byte) {
			defer c.Close()
			for ctx.Err() == nil {
				k := next.Add(1)
				if k > int64(n) {
					errs <- c.Quit()
					return
				}
				copy(buf[at:], fmt.Sprintf("%029d", k))
				if err := c.Mail("ballots@bench.example", nil); err != nil {
					errs <- err
					return
				}
				if err := c.Rcpt("member"+strconv.FormatInt(k, 10)+"@bench.example", nil); err != nil {
					errs <- err
					return
				}
				w, err := c.Data()
				if err != nil {
					errs <- err
					return
				}
				if _, err := w.Write(buf); err != nil {
					errs <- err
					return
				}
				if err := w.Close(); err != nil {
					errs <- err
					return
				}
			}
			errs <- ctx.Err()
		}(clients[i], bufs[i])
	}
	var first error
	for range clients {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// sink is the discard SMTP server of the benchmark: it reads every
// message, counts it and notes the ballot token of its Reply-To.
type sink struct {
	addr string
	srv  *smtp.Server

	mu       sync.Mutex
	target   int64          // expect's count, 0 for none
	reached  chan time.Time // when the target-th message came
	messages int64
	bytes    int64
	tokens   map[string]int
	dups     int
	missing  int
}

// sinkSnapshot is what the sink has received so far.
type sinkSnapshot struct {
	messages, bytes int64
	tokens          map[string]int
	dups, missing   int
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &sink{addr: ln.Addr().String(), tokens: map[string]int{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	s.srv.Domain = "sink.bench.example"
	s.srv.MaxMessageBytes = 10 << 20
	s.srv.MaxRecipients = 1
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	go s.srv.Serve(ln)
	return s, nil
}

func (s *sink) close() { s.srv.Close() }

// expect returns a channel that gets the time the sink has received n
// messages since its last reset.
func (s *sink) expect(n int64) <-chan time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target, s.reached = n, make(chan time.Time, 1)
	return s.reached
}

func (s *sink) reset() {
	s.mu.Lock()
	s.messages, s.bytes, s.tokens, s.dups, s.missing = 0, 0, map[string]int{}, 0, 0
	s.target, s.reached = 0, nil
	s.mu.Unlock()
}

func (s *sink) snapshot() sinkSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sinkSnapshot{s.messages, s.bytes, s.tokens, s.dups, s.missing}
}

func (s *sink) got(token string, size int64) {
	s.mu.Lock()
	s.messages++
	if s.messages == s.target {
		s.reached <- time.Now()
	}
	s.bytes += size
	if token == "" {
		s.missing++
	} else {
		s.tokens[token]++
		if s.tokens[token] > 1 {
			s.dups++
		}
	}
	s.mu.Unlock()
}

type sinkSession struct {
	s  *sink
	br *bufio.Reader
}

// Reset implements smtp.Session for the discard sink.
func (*sinkSession) Reset() {}

// Logout implements smtp.Session for the discard sink.
func (*sinkSession) Logout() error { return nil }

// Mail implements smtp.Session for the discard sink.
func (*sinkSession) Mail(string, *smtp.MailOptions) error { return nil }

// Rcpt implements smtp.Session for the discard sink.
func (*sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

var replyToTag = []byte("ballots+v-")

// Data reads the header for the Reply-To token, then discards the rest.
func (ss *sinkSession) Data(r io.Reader) error {
	if ss.br == nil {
		ss.br = bufio.NewReaderSize(r, 16<<10)
	} else {
		ss.br.Reset(r)
	}
	var size int64
	token := ""
	for {
		line, err := ss.br.ReadSlice('\n')
		size += int64(len(line))
		if token == "" && len(line) > 9 && (line[0] == 'R' || line[0] == 'r') && bytes.HasPrefix(bytes.ToLower(line[:9]), []byte("reply-to:")) {
			if i := bytes.Index(line, replyToTag); i >= 0 {
				t := line[i+len(replyToTag):]
				if j := bytes.IndexByte(t, '@'); j > 0 {
					token = string(t[:j])
				}
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF {
				break
			}
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	n, err := io.Copy(io.Discard, ss.br)
	if err != nil {
		return err
	}
	ss.s.got(token, size+n)
	return nil
}

// processCPU is the user and system CPU time this process has used; on a
// shared machine it measures the work done where wall-clock rates measure
// the neighbours too.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the CPU time the PostgreSQL sessions of st's database have
// used, read from /proc (0 when the server is elsewhere or not readable):
// with processCPU, what a message costs the machine. Sessions that ended
// are not counted, so it is read while the pool's connections are open.
func serverCPU(ctx context.Context, st *ballots.Store) time.Duration {
	pids, err := st.BackendPIDs(ctx)
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command's closing parenthesis: utime and
		// stime are the 12th and 13th, in clock ticks (100 a second).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		sy, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(u+sy) * 10 * time.Millisecond
	}
	return total
}

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident set (VmHWM), so that the next reading covers one phase.
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS reads VmHWM from /proc/self/status, in bytes (0 if unknown).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// sampleHeap samples the live Go heap every 10ms until the returned
// function is called, which returns the largest sample.
func sampleHeap() func() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	read := func() {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > peak.Load() {
			peak.Store(v)
		}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		read()
		return peak.Load()
	}
}
