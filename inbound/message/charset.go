package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"
)

// transferDecode undoes the Content-Transfer-Encoding (RFC 2045 §6)
// leniently: damaged base64 or quoted-printable is decoded as far as
// possible and noted in Problems.
func (m *Message) transferDecode(h *textproto.Header, body []byte) []byte {
	enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	switch enc {
	case "", "7bit", "8bit", "binary":
		return body
	case "quoted-printable":
		return decodeQP(body)
	case "base64":
		out, err := decodeBase64(body)
		if err != nil {
			m.problem("base64: %v", err)
		}
		return out
	default:
		m.problem("unknown Content-Transfer-Encoding %q, read as 8bit", truncate(enc, 40))
		return body
	}
}

// decodeQP decodes quoted-printable (RFC 2045 §6.7), keeping malformed
// escapes as they are rather than failing.
func decodeQP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		// Soft line break: "=" followed by optional whitespace and a newline.
		j := i + 1
		for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			j++
		}
		if j < len(b) && (b[j] == '\n' || b[j] == '\r') {
			if b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n' {
				j++
			}
			i = j
			continue
		}
		if j >= len(b) {
			i = j
			continue
		}
		if i+2 < len(b) {
			if hi, ok := unhex(b[i+1]); ok {
				if lo, ok := unhex(b[i+2]); ok {
					out = append(out, hi<<4|lo)
					i += 2
					continue
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeBase64 decodes base64 ignoring whitespace and stray characters and
// tolerating missing padding.
func decodeBase64(b []byte) ([]byte, error) {
	clean := make([]byte, 0, len(b))
	stray := 0
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
			clean = append(clean, c)
		case c == '=':
			// Padding ends a chunk; some senders concatenate encoded chunks.
			clean = append(clean, c)
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			stray++
		}
	}
	var out []byte
	var err error
	for len(clean) > 0 {
		// Split at padding so concatenated chunks decode too.
		chunk := clean
		if i := bytes.IndexByte(clean, '='); i >= 0 {
			j := i
			for j < len(clean) && clean[j] == '=' {
				j++
			}
			chunk, clean = clean[:j], clean[j:]
		} else {
			clean = nil
		}
		chunk = bytes.TrimRight(chunk, "=")
		dec, e := base64.RawStdEncoding.DecodeString(string(chunk))
		if e != nil {
			// Drop a trailing partial quantum and retry.
			n := len(chunk) / 4 * 4
			dec, e = base64.RawStdEncoding.DecodeString(string(chunk[:n]))
			if err == nil {
				err = fmt.Errorf("truncated data")
			}
			if e != nil {
				err = e
			}
		}
		out = append(out, dec...)
	}
	if stray > 0 && err == nil {
		err = fmt.Errorf("%d stray characters ignored", stray)
	}
	return out, err
}

var metaCharset = regexp.MustCompile(`(?i)<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)`)

// htmlMetaCharset returns the charset named by a <meta> tag near the start
// of an HTML document, or "".
func htmlMetaCharset(b []byte) string {
	if len(b) > 4096 {
		b = b[:4096]
	}
	if sm := metaCharset.FindSubmatch(b); sm != nil {
		return string(sm[1])
	}
	return ""
}

// decodeCharset converts text in the labelled charset to valid UTF-8. An
// unknown label, or bytes that are not valid in the labelled charset, fall
// back to UTF-8 when the bytes are valid UTF-8, else to windows-1252.
func (m *Message) decodeCharset(label string, b []byte) string {
	l := strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`))
	l = strings.Trim(strings.TrimPrefix(l, "charset="), `"'`)
	switch l {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "unicode-1-1-utf-8", "x-unknown", "unknown-8bit", "default":
		if utf8.Valid(b) {
			return string(b)
		}
		if l != "" && l != "x-unknown" && l != "unknown-8bit" && l != "default" {
			m.problem("charset %q: invalid bytes", l)
		}
		return repairUTF8(string(b))
	case "utf-7", "unicode-1-1-utf-7", "csunicode11utf7":
		if s, ok := decodeUTF7(b); ok {
			return s
		}
		m.problem("charset %q: invalid data", l)
		return repairUTF8(string(b))
	}
	r, err := charset.Reader(l, bytes.NewReader(b))
	if err != nil {
		m.problem("unknown charset %q", truncate(l, 40))
		return repairUTF8(string(b))
	}
	out, err := io.ReadAll(r)
	if err != nil {
		m.problem("charset %q: %v", l, err)
		return repairUTF8(string(b))
	}
	s := string(out)
	// A mislabelled part (e.g. UTF-8 declared as Big5 or latin1) decodes to
	// replacement characters or mojibake; prefer the bytes as UTF-8 then.
	if strings.Count(s, "\uFFFD") > 0 && hasMultibyte(b) && utf8.Valid(b) && !bytes.Contains(b, []byte("\uFFFD")) {
		m.problem("charset %q: mislabelled UTF-8", l)
		return string(b)
	}
	if isLatinLabel(l) && utf8.Valid(b) && hasMultibyte(b) {
		m.problem("charset %q: mislabelled UTF-8", l)
		return string(b)
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func isLatinLabel(l string) bool {
	return strings.HasPrefix(l, "iso-8859") || strings.HasPrefix(l, "iso8859") || strings.HasPrefix(l, "windows-125") ||
		strings.HasPrefix(l, "cp125") || l == "latin1" || l == "latin-1"
}

func hasMultibyte(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// repairUTF8 returns s as valid UTF-8: text that holds no valid multi-byte
// sequence at all is read as windows-1252, otherwise invalid bytes are
// replaced with U+FFFD.
func repairUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	valid, invalid := 0, 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			invalid++
		} else if n > 1 {
			valid++
		}
		i += n
	}
	if valid == 0 || invalid > 2*valid {
		if out, err := charmap.Windows1252.NewDecoder().String(s); err == nil && utf8.ValidString(out) {
			return out
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// wordCharsetReader is the CharsetReader for RFC 2047 encoded words: known
// charsets are converted, unknown ones pass through to be repaired later.
func wordCharsetReader(label string, input io.Reader) (io.Reader, error) {
	l := strings.ToLower(label)
	switch l {
	case "utf-8", "us-ascii":
		return input, nil
	case "utf-7":
		b, err := io.ReadAll(input)
		if err != nil {
			return nil, err
		}
		if s, ok := decodeUTF7(b); ok {
			return strings.NewReader(s), nil
		}
		return bytes.NewReader(b), nil
	}
	r, err := charset.Reader(l, input)
	if err != nil {
		return input, nil
	}
	return r, nil
}

// decodeUTF7 decodes UTF-7 (RFC 2152).
func decodeUTF7(b []byte) (string, bool) {
	var sb strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 0x80 {
			return "", false
		}
		if c != '+' {
			sb.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(b) && isB64(b[j]) {
			j++
		}
		if j == i+1 {
			// "+-" is a literal plus.
			sb.WriteByte('+')
			if j < len(b) && b[j] == '-' {
				i = j
			}
			continue
		}
		dec, err := base64.RawStdEncoding.DecodeString(string(b[i+1 : j]))
		if err != nil {
			n := (j - i - 1) / 4 * 4
			dec, _ = base64.RawStdEncoding.DecodeString(string(b[i+1 : i+1+n]))
		}
		units := make([]uint16, 0, len(dec)/2)
		for k := 0; k+1 < len(dec); k += 2 {
			units = append(units, uint16(dec[k])<<8|uint16(dec[k+1]))
		}
		for k := 0; k < len(units); k++ {
			u := rune(units[k])
			if u >= 0xD800 && u < 0xDC00 && k+1 < len(units) {
				lo := rune(units[k+1])
				if lo >= 0xDC00 && lo < 0xE000 {
					sb.WriteRune((u-0xD800)<<10 + (lo - 0xDC00) + 0x10000)
					k++
					continue
				}
			}
			sb.WriteRune(u)
		}
		if j < len(b) && b[j] == '-' {
			i = j
		} else {
			i = j - 1
		}
	}
	return strings.ToValidUTF8(sb.String(), "\uFFFD"), true
}

func isB64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}
