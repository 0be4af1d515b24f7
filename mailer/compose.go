// Package mailer owns everything that leaves: it claims rows from the
// transactional outbox, renders each one from its templates, composes the
// MIME message, sends it over persistent SMTP connections and records every
// recipient's outcome. Nothing else in ballotd sends mail.
package mailer

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
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

// maxDisplayName is the most runes of a display name a header carries: a
// name from data (a CSV, a sign-up) could otherwise make a header line too
// long for RFC 5322 §2.1.1 (998 characters).
const maxDisplayName = 78

// displayName makes a name from data fit for a header's display name: line
// breaks and tabs become spaces, other control characters go, runs of
// spaces become one, and it is cut to maxDisplayName runes.
func displayName(s string) string {
	s = strings.Join(strings.Fields(cleanHeader(s)), " ")
	if utf8.RuneCountInString(s) > maxDisplayName {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:maxDisplayName-1])) + "…"
	}
	return s
}

// plainText reports whether s can go into a header as it is: printable
// ASCII only, and nothing a decoder would take for an encoded-word
// (RFC 2047 §2: "=?" starts one).
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return !strings.Contains(s, "=?")
}

// encodeText writes user text for an unstructured header such as Subject:
// as it is when plainText, else as RFC 2047 encoded-words. Raw
// encoded-words in the text (a form's "=?utf-8?q?…?=") are encoded too, so
// a mail client shows them as the characters they are, never decodes them.
func encodeText(s string) string {
	s = cleanHeader(s)
	if plainText(s) {
		return s
	}
	return strings.Join(encodedWords(s), "\r\n ")
}

// encodedWords encodes s as RFC 2047 "Q" encoded-words in UTF-8, each at
// most 75 characters and holding whole characters (§2, §5), using only the
// characters §5(3) allows in an encoded-word that stands in a phrase:
// letters, digits and ! * + - /; everything else is =XX and a space is _.
// Such words are safe in a display name (no <, >, comma, @, quote or colon
// survives to be read as address syntax) and in unstructured text.
func encodedWords(s string) []string {
	const prefix, suffix = "=?utf-8?q?", "?="
	const room = 75 - len(prefix) - len(suffix)
	var words []string
	var w strings.Builder
	for _, r := range s {
		var enc strings.Builder
		var b [utf8.UTFMax]byte
		for _, c := range b[:utf8.EncodeRune(b[:], r)] {
			switch {
			case c == ' ':
				enc.WriteByte('_')
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("!*+-/", c) >= 0:
				enc.WriteByte(c)
			default:
				enc.WriteByte('=')
				enc.WriteByte(hexUpper[c>>4])
				enc.WriteByte(hexUpper[c&0x0f])
			}
		}
		if w.Len()+enc.Len() > room {
			words = append(words, prefix+w.String()+suffix)
			w.Reset()
		}
		w.WriteString(enc.String())
	}
	if w.Len() > 0 || len(words) == 0 {
		words = append(words, prefix+w.String()+suffix)
	}
	return words
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// formatPhrase writes a display name from data as the phrase of a mailbox
// (RFC 5322 §3.4), followed by a space, or "" for no name: a quoted-string
// when it is plain ASCII, else encoded-words (RFC 2047 §5(3)). Either way
// the name stays one phrase: "Bób <spy@evil.example>, Bob" cannot end it
// and start a second address.
func formatPhrase(name string) string {
	name = displayName(name)
	switch {
	case name == "":
		return ""
	case plainText(name):
		return `"` + quoteEscaper.Replace(name) + `" `
	}
	return strings.Join(encodedWords(name), " ") + " "
}

// formatAddrSpec writes addr as an angle-addr (RFC 5322 §3.4), its local
// part quoted when it needs to be (net/mail's rules).
func formatAddrSpec(addr string) string {
	addr = cleanHeader(strings.TrimSpace(addr))
	if !strings.Contains(addr, "@") {
		return "<" + addr + ">"
	}
	return (&mail.Address{Address: addr}).String()
}

// FormatAddress writes the mailbox name <addr> for a header that names a
// recipient or a sender (To, Cc, From, Reply-To). Addresses are built here,
// never concatenated: whatever name holds (a member's name from a CSV or a
// sign-up, BALLOTD_FROM), a strict parser (net/mail.ParseAddressList) reads
// exactly one address, addr.
func FormatAddress(name, addr string) string {
	return formatPhrase(name) + formatAddrSpec(addr)
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
	buf.WriteString(encodeText(subject))
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

// qpSafe reports whether c stands for itself in quoted-printable: a
// printable ASCII character but "=", or a tab. A table, as every byte of
// every message's parts is asked.
func qpSafe(c byte) bool { return qpSafeBytes[c] }

var qpSafeBytes = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= ' ' && c <= '~' && c != '=' || c == '\t'
	}
	return t
}()

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
