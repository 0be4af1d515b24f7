package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/internal/token"
)

// Replies runs `ballotd bench replies`: ballotd's mailbox reader
// handling N members' replies (each its own transaction: the message, the
// vote, the receipt in the outbox, the cursor), against a raw reader of the
// same mailbox that does the least any reader must: fetch each message,
// store it in a transaction of its own, flag it \Seen. Both read the
// embedded hub over IMAP on loopback, in batches of 50, into one scratch
// database.
func Replies(ctx context.Context, o Options, w io.Writer) error {
	rb, err := newReplyBench(ctx, o, "bench-replies-secret-0123456789")
	if err != nil {
		return fmt.Errorf("bench replies: %w", err)
	}
	defer rb.close()
	st, toks, yes := rb.st, rb.toks, rb.yes
	rows := rb.replies
	hub, err := mailhub.Start(mailhub.Options{})
	if err != nil {
		return err
	}
	defer hub.Close()
	const box = "ballots@bench.example"
	for _, r := range rows {
		if err := hub.Deliver(box, []byte(r.raw)); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "bench replies: %d replies in one IMAP mailbox (embedded hub on loopback), batches of 50\n", len(rows))

	cfg := inbound.IMAPConfig{Addr: hub.IMAPAddr, Username: box, Password: hub.Password}
	t0 := time.Now()
	if err := rawReplies(ctx, st, cfg); err != nil {
		return fmt.Errorf("bench replies: raw reader: %w", err)
	}
	rawTime := time.Since(t0)

	rd := &inbound.Reader{Config: cfg, Logger: slog.New(slog.DiscardHandler), Processor: &inbound.Processor{Store: st, Tokens: toks,
		Box: message.Mailbox{Local: "ballots", Domain: "bench.example"}, Logger: slog.New(slog.NewJSONHandler(discard{}, nil))}}
	stop, err := startProfile(o.CPUProfile)
	if err != nil {
		return err
	}
	t0 = time.Now()
	handled, err := rd.Once(ctx)
	stop()
	if err != nil {
		return fmt.Errorf("bench replies: ballotd: %w", err)
	}
	ballotdTime := time.Since(t0)

	tl, err := st.TallyRace(ctx, "MA-SEN")
	if err != nil {
		return err
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
		return fmt.Errorf("bench replies: want %d handled and voted with %d YES, got %d handled, %d voted, %d YES", len(rows), yes, handled, tl.Voted, got["Ed Markey"])
	}
	return nil
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
