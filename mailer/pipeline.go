package mailer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// pipeline is an SMTP connection, past its greeting, EHLO and AUTH, on
// which a message's MAIL, RCPT and DATA go out in one write and their
// replies are read together (RFC 2920, PIPELINING), and the message is
// dot-stuffed in runs rather than byte by byte: two round trips a message
// instead of four, and half the system calls on both ends. When the
// server offers CHUNKING too (RFC 3030), the message goes out as one BDAT
// chunk in the same write as MAIL and RCPT: one round trip and one write
// a message, and neither end stuffs or unstuffs dots. It is used only
// when the server offers PIPELINING and the sender holds the connection
// itself (no STARTTLS, which go-smtp upgrades inside its client);
// otherwise the go-smtp client sends.
type pipeline struct {
	conn     net.Conn
	r        *textproto.Reader
	br       *bufio.Reader
	w        *bufio.Writer
	bitmime  bool // the server offers 8BITMIME: MAIL says BODY=8BITMIME, as go-smtp's client does
	chunking bool // the server offers CHUNKING: messages go as BDAT
	timeout  time.Duration
	cmd      []byte
}

func newPipeline(conn net.Conn, bitmime, chunking bool, timeout time.Duration) *pipeline {
	br := bufio.NewReaderSize(conn, 4096)
	return &pipeline{conn: conn, br: br, r: textproto.NewReader(br), w: bufio.NewWriterSize(conn, 32<<10),
		bitmime: bitmime, chunking: chunking, timeout: timeout}
}

// send is one mail transaction. A rejection comes back as *smtp.SMTPError
// (MAIL's, else RCPT's, else DATA's or BDAT's); anything else is a
// connection problem.
func (p *pipeline) send(from, to string, data []byte) error {
	if strings.ContainsAny(from, "\r\n") || strings.ContainsAny(to, "\r\n") {
		return errors.New("smtp: a line must not contain CR or LF")
	}
	p.conn.SetDeadline(time.Now().Add(p.timeout))
	defer p.conn.SetDeadline(time.Time{})
	c := append(p.cmd[:0], "MAIL FROM:<"...)
	c = append(c, from...)
	c = append(c, '>')
	if p.bitmime {
		c = append(c, " BODY=8BITMIME"...)
	}
	c = append(c, "\r\nRCPT TO:<"...)
	c = append(c, to...)
	c = append(c, ">\r\n"...)
	if p.chunking && canonical(data) {
		return p.sendChunk(c, data)
	}
	c = append(c, "DATA\r\n"...)
	p.cmd = c
	p.w.Write(c)
	if err := p.w.Flush(); err != nil {
		// Nothing reached the relay: its session's trouble, as a refused
		// MAIL FROM is (SMTPSender.transaction).
		return asRelayError(err)
	}
	// Every reply is read, whatever came before, so the connection is
	// left at a reply boundary; a read that fails leaves it broken.
	var errs [3]error
	for i, expect := range [3]int{250, 25, 354} {
		errs[i] = p.reply(expect)
		if i == 0 && errs[0] != nil {
			errs[0] = asRelayError(errs[0]) // the envelope sender is every message's
		}
		if errs[i] != nil && !isSMTPError(errs[i]) {
			return firstError(errs[:i+1]...)
		}
	}
	if errs[2] != nil {
		return firstError(errs[:]...)
	}
	// DATA was taken: the message, or, when MAIL or RCPT failed, an empty
	// one (RFC 2920 §3.1: the server has no recipient to deliver it to).
	p.conn.SetDeadline(time.Now().Add(2 * p.timeout))
	if errs[0] == nil && errs[1] == nil {
		writeDotStuffed(p.w, data)
	} else {
		p.w.WriteString(".\r\n")
	}
	if err := p.w.Flush(); err != nil {
		return err
	}
	final := p.reply(250)
	if err := firstError(errs[0], errs[1]); err != nil {
		return err
	}
	return final
}

// sendChunk ends the transaction whose MAIL and RCPT are in c with the
// message as one BDAT chunk (RFC 3030 §2: BDAT n LAST, then exactly n
// bytes, pipelined with the commands before it, §4.2), all in one write,
// and reads the three replies. A server refuses the chunk of a
// transaction whose MAIL or RCPT it refused, so the first refusal is the
// answer, as with DATA.
func (p *pipeline) sendChunk(c, data []byte) error {
	c = append(c, "BDAT "...)
	c = strconv.AppendInt(c, int64(len(data)), 10)
	c = append(c, " LAST\r\n"...)
	p.cmd = c
	p.conn.SetDeadline(time.Now().Add(2 * p.timeout))
	p.w.Write(c)
	p.w.Write(data)
	if err := p.w.Flush(); err != nil {
		return asRelayError(err)
	}
	var errs [3]error
	for i, expect := range [3]int{250, 25, 250} {
		errs[i] = p.reply(expect)
		if i == 0 && errs[0] != nil {
			errs[0] = asRelayError(errs[0])
		}
		if errs[i] != nil && !isSMTPError(errs[i]) {
			return firstError(errs[:i+1]...)
		}
	}
	return firstError(errs[:]...)
}

// canonical reports whether data can go as a BDAT chunk as it is: every
// line ends in CRLF, the last one too, with no CR or LF elsewhere (RFC
// 3030 §3: without BINARYMIME a chunk holds the message in its canonical
// form, which DATA's dot-stuffing would otherwise make of it). Composed
// messages always are; anything else goes by DATA.
func canonical(data []byte) bool {
	if len(data) < 2 || data[len(data)-2] != '\r' || data[len(data)-1] != '\n' {
		return false
	}
	lf, cr := bytes.Count(data, []byte("\n")), bytes.Count(data, []byte("\r"))
	return lf == cr && lf == bytes.Count(data, []byte("\r\n"))
}

// firstError is the first error that is not nil, or nil.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func isSMTPError(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// reply reads one reply and returns it as an *smtp.SMTPError unless its
// code is expect (a first digit or two, or all three).
func (p *pipeline) reply(expect int) error {
	if p.accepted(expect) {
		return nil
	}
	_, _, err := p.r.ReadResponse(expect)
	var pe *textproto.Error
	if errors.As(err, &pe) {
		return smtpError(pe)
	}
	return err
}

// accepted reads the next reply when it is, whole in the buffer, one line
// with the code expected (as textproto's expectCode: one, two or three
// digits), and reports whether it did; anything else is left to
// textproto.Reader, which reads it as before. The replies of an accepted
// message are read without allocating.
func (p *pipeline) accepted(expect int) bool {
	if _, err := p.br.Peek(1); err != nil {
		return false
	}
	b, _ := p.br.Peek(p.br.Buffered())
	i := bytes.IndexByte(b, '\n')
	if i < 4 || b[3] != ' ' {
		return false
	}
	code := 0
	for _, c := range b[:3] {
		if c < '0' || c > '9' {
			return false
		}
		code = code*10 + int(c-'0')
	}
	switch {
	case code < 100:
		return false
	case expect < 10 && code/100 != expect, expect >= 10 && expect < 100 && code/10 != expect, expect >= 100 && code != expect:
		return false
	}
	p.br.Discard(i + 1)
	return true
}

// simple sends one command and reads its reply.
func (p *pipeline) simple(cmd string, expect int) error {
	p.conn.SetDeadline(time.Now().Add(p.timeout))
	defer p.conn.SetDeadline(time.Time{})
	p.w.WriteString(cmd + "\r\n")
	if err := p.w.Flush(); err != nil {
		return err
	}
	return p.reply(expect)
}

// smtpError is go-smtp's reading of a reply: the RFC 3463 enhanced code,
// when the text starts with one, taken off the text of each line.
func smtpError(e *textproto.Error) *smtp.SMTPError {
	se := &smtp.SMTPError{Code: e.Code, Message: e.Msg}
	first, msg, ok := strings.Cut(e.Msg, " ")
	if !ok {
		return se
	}
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return se
	}
	var code smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return se
		}
		code[i] = n
	}
	se.EnhancedCode = code
	se.Message = strings.ReplaceAll(msg, "\n"+first+" ", "\n")
	return se
}

// writeDotStuffed writes data as the DATA of a message and its ending dot,
// byte for byte as net/textproto's DotWriter would (a bare LF becomes CRLF,
// a dot that starts a line is doubled, a CR not followed by LF is kept,
// the message ends with a line break), but a run of bytes at a time.
func writeDotStuffed(w *bufio.Writer, b []byte) {
	state := dotBegin
	for len(b) > 0 {
		switch state {
		case dotBegin, dotBeginLine:
			if b[0] == '.' {
				w.WriteByte('.')
			}
			state = dotData
		case dotCR:
			// After a CR, an LF ends the line; any other byte (even a CR)
			// is data, as DotWriter has it.
			w.WriteByte(b[0])
			if b[0] == '\n' {
				state = dotBeginLine
			} else {
				state = dotData
			}
			b = b[1:]
		case dotData:
			line := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line = b[:i]
			}
			if i := bytes.IndexByte(line, '\r'); i >= 0 {
				w.Write(b[:i+1])
				b, state = b[i+1:], dotCR
				continue
			}
			w.Write(line)
			if len(line) == len(b) {
				closeDot(w, dotData)
				return
			}
			w.WriteString("\r\n")
			b, state = b[len(line)+1:], dotBeginLine
		}
	}
	closeDot(w, state)
}

// The states of writeDotStuffed, DotWriter's.
const (
	dotBegin = iota
	dotBeginLine
	dotCR
	dotData
)

// closeDot ends the DATA from state as DotWriter's Close does.
func closeDot(w *bufio.Writer, state int) {
	switch state {
	case dotBeginLine:
		w.WriteString(".\r\n")
	case dotCR:
		w.WriteString("\n.\r\n")
	default:
		w.WriteString("\r\n.\r\n")
	}
}

// quit ends the session politely and closes the connection.
func (p *pipeline) quit() error {
	err := p.simple("QUIT", 221)
	if cerr := p.conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("smtp quit: %w", err)
	}
	return nil
}
