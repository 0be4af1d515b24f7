package message

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
)

// Bounce is what a delivery report says about the failed delivery.
type Bounce struct {
	Status     string // RFC 3463 enhanced status, e.g. "5.1.1" ("" when none found)
	Hard       bool   // permanent failure: the address does not take mail
	Action     string // RFC 3464 Action (failed, delayed, …), lowercased, "" in text bounces
	Diagnostic string // the remote server's words (Diagnostic-Code, or the text bounce's line)
	Recipient  string // the failed address, lowercased ("" when not found)
	Standard   bool   // read from an RFC 3464 message/delivery-status part
	// Complaint says the report is a recipient's abuse report, not a
	// failed delivery: an RFC 5965 feedback report, or Microsoft's
	// feedback loop (JMRP).
	Complaint bool

	report string // a text bounce's report text, for deciding permanence
}

// maxDiagnostic bounds Bounce.Diagnostic.
const maxDiagnostic = 500

var (
	statusPattern = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)
	// An SMTP reply code where a text bounce quotes the remote server:
	// "said: 550 …", "550-5.1.1 …", "remote host said: 552 …".
	smtpReplyPattern = regexp.MustCompile(`(?i)(?:^|said:|said|response:|reply:|error:|\(|\s)\s*([45][0-9]{2})[ \-]`)
	// hardWords and softWords decide text bounces that give no code.
	hardWords = regexp.MustCompile(`(?i)(user unknown|unknown user|no such (user|recipient|mailbox|address)|does not exist|doesn't exist|invalid (user|recipient|address|mailbox)|recipient address rejected|address rejected|mailbox unavailable|not our customer|no mailbox|account (has been |is )?(disabled|closed|deleted|locked)|unrouteable|host or domain name not found|domain not found|no longer (valid|available)|not listed in|recipient not found|wasn.t found at the destination)`)
	// permanentWords in a text bounce's report say the failure is final.
	permanentWords = regexp.MustCompile(`(?i)(permanent (error|fatal|failure)|i've given up|permanently|fatal error)`)
	softWords      = regexp.MustCompile(`(?i)(mailbox (is )?full|over ?quota|quota exceeded|exceeded (the )?storage|temporar(y|ily)|try again later|deferred|delayed|greylist|too many (connections|messages))`)
	addrInText     = regexp.MustCompile(`<?([a-zA-Z0-9.!#$%&'*+/=?^_{|}~-]+@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+)>?`)
	// diagTiers pick the line of a text bounce that carries the reason: the
	// remote server quoted, then any reply or status code, then words.
	diagTiers = []*regexp.Regexp{
		regexp.MustCompile(`(?i)(said:|server returned '|\b[45][0-9]{2}[ \-][45]\.\d{1,3}\.\d{1,3})`),
		regexp.MustCompile(`(?i)(\b[45][0-9]{2}[ \-]\S|\b[45]\.\d{1,3}\.\d{1,3}\b)`),
		regexp.MustCompile(`(?i)(user unknown|unknown user|no such|does not exist|mailbox (is )?full|quota|rejected|invalid|not listed|locked|disabled|not found)`),
	}
)

// ReadBounce reads what a bounce says: RFC 3464 fields when the message has
// a message/delivery-status part (the first recipient whose Action is
// failed, else the first), otherwise the wording of the common non-standard
// bounces (qmail, Exim, Sendmail, Exchange, providers). It never panics and
// returns the zero Bounce when it finds nothing. Hard is true for a 5.x.x
// status about the address (permanentStatus: not 5.7.x policy, 5.6.x
// content, 5.2.2 mailbox full, 5.2.3/5.3.4 too large), else for a 5xx reply
// code, else for the words of a permanent failure; a bounce that says
// nothing decisive is soft.
func ReadBounce(m *Message) Bounce {
	var b Bounce
	if len(m.dsnFields) > 0 {
		b = readDSNFields(m.dsnFields)
	}
	if b.Status == "" && b.Diagnostic == "" {
		tb := readTextBounce(m)
		tb.Action = b.Action
		if b.Recipient != "" {
			tb.Recipient = b.Recipient
		}
		tb.Standard = b.Standard
		b = tb
	}
	if b.Recipient == "" {
		if v := m.Header.Get("X-Failed-Recipients"); v != "" {
			if a := addrInText.FindStringSubmatch(v); a != nil {
				b.Recipient = strings.ToLower(a[1])
			}
		}
	}
	b.Hard = hardBounce(b)
	b.Complaint = m.feedbackReport || m.mediaType == "multipart/report" && m.reportType == "feedback-report" ||
		m.embedded && strings.HasPrefix(strings.ToLower(m.Subject), "complaint about message from")
	return b
}

// hardBounce decides permanence: the status class, then the reply code in
// the diagnostic, then the Action, then the words.
func hardBounce(b Bounce) bool {
	if b.Status != "" {
		return permanentStatus(b.Status)
	}
	if sm := smtpReplyPattern.FindStringSubmatch(b.Diagnostic); sm != nil {
		return sm[1][0] == '5'
	}
	switch b.Action {
	case "delayed", "relayed", "delivered", "expanded":
		return false
	}
	if softWords.MatchString(b.Diagnostic) {
		return false
	}
	if hardWords.MatchString(b.Diagnostic) {
		return true
	}
	return permanentWords.MatchString(b.report) && !softWords.MatchString(b.report)
}

// permanentStatus reports whether an RFC 3463 status says the address will
// never take mail: class 5, except the permanent failures that are about
// the message or the sender rather than the address (a blocklisted relay,
// a message rejected as spam, a full mailbox, a message too large). Marking
// members bounced for those would cut off every member behind a provider
// that blocked one wave.
func permanentStatus(status string) bool {
	if !strings.HasPrefix(status, "5.") {
		return false
	}
	rest := status[2:]
	for _, p := range []string{"2.2", "2.3", "3.4"} {
		if rest == p {
			return false
		}
	}
	return !strings.HasPrefix(rest, "6.") && !strings.HasPrefix(rest, "7.")
}

// readDSNFields reads an RFC 3464 message/delivery-status body: a block
// of per-message fields, then one block per recipient.
func readDSNFields(body []byte) Bounce {
	var b Bounce
	b.Standard = true
	blocks := dsnBlocks(body)
	if len(blocks) == 0 {
		return b
	}
	// Per-recipient blocks are those that name a recipient or say what
	// happened; the per-message block (Reporting-MTA…) does neither.
	var recips []map[string]string
	for _, blk := range blocks {
		if blk["final-recipient"] != "" || blk["original-recipient"] != "" || blk["action"] != "" || blk["status"] != "" {
			recips = append(recips, blk)
		}
	}
	if len(recips) == 0 {
		recips = blocks
	}
	chosen := recips[0]
	for _, blk := range recips {
		if strings.EqualFold(strings.TrimSpace(blk["action"]), "failed") {
			chosen = blk
			break
		}
	}
	b.Action = strings.ToLower(strings.TrimSpace(chosen["action"]))
	b.Status = findStatus(chosen["status"], true)
	b.Diagnostic = cleanDiagnostic(chosen["diagnostic-code"])
	for _, k := range []string{"final-recipient", "original-recipient"} {
		if v := chosen[k]; v != "" {
			_, addr, ok := strings.Cut(v, ";")
			if !ok {
				addr = v
			}
			b.Recipient = strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>"))
			break
		}
	}
	if b.Status == "" {
		// Some MTAs give the status only in the diagnostic.
		b.Status = findStatus(b.Diagnostic, false)
	}
	return b
}

// dsnBlocks splits DSN fields into blocks of lowercased name → unfolded
// value (the first of each name in a block).
func dsnBlocks(body []byte) []map[string]string {
	var blocks []map[string]string
	cur := map[string]string{}
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), maxKept+1)
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, cur)
			cur = map[string]string{}
		}
		last = ""
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && last != "" {
			cur[last] += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if _, seen := cur[name]; seen {
			last = ""
			continue
		}
		cur[name], last = strings.TrimSpace(value), name
	}
	flush()
	return blocks
}

// cleanDiagnostic drops the diagnostic type ("smtp; ") and bounds the text.
func cleanDiagnostic(v string) string {
	v = strings.TrimSpace(v)
	if typ, rest, ok := strings.Cut(v, ";"); ok && !strings.ContainsAny(typ, " \t") && len(typ) <= 20 {
		v = strings.TrimSpace(rest)
	}
	v = strings.Join(strings.Fields(v), " ")
	return truncateRunes(v, maxDiagnostic)
}

func truncateRunes(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// textBounceCut marks where a text bounce starts quoting the returned
// message: nothing below it is the report.
var textBounceCut = regexp.MustCompile(`(?im)^(-+ ?(below this line is a copy of the message|original message follows|this is a copy of the message|the header of the original message is following|original message header|message header follows|returned mail follows|original message).*$|content-type: message/rfc822|received: from )`)

// readTextBounce reads a non-standard bounce's text: the first enhanced
// status code, the line that carries the reason, the failed address.
func readTextBounce(m *Message) Bounce {
	var b Bounce
	text := m.Text
	if strings.TrimSpace(text) == "" && m.HTML != "" {
		text = htmlToText(m.HTML, false)
	}
	if len(text) > 64<<10 {
		text = text[:64<<10]
	}
	if loc := textBounceCut.FindStringIndex(text); loc != nil && loc[0] > 0 {
		text = text[:loc[0]]
	}
	b.report = text
	lines := strings.Split(text, "\n")
tiers:
	for _, re := range diagTiers {
		for i, line := range lines {
			if !re.MatchString(line) {
				continue
			}
			d := strings.TrimSpace(line)
			// A reason often continues on the next, indented line ("said: 550
			// 5.1.1 <x>:\n    Recipient address rejected").
			if i+1 < len(lines) {
				next := strings.TrimSpace(lines[i+1])
				if next != "" && (strings.HasPrefix(lines[i+1], " ") || strings.HasPrefix(lines[i+1], "\t")) {
					d += " " + next
				}
			}
			b.Diagnostic = truncateRunes(strings.Join(strings.Fields(d), " "), maxDiagnostic)
			break tiers
		}
	}
	b.Status = findStatus(text, false)
	if b.Status == "" {
		b.Status = findStatus(b.Diagnostic, false)
	}
	for _, line := range lines {
		if a := addrInText.FindStringSubmatch(line); a != nil {
			addr := strings.ToLower(a[1])
			lp := localPart(addr)
			if daemonLocalPart.MatchString(lp) || isNoReply(lp) {
				continue
			}
			b.Recipient = addr
			break
		}
	}
	return b
}

// findStatus returns the first RFC 3463 status code in s. Outside a Status
// field only 4.x.x and 5.x.x count, and a code that is part of a longer
// dotted number (an IP address, a version) does not.
func findStatus(s string, field bool) string {
	for _, loc := range statusPattern.FindAllStringIndex(s, 20) {
		code := s[loc[0]:loc[1]]
		if !field && code[0] == '2' {
			continue
		}
		if loc[0] > 0 && (s[loc[0]-1] == '.' || isDigit(s[loc[0]-1])) {
			continue
		}
		if loc[1]+1 < len(s) && s[loc[1]] == '.' && isDigit(s[loc[1]+1]) {
			continue
		}
		return code
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
