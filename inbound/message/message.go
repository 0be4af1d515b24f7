// Package message reads an inbound message and nothing else: it parses the
// raw bytes once into a Message (headers, text, HTML, attachments, charset
// repaired) and holds the pure functions of it: Classify and FindTag route
// it, ReplyText finds what the member wrote, ReadAnswer reads a vote,
// ReadForm a nomination form and ReadBounce a delivery report. It imports
// no database: package inbound applies what it reads in a transaction.
package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// Limits applied by Parse.
const (
	// MaxMessageSize is the largest raw message Parse accepts.
	MaxMessageSize = 25 << 20
	// MaxDepth is the deepest MIME nesting Parse accepts.
	MaxDepth = 20
	// MaxParts is the largest number of MIME parts Parse walks.
	MaxParts = 500
)

// Errors returned (wrapped) by Parse when a message is unusable.
var (
	// ErrMalformed means the message has no readable header.
	ErrMalformed = errors.New("inbound: malformed message")
	// ErrTooLarge means the message exceeds MaxMessageSize or MaxParts.
	ErrTooLarge = errors.New("inbound: message too large")
	// ErrTooDeep means the MIME structure nests deeper than MaxDepth.
	ErrTooDeep = errors.New("inbound: MIME structure too deep")
)

// Message is one inbound email, parsed once.
type Message struct {
	Raw        []byte
	Header     textproto.Header // the top-level header
	MessageID  string           // without <>, "" if none
	InReplyTo  []string         // msg-ids without <>
	References []string         // msg-ids without <>
	From       string           // bare address, lowercased ("" if none/unparseable)
	FromName   string
	ReplyTo    string   // bare address lowercased or ""
	Recipients []string // bare addresses lowercased, from To, Cc, Delivered-To, X-Original-To, Envelope-To (dedup, in that order)
	Subject    string   // decoded (RFC 2047), UTF-8
	Date       time.Time
	Text       string   // first non-attachment text/plain part decoded to valid UTF-8 ("" if none)
	HTML       string   // first non-attachment text/html part decoded to UTF-8
	Parts      int      // MIME parts walked
	Problems   []string // non-fatal damage found (bad charset, bad encoding...), human-readable
	// Returned is the first returned message or headers a delivery report
	// quotes, decoded; nil when there is none. The processor looks in it
	// for the tokens of the mail that bounced.
	Returned []byte

	// Facts gathered during the walk, used by Classify.
	mediaType      string // top-level media type, lowercased
	reportType     string // report-type parameter of a multipart/report, lowercased
	deliveryStatus bool   // a message/delivery-status (RFC 3464) part was seen
	feedbackReport bool   // a message/feedback-report (RFC 5965) part was seen
	disposition    bool   // a message/disposition-notification (RFC 8098) part was seen
	embedded       bool   // a message/rfc822 or text/rfc822-headers part was seen
	dsnFields      []byte // the first message/delivery-status part, decoded (ReadBounce)
}

// maxKept bounds the report parts kept for ReadBounce.
const maxKept = 64 << 10

func keep(b []byte) []byte {
	if len(b) > maxKept {
		b = b[:maxKept]
	}
	return append([]byte(nil), b...)
}

// Parse reads one raw email. It never panics. It returns an error wrapping
// ErrMalformed, ErrTooLarge or ErrTooDeep only when the message is unusable;
// otherwise it returns a Message, with any damage it worked around listed in
// Problems.
func Parse(raw []byte) (m *Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: %v", ErrMalformed, r)
		}
	}()
	if len(raw) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), MaxMessageSize)
	}
	m = &Message{Raw: raw}
	h, body, err := readHeader(raw, m)
	if err != nil {
		return nil, err
	}
	m.Header = h
	m.parseHeader()
	m.mediaType, _ = m.contentType(&h)
	if err := m.walk(h, body, 0, false); err != nil {
		return nil, err
	}
	return m, nil
}

// problem records a non-fatal defect.
func (m *Message) problem(format string, args ...any) {
	if len(m.Problems) >= 50 {
		return
	}
	m.Problems = append(m.Problems, fmt.Sprintf(format, args...))
}

// readHeader reads the header at the start of raw and returns it with the
// body that follows. A header that textproto rejects is re-read leniently,
// dropping the lines that are not fields.
func readHeader(raw []byte, m *Message) (textproto.Header, []byte, error) {
	// Tolerate an mbox "From " line before the header.
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	// Tolerate blank lines before the header (seen in re-typed corpora).
	start := 0
	for start < len(raw) && (raw[start] == '\n' || raw[start] == '\r') {
		start++
	}
	raw = raw[start:]
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err == nil {
		if h.Len() == 0 {
			return h, nil, fmt.Errorf("%w: no header fields", ErrMalformed)
		}
		rest, _ := io.ReadAll(br)
		return h, rest, nil
	}
	m.problem("header: %v", err)
	end, bodyStart := headerEnd(raw)
	var clean bytes.Buffer
	lines := bytes.SplitAfter(raw[:end], []byte("\n"))
	fields := 0
	for _, line := range lines {
		t := bytes.TrimRight(line, "\r\n")
		if len(t) == 0 {
			continue
		}
		if t[0] == ' ' || t[0] == '\t' {
			if fields > 0 {
				clean.Write(t)
				clean.WriteString("\r\n")
			}
			continue
		}
		i := bytes.IndexByte(t, ':')
		if i <= 0 || !validFieldName(t[:i]) {
			// An unindented continuation, e.g. "boundary=..." after "multipart/mixed;".
			if fields > 0 && bytes.HasSuffix(bytes.TrimRight(clean.Bytes(), "\r\n"), []byte(";")) {
				clean.Truncate(len(bytes.TrimRight(clean.Bytes(), "\r\n")))
				clean.WriteString("\r\n ")
				clean.Write(t)
				clean.WriteString("\r\n")
			}
			continue
		}
		clean.Write(t)
		clean.WriteString("\r\n")
		fields++
	}
	if fields == 0 {
		return textproto.Header{}, nil, fmt.Errorf("%w: no header fields", ErrMalformed)
	}
	clean.WriteString("\r\n")
	h, err = textproto.ReadHeader(bufio.NewReader(&clean))
	if err != nil {
		return textproto.Header{}, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return h, raw[bodyStart:], nil
}

// readPartHeader reads the header of a body part or embedded message; an
// empty header is allowed (RFC 2046 §5.1.1: the part is then text/plain).
func (m *Message) readPartHeader(b []byte) (textproto.Header, []byte, error) {
	if len(b) > 0 && (b[0] == '\n' || bytes.HasPrefix(b, []byte("\r\n"))) {
		_, body := headerEnd(append([]byte("X: y\n"), b...))
		return textproto.Header{}, b[max(0, body-5):], nil
	}
	br := bufio.NewReader(bytes.NewReader(b))
	h, err := textproto.ReadHeader(br)
	if err == nil {
		rest, _ := io.ReadAll(br)
		return h, rest, nil
	}
	sub := &Message{}
	h, rest, err := readHeader(b, sub)
	if err != nil {
		return h, nil, err
	}
	m.problem("part %v", sub.Problems)
	return h, rest, nil
}

// splitMultipart splits a multipart body (RFC 2046 §5.1.1) at its boundary
// lines. It tolerates a missing closing delimiter, whitespace after a
// delimiter and LF or CRLF line ends. closed reports whether the closing
// delimiter was found.
func splitMultipart(body []byte, boundary string) (parts [][]byte, closed bool) {
	delim := []byte("--" + boundary)
	start := -1 // start of the current part's content
	pos := 0
	for pos <= len(body) {
		lineEnd := bytes.IndexByte(body[pos:], '\n')
		next := len(body) + 1
		line := body[pos:]
		if lineEnd >= 0 {
			line = body[pos : pos+lineEnd]
			next = pos + lineEnd + 1
		}
		if bytes.HasPrefix(line, delim) {
			rest := bytes.TrimRight(line[len(delim):], " \t\r")
			isClose := bytes.Equal(rest, []byte("--"))
			if len(rest) == 0 || isClose {
				if start >= 0 {
					end := pos
					// The line break before a delimiter belongs to it.
					if end > start && body[end-1] == '\n' {
						end--
					}
					if end > start && body[end-1] == '\r' {
						end--
					}
					parts = append(parts, body[start:max(start, end)])
				}
				if isClose {
					return parts, true
				}
				start = min(next, len(body))
			}
		}
		pos = next
	}
	if start >= 0 {
		parts = append(parts, body[start:])
	}
	return parts, false
}

// headerEnd returns the end of the header block and the start of the body.
func headerEnd(raw []byte) (end, body int) {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\n' {
			continue
		}
		j := i + 1
		if j < len(raw) && raw[j] == '\r' {
			j++
		}
		if j < len(raw) && raw[j] == '\n' {
			return i + 1, j + 1
		}
		if j >= len(raw) {
			return len(raw), len(raw)
		}
	}
	return len(raw), len(raw)
}

func validFieldName(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 127 || c == ':' {
			return false
		}
	}
	return true
}

var msgIDPattern = regexp.MustCompile(`<([^<>\s]+)>`)

// msgIDs returns the message identifiers in a header value, without angle
// brackets. A single bare identifier (no brackets) is accepted too.
func msgIDs(v string) []string {
	var ids []string
	for _, sm := range msgIDPattern.FindAllStringSubmatch(v, -1) {
		ids = append(ids, sm[1])
	}
	if len(ids) == 0 {
		for _, f := range strings.Fields(v) {
			if strings.Contains(f, "@") {
				ids = append(ids, strings.Trim(f, "<>,;"))
			}
		}
	}
	return ids
}

// maxAddress is the longest address there can be (RFC 5321 §4.5.3.1.3).
const maxAddress = 254

func (m *Message) parseHeader() {
	h := &m.Header
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		m.MessageID = noNUL(ids[0])
	}
	for _, v := range h.Values("In-Reply-To") {
		m.InReplyTo = append(m.InReplyTo, msgIDs(v)...)
	}
	for _, v := range h.Values("References") {
		m.References = append(m.References, msgIDs(v)...)
	}
	if from := m.addresses("From", h.Get("From")); len(from) > 0 {
		// RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so an
		// address at most 254. A longer From is nobody's; kept, it would
		// overflow the indexes keyed by address (members, answer limits)
		// and the message could never be recorded.
		if a := noNUL(from[0].Address); len(a) <= maxAddress {
			m.From = a
		} else {
			m.problem("From: address of %d octets, longer than %d", len(a), maxAddress)
		}
		m.FromName = noNUL(from[0].Name)
	}
	if rt := m.addresses("Reply-To", h.Get("Reply-To")); len(rt) > 0 {
		m.ReplyTo = rt[0].Address
	}
	seen := map[string]bool{}
	for _, k := range []string{"To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"} {
		for _, v := range h.Values(k) {
			for _, a := range m.addresses(k, v) {
				if a.Address != "" && !seen[a.Address] {
					seen[a.Address] = true
					m.Recipients = append(m.Recipients, a.Address)
				}
			}
		}
	}
	if v := h.Get("Subject"); v != "" {
		m.Subject = m.decodeHeaderText("Subject", v)
	}
	if v := h.Get("Date"); v != "" {
		t, err := parseDate(v)
		if err != nil {
			m.problem("Date: cannot parse %q", truncate(v, 80))
		}
		m.Date = t
	}
}

// decodeHeaderText decodes RFC 2047 encoded words and repairs raw 8-bit
// text, always returning valid UTF-8.
func (m *Message) decodeHeaderText(name, v string) string {
	dec := mime.WordDecoder{CharsetReader: wordCharsetReader}
	s, err := dec.DecodeHeader(v)
	if err != nil {
		m.problem("%s: %v", name, err)
		s = v
	}
	return noNUL(repairUTF8(s))
}

// noNUL drops NUL characters: no mail text needs them, and PostgreSQL text
// (and jsonb) cannot hold them, so one would make a message unrecordable.
func noNUL(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "")
}

var addrPattern = regexp.MustCompile(`[^\s<>"'(),;:\[\]]+@[^\s<>"'(),;:\[\]]+`)

// addresses parses an address-list header value; when it is not valid RFC
// 5322 it falls back to picking out anything shaped like an address.
func (m *Message) addresses(name, v string) []*mail.Address {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	// The null reverse-path "<>" (RFC 5321 §4.5.5), e.g. "MAILER-DAEMON <>".
	if strings.HasSuffix(v, "<>") {
		return []*mail.Address{{Name: strings.Trim(m.decodeHeaderText(name, strings.TrimSpace(strings.TrimSuffix(v, "<>"))), `"' `)}}
	}
	// A bare local part, e.g. "postmaster".
	if !strings.ContainsAny(v, "@<>\" ,;:") {
		return []*mail.Address{{Address: strings.ToLower(v)}}
	}
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: wordCharsetReader}}
	list, err := p.ParseList(v)
	if err == nil {
		out := list[:0]
		for _, a := range list {
			a.Address = strings.ToLower(a.Address)
			a.Name = repairUTF8(a.Name)
			out = append(out, a)
		}
		return out
	}
	// Bracketed form without a domain, e.g. <MAILER-DAEMON>.
	var out []*mail.Address
	for _, found := range addrPattern.FindAllString(v, -1) {
		found = strings.Trim(found, ".")
		out = append(out, &mail.Address{Address: strings.ToLower(found)})
	}
	if len(out) == 1 {
		if i := strings.Index(v, "<"); i > 0 {
			out[0].Name = strings.Trim(m.decodeHeaderText(name, strings.TrimSpace(v[:i])), `"' `)
		}
	}
	if len(out) == 0 {
		if name == "From" {
			// A local part only, as in "Mail Delivery Subsystem <MAILER-DAEMON>".
			if sm := regexp.MustCompile(`<([^<>@\s]+)>`).FindStringSubmatch(v); sm != nil {
				name := strings.Trim(strings.TrimSpace(v[:strings.Index(v, "<")]), `"`)
				return []*mail.Address{{Address: strings.ToLower(sm[1]), Name: m.decodeHeaderText("From", name)}}
			}
			if f := strings.Fields(v); len(f) == 1 && !strings.ContainsAny(v, "<>\"") {
				return []*mail.Address{{Address: strings.ToLower(f[0])}}
			}
		}
		m.problem("%s: cannot parse address %q", name, truncate(v, 80))
	}
	return out
}

var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon, 2 Jan 2006 15:04:05",
	time.RFC3339,
}

func parseDate(v string) (time.Time, error) {
	if t, err := mail.ParseDate(v); err == nil {
		return t, nil
	}
	s := strings.Join(strings.Fields(v), " ")
	if i := strings.Index(s, " ("); i > 0 {
		s = s[:i]
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("bad date")
}

// contentType returns the lowercased media type and its parameters. A
// damaged field is salvaged; a missing one means text/plain (RFC 2045 §5.2).
func (m *Message) contentType(h *textproto.Header) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err == nil {
		return strings.ToLower(mt), params
	}
	// Salvage: type before ';', parameters one by one.
	parts := strings.Split(v, ";")
	mt = strings.ToLower(strings.TrimSpace(parts[0]))
	params = map[string]string{}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.Trim(strings.TrimSpace(val), `"'`)
		if _, dup := params[k]; !dup && k != "" {
			params[k] = val
		}
	}
	if !strings.Contains(mt, "/") || strings.ContainsAny(mt, " \t") {
		m.problem("Content-Type: cannot parse %q, read as text/plain", truncate(v, 80))
		mt = "text/plain"
	} else {
		m.problem("Content-Type: damaged %q (%v)", truncate(v, 80), err)
	}
	return mt, params
}

// walk visits one MIME entity and its children.
func (m *Message) walk(h textproto.Header, body []byte, depth int, inEmbedded bool) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: more than %d levels", ErrTooDeep, MaxDepth)
	}
	m.Parts++
	if m.Parts > MaxParts {
		return fmt.Errorf("%w: more than %d MIME parts", ErrTooLarge, MaxParts)
	}
	mt, params := m.contentType(&h)
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if mt == "multipart/report" && m.reportType == "" {
			m.reportType = strings.ToLower(params["report-type"])
		}
		boundary := params["boundary"]
		if boundary == "" {
			m.problem("%s without boundary, read as text/plain", mt)
			return m.leaf(h, "text/plain", params, body, inEmbedded)
		}
		parts, closed := splitMultipart(body, boundary)
		if len(parts) == 0 {
			m.problem("%s: no part with boundary %q, read as text/plain", mt, truncate(boundary, 70))
			return m.leaf(h, "text/plain", params, body, inEmbedded)
		}
		if !closed {
			m.problem("%s: closing boundary missing", mt)
		}
		for _, part := range parts {
			ph, pbody, err := m.readPartHeader(part)
			if err != nil {
				m.problem("%s: part header: %v", mt, err)
				continue
			}
			if err := m.walk(ph, pbody, depth+1, inEmbedded); err != nil {
				return err
			}
		}
		return nil
	case mt == "message/rfc822" || mt == "message/global":
		m.embedded = true
		data := m.transferDecode(&h, body)
		if m.Returned == nil {
			m.Returned = keep(data)
		}
		eh, rest, err := m.readPartHeader(data)
		if err != nil {
			m.problem("%s: %v", mt, err)
			return nil
		}
		return m.walk(eh, rest, depth+1, true)
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		m.deliveryStatus = true
		if m.dsnFields == nil {
			m.dsnFields = keep(m.transferDecode(&h, body))
		}
		return nil
	case mt == "message/feedback-report":
		m.feedbackReport = true
		return nil
	case mt == "message/disposition-notification" || mt == "message/global-disposition-notification":
		m.disposition = true
		return nil
	case mt == "text/rfc822-headers" || mt == "text/global-headers":
		m.embedded = true
		if m.Returned == nil {
			m.Returned = keep(m.transferDecode(&h, body))
		}
		return nil
	}
	return m.leaf(h, mt, params, body, inEmbedded)
}

// leaf handles a non-multipart entity: the first inline text/plain and
// text/html parts outside embedded messages become Text and HTML.
func (m *Message) leaf(h textproto.Header, mt string, params map[string]string, body []byte, inEmbedded bool) error {
	if inEmbedded || (mt != "text/plain" && mt != "text/html") {
		return nil
	}
	if (mt == "text/plain" && m.Text != "") || (mt == "text/html" && m.HTML != "") {
		return nil
	}
	if disp, _, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil && strings.EqualFold(disp, "attachment") {
		return nil
	}
	data := m.transferDecode(&h, body)
	label := params["charset"]
	if label == "" && mt == "text/html" {
		label = htmlMetaCharset(data)
	}
	text := m.decodeCharset(label, data)
	text = noNUL(strings.ReplaceAll(text, "\r\n", "\n"))
	if mt == "text/plain" {
		m.Text = text
	} else {
		m.HTML = text
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
