// Package mailhub owns an embedded mail hub on loopback: an SMTP server that
// accepts mail for any address and files it into per-address mailboxes, and
// an IMAP server (go-imap v2's imapmemserver) that serves those mailboxes.
// End-to-end tests use it as both the outbound relay and the inbound
// mailbox; `ballotd dev` runs it so a person can point a mail client such as
// Thunderbird at it.
//
// Mailboxes. Every address gets one: the IMAP username is the bare address
// lowercased without its plus tag (ballots+v-abc@example.org is user
// ballots@example.org). A user is created, with INBOX and Sent, on the first
// delivery to it or on the first login with the hub password, so a client can
// log in before mail arrives. All state is in memory and lost on Close;
// each start gives its mailboxes a UIDVALIDITY greater than the start
// before (RFC 3501 §2.3.1.1), so a client does not take the new mailbox's
// UIDs for ones it has read.
//
// IMAP. Plain-text LOGIN and AUTHENTICATE PLAIN are allowed without TLS.
// With Options.SASL, both servers offer other mechanisms instead of the
// password (tests of a client's XOAUTH2, OAUTHBEARER or LOGIN).
// The server speaks IMAP4rev1 and IMAP4rev2 and, through imapmemserver
// (v2.0.0-beta.8), supports IDLE (sessions with a selected mailbox are woken
// by new deliveries; see imapSession.Idle for a race this package works
// around), MOVE, UIDPLUS (APPENDUID/COPYUID, UID EXPUNGE),
// NAMESPACE, UNSELECT, SEARCH/UID SEARCH (with ESEARCH and SEARCHRES),
// STORE of any flag and keyword, COPY, APPEND, CREATE/RENAME/DELETE and
// LIST/STATUS. It does not support SPECIAL-USE attributes (Sent is found by
// name), CONDSTORE/QRESYNC, QUOTA, SORT/THREAD or STARTTLS.
//
// SMTP. Any MAIL FROM and any RCPT TO are accepted, with or without AUTH
// PLAIN (any username, the hub password), unless a fault set with
// SetRcptFault rejects the recipient. Each accepted transaction is recorded
// (Received, WaitReceived) and a copy is filed into each recipient's INBOX
// with Return-Path and Delivered-To prepended, as a final delivery agent
// does.
package mailhub

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configures a Hub. The zero value is usable.
type Options struct {
	// Addr is the host to listen on; default "127.0.0.1".
	Addr string
	// SMTPPort and IMAPPort are the ports to listen on; 0 picks a free one.
	SMTPPort, IMAPPort int
	// Password is the one password of every mailbox (IMAP login, SMTP
	// AUTH); "" generates a random one, see Hub.Password.
	Password string
	// TLSConfig, when set, is the servers' certificate: both offer
	// STARTTLS, or with ImplicitTLS speak TLS from the first byte.
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// Logger receives connection errors and one line per delivery; nil
	// discards them.
	Logger *slog.Logger
	// SASL, when set, replaces the hub password, for tests of a client's
	// authentication: IMAP and SMTP offer exactly its mechanisms and IMAP
	// LOGIN is refused.
	SASL *SASL
}

// SASL is the authentication a hub offers instead of its password.
type SASL struct {
	// Mechanisms are the SASL mechanisms offered, such as "OAUTHBEARER".
	Mechanisms []string
	// NewServer returns the server side of an exchange with mech (one of
	// Mechanisms). The server calls login with the username it has
	// authenticated and fails the exchange with login's error.
	NewServer func(mech string, login func(username string) error) sasl.Server
}

// server returns the server side of mech, or nil when it is not offered;
// a failed exchange ends with the protocol's failure, failed.
func (a *SASL) server(mech string, login func(username string) error, failed error) sasl.Server {
	for _, m := range a.Mechanisms {
		if strings.EqualFold(m, mech) {
			return failAs{a.NewServer(m, login), failed}
		}
	}
	return nil
}

// failAs is a SASL server whose failures are one protocol error.
type failAs struct {
	sasl.Server
	failed error
}

// Next implements sasl.Server.
func (f failAs) Next(resp []byte) ([]byte, bool, error) {
	challenge, done, err := f.Server.Next(resp)
	if err != nil {
		err = f.failed
	}
	return challenge, done, err
}

// Hub is a running mail hub. Its exported fields are set by Start and must
// not be changed.
type Hub struct {
	// SMTPAddr and IMAPAddr are the host:port the servers listen on.
	SMTPAddr, IMAPAddr string
	// Password is the password of every mailbox.
	Password string

	log  *slog.Logger
	mem  *imapmemserver.Server
	sasl *SASL
	imap *imapserver.Server
	// listeners are closed by Close too: a Close that runs before Serve
	// has registered its listener would otherwise leave Serve blocked.
	listeners []net.Listener
	smtp      *smtp.Server
	wg        sync.WaitGroup

	// uidValidity is this start's UIDVALIDITY base (nextUIDValidity): a
	// user's mailboxes get it plus 1, 2, … in the order they are created.
	uidValidity uint32

	mu        sync.Mutex
	users     map[string]*imapmemserver.User
	received  []Envelope
	changed   chan struct{} // closed and replaced when received grows
	rcptFault func(rcpt string) *smtp.SMTPError
	closed    bool
}

// Envelope is one accepted SMTP transaction.
type Envelope struct {
	// From is the MAIL FROM address ("" for a null reverse-path).
	From string
	// To are the accepted RCPT TO addresses, as given.
	To []string
	// Data is the message as received, without the headers the hub adds.
	Data []byte
	// At is when the DATA command completed.
	At time.Time
}

// StoredMessage is a message in a mailbox.
type StoredMessage struct {
	// UID is the message's IMAP UID in its mailbox.
	UID uint32
	// Flags are the message's IMAP flags and keywords, such as `\Seen`.
	Flags []string
	// Raw is the stored message, including the headers the hub added.
	Raw []byte
}

// Start listens on opts.Addr and serves SMTP and IMAP until Close.
func Start(opts Options) (*Hub, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Password == "" {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("mailhub: password: %w", err)
		}
		opts.Password = base64.RawURLEncoding.EncodeToString(b[:])
	}
	h := &Hub{
		Password: opts.Password,
		log:      opts.Logger,
		mem:      imapmemserver.New(),
		sasl:     opts.SASL,
		users:    make(map[string]*imapmemserver.User),
		changed:  make(chan struct{}),
		// RFC 3501 §2.3.1.1: UIDs do not persist from one start to the
		// next, so each start's UIDVALIDITY must be greater than the last.
		uidValidity: nextUIDValidity(time.Now()),
	}

	smtpLn, err := net.Listen("tcp", net.JoinHostPort(opts.Addr, strconv.Itoa(opts.SMTPPort)))
	if err != nil {
		return nil, fmt.Errorf("mailhub: smtp: %w", err)
	}
	imapLn, err := net.Listen("tcp", net.JoinHostPort(opts.Addr, strconv.Itoa(opts.IMAPPort)))
	if err != nil {
		smtpLn.Close()
		return nil, fmt.Errorf("mailhub: imap: %w", err)
	}
	h.SMTPAddr, h.IMAPAddr = smtpLn.Addr().String(), imapLn.Addr().String()
	if opts.TLSConfig != nil && opts.ImplicitTLS {
		smtpLn, imapLn = tls.NewListener(smtpLn, opts.TLSConfig), tls.NewListener(imapLn, opts.TLSConfig)
	}
	h.listeners = []net.Listener{smtpLn, imapLn}

	h.smtp = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{hub: h}, nil
	}))
	h.smtp.Domain = "mailhub.localhost"
	h.smtp.AllowInsecureAuth = true
	h.smtp.MaxMessageBytes = 64 << 20
	h.smtp.MaxRecipients = 10000
	h.smtp.ReadTimeout = 10 * time.Minute
	h.smtp.WriteTimeout = time.Minute
	h.smtp.EnableSMTPUTF8 = true
	h.smtp.ErrorLog = logAdapter{h.log.With("server", "smtp")}
	if opts.TLSConfig != nil && !opts.ImplicitTLS {
		h.smtp.TLSConfig = opts.TLSConfig
	}

	h.imap = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &imapSession{hub: h}, nil, nil
		},
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {},
			imap.CapIMAP4rev2: {},
			// Part of IMAP4rev2, advertised explicitly for IMAP4rev1
			// clients (IDLE and UNSELECT are advertised by imapserver).
			imap.CapNamespace: {},
			imap.CapUIDPlus:   {},
			imap.CapMove:      {},
			imap.CapESearch:   {},
			imap.CapSearchRes: {},
		},
		InsecureAuth: true,
		TLSConfig:    imapTLS(opts),
		Logger:       logAdapter{h.log.With("server", "imap")},
	})

	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		if err := h.smtp.Serve(smtpLn); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			h.log.Error("mailhub: smtp server stopped", "err", err)
		}
	}()
	go func() {
		defer h.wg.Done()
		if err := h.imap.Serve(imapLn); err != nil {
			h.log.Error("mailhub: imap server stopped", "err", err)
		}
	}()
	return h, nil
}

// Close stops both servers, closing open connections, and waits for them.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	err := errors.Join(h.smtp.Close(), h.imap.Close())
	for _, ln := range h.listeners {
		ln.Close()
	}
	h.wg.Wait()
	return err
}

// Username returns the mailbox user for an address: the bare address,
// lowercased, without angle brackets and without the plus tag of its local
// part. It returns "" for an empty address.
func Username(addr string) string {
	addr = strings.ToLower(strings.TrimSpace(addr))
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
	local, domain := addr, ""
	at := strings.LastIndex(addr, "@")
	if at >= 0 {
		local, domain = addr[:at], addr[at:]
	}
	if base, _, ok := strings.Cut(local, "+"); ok && base != "" {
		local = base
	}
	return local + domain
}

// user returns the mailbox user for addr, creating it (with INBOX and Sent)
// if create is set.
func (h *Hub) user(addr string, create bool) (*imapmemserver.User, error) {
	name := Username(addr)
	if name == "" {
		return nil, fmt.Errorf("mailhub: empty address")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.users[name]; u != nil || !create {
		return u, nil
	}
	u := imapmemserver.NewUser(name, h.Password)
	if err := setUIDValidity(u, h.uidValidity); err != nil {
		return nil, err
	}
	for _, mbox := range []string{"INBOX", "Sent"} {
		if err := u.Create(mbox, nil); err != nil {
			return nil, fmt.Errorf("mailhub: create %s for %s: %w", mbox, name, err)
		}
		if err := u.Subscribe(mbox); err != nil {
			return nil, fmt.Errorf("mailhub: subscribe %s for %s: %w", mbox, name, err)
		}
	}
	h.mem.AddUser(u)
	h.users[name] = u
	return u, nil
}

// Deliver files raw into the INBOX of rcpt's user, creating the user if
// needed, as if it had arrived by SMTP: it prepends a Delivered-To header
// with rcpt as given. It records no Envelope (there is no SMTP transaction)
// and ignores SetRcptFault.
func (h *Hub) Deliver(rcpt string, raw []byte) error {
	return h.deliver("", false, rcpt, raw)
}

func (h *Hub) deliver(from string, withReturnPath bool, rcpt string, raw []byte) error {
	u, err := h.user(rcpt, true)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if withReturnPath {
		fmt.Fprintf(&buf, "Return-Path: <%s>\r\n", from)
	}
	fmt.Fprintf(&buf, "Delivered-To: %s\r\n", rcpt)
	buf.Write(raw)
	data, err := u.Append("INBOX", literal{bytes.NewReader(buf.Bytes())}, &imap.AppendOptions{Time: time.Now()})
	if err != nil {
		return fmt.Errorf("mailhub: deliver to %s: %w", rcpt, err)
	}
	h.log.Info("mailhub: delivered", "rcpt", rcpt, "user", Username(rcpt), "uid", data.UID, "bytes", buf.Len())
	return nil
}

// Received returns all accepted SMTP transactions so far, in order.
func (h *Hub) Received() []Envelope {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Envelope(nil), h.received...)
}

// WaitReceived blocks until at least n SMTP transactions have been accepted
// and returns them all, or returns ctx's error.
func (h *Hub) WaitReceived(ctx context.Context, n int) ([]Envelope, error) {
	for {
		h.mu.Lock()
		if len(h.received) >= n {
			envs := append([]Envelope(nil), h.received...)
			h.mu.Unlock()
			return envs, nil
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("mailhub: waiting for %d messages: %w", n, ctx.Err())
		}
	}
}

// SetRcptFault makes the SMTP server answer RCPT TO with f's error for the
// recipients f returns non-nil for (for tests of throttling and rejection);
// the other recipients are accepted. A nil f clears the fault.
func (h *Hub) SetRcptFault(f func(rcpt string) *smtp.SMTPError) {
	h.mu.Lock()
	h.rcptFault = f
	h.mu.Unlock()
}

// Inbox returns the messages currently in the INBOX of addr's user, in UID
// order, with their flags; none if the user does not exist yet. It reads them
// over an IMAP connection to the hub, without setting \Seen.
func (h *Hub) Inbox(addr string) ([]StoredMessage, error) {
	u, err := h.user(addr, false)
	if err != nil || u == nil {
		return nil, err
	}
	c, err := imapclient.DialInsecure(h.IMAPAddr, nil)
	if err != nil {
		return nil, fmt.Errorf("mailhub: inbox: %w", err)
	}
	defer c.Close()
	if err := c.Login(Username(addr), h.Password).Wait(); err != nil {
		return nil, fmt.Errorf("mailhub: inbox: login: %w", err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("mailhub: inbox: select: %w", err)
	}
	if sel.NumMessages == 0 {
		return nil, c.Logout().Wait()
	}
	var all imap.UIDSet
	all.AddRange(1, 0) // 1:*
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("mailhub: inbox: fetch: %w", err)
	}
	out := make([]StoredMessage, 0, len(msgs))
	for _, m := range msgs {
		sm := StoredMessage{UID: uint32(m.UID), Raw: m.FindBodySection(body)}
		for _, f := range m.Flags {
			sm.Flags = append(sm.Flags, string(f))
		}
		out = append(out, sm)
	}
	return out, c.Logout().Wait()
}

// smtpSession is one SMTP connection's transaction state.
type smtpSession struct {
	hub  *Hub
	from string
	to   []string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

// AuthMechanisms implements smtp.AuthSession: PLAIN, or Options.SASL's.
func (s *smtpSession) AuthMechanisms() []string {
	if s.hub.sasl != nil {
		return s.hub.sasl.Mechanisms
	}
	return []string{sasl.Plain}
}

// Auth implements smtp.AuthSession: any user with the hub password, or as
// Options.SASL says.
func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	if s.hub.sasl != nil {
		if srv := s.hub.sasl.server(mech, func(string) error { return nil }, smtp.ErrAuthFailed); srv != nil {
			return srv, nil
		}
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if subtle.ConstantTimeCompare([]byte(password), []byte(s.hub.Password)) != 1 {
			return smtp.ErrAuthFailed
		}
		return nil
	}), nil
}

// Mail implements smtp.Session: any sender.
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.to = from, nil
	return nil
}

// Rcpt implements smtp.Session: any recipient, unless a fault is set for it.
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.hub.mu.Lock()
	fault := s.hub.rcptFault
	s.hub.mu.Unlock()
	if fault != nil {
		if err := fault(to); err != nil {
			return err
		}
	}
	if Username(to) == "" {
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Empty recipient"}
	}
	s.to = append(s.to, to)
	return nil
}

// Data implements smtp.Session: files the message in each recipient's INBOX.
func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for _, rcpt := range s.to {
		if err := s.hub.deliver(s.from, true, rcpt, data); err != nil {
			s.hub.log.Error("mailhub: delivery failed", "rcpt", rcpt, "err", err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Delivery failed"}
		}
	}
	env := Envelope{From: s.from, To: append([]string(nil), s.to...), Data: data, At: time.Now()}
	h := s.hub
	h.mu.Lock()
	h.received = append(h.received, env)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	return nil
}

// Reset implements smtp.Session.
func (s *smtpSession) Reset() { s.from, s.to = "", nil }

// Logout implements smtp.Session.
func (s *smtpSession) Logout() error { return nil }

// imapSession is imapmemserver's session with a login that accepts any
// address with the hub password and creates its user on demand.
type imapSession struct {
	*imapmemserver.UserSession // nil until Login
	hub                        *Hub
}

var (
	_ imapserver.SessionIMAP4rev2 = (*imapSession)(nil)
	_ imapserver.SessionSASL      = (*imapSession)(nil)
)

// Login implements imapserver.Session: any address with the hub password, creating its mailbox on first use.
// With Options.SASL it is refused.
func (s *imapSession) Login(username, password string) error {
	if s.hub.sasl != nil {
		return imapserver.ErrAuthFailed
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(s.hub.Password)) != 1 {
		return imapserver.ErrAuthFailed
	}
	u, err := s.hub.user(username, true)
	if err != nil {
		return imapserver.ErrAuthFailed
	}
	s.UserSession = imapmemserver.NewUserSession(u)
	return nil
}

// AuthenticateMechanisms implements imapserver.SessionSASL: PLAIN, or
// Options.SASL's.
func (s *imapSession) AuthenticateMechanisms() []string {
	if s.hub.sasl != nil {
		return s.hub.sasl.Mechanisms
	}
	return []string{sasl.Plain}
}

// Authenticate implements imapserver.SessionSASL: PLAIN with the hub
// password, or as Options.SASL says.
func (s *imapSession) Authenticate(mech string) (sasl.Server, error) {
	if s.hub.sasl == nil {
		if mech != sasl.Plain {
			return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
		}
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return imapserver.ErrAuthFailed
			}
			return s.Login(username, password)
		}), nil
	}
	srv := s.hub.sasl.server(mech, func(username string) error {
		u, err := s.hub.user(username, true)
		if err != nil {
			return imapserver.ErrAuthFailed
		}
		s.UserSession = imapmemserver.NewUserSession(u)
		return nil
	}, imapserver.ErrAuthFailed)
	if srv == nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
	}
	return srv, nil
}

// Idle works around a race in imapserver.SessionTracker.Idle
// (v2.0.0-beta.8): an update queued after the IDLE continuation but before
// the tracker registers its wake-up channel is held back until the next
// update, so a message delivered just as a client starts to IDLE would go
// unannounced. Idle therefore runs the tracker's Idle in rounds (5ms, then
// 100ms) and polls between them: such an update is sent within 100ms.
func (s *imapSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	wait := 5 * time.Millisecond
	for {
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		round, done := make(chan struct{}), make(chan error, 1)
		go func() { done <- s.UserSession.Idle(w, round) }()
		timer := time.NewTimer(wait)
		wait = 100 * time.Millisecond
		stopped, innerDone := false, false
		select {
		case <-stop:
			stopped = true
		case <-timer.C:
		case err := <-done: // no mailbox selected, or a write error
			if err != nil {
				timer.Stop()
				return err
			}
			innerDone = true
			select {
			case <-stop:
				stopped = true
			case <-timer.C:
			}
		}
		timer.Stop()
		close(round)
		if !innerDone {
			if err := <-done; err != nil {
				return err
			}
		}
		if stopped {
			return nil
		}
	}
}

// literal gives a bytes.Reader the Size method of imap.LiteralReader.
type literal struct{ *bytes.Reader }

// logAdapter feeds the servers' Printf-style error logs into slog.
type logAdapter struct{ l *slog.Logger }

// Printf implements the servers' logger interface.
func (a logAdapter) Printf(format string, v ...any) { a.l.Warn(fmt.Sprintf(format, v...)) }

// Println implements the servers' logger interface.
func (a logAdapter) Println(v ...any) { a.l.Warn(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func imapTLS(opts Options) *tls.Config {
	if opts.ImplicitTLS {
		return nil
	}
	return opts.TLSConfig
}

// lastUIDValidity is the UIDVALIDITY base last handed out in this process.
var lastUIDValidity atomic.Uint32

// nextUIDValidity returns a UIDVALIDITY base for a hub starting at now: its
// time in seconds (RFC 3501 §2.3.1.1 suggests the creation time), or one
// more than the last base of this process when that is not greater. A hub
// started after another, in this process or (a second or more later) in a
// new one, such as `ballotd dev` restarted, gives every mailbox a
// UIDVALIDITY its clients have not seen, so they read it afresh instead of
// skipping UIDs they think they have read.
func nextUIDValidity(now time.Time) uint32 {
	for {
		last := lastUIDValidity.Load()
		v := uint32(now.Unix())
		if v <= last {
			v = last + 1
		}
		if lastUIDValidity.CompareAndSwap(last, v) {
			return v
		}
	}
}

// setUIDValidity makes the mailboxes u creates from now on take their
// UIDVALIDITY from base (base+1, base+2, …). imapmemserver numbers them
// from 1 for every new user and has no option for it, so its counter is
// set here; if a new version of imapmemserver renames the field, this
// fails loudly (and TestUIDValidityPerStart with it), never silently.
func setUIDValidity(u *imapmemserver.User, base uint32) error {
	f := reflect.ValueOf(u).Elem().FieldByName("prevUidValidity")
	if !f.IsValid() || f.Kind() != reflect.Uint32 || !f.CanAddr() {
		return errors.New("mailhub: imapmemserver.User has no uint32 prevUidValidity; update setUIDValidity")
	}
	*(*uint32)(unsafe.Pointer(f.UnsafeAddr())) = base
	return nil
}
