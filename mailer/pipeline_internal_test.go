package mailer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestDotStuffedAsDotWriter: writeDotStuffed writes what net/textproto's
// DotWriter writes, byte for byte, for composed messages and for any mix
// of CR, LF, dots and text.
func TestDotStuffedAsDotWriter(t *testing.T) {
	t.Parallel()
	inputs := []string{"", "\r\n", "\n", "\r", ".", "..\r\n", "a\r\n.b\r\n", "a\n.\nb", "a\r\r\n.x", "\r.\r\n", "x\r", "x\r\r",
		"From: a\r\n\r\nbody\r\n.\r\n..\r\nend", strings.Repeat("line of text\r\n", 100)}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("\r\n.ab")
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		var want, got bytes.Buffer
		tw := textproto.NewWriter(bufio.NewWriter(&want))
		dw := tw.DotWriter()
		dw.Write([]byte(in))
		dw.Close()
		bw := bufio.NewWriter(&got)
		writeDotStuffed(bw, []byte(in))
		bw.Flush()
		if got.String() != want.String() {
			t.Fatalf("input %q: wrote %q, DotWriter %q", in, got.String(), want.String())
		}
	}
}

// scripted is a go-smtp server that rejects by address: a sender with
// "mailrej" at MAIL, a recipient starting "rcpt550", "rcpt452" or
// "rcpt421" at RCPT, one starting "data554" after the message. It keeps
// what it accepted.
type scripted struct {
	mu  sync.Mutex
	got []string // recipient and body of each message accepted
}

type scriptedSession struct {
	s    *scripted
	from string
	to   string
}

func (*scriptedSession) Reset()        {}
func (*scriptedSession) Logout() error { return nil }

func (ss *scriptedSession) Mail(from string, _ *smtp.MailOptions) error {
	if strings.Contains(from, "mailrej") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 8}, Message: "Sender rejected"}
	}
	ss.from = from
	return nil
}

func (ss *scriptedSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch {
	case strings.HasPrefix(to, "rcpt550"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user\nreally none"}
	case strings.HasPrefix(to, "rcpt452"):
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
	case strings.HasPrefix(to, "rcpt421"):
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Try again later"}
	}
	ss.to = to
	return nil
}

func (ss *scriptedSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if strings.HasPrefix(ss.to, "data554") {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Content rejected"}
	}
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, ss.to+"|"+string(b))
	ss.s.mu.Unlock()
	return nil
}

// TestPipelinedAsClient: a pipelined sender, sending by BDAT (the server
// offers CHUNKING) or by DATA, gives the same reply, code, enhanced code
// and text, as go-smtp's client for every rejection at MAIL, RCPT and
// after the message, delivers the same bytes (a message with bare line
// ends too, which goes by DATA), and goes on sending on its connection
// after a rejection (after a 421, on a new one).
func TestPipelinedAsClient(t *testing.T) {
	t.Parallel()
	s := &scripted{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &scriptedSession{s: s}, nil }))
	srv.Domain = "scripted.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ctx := context.Background()
	chunked := NewSMTPSender(SMTPConfig{Addr: ln.Addr().String(), HeloName: "example.org"})
	piped := NewSMTPSender(SMTPConfig{Addr: ln.Addr().String(), HeloName: "example.org", NoChunking: true})
	plain := NewSMTPSender(SMTPConfig{Addr: ln.Addr().String(), HeloName: "example.org", NoPipelining: true})
	senders := []struct {
		name string
		s    *SMTPSender
	}{{"BDAT", chunked}, {"pipelined DATA", piped}, {"client", plain}}
	for _, sd := range senders {
		defer sd.s.Close()
	}
	msg := []byte("Subject: hi\r\n\r\n.a dot line\r\nbody\r\n")
	bare := []byte("Subject: bare\n\n.a dot line\nbody\r\nend\rx")
	cases := []struct {
		from, to string
		msg      []byte
	}{
		{"b@example.org", "ok1@example.net", msg},
		{"mailrej@example.org", "ok2@example.net", msg},
		{"b@example.org", "rcpt550@example.net", msg},
		{"b@example.org", "rcpt452@example.net", msg},
		{"b@example.org", "data554@example.net", msg},
		{"b@example.org", "rcpt421@example.net", msg},
		{"b@example.org", "ok3@example.net", bare},
		{"b@example.org", "ok4@example.net", msg},
	}
	for _, c := range cases {
		errs := make([]error, len(senders))
		for i, sd := range senders {
			errs[i] = sd.s.Send(ctx, c.from, c.to, c.msg)
			if i < 2 && !strings.HasPrefix(c.to, "rcpt421") && (sd.s.p == nil || sd.s.p.chunking != (i == 0)) {
				t.Fatalf("%s: the %s sender is not sending so", c.to, sd.name)
			}
		}
		errC := errs[len(errs)-1]
		for i, errP := range errs[:len(errs)-1] {
			var sp, sc *smtp.SMTPError
			if (errP == nil) != (errC == nil) || errors.As(errP, &sp) != errors.As(errC, &sc) {
				t.Fatalf("%s %s: %s %v, client %v", c.from, c.to, senders[i].name, errP, errC)
			}
			if sp != nil && (sp.Code != sc.Code || sp.EnhancedCode != sc.EnhancedCode || sp.Message != sc.Message) {
				t.Errorf("%s %s: %s %#v, client %#v", c.from, c.to, senders[i].name, sp, sc)
			}
		}
		// The connection goes on: a good message goes through next.
		for _, sd := range senders {
			if err := sd.s.Send(ctx, "b@example.org", "after@example.net", msg); err != nil {
				t.Fatalf("after %s %s (%s): %v", c.from, c.to, sd.name, err)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Each accepted message once from each sender, the same bytes.
	n := len(senders)
	if len(s.got) != n*(3+len(cases)) {
		t.Fatalf("server accepted %d messages, want %d: %q", len(s.got), n*(3+len(cases)), s.got)
	}
	for i := 0; i < len(s.got); i += n {
		for j := 1; j < n; j++ {
			if s.got[i+j-1] != s.got[i+n-1] {
				t.Errorf("message %d: %s %q, client %q", i/n, senders[j-1].name, s.got[i+j-1], s.got[i+n-1])
			}
		}
	}
}
