// Package mailer owns everything that leaves: it claims rows from the
// transactional outbox, renders each one from its templates, composes the
// MIME message, sends it over persistent SMTP connections and records every
// recipient's outcome. Nothing else in ballotd sends mail.
package mailer

import (
	"bytes"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
)

// Header is one header field of an outgoing message.
type Header struct{ Name, Value string }

// cleanHeader removes what must never reach a header from user text:
// CR and LF (header injection) and other control characters.
func cleanHeader(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// encodeWord encodes user text for a header (RFC 2047) when it is not
// plain ASCII.
func encodeWord(s string) string {
	return mime.QEncoding.Encode("utf-8", cleanHeader(s))
}

// FormatAddress writes name <addr> with the name encoded and quoted as
// needed.
func FormatAddress(name, addr string) string {
	addr = cleanHeader(addr)
	name = strings.TrimSpace(cleanHeader(name))
	if name == "" {
		return "<" + addr + ">"
	}
	enc := mime.QEncoding.Encode("utf-8", name)
	if enc == name {
		enc = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	return enc + " <" + addr + ">"
}

// Compose writes a multipart/alternative message with a text and an HTML
// part, both UTF-8 quoted-printable, into buf. Header values must already
// be formatted (addresses) or are encoded here (Subject).
func Compose(buf *bytes.Buffer, headers []Header, subject string, text, html []byte, boundary string) {
	for _, h := range headers {
		buf.WriteString(h.Name)
		buf.WriteString(": ")
		buf.WriteString(cleanHeader(h.Value))
		buf.WriteString("\r\n")
	}
	buf.WriteString("Subject: ")
	buf.WriteString(encodeWord(subject))
	buf.WriteString("\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"")
	buf.WriteString(boundary)
	buf.WriteString("\"\r\n\r\n")
	part := func(ctype string, body []byte) {
		buf.WriteString("--")
		buf.WriteString(boundary)
		buf.WriteString("\r\nContent-Type: ")
		buf.WriteString(ctype)
		buf.WriteString("; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		w := quotedprintable.NewWriter(buf)
		w.Write(crlf(body))
		w.Close()
		buf.WriteString("\r\n")
	}
	part("text/plain", text)
	part("text/html", html)
	buf.WriteString("--")
	buf.WriteString(boundary)
	buf.WriteString("--\r\n")
}

// crlf turns bare LF line ends into CRLF, which quoted-printable keeps as
// hard line breaks.
func crlf(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) || bytes.Contains(b, []byte("\r\n")) {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// dateHeader is an RFC 5322 date.
func dateHeader(t time.Time) string { return t.Format(time.RFC1123Z) }

// boundaryFor makes a MIME boundary from the message's token: unique per
// message and never found in quoted-printable text (it has "=_").
func boundaryFor(token string) string { return fmt.Sprintf("=_ballotd_%s", token) }
