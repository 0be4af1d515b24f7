package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/internal/mailauth"
)

// Sender delivers one message to one recipient. Implementations need not
// be safe for concurrent use: each worker owns one.
type Sender interface {
	Send(ctx context.Context, from, to string, data []byte) error
}

// SMTPConfig says how to reach the relay.
type SMTPConfig struct {
	Addr     string // host:port
	TLS      string // none, starttls or tls
	Username string // AUTH when set
	Password string
	// Mechanism is the SASL mechanism of AUTH: mailauth.Plain (also when
	// ""), Login, XOAuth2 or OAuthBearer.
	Mechanism string
	// Tokens hands out the access tokens of XOAUTH2 and OAUTHBEARER.
	Tokens   *mailauth.Tokens
	HeloName string // EHLO name; the mail domain is a good one
	Timeout  time.Duration
	// NoPipelining sends each command and waits for its reply even when
	// the server offers PIPELINING (RFC 2920), as go-smtp's client does.
	NoPipelining bool
	// NoChunking sends each message by DATA even when the server offers
	// CHUNKING (RFC 3030), which pipelining otherwise uses (BDAT).
	NoChunking bool
	// TLSConfig holds the trust settings (extra roots, verification off);
	// nil verifies against the system roots. ServerName is set from Addr.
	TLSConfig *tls.Config
}

// SMTPSender is one persistent SMTP connection. It dials on first use,
// keeps the connection between messages (the next MAIL FROM follows a
// completed DATA directly, no RSET), and drops it after a network error or
// a 421 so the next Send reconnects.
type SMTPSender struct {
	Config SMTPConfig
	c      *smtp.Client
	// p, when set, sends instead of c: the server offers PIPELINING and
	// this sender holds the connection (pipeline).
	p *pipeline
}

// NewSMTPSender returns a sender for cfg; it connects lazily.
func NewSMTPSender(cfg SMTPConfig) *SMTPSender {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &SMTPSender{Config: cfg}
}

func (s *SMTPSender) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: s.Config.Timeout}
	host, _, _ := net.SplitHostPort(s.Config.Addr)
	tlsConfig := &tls.Config{ServerName: host}
	if s.Config.TLSConfig != nil {
		tlsConfig = s.Config.TLSConfig.Clone()
		tlsConfig.ServerName = host
	}
	var c *smtp.Client
	var own net.Conn // the connection c talks on, when it is the one dialled here
	switch s.Config.TLS {
	case "tls":
		conn, err := (&tls.Dialer{NetDialer: &d, Config: tlsConfig}).DialContext(ctx, "tcp", s.Config.Addr)
		if err != nil {
			return fmt.Errorf("smtp dial %s: %w", s.Config.Addr, err)
		}
		c, own = smtp.NewClient(conn), conn
	case "starttls":
		conn, err := d.DialContext(ctx, "tcp", s.Config.Addr)
		if err != nil {
			return fmt.Errorf("smtp dial %s: %w", s.Config.Addr, err)
		}
		if c, err = smtp.NewClientStartTLS(conn, tlsConfig); err != nil {
			conn.Close()
			return fmt.Errorf("smtp starttls %s: %w", s.Config.Addr, err)
		}
	default:
		conn, err := d.DialContext(ctx, "tcp", s.Config.Addr)
		if err != nil {
			return fmt.Errorf("smtp dial %s: %w", s.Config.Addr, err)
		}
		c, own = smtp.NewClient(conn), conn
	}
	c.CommandTimeout = s.Config.Timeout
	c.SubmissionTimeout = 2 * s.Config.Timeout
	if s.Config.HeloName != "" {
		if err := c.Hello(s.Config.HeloName); err != nil {
			c.Close()
			return fmt.Errorf("smtp hello %s: %w", s.Config.Addr, err)
		}
	}
	if cfg := s.Config; cfg.Username != "" {
		a := mailauth.Auth{Mechanism: cfg.Mechanism, Username: cfg.Username, Password: cfg.Password, Tokens: cfg.Tokens}
		if a.Mechanism == "" {
			a.Mechanism = mailauth.Plain
		}
		if err := a.Authenticate(ctx, c.Auth); err != nil {
			c.Close()
			return fmt.Errorf("smtp auth %s %s as %s: %w", a.Mechanism, cfg.Addr, cfg.Username, err)
		}
	}
	s.c = c
	// RFC 2920: with PIPELINING the transactions go out on the connection
	// itself (pipeline); go-smtp's client has read every reply so far and
	// has nothing buffered. Without EHLO (no HeloName) the client has not
	// greeted yet, and keeps sending.
	if own != nil && s.Config.HeloName != "" && !s.Config.NoPipelining {
		if ok, _ := c.Extension("PIPELINING"); ok {
			bitmime, _ := c.Extension("8BITMIME")
			chunking, _ := c.Extension("CHUNKING")
			s.p = newPipeline(own, bitmime, chunking && !s.Config.NoChunking, s.Config.Timeout)
		}
	}
	return nil
}

// CheckSMTP connects as a sender would (TLS, EHLO, AUTH when a user is
// set) and quits without sending; it is the SMTP part of `ballotd check`.
func CheckSMTP(ctx context.Context, cfg SMTPConfig) error {
	s := NewSMTPSender(cfg)
	if err := s.dial(ctx); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("smtp quit %s: %w", cfg.Addr, err)
	}
	return nil
}

// Close ends the connection politely.
func (s *SMTPSender) Close() error {
	if s.c == nil {
		return nil
	}
	var err error
	if s.p != nil {
		err = s.p.quit()
	} else {
		err = s.c.Quit()
	}
	s.c, s.p = nil, nil
	return err
}

func (s *SMTPSender) drop() {
	if s.c != nil {
		s.c.Close()
		s.c, s.p = nil, nil
	}
}

// Send delivers data from the envelope sender from to to. A rejection
// comes back as *smtp.SMTPError; anything else is a connection problem.
func (s *SMTPSender) Send(ctx context.Context, from, to string, data []byte) error {
	fresh := s.c == nil
	if fresh {
		if err := s.dial(ctx); err != nil {
			// Connecting, TLS, the greeting, AUTH: the relay's trouble.
			return asRelayError(err)
		}
	}
	err := s.transaction(from, to, data)
	var se *smtp.SMTPError
	if !fresh && isRelayError(err) && !errors.As(err, &se) {
		// A kept connection found closed at MAIL FROM (the relay ended
		// an idle session): nothing was sent; once more on a new one.
		s.drop()
		return s.Send(ctx, from, to, data)
	}
	if err == nil {
		return nil
	}
	if errors.As(err, &se) && se.Code != 421 {
		// The connection is fine but the transaction is half done: reset it.
		if rerr := s.reset(); rerr != nil {
			s.drop()
		}
		return err
	}
	s.drop()
	return err
}

// reset sends RSET.
func (s *SMTPSender) reset() error {
	if s.p != nil {
		return s.p.simple("RSET", 250)
	}
	return s.c.Reset()
}

func (s *SMTPSender) transaction(from, to string, data []byte) error {
	if s.p != nil {
		return s.p.send(from, to, data)
	}
	if err := s.c.Mail(from, nil); err != nil {
		// The envelope sender is every message's: refused, it is the
		// relay refusing the account (or closing), not one recipient.
		return asRelayError(err)
	}
	if err := s.c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := s.c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
