package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/ballotd/ballotd/internal/mailauth"
)

// IMAPConfig says how to reach the ballot mailbox.
type IMAPConfig struct {
	Addr     string // host:port
	TLS      string // none, starttls or tls
	Username string
	Password string
	// Mechanism is how to log in: "" or mailauth.Login for the LOGIN
	// command, else the SASL mechanism of AUTHENTICATE (mailauth.Plain,
	// XOAuth2, OAuthBearer).
	Mechanism string
	// Tokens hands out the access tokens of XOAUTH2 and OAUTHBEARER.
	Tokens  *mailauth.Tokens
	Mailbox string        // default INBOX
	Poll    time.Duration // how often to look without IDLE, default 30s
	// Reconnect is the wait before the first reconnect after a session
	// ended, default 1s; it doubles while the server stays away, up to
	// 2 minutes.
	Reconnect time.Duration
	Batch     int // messages fetched at once, default 50
	// TLSConfig holds the trust settings (extra roots, verification off);
	// nil verifies against the system roots. ServerName is set from Addr.
	TLSConfig *tls.Config
}

// Reader reads the ballot mailbox: it fetches every message after the last
// one whose effect committed, hands each to the Processor in UID order, and
// marks it \Seen only after that commit. With IDLE it wakes on new mail;
// without, it polls. It reconnects with backoff when the server goes away.
type Reader struct {
	Config    IMAPConfig
	Processor *Processor
	Logger    *slog.Logger
	// Polled, when set, is called after every completed pass.
	Polled func(handled int)
	// Backlog, when set, is called with how many messages past the
	// cursor are still to be handled: after each search, and after each
	// batch of a pass (metrics).
	Backlog func(unread int)
	// Reconnecting, when set, is called each time a session ended and
	// the reader is about to reconnect (metrics).
	Reconnecting func(err error)
}

func (r *Reader) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Reader) mailbox() string {
	if r.Config.Mailbox == "" {
		return "INBOX"
	}
	return r.Config.Mailbox
}

type session struct {
	c           *imapclient.Client
	uidValidity uint32
	updates     chan struct{}
	idle        bool
}

func (r *Reader) connect(ctx context.Context) (*session, error) {
	s := &session{updates: make(chan struct{}, 1)}
	opts := &imapclient.Options{
		Dialer: &net.Dialer{Timeout: 30 * time.Second},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case s.updates <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	host, _, _ := net.SplitHostPort(r.Config.Addr)
	opts.TLSConfig = &tls.Config{ServerName: host}
	if r.Config.TLSConfig != nil {
		opts.TLSConfig = r.Config.TLSConfig.Clone()
		opts.TLSConfig.ServerName = host
	}
	var err error
	switch r.Config.TLS {
	case "tls":
		s.c, err = imapclient.DialTLS(r.Config.Addr, opts)
	case "starttls":
		s.c, err = imapclient.DialStartTLS(r.Config.Addr, opts)
	default:
		s.c, err = imapclient.DialInsecure(r.Config.Addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("imap dial %s: %w", r.Config.Addr, err)
	}
	if err := r.logIn(ctx, s.c); err != nil {
		s.c.Close()
		return nil, err
	}
	sel, err := s.c.Select(r.mailbox(), nil).Wait()
	if err != nil {
		s.c.Close()
		return nil, fmt.Errorf("imap select %s: %w", r.mailbox(), err)
	}
	s.uidValidity = sel.UIDValidity
	caps := s.c.Caps()
	s.idle = caps.Has(imap.CapIdle) || caps.Has(imap.CapIMAP4rev2)
	return s, nil
}

// logIn authenticates with the LOGIN command, or with AUTHENTICATE and the
// configured SASL mechanism.
func (r *Reader) logIn(ctx context.Context, c *imapclient.Client) error {
	cfg := r.Config
	if cfg.Mechanism == "" || cfg.Mechanism == mailauth.Login {
		if err := c.Login(cfg.Username, cfg.Password).Wait(); err != nil {
			return fmt.Errorf("imap login %s as %s: %w", cfg.Addr, cfg.Username, err)
		}
		return nil
	}
	a := mailauth.Auth{Mechanism: cfg.Mechanism, Username: cfg.Username, Password: cfg.Password, Tokens: cfg.Tokens}
	if err := a.Authenticate(ctx, c.Authenticate); err != nil {
		return fmt.Errorf("imap authenticate %s %s as %s: %w", cfg.Mechanism, cfg.Addr, cfg.Username, err)
	}
	return nil
}

// Check connects and logs in as a Reader would, selects the mailbox and
// logs out; it reports whether the server supports IDLE. It is the IMAP
// part of `ballotd check`.
func Check(ctx context.Context, cfg IMAPConfig) (idle bool, err error) {
	r := &Reader{Config: cfg}
	s, err := r.connect(ctx)
	if err != nil {
		return false, err
	}
	defer s.c.Close()
	if err := s.c.Logout().Wait(); err != nil {
		return s.idle, fmt.Errorf("imap logout: %w", err)
	}
	return s.idle, nil
}

// pass handles every message after the cursor; it returns how many it
// handled. It stops at the first message that could not be handled, so
// nothing is skipped.
func (r *Reader) pass(ctx context.Context, s *session) (int, error) {
	box := r.mailbox()
	last, err := r.Processor.Store.LastUID(ctx, box, s.uidValidity)
	if err != nil {
		return 0, err
	}
	var set imap.UIDSet
	set.AddRange(imap.UID(last+1), 0) // last+1:*
	found, err := s.c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return 0, fmt.Errorf("imap search %s: %w", box, err)
	}
	var uids []imap.UID
	for _, u := range found.AllUIDs() {
		if uint32(u) > last { // "n:*" matches the last message even below n
			uids = append(uids, u)
		}
	}
	batch := r.Config.Batch
	if batch <= 0 {
		batch = 50
	}
	handled := 0
	if r.Backlog != nil {
		r.Backlog(len(uids))
	}
	// One goroutine speaks IMAP for the pass: it flags handled batches
	// \Seen and fetches (and parses) the next batch while this one is
	// handled. It has ended before pass returns, so the session's next
	// command (IDLE) is alone on the connection.
	fetched := make(chan fetchedBatch, 1)
	seen := make(chan imap.UIDSet, len(uids)/batch+2)
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.imapAhead(fctx, s, box, uids, batch, fetched, seen) })
	defer func() {
		close(seen) // flags what was handled, then ends
		wg.Wait()
		stop()
	}()
	for len(uids) > 0 && ctx.Err() == nil {
		var fb fetchedBatch
		select {
		case fb = <-fetched:
		case <-ctx.Done():
			return handled, ctx.Err()
		}
		if fb.err != nil {
			return handled, fmt.Errorf("imap fetch %s: %w", box, fb.err)
		}
		uids = uids[fb.asked:]
		results, err := r.Processor.handleBatch(ctx, fb.parsed, len(uids))
		var done imap.UIDSet
		for i := range results {
			done.AddNum(imap.UID(fb.parsed[i].UID))
		}
		handled += len(results)
		if len(done) > 0 {
			seen <- done // never blocks: room for every batch
		}
		if err != nil {
			return handled, err
		}
		if r.Backlog != nil {
			r.Backlog(len(uids))
		}
	}
	if ctx.Err() == nil {
		// Read to the end: what was held back goes out now.
		if err := r.Processor.releaseHeld(ctx); err != nil {
			return handled, err
		}
	}
	return handled, ctx.Err()
}

// fetchedBatch is one batch of messages fetched and read: asked is how
// many UIDs were asked for (a message expunged meanwhile is not among
// them).
type fetchedBatch struct {
	parsed []parsed
	asked  int
	err    error
}

// imapAhead is a pass's IMAP: it fetches uids in batches and reads them
// (on every core) into out, one batch ahead of the handler, so the next
// batch is fetched and parsed while the database works on this one; and
// it flags \Seen each batch the handler sends on seen (after its commit),
// until seen is closed. Fetching ends when all are fetched, a fetch fails
// or ctx ends; flags sent are flagged even then (but not after ctx ends).
func (r *Reader) imapAhead(ctx context.Context, s *session, box string, uids []imap.UID, batch int, out chan<- fetchedBatch, seen <-chan imap.UIDSet) {
	flag := func(set imap.UIDSet) bool {
		if ctx.Err() != nil {
			return false
		}
		r.markSeen(s, set)
		return true
	}
	for len(uids) > 0 {
		n := min(batch, len(uids))
		chunk := uids[:n]
		uids = uids[n:]
		ds, err := r.fetch(s, box, chunk)
		fb := fetchedBatch{parsed: r.Processor.parseAll(ds), asked: n, err: err}
	handOver:
		for {
			select {
			case out <- fb:
				break handOver
			case set, ok := <-seen:
				if !ok {
					return
				}
				flag(set)
			case <-ctx.Done():
				return
			}
		}
		if err != nil {
			break
		}
	}
	for set := range seen {
		if !flag(set) {
			return
		}
	}
}

// fetch fetches the messages of chunk, in UID order. Every message
// returned must be one asked for and have its body; one asked for and not
// returned is asked for again alone, and only when the server still does
// not return it is it taken as expunged (gone from the mailbox).
func (r *Reader) fetch(s *session, box string, chunk []imap.UID) ([]Delivery, error) {
	byUID := map[imap.UID][]byte{}
	ask := chunk
	for try := 0; try < 2 && len(ask) > 0; try++ {
		msgs, err := s.c.Fetch(imap.UIDSetNum(ask...), &imap.FetchOptions{
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			return nil, err
		}
		for _, msg := range msgs {
			raw := msg.FindBodySection(&imap.FetchItemBodySection{})
			if raw == nil && len(msg.BodySection) > 0 {
				raw = msg.BodySection[0].Bytes
			}
			if msg.UID != 0 && raw != nil && slices.Contains(ask, msg.UID) {
				byUID[msg.UID] = raw
			}
		}
		var missing []imap.UID
		for _, u := range ask {
			if _, ok := byUID[u]; !ok {
				missing = append(missing, u)
			}
		}
		ask = missing
	}
	if len(ask) > 0 {
		r.logger().Warn("imap: messages gone from the mailbox before they were read (expunged)", "mailbox", box, "uids", fmt.Sprint(ask))
	}
	ds := make([]Delivery, 0, len(byUID))
	for _, u := range chunk {
		if raw, ok := byUID[u]; ok {
			ds = append(ds, Delivery{Mailbox: box, UIDValidity: s.uidValidity, UID: uint32(u), Raw: raw})
		}
	}
	return ds, nil
}

// markSeen flags handled messages \Seen, so a person looking at the mailbox
// sees what ballotd has done. The cursor in the database, not the flag,
// decides what is read next, so a failure here loses nothing.
func (r *Reader) markSeen(s *session, uids imap.UIDSet) {
	if len(uids) == 0 {
		return
	}
	err := s.c.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	if err != nil {
		r.logger().Warn("imap: could not flag handled messages", "err", err)
	}
}

// Once connects, handles every new message and disconnects.
func (r *Reader) Once(ctx context.Context) (int, error) {
	s, err := r.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer s.c.Close()
	n, err := r.pass(ctx, s)
	s.c.Logout().Wait()
	return n, err
}

// Run reads the mailbox until ctx is done, reconnecting with backoff.
func (r *Reader) Run(ctx context.Context) error {
	first := r.Config.Reconnect
	if first <= 0 {
		first = time.Second
	}
	backoff := first
	for ctx.Err() == nil {
		started := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			// The session was healthy for a while: this is a new outage,
			// not the same one going on.
			backoff = first
		}
		r.logger().Error("imap: session ended; reconnecting", "err", err, "in", backoff)
		if r.Reconnecting != nil {
			r.Reconnecting(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Minute)
	}
	return nil
}

func (r *Reader) session(ctx context.Context) error {
	s, err := r.connect(ctx)
	if err != nil {
		return err
	}
	defer s.c.Close()
	r.logger().Info("imap: connected", "addr", r.Config.Addr, "mailbox", r.mailbox(), "idle", s.idle)
	poll := r.Config.Poll
	if poll <= 0 {
		poll = 30 * time.Second
	}
	for {
		n, err := r.pass(ctx, s)
		if err != nil {
			return err
		}
		if r.Polled != nil {
			r.Polled(n)
		}
		if err := r.wait(ctx, s, poll); err != nil {
			return err
		}
		if ctx.Err() != nil {
			s.c.Logout().Wait()
			return nil
		}
	}
}

// wait blocks until new mail may be there: an IDLE update, the poll
// interval (also the IDLE fallback: some servers never notify), or ctx.
func (r *Reader) wait(ctx context.Context, s *session, poll time.Duration) error {
	if !s.idle {
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
		return s.c.Noop().Wait()
	}
	idle, err := s.c.Idle()
	if err != nil {
		return fmt.Errorf("imap idle: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-s.updates:
	case <-time.After(poll):
	}
	if err := idle.Close(); err != nil {
		return fmt.Errorf("imap idle: %w", err)
	}
	if err := idle.Wait(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("imap idle: %w", err)
	}
	return nil
}
