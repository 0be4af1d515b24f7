package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/inbound/message"
)

// LMTP runs `ballotd bench lmtp`: ballotd's LMTP door taking N
// members' replies (each its own transaction: the message, the vote, the
// receipt in the outbox) from an MTA-like client over C connections,
// against a raw durable LMTP server on the same client and database that
// does the least such a door must: store each message in a transaction of
// its own and answer 250 after the commit.
func LMTP(ctx context.Context, o Options, w io.Writer) error {
	rb, err := newReplyBench(ctx, o, "bench-lmtp-secret-0123456789")
	if err != nil {
		return fmt.Errorf("bench lmtp: %w", err)
	}
	defer rb.close()
	st, toks, yes, msgs := rb.st, rb.toks, rb.yes, rb.replies
	fmt.Fprintf(w, "bench lmtp: %d replies delivered over %d LMTP connections on loopback\n", len(msgs), o.Conns)
	if err := st.CreateRawMessages(ctx, false); err != nil {
		return err
	}
	addr, stop, err := serveLMTP(ctx, smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &rawLMTPSession{st: st, ctx: ctx}, nil }), nil)
	if err != nil {
		return err
	}
	rawTime, err := deliver(addr, o.Conns, msgs)
	stop()
	if err != nil {
		return fmt.Errorf("bench lmtp: raw server: %w", err)
	}
	door := &inbound.LMTPDoor{Logger: slog.New(slog.DiscardHandler), Processor: &inbound.Processor{Store: st, Tokens: toks,
		Box: message.Mailbox{Local: "ballots", Domain: "bench.example"}, Logger: slog.New(slog.NewJSONHandler(discard{}, nil))}}
	addr, stop, err = serveLMTP(ctx, nil, door)
	if err != nil {
		return err
	}
	ballotdTime, err := deliver(addr, o.Conns, msgs)
	stop()
	if err != nil {
		return fmt.Errorf("bench lmtp: ballotd: %w", err)
	}
	tl, err := st.TallyRace(ctx, "MA-SEN")
	if err != nil {
		return err
	}
	rate := func(d time.Duration) float64 { return float64(len(msgs)) / d.Seconds() }
	fmt.Fprintf(w, "raw LMTP server (store each in its own transaction, 250 after the commit): %6.2f s  %7.0f messages/s\n", rawTime.Seconds(), rate(rawTime))
	fmt.Fprintf(w, "ballotd LMTP door (the whole vote, receipt enqueued, 250 after the commit): %6.2f s  %7.0f replies/s  (%.0f a minute)\n",
		ballotdTime.Seconds(), rate(ballotdTime), 60*rate(ballotdTime))
	fmt.Fprintf(w, "ratio ballotd / raw: %.2f\n", rawTime.Seconds()/ballotdTime.Seconds())
	got := 0
	if len(tl.Candidates) > 0 {
		got = tl.Candidates[0].Votes
	}
	fmt.Fprintf(w, "verified: tally voted %d, Ed Markey %d YES of %d\n", tl.Voted, got, tl.Voted)
	if tl.Voted != len(msgs) || got != yes {
		return fmt.Errorf("bench lmtp: want %d voted with %d YES, got %d voted, %d YES", len(msgs), yes, tl.Voted, got)
	}
	return nil
}

// deliver hands every message of msgs to addr over conns connections, as
// an MTA does, and fails on anything but 250.
func deliver(addr string, conns int, msgs []benchReply) (time.Duration, error) {
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for k := 0; k < conns; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			c := smtp.NewClientLMTP(conn)
			defer c.Close()
			if err := c.Hello("mx.bench.example"); err != nil {
				errs <- err
				return
			}
			for i := k; i < len(msgs); i += conns {
				m := msgs[i]
				if err := c.Mail(m.from, nil); err != nil {
					errs <- err
					return
				}
				if err := c.Rcpt(m.to, nil); err != nil {
					errs <- err
					return
				}
				w, err := c.Data()
				if err != nil {
					errs <- err
					return
				}
				if _, err := io.WriteString(w, m.raw); err != nil {
					errs <- err
					return
				}
				if _, err := w.CloseWithLMTPResponse(); err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					return
				}
			}
		}(k)
	}
	wg.Wait()
	close(errs)
	return time.Since(t0), <-errs
}

// serveLMTP serves LMTP on a loopback port with lmtpDoor, or with backend
// when lmtpDoor is nil, until ctx ends or stop is called; it returns the
// address.
func serveLMTP(ctx context.Context, backend smtp.Backend, lmtpDoor *inbound.LMTPDoor) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	if lmtpDoor != nil {
		go func() { defer close(done); lmtpDoor.Serve(sctx, l) }()
	} else {
		s := smtp.NewServer(backend)
		s.LMTP = true
		go func() { defer close(done); s.Serve(l) }()
		go func() { <-sctx.Done(); s.Close() }()
	}
	return l.Addr().String(), func() { cancel(); <-done }, nil
}

// rawLMTPSession stores each message in a transaction of its own and
// answers 250 after the commit: the least a durable LMTP door does.
type rawLMTPSession struct {
	st  *ballots.Store
	ctx context.Context
}

func (*rawLMTPSession) Reset()                               {}
func (*rawLMTPSession) Logout() error                        { return nil }
func (*rawLMTPSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*rawLMTPSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *rawLMTPSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return s.st.StoreRawMessage(s.ctx, 0, raw)
}
