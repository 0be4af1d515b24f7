package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/inbound/message"
)

// LMTPMailbox is the mailbox name recorded for messages that came in by
// LMTP rather than from an IMAP folder.
const LMTPMailbox = "lmtp"

// LMTPDoor is the inbound door through which an MTA (Postfix's
// mailbox_transport, or any LMTP client) delivers the ballot mailbox's mail
// straight to ballotd, without a mailbox in between (RFC 2033).
//
// A message is accepted (250 for each recipient) only after the
// transaction that records it and applies its effect has committed; when
// the database is away it is refused with 451, so the MTA keeps it and
// tries again. A message delivered twice (the 250 lost on the way back)
// has the same Message-ID, or the same bytes, and changes nothing the
// second time: exactly once without a mailbox.
type LMTPDoor struct {
	Processor *Processor
	Logger    *slog.Logger
	// MaxMessageBytes bounds a message; larger ones are refused with 552.
	// Zero means MaxMessageSize.
	MaxMessageBytes int64
}

// Serve answers LMTP on l until ctx ends, then stops accepting and waits
// (up to 10 s) for the deliveries under way.
func (d *LMTPDoor) Serve(ctx context.Context, l net.Listener) error {
	s := d.server(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("lmtp on %s: %w", l.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(sctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			return fmt.Errorf("lmtp on %s: shutdown: %w", l.Addr(), err)
		}
		return nil
	}
}

func (d *LMTPDoor) server(ctx context.Context) *smtp.Server {
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &lmtpSession{door: d, ctx: ctx}, nil
	}))
	s.LMTP = true
	s.Domain = d.Processor.Box.Domain
	s.MaxMessageBytes = d.MaxMessageBytes
	if s.MaxMessageBytes == 0 {
		s.MaxMessageBytes = message.MaxMessageSize
	}
	s.MaxRecipients = 100
	s.ReadTimeout = 5 * time.Minute
	s.WriteTimeout = time.Minute
	s.EnableSMTPUTF8 = true
	return s
}

func (d *LMTPDoor) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.Default()
	}
	return d.Logger
}

// lmtpSession is one LMTP transaction at a time on one connection.
type lmtpSession struct {
	door  *LMTPDoor
	ctx   context.Context
	from  string
	rcpts []string
}

func (s *lmtpSession) Reset() { s.from, s.rcpts = "", nil }

func (s *lmtpSession) Logout() error { return nil }

func (s *lmtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

// Rcpt accepts the ballot mailbox, with or without a plus tag: the door
// delivers to nobody else.
func (s *lmtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !s.door.Processor.Box.Owns(strings.ToLower(to)) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "no such mailbox here: this door takes only " + s.door.Processor.Box.Local + "@" + s.door.Processor.Box.Domain}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Data is LMTPData with one status for all recipients.
func (s *lmtpSession) Data(r io.Reader) error {
	return s.deliver(r)
}

// LMTPData records the message once and gives every recipient the same
// status: they are all the one ballot mailbox.
func (s *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	err := s.deliver(r)
	for _, rcpt := range s.rcpts {
		status.SetStatus(rcpt, err)
	}
	return err
}

// deliver reads the message, adds the envelope as a local delivery agent
// would (Return-Path, Delivered-To: RFC 9228), and hands it to the
// processor. It returns nil only after the commit.
func (s *lmtpSession) deliver(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "could not read the message; try again"}
	}
	var raw bytes.Buffer
	fmt.Fprintf(&raw, "Return-Path: <%s>\r\n", s.from)
	for _, rcpt := range s.rcpts {
		fmt.Fprintf(&raw, "Delivered-To: %s\r\n", rcpt)
	}
	raw.Write(body)
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	// A message that fails for a reason of its own is kept in quarantine
	// and accepted (handleAlone), not refused for days of retries.
	p := s.door.Processor
	res, err := p.handleAlone(ctx, p.parse(Delivery{Mailbox: LMTPMailbox, Raw: raw.Bytes()}))
	if err != nil {
		// Nothing committed: the MTA keeps the message and tries again.
		s.door.logger().Warn("lmtp delivery deferred", "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: "ballotd could not record the message now; try again later"}
	}
	s.door.logger().Debug("lmtp delivery", "inbound_id", res.InboundID, "outcome", res.Outcome)
	return nil
}
