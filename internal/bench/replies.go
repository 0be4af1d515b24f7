package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
)

// Replies runs `ballotd bench replies`: ballotd's mailbox reader
// handling N members' replies (the message, the vote, the receipt in the
// outbox, the cursor), against a raw reader of the same mailbox that does
// the least a durable reader must: fetch each message, store it in a
// transaction of its own, flag it \Seen. Both read the same mailbox over
// IMAP in batches of 50, into one scratch database: the embedded hub's on
// loopback, or, with o.IMAPAddr and o.SMTPAddr, a real server's (the
// replies are sent through the SMTP server, which delivers them into the
// IMAP server's mailbox, as Postfix into Dovecot). o.Runs runs; the
// summary gives medians.
func Replies(ctx context.Context, o Options, w io.Writer) error {
	where := "embedded hub on loopback"
	if o.IMAPAddr != "" {
		where = "delivered by " + o.SMTPAddr + ", read from " + o.IMAPAddr
	}
	fmt.Fprintf(w, "bench replies: %d replies in one IMAP mailbox (%s), batches of 50, %d run(s)\n", o.Replies, where, max(o.Runs, 1))
	var raws, ours, ratios []float64
	for run := range max(o.Runs, 1) {
		raw, ballotd, err := repliesOnce(ctx, o, w, run)
		if err != nil {
			return fmt.Errorf("bench replies: %w", err)
		}
		raws, ours, ratios = append(raws, raw), append(ours, ballotd), append(ratios, ballotd/raw)
	}
	if len(ratios) > 1 {
		fmt.Fprintf(w, "median of %d runs: raw %.0f messages/s, ballotd %.0f replies/s, ratio ballotd/raw %.2f\n",
			len(ratios), median(raws), median(ours), median(ratios))
	}
	return nil
}

// median is the middle of xs (the mean of the two middle ones).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// repliesOnce is one run of Replies; it returns both rates.
func repliesOnce(ctx context.Context, o Options, w io.Writer, run int) (rawRate, ballotdRate float64, err error) {
	rb, err := newReplyBench(ctx, o, "bench-replies-secret-0123456789")
	if err != nil {
		return 0, 0, err
	}
	defer rb.close()
	st, toks, yes := rb.st, rb.toks, rb.yes
	rows := rb.replies
	const box = "ballots@bench.example"
	cfg, smtpAddr, done, err := replyMailbox(ctx, o, box, rows)
	if err != nil {
		return 0, 0, err
	}
	defer done()

	t0 := time.Now()
	if err := rawReplies(ctx, st, cfg); err != nil {
		return 0, 0, fmt.Errorf("raw reader: %w", err)
	}
	rawTime := time.Since(t0)

	rd := &inbound.Reader{Config: cfg, Logger: slog.New(slog.DiscardHandler), Processor: &inbound.Processor{Store: st, Tokens: toks,
		AnswersWait: inbound.DefaultAnswersWait, AnswersBehind: inbound.DefaultAnswersBehind, // as serve
		Box: message.Mailbox{Local: "ballots", Domain: "bench.example"}, Logger: slog.New(slog.NewJSONHandler(discard{}, nil)),
		Handled: func(r inbound.Result) {
			if r.Outcome != inbound.OutcomeCounted && o.Stderr != nil {
				// Every reply is a clear vote: anything else is a bug to see.
				fmt.Fprintf(o.Stderr, "bench replies: inbound %d: %s %s\n", r.InboundID, r.Class, r.Outcome)
			}
		}}}
	profile := ""
	if run == 0 {
		profile = o.CPUProfile
	}
	stop, err := startProfile(profile)
	if err != nil {
		return 0, 0, err
	}
	var stopAnswers func() (int, error)
	if o.Answers {
		var wake func()
		if wake, stopAnswers, err = sendAnswers(ctx, o, st, toks, smtpAddr); err != nil {
			stop()
			return 0, 0, err
		}
		rd.Processor.Enqueued = wake // as serve wires it
	}
	t0 = time.Now()
	handled, err := rd.Once(ctx)
	stop()
	if stopAnswers != nil {
		sent, aerr := stopAnswers()
		if aerr != nil {
			return 0, 0, fmt.Errorf("answers: %w", aerr)
		}
		fmt.Fprintf(w, "answers sent while the reader worked (outbox beside it, as in serve): %d\n", sent)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("ballotd: %w", err)
	}
	ballotdTime := time.Since(t0)

	tl, err := st.TallyRace(ctx, "MA-SEN")
	if err != nil {
		return 0, 0, err
	}
	rate := func(d time.Duration) float64 { return float64(len(rows)) / d.Seconds() }
	fmt.Fprintf(w, "raw reader (fetch, store each in its own transaction, flag \\Seen): %6.2f s  %7.0f messages/s\n", rawTime.Seconds(), rate(rawTime))
	fmt.Fprintf(w, "ballotd reader (the whole vote, receipt enqueued, cursor):       %6.2f s  %7.0f replies/s  (%.0f a minute)\n",
		ballotdTime.Seconds(), rate(ballotdTime), 60*rate(ballotdTime))
	fmt.Fprintf(w, "ratio ballotd / raw: %.2f\n", rawTime.Seconds()/ballotdTime.Seconds())
	got := map[string]int{}
	for _, c := range tl.Candidates {
		got[c.Name] = c.Votes
	}
	fmt.Fprintf(w, "verified: %d handled, tally voted %d, Ed Markey %d YES of %d\n", handled, tl.Voted, got["Ed Markey"], tl.Voted)
	if handled != len(rows) || tl.Voted != len(rows) || got["Ed Markey"] != yes {
		return 0, 0, fmt.Errorf("want %d handled and voted with %d YES, got %d handled, %d voted, %d YES", len(rows), yes, handled, tl.Voted, got["Ed Markey"])
	}
	return rate(rawTime), rate(ballotdTime), nil
}

// replyMailbox puts rows into box's mailbox and says how to read it: the
// embedded hub's, or (o.IMAPAddr) a real server's, sent through
// o.SMTPAddr and waited for; done empties it again.
func replyMailbox(ctx context.Context, o Options, box string, rows []benchReply) (cfg inbound.IMAPConfig, smtpAddr string, done func(), err error) {
	if o.IMAPAddr == "" {
		hub, err := mailhub.Start(mailhub.Options{})
		if err != nil {
			return cfg, "", nil, err
		}
		for _, r := range rows {
			if err := hub.Deliver(box, []byte(r.raw)); err != nil {
				hub.Close()
				return cfg, "", nil, err
			}
		}
		return inbound.IMAPConfig{Addr: hub.IMAPAddr, Username: box, Password: hub.Password}, hub.SMTPAddr, func() { hub.Close() }, nil
	}
	cfg = inbound.IMAPConfig{Addr: o.IMAPAddr, Username: box, Password: o.IMAPPassword}
	if err := emptyMailbox(cfg); err != nil {
		return cfg, "", nil, err
	}
	c, err := smtp.Dial(o.SMTPAddr)
	if err != nil {
		return cfg, "", nil, fmt.Errorf("smtp %s: %w", o.SMTPAddr, err)
	}
	defer c.Close()
	for _, r := range rows {
		if err := c.SendMail(r.from, []string{r.to}, strings.NewReader(r.raw)); err != nil {
			return cfg, "", nil, fmt.Errorf("smtp %s: send to %s: %w", o.SMTPAddr, r.to, err)
		}
	}
	if err := c.Quit(); err != nil {
		return cfg, "", nil, fmt.Errorf("smtp %s: %w", o.SMTPAddr, err)
	}
	if err := waitForMessages(ctx, cfg, len(rows)); err != nil {
		return cfg, "", nil, err
	}
	return cfg, o.SMTPAddr, func() { emptyMailbox(cfg) }, nil
}

// sendAnswers sends what the outbox holds (the ballots) through
// smtpAddr, then runs the outbox as serve does until the returned stop is
// called; wake wakes it (the reader's Enqueued, as in serve), and stop
// says how many messages went out after the ballots.
func sendAnswers(ctx context.Context, o Options, st *ballots.Store, toks *token.Key, smtpAddr string) (wake func(), stop func() (int, error), err error) {
	ob, err := newOutbox(st, toks, mailer.SMTPConfig{Addr: smtpAddr, HeloName: "bench.example"})
	if err != nil {
		return nil, nil, err
	}
	var sent atomic.Int64
	ob.Logger = slog.New(slog.DiscardHandler)
	ob.Sent = func(err error, _ time.Duration) {
		if err == nil {
			sent.Add(1)
		}
	}
	// The ballots go out first, untimed: only the answers are sent while
	// the reader works.
	if _, err := ob.Drain(ctx); err != nil {
		return nil, nil, fmt.Errorf("send the ballots: %w", err)
	}
	sent.Store(0)
	stopOutbox, err := runAsServe(ctx, st, ob)
	if err != nil {
		return nil, nil, err
	}
	return ob.Wake, func() (int, error) {
		err := stopOutbox()
		return int(sent.Load()), err
	}, nil
}

// waitForMessages waits until cfg's INBOX holds n messages (the SMTP
// server delivers them on its own time).
func waitForMessages(ctx context.Context, cfg inbound.IMAPConfig, n int) error {
	c, err := logIn(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return fmt.Errorf("imap %s: status: %w", cfg.Addr, err)
		}
		if int(*st.NumMessages) >= n {
			return c.Logout().Wait()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("imap %s: %d of %d messages delivered after 10 minutes", cfg.Addr, *st.NumMessages, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logIn connects to cfg's IMAP server and logs in.
func logIn(cfg inbound.IMAPConfig) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(cfg.Addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(cfg.Username, cfg.Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imap %s: login: %w", cfg.Addr, err)
	}
	return c, nil
}

// emptyMailbox deletes every message in cfg's INBOX.
func emptyMailbox(cfg inbound.IMAPConfig) error {
	c, err := logIn(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return fmt.Errorf("imap %s: select: %w", cfg.Addr, err)
	}
	if sel.NumMessages > 0 {
		var all imap.SeqSet
		all.AddRange(1, 0)
		if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return fmt.Errorf("imap %s: delete: %w", cfg.Addr, err)
		}
		if err := c.Expunge().Close(); err != nil {
			return fmt.Errorf("imap %s: expunge: %w", cfg.Addr, err)
		}
	}
	return c.Logout().Wait()
}

// discard is an io.Writer that keeps nothing: the handler still formats
// each log line, as serve's does.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// rawReplies is the least a mailbox reader must do, as inbound.Reader does
// it: search, fetch in batches of 50, store each message in a transaction
// of its own, flag the batch \Seen.
func rawReplies(ctx context.Context, st *ballots.Store, cfg inbound.IMAPConfig) error {
	if err := st.CreateRawMessages(ctx, true); err != nil {
		return err
	}
	c, err := imapclient.DialInsecure(cfg.Addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(cfg.Username, cfg.Password).Wait(); err != nil {
		return err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return err
	}
	var all imap.UIDSet
	all.AddRange(1, 0)
	found, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{all}}, nil).Wait()
	if err != nil {
		return err
	}
	uids := found.AllUIDs()
	for len(uids) > 0 {
		chunk := uids[:min(50, len(uids))]
		uids = uids[len(chunk):]
		msgs, err := c.Fetch(imap.UIDSetNum(chunk...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := st.StoreRawMessage(ctx, int64(m.UID), m.FindBodySection(&imap.FetchItemBodySection{})); err != nil {
				return err
			}
		}
		if err := c.Store(imap.UIDSetNum(chunk...), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
			return err
		}
	}
	return c.Logout().Wait()
}

// replyBench is the scratch database of the reply benchmarks: a
// migrated database with N members, the MA-SEN race open, and each
// member's reply to their ballot, top-posted over the quoted ballot as a
// phone's mail client does; every third says NO.
type replyBench struct {
	st      *ballots.Store
	toks    *token.Key
	replies []benchReply
	yes     int // how many replies say YES
	close   func()
}

// benchReply is one member's reply to the ballot address (bench.example).
type benchReply struct{ from, to, raw string }

// newReplyBench makes the scratch database of o.Replies replies, their
// tokens keyed by secret.
func newReplyBench(ctx context.Context, o Options, secret string) (*replyBench, error) {
	n := o.Replies
	dbURL, cleanup, err := o.Database(ctx, "ballotd_bench")
	if err != nil {
		return nil, err
	}
	st, err := ballots.Open(ctx, dbURL)
	if err != nil {
		cleanup()
		return nil, err
	}
	rb := &replyBench{st: st, close: func() { st.Close(); cleanup() }}
	if err := rb.fill(ctx, n, secret); err != nil {
		rb.close()
		return nil, err
	}
	return rb, nil
}

func (rb *replyBench) fill(ctx context.Context, n int, secret string) error {
	st := rb.st
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	if _, err := benchWave(ctx, st, n, ""); err != nil {
		return err
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); err != nil {
		return err
	}
	toks, err := token.NewKey(secret)
	if err != nil {
		return err
	}
	rb.toks = toks
	rows, err := st.BenchBallots(ctx)
	if err != nil {
		return err
	}
	for i, r := range rows {
		tok := toks.Make(token.Ballot, r.ID, r.Nonce)
		answer := "Yes"
		if i%3 == 2 {
			answer = "No"
		} else {
			rb.yes++
		}
		to := "ballots+v-" + tok + "@bench.example"
		rb.replies = append(rb.replies, benchReply{r.Email, to, fmt.Sprintf("From: Member <%s>\r\nTo: %s\r\nSubject: Re: Your ballot: U.S. Senate, Massachusetts (MA-SEN)\r\n"+
			"Message-ID: <reply-%d@phone.example>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
			"%s\r\n\r\nSent from my iPhone\r\n\r\n> On 23 Nov 2026, at 09:00, Endorsement ballots <ballots@bench.example> wrote:\r\n>\r\n"+
			"> Voting is open on a national endorsement in the U.S. Senate, Massachusetts race (MA-SEN).\r\n"+
			"> Reply to this email with YES or NO.\r\n>\r\n> Ballot code: %s\r\n", r.Email, to, i, answer, tok)})
	}
	return nil
}

// startProfile starts a CPU profile into file ("": none); stop ends it.
func startProfile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
