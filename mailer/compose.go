// Package mailer owns everything that leaves: it claims rows from the
// transactional outbox, renders each one from its templates, composes the
// MIME message, sends it over persistent SMTP connections and records every
// recipient's outcome. Nothing else in ballotd sends mail.
package mailer

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
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

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

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
		enc = `"` + quoteEscaper.Replace(name) + `"`
	}
	return enc + " <" + addr + ">"
}

// Inline is a part the HTML shows by a cid: URL (RFC 2392), such as a
// chart; Compose sends it in a multipart/related (RFC 2387) with the HTML,
// because Gmail and Outlook do not show data: URLs.
type Inline struct {
	ContentID string // without the angle brackets; the HTML has "cid:" + ContentID
	Type      string // "image/png"
	Name      string // file name, "turnout.png"
	Data      []byte
}

// Compose writes a multipart/alternative message with a text and an HTML
// part, both UTF-8 quoted-printable, into buf. With inline parts, the HTML
// part is a multipart/related of the HTML and those, base64. Header values
// must already be formatted (addresses) or are encoded here (Subject).
func Compose(buf *bytes.Buffer, headers []Header, subject string, text, html []byte, boundary string, inline ...Inline) {
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
	textPart(buf, boundary, "text/plain", text)
	if len(inline) == 0 {
		textPart(buf, boundary, "text/html", html)
	} else {
		// RFC 2046 §5.1.1: a boundary must not begin with an enclosing one.
		related := "=_rel" + boundary
		buf.WriteString("--" + boundary + "\r\nContent-Type: multipart/related; type=\"text/html\"; boundary=\"" + related + "\"\r\n\r\n")
		textPart(buf, related, "text/html", html)
		for _, in := range inline {
			name := cleanHeader(strings.ReplaceAll(in.Name, `"`, ""))
			buf.WriteString("--" + related + "\r\nContent-Type: " + cleanHeader(in.Type) + "; name=\"" + name +
				"\"\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <" + cleanHeader(in.ContentID) +
				">\r\nContent-Disposition: inline; filename=\"" + name + "\"\r\n\r\n")
			writeBase64(buf, in.Data)
			buf.WriteString("\r\n")
		}
		buf.WriteString("--" + related + "--\r\n")
	}
	buf.WriteString("--")
	buf.WriteString(boundary)
	buf.WriteString("--\r\n")
}

// textPart writes a UTF-8 quoted-printable part of a multipart.
func textPart(buf *bytes.Buffer, boundary, ctype string, body []byte) {
	buf.WriteString("--")
	buf.WriteString(boundary)
	buf.WriteString("\r\nContent-Type: ")
	buf.WriteString(ctype)
	buf.WriteString("; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	writeQP(buf, body)
	buf.WriteString("\r\n")
}

// writeBase64 writes data base64 in lines of 76 characters (RFC 2045
// §6.8), the last without a line end.
func writeBase64(buf *bytes.Buffer, data []byte) {
	const perLine = 76 / 4 * 3
	for len(data) > 0 {
		n := min(len(data), perLine)
		buf.WriteString(base64.StdEncoding.EncodeToString(data[:n]))
		data = data[n:]
		if len(data) > 0 {
			buf.WriteString("\r\n")
		}
	}
}

const hexUpper = "0123456789ABCDEF"

// writeQP writes body quoted-printable (RFC 2045 §6.7) into buf: line ends
// (LF or CRLF) become CRLF hard breaks, lines longer than 76 characters get
// soft breaks, and "=", control and non-ASCII bytes and whitespace at a line
// end are encoded. A line of plain ASCII is copied as it is; this runs for
// every part of every message, so it avoids the byte-at-a-time encoder of
// mime/quotedprintable.
func writeQP(buf *bytes.Buffer, body []byte) {
	for len(body) > 0 {
		line, rest, nl := bytes.Cut(body, []byte("\n"))
		if nl {
			line = bytes.TrimSuffix(line, []byte("\r"))
		}
		qpLine(buf, line)
		if nl {
			buf.WriteString("\r\n")
		}
		body = rest
	}
}

func qpSafe(c byte) bool { return c >= ' ' && c <= '~' && c != '=' || c == '\t' }

func qpLine(buf *bytes.Buffer, line []byte) {
	plain := len(line) <= 76
	for i := 0; plain && i < len(line); i++ {
		plain = qpSafe(line[i])
	}
	if plain && (len(line) == 0 || (line[len(line)-1] != ' ' && line[len(line)-1] != '\t')) {
		buf.Write(line)
		return
	}
	ws := func(c byte) bool { return c == ' ' || c == '\t' }
	n := 0 // characters on the current output line
	for i := 0; i < len(line); {
		if c := line[i]; qpSafe(c) && !(i == len(line)-1 && ws(c)) {
			// A run of plain characters, copied in pieces that fit the line;
			// whitespace ending the line is left to be encoded.
			j := i + 1
			for j < len(line) && qpSafe(line[j]) {
				j++
			}
			if j == len(line) && ws(line[j-1]) {
				j--
			}
			for i < j {
				room := 75 - n // keep a column for the soft break "="
				if j == len(line) && j-i <= 76-n {
					room = j - i // the line's end needs no soft break
				}
				if room <= 0 {
					buf.WriteString("=\r\n")
					n = 0
					continue
				}
				k := min(j-i, room)
				buf.Write(line[i : i+k])
				n += k
				i += k
			}
			continue
		}
		c := line[i]
		if n+3 > 75 && !(i == len(line)-1 && n+3 <= 76) {
			buf.WriteString("=\r\n")
			n = 0
		}
		buf.WriteByte('=')
		buf.WriteByte(hexUpper[c>>4])
		buf.WriteByte(hexUpper[c&0x0f])
		n += 3
		i++
	}
}

// dateHeader is an RFC 5322 date.
func dateHeader(t time.Time) string { return t.Format(time.RFC1123Z) }

// boundaryFor makes a MIME boundary from the message's token: unique per
// message and never found in quoted-printable text (it has "=_").
func boundaryFor(token string) string { return fmt.Sprintf("=_ballotd_%s", token) }
