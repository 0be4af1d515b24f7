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

// TestPipelinedAsClient: a pipelined sender gives the same reply, code,
// enhanced code and text, as go-smtp's client for every rejection at
// MAIL, RCPT and after DATA, delivers the same bytes, and goes on sending
// on its connection after a rejection (after a 421, on a new one).
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
	piped := NewSMTPSender(SMTPConfig{Addr: ln.Addr().String(), HeloName: "example.org"})
	plain := NewSMTPSender(SMTPConfig{Addr: ln.Addr().String(), HeloName: "example.org", NoPipelining: true})
	defer piped.Close()
	defer plain.Close()
	msg := []byte("Subject: hi\r\n\r\n.a dot line\r\nbody\r\n")
	cases := []struct{ from, to string }{
		{"b@example.org", "ok1@example.net"},
		{"mailrej@example.org", "ok2@example.net"},
		{"b@example.org", "rcpt550@example.net"},
		{"b@example.org", "rcpt452@example.net"},
		{"b@example.org", "data554@example.net"},
		{"b@example.org", "rcpt421@example.net"},
		{"b@example.org", "ok3@example.net"},
	}
	for _, c := range cases {
		errP := piped.Send(ctx, c.from, c.to, msg)
		if piped.p == nil && !strings.HasPrefix(c.to, "rcpt421") {
			t.Fatalf("%s: the sender is not pipelining", c.to)
		}
		errC := plain.Send(ctx, c.from, c.to, msg)
		var sp, sc *smtp.SMTPError
		if (errP == nil) != (errC == nil) || errors.As(errP, &sp) != errors.As(errC, &sc) {
			t.Fatalf("%s %s: pipelined %v, client %v", c.from, c.to, errP, errC)
		}
		if sp != nil && (sp.Code != sc.Code || sp.EnhancedCode != sc.EnhancedCode || sp.Message != sc.Message) {
			t.Errorf("%s %s: pipelined %#v, client %#v", c.from, c.to, sp, sc)
		}
		// The connection goes on: a good message goes through next.
		if err := piped.Send(ctx, "b@example.org", "after@example.net", msg); err != nil {
			t.Fatalf("after %s %s: %v", c.from, c.to, err)
		}
		if err := plain.Send(ctx, "b@example.org", "after@example.net", msg); err != nil {
			t.Fatalf("after %s %s (client): %v", c.from, c.to, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Each accepted message twice, once from each sender, the same bytes.
	if len(s.got) != 2*(2+len(cases)) {
		t.Fatalf("server accepted %d messages, want %d: %q", len(s.got), 2*(2+len(cases)), s.got)
	}
	for i := 0; i < len(s.got); i += 2 {
		if s.got[i] != s.got[i+1] {
			t.Errorf("message %d: pipelined %q, client %q", i/2, s.got[i], s.got[i+1])
		}
	}
}
