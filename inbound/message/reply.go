package message

import (
	"regexp"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ReplyText returns what the sender wrote in this message: the text/plain
// part (else the HTML part converted to text, without its quoted parts),
// with quoted lines, quote headers ("On … wrote:" and its translations),
// Outlook's header block and everything after it, and signatures removed.
// When the message starts with quoted text (bottom-posting or inline
// replies), all the unquoted text is returned.
func ReplyText(m *Message) string {
	text := m.Text
	if strings.TrimSpace(text) == "" && m.HTML != "" {
		text = htmlToText(m.HTML, true)
	}
	return trimReply(text)
}

// htmlToText renders HTML as plain text. With dropQuotes it leaves out the
// quoted message that mail clients append to a reply: blockquotes, Gmail's
// .gmail_quote, Thunderbird's .moz-cite-prefix, and Outlook's
// #divRplyFwdMsg, #appendonsend and border-top header block together with
// everything after them.
func htmlToText(src string, dropQuotes bool) string {
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		return ""
	}
	var sb strings.Builder
	stopped := false
	var walk func(n *html.Node, pre bool)
	walk = func(n *html.Node, pre bool) {
		if stopped {
			return
		}
		switch n.Type {
		case html.TextNode:
			t := n.Data
			if !pre {
				t = collapseSpace(t)
			}
			sb.WriteString(t)
			return
		case html.CommentNode, html.DoctypeNode:
			return
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Style, atom.Script, atom.Head, atom.Title, atom.Template, atom.Noscript:
				return
			case atom.Br:
				sb.WriteString("\n")
				return
			case atom.Img:
				return
			}
			if dropQuotes {
				switch quoteKind(n) {
				case quoteSkip:
					return
				case quoteStop:
					stopped = true
					return
				}
			}
		}
		block := n.Type == html.ElementNode && isBlock(n.DataAtom)
		if block {
			sb.WriteString("\n")
		}
		if n.DataAtom == atom.Pre {
			pre = true
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, pre)
			if stopped {
				return
			}
		}
		if n.Type == html.ElementNode && (n.DataAtom == atom.Td || n.DataAtom == atom.Th) {
			sb.WriteString(" ")
		}
		if block {
			sb.WriteString("\n")
		}
	}
	walk(doc, false)
	// Tidy: trim each line, collapse runs of blank lines.
	var out []string
	blank := 0
	for _, line := range strings.Split(sb.String(), "\n") {
		line = strings.TrimRight(strings.TrimLeft(line, " "), " \t")
		if line == "" {
			blank++
			continue
		}
		if len(out) > 0 && blank > 0 {
			out = append(out, "")
		}
		blank = 0
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func collapseSpace(s string) string {
	var sb strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' {
			if !space {
				sb.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		sb.WriteRune(r)
	}
	return sb.String()
}

func isBlock(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Div, atom.Tr, atom.Li, atom.Ul, atom.Ol, atom.Table, atom.Blockquote,
		atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Hr, atom.Pre, atom.Section,
		atom.Article, atom.Header, atom.Footer, atom.Dl, atom.Dt, atom.Dd, atom.Address, atom.Body:
		return true
	}
	return false
}

type quoteAction int

const (
	quoteKeep quoteAction = iota
	quoteSkip             // leave out this element
	quoteStop             // leave out this element and everything after it
)

var outlookBorder = regexp.MustCompile(`(?i)border-top\s*:\s*solid\s*#(e1e1e1|b5c4df)|border:\s*none;\s*border-top:\s*solid`)

// quoteKind says whether an element is (the start of) quoted material.
func quoteKind(n *html.Node) quoteAction {
	var id, class, style, typ string
	for _, a := range n.Attr {
		switch strings.ToLower(a.Key) {
		case "id":
			id = strings.ToLower(a.Val)
		case "class":
			class = strings.ToLower(a.Val)
		case "style":
			style = a.Val
		case "type":
			typ = strings.ToLower(a.Val)
		}
	}
	// Outlook: the reply header (#divRplyFwdMsg, #appendonsend, the div
	// with a top border) starts the quoted message, which runs to the end.
	if strings.Contains(id, "divrplyfwdmsg") || strings.Contains(id, "appendonsend") ||
		id == "olk_src_body_section" || strings.HasSuffix(id, "mail-editor-reference-message-container") {
		return quoteStop
	}
	if n.DataAtom == atom.Div && outlookBorder.MatchString(style) {
		return quoteStop
	}
	if n.DataAtom == atom.Hr && (id == "stopspelling" || strings.Contains(id, "stopspelling")) {
		return quoteStop
	}
	if n.DataAtom == atom.Blockquote || typ == "cite" {
		return quoteSkip
	}
	for _, c := range strings.Fields(class) {
		switch strings.TrimPrefix(c, "x_") {
		case "gmail_quote", "gmail_extra", "gmail_attr", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote", "zmail_extra", "ms-outlook-mobile-reference-message":
			return quoteSkip
		case "gmail_signature", "moz-signature", "protonmail_signature_block":
			return quoteSkip
		}
	}
	return quoteKeep
}

// quoteHeaderEnd ends a quote header: "On … wrote:" in many languages.
// (No \b after the verbs: in Go it is ASCII-only.)
var quoteHeaderEnd = regexp.MustCompile(`(?i)(wrote|writes|a écrit|a ecrit|schrieb|schreef|geschreven|escribió|escribio|ha scritto|scrisse|escreveu|skrev|kirjoitti|napisał|napisała|napisal|napsal|написал|написала|написав|пише|пишет|yazdı|írta|έγραψε|כתב|כתבה|كتب|het volgende)(?:[^:：\n]|\d:\d){0,80}[:：]\s*$|(写道|寫道|のメッセージ|書きました|작성)[^:：\n]{0,20}[:：]?\s*$|^-{2,}\s*on .{5,200} wrote\s*-{2,}$`)

// quoteHeaderStart is how quote headers begin: a lead word, or a date or an
// address somewhere in the line.
var quoteHeaderStart = regexp.MustCompile(`(?i)^(-{2,}\s*)?((on|le|am|el|op|il|em|no|den|på|w dniu|dnia|dne|в|у)\s|.*\d{1,2}:\d{2}|.*\d{4}|.*@|.*<)`)

// quoteHeaderLead is a line that starts a quote header with a lead word.
var quoteHeaderLead = regexp.MustCompile(`(?i)^(on|le|am|el|op|il|em|den|på|w dniu|dnia)\s`)

// dateFirstHeader is Gmail's header in some locales:
// "2016-03-03 17:21 GMT+01:00 Some One <some@one.com>:" or
// "2013/7/20 sam via Discourse Meta <info@discourse.org>".
var dateFirstHeader = regexp.MustCompile(`^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\.?\s.{2,200}$`)

// dateAddressHeader is a header with a date and time and the sender's
// address, without a verb (mail.ru, Yandex):
// "26.06.2014, 14:41, "Alexander L" <abc@example.com>:".
var dateAddressHeader = regexp.MustCompile(`^.{0,200}\d{1,2}:\d{2}.{0,200}<[^<>\s]+@[^<>\s]+>\s*[:：]\s*$`)

// endsQuoteHeader reports whether s ends like a quote header
// (quoteHeaderEnd). The pattern's bounded repeats make it costly, so it is
// tried only on a line that could match: one ending in a colon, one of its
// CJK verbs, or a dash (the "-- on … wrote --" form). A 4 MB message of
// ordinary lines is then read in milliseconds, not minutes.
func endsQuoteHeader(s string) bool {
	t := strings.TrimRight(s, " \t\n\f\r")
	if !strings.HasSuffix(t, ":") && !strings.HasSuffix(t, "：") && !strings.HasSuffix(t, "-") &&
		!strings.ContainsAny(t, "写寫の書작") {
		return false
	}
	return quoteHeaderEnd.MatchString(s)
}

// isDateAddressHeader is dateAddressHeader, tried only on a line ending in
// a colon with an address in it, for the same reason.
func isDateAddressHeader(s string) bool {
	t := strings.TrimRight(s, " \t\n\f\r")
	if !strings.HasSuffix(t, ":") && !strings.HasSuffix(t, "：") || !strings.Contains(t, "@") {
		return false
	}
	return dateAddressHeader.MatchString(s)
}

var dateTime = regexp.MustCompile(`^\S+\s+\d{1,2}:\d{2}(:\d{2})?\s+(GMT|UTC)?[+-]\d{1,2}(:?\d{2})?\s`)
var dateFirstEnd = regexp.MustCompile(`(>|<[^>]*|@[^\s]*)\s*:?\s*$|:\s*$`)

// outlookField matches one line of the header block Outlook and others
// put above a quoted message, in several languages, with optional
// Markdown-like emphasis ("*From:*").
var outlookField = regexp.MustCompile(`(?i)^[*_\s]{0,3}(from|sent|date|to|cc|subject|de|envoyé|envoye|à|a|objet|date d'envoi|von|gesendet|an|betreff|datum|van|verzonden|aan|onderwerp|da|inviato|oggetto|enviado|para|asunto|assunto|enviada|från|skickat|till|ämne|fra|sendt|til|emne|od|wysłano|do|temat|от|отправлено|кому|тема|дата|kimden|gönderildi|kime|konu|lähettäjä|lähetetty|vastaanottaja|aihe|发件人|发送时间|收件人|主题|寄件者|傳送時間|收件者|主旨|差出人|送信日時|宛先|件名)\s?[*_]{0,2}\s?[:：][*_]{0,2}(\s|$)`)

var outlookFrom = regexp.MustCompile(`(?i)^[*_\s]{0,3}(from|de|von|van|da|från|fra|od|от|kimden|lähettäjä|发件人|寄件者|差出人)\s?[*_]{0,2}\s?[:：]`)

// separatorLine matches "-----Original Message-----" and its translations,
// forwarded-message markers and Outlook's underscore rule.
var separatorLine = regexp.MustCompile(`(?i)^[\s*_]*(-{2,}\s*[^-\n]{0,10}(original|forwarded|ursprüngliche|weitergeleitete|origine|transféré|oorspronkelijk|doorgestuurd|originale|inoltrato|mensaje|mensagem|encaminhad|reenviado|oryginalna|przekazana|исходное|пересылаемое|alkuperäinen|ursprungligt|vidarebefordrat|opprinnelig|videresendt|原始邮件|轉寄|転送)[^\n]{0,40}-{2,}\s*|_{20,}\s*|begin forwarded message:?|anfang der weitergeleiteten nachricht:?|début du message réexpédié\s?:?|-{2,}\s*原始邮件\s*-{2,})[\s*_]*$`)

// replyAboveMarker matches a "reply above this line" marker.
var replyAboveMarker = regexp.MustCompile(`(?i)^\W*(please )?(reply|type your reply|write) above this line\W*$`)

// mobileSignature matches the one-line signatures mail apps add.
var mobileSignature = regexp.MustCompile(`(?i)^\W{0,3}(sent (from|via|with|using|by|on) .{1,80}|sent from my .*|(sent|from) my (iphone|ipad|ipod|android|mobile|blackberry|samsung|galaxy|phone|cell).{0,60}|envoy[ée] (de|depuis|à partir de|avec) .{1,60}|von meinem .{1,60}gesendet.{0,40}|gesendet (von|mit) .{1,60}|diese nachricht wurde von meinem .{1,80}gesendet.?|enviado (desde|de|do|com|con) .{1,60}|inviato da .{1,60}|verzonden (met|vanaf|van|via) .{1,60}|skickat från .{1,60}|sendt fra .{1,60}|wysłane z .{1,60}|отправлено (с|из) .{1,60}|get outlook for .{1,60}|download outlook for .{1,60}|get (the )?\[?outlook for .{1,60}|從我的.{1,30}傳送|发自我的.{1,30}|iphoneから送信|<<sent by .{1,40}>>|\(sent from .{1,40}\)|sent from \[?mail\]?.{0,120}|from my iphone.{0,20})\W{0,3}$`)

// isQuoted reports a line quoted with ">" (or "|" in some clients), allowing
// Supercite-style initials ("Richard> text").
var supercite = regexp.MustCompile(`^\s{0,3}[A-Za-z]{1,12}>`)

func isQuoted(line string) bool {
	t := strings.TrimLeft(line, " \t")
	return strings.HasPrefix(t, ">") || strings.HasPrefix(t, "&gt;") || t == "|" || strings.HasPrefix(t, "| ") || supercite.MatchString(line)
}

// isQuoteHeader reports whether lines[i] (alone or with up to three
// following lines it was wrapped onto) is a quote header; n is the number
// of lines it spans.
func isQuoteHeader(lines []string, i int) (n int, ok bool) {
	l := strings.TrimSpace(lines[i])
	if l == "" || len(l) > 400 {
		return 0, false
	}
	if endsQuoteHeader(l) && quoteHeaderStart.MatchString(l) {
		return 1, true
	}
	if isDateAddressHeader(l) {
		return 1, true
	}
	if !quoteHeaderStart.MatchString(l) {
		return 0, false
	}
	// The following non-empty lines, for a header wrapped by the client.
	var next []int
	for j := i + 1; j < len(lines) && j <= i+6 && len(next) < 3; j++ {
		if strings.TrimSpace(lines[j]) != "" {
			next = append(next, j)
		}
	}
	if dateFirstHeader.MatchString(l) {
		if dateFirstEnd.MatchString(l) || dateTime.MatchString(l) {
			if len(next) > 0 && strings.HasSuffix(strings.TrimSpace(lines[next[0]]), ">:") && !strings.Contains(l, ">") {
				return next[0] - i + 1, true
			}
			return 1, true
		}
	}
	// A short line above a complete header is the reply ("NO" above
	// "On … wrote:"); a wrapped header's first line is long or ends in
	// the middle of an address.
	if len(l) < 12 && !strings.HasSuffix(l, "<") {
		return 0, false
	}
	joined := l
	for k, j := range next {
		lj := strings.TrimSpace(lines[j])
		if k == 0 && endsQuoteHeader(lj) && quoteHeaderStart.MatchString(lj) && len(lj) > 20 &&
			!strings.HasSuffix(l, "<") && !strings.HasSuffix(l, ",") && !strings.HasSuffix(l, "\"") {
			return 0, false
		}
		if k > 0 && (quoteHeaderLead.MatchString(lj) || dateFirstHeader.MatchString(lj)) {
			// That line starts a header of its own.
			return 0, false
		}
		joined += " " + lj
		if len(joined) > 400 {
			return 0, false
		}
		if endsQuoteHeader(joined) {
			return j - i + 1, true
		}
		if dateFirstHeader.MatchString(l) && strings.HasSuffix(lj, ">:") {
			return j - i + 1, true
		}
	}
	return 0, false
}

// isOutlookBlock reports whether lines[i] starts a header block of a
// quoted message ("From: … Sent: … To: … Subject: …").
func isOutlookBlock(lines []string, i int) bool {
	if !outlookFrom.MatchString(lines[i]) {
		return false
	}
	fields := 1
	for j := i + 1; j < len(lines) && j <= i+8; j++ {
		t := strings.TrimSpace(lines[j])
		if t == "" {
			continue
		}
		if outlookField.MatchString(t) {
			fields++
			if fields >= 2 {
				return true
			}
		}
	}
	return false
}

// isCut reports lines that end what the sender wrote: everything from
// them on is quoted material or signature.
func isCut(lines []string, i int) bool {
	l := strings.TrimSpace(lines[i])
	switch {
	case lines[i] == "-- " || l == "--" || l == "-- ":
		return true
	case separatorLine.MatchString(l), replyAboveMarker.MatchString(l), mobileSignature.MatchString(l):
		return true
	case isOutlookBlock(lines, i):
		return true
	}
	return false
}

// trimReply applies the line rules of ReplyText to plain text.
func trimReply(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	text = strings.NewReplacer("\u00a0", " ", "\u200b", "", "\u200e", "", "\u200f", "", "\ufeff", "", "\u202f", " ", "\u1427", "").Replace(text)
	lines := strings.Split(text, "\n")

	var out []string
	wrote := false // the sender's own text has started
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if isQuoted(line) {
			if wrote && hasContent(out) {
				// Top-posting: the quote ends what the sender wrote.
				break
			}
			continue
		}
		if n, ok := isQuoteHeader(lines, i); ok {
			if hasContent(out) {
				break
			}
			i += n - 1
			continue
		}
		if isCut(lines, i) {
			if hasContent(out) {
				break
			}
			// A header block, separator or signature before any text: what
			// follows is not the sender's (an unquoted forward, for one).
			break
		}
		if strings.TrimSpace(line) != "" {
			wrote = true
		}
		out = append(out, strings.TrimRight(line, " \t"))
	}
	// Collapse runs of blank lines.
	kept := out[:0]
	for i, l := range out {
		if l == "" && i > 0 && out[i-1] == "" {
			continue
		}
		kept = append(kept, l)
	}
	return strings.TrimSpace(strings.Join(trimTrailingRules(kept), "\n"))
}

func hasContent(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return true
		}
	}
	return false
}

var ruleLine = regexp.MustCompile(`^[\s\-_=*~#]*$`)

// trimTrailingRules drops trailing blank lines and horizontal rules.
func trimTrailingRules(lines []string) []string {
	for len(lines) > 0 && ruleLine.MatchString(lines[len(lines)-1]) {
		lines = lines[:len(lines)-1]
	}
	return lines
}
