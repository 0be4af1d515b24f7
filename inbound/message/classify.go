package message

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Class is what a message is; each message has exactly one.
type Class string

// The classes Classify returns.
const (
	ClassBounce    Class = "bounce"
	ClassAutoReply Class = "auto-reply"
	ClassLoop      Class = "loop" // From is our own mailbox
	// ClassReadReceipt is a read or displayed receipt (RFC 8098 MDN): a
	// machine's report, recorded and never answered.
	ClassReadReceipt Class = "read-receipt"
	// ClassChallenge is a challenge-response request from a sender's spam
	// filter: recorded and never answered.
	ClassChallenge   Class = "challenge"
	ClassVote        Class = "vote"
	ClassNomination  Class = "nomination"
	ClassJoin        Class = "join"
	ClassConfirm     Class = "confirm"
	ClassUnsubscribe Class = "unsubscribe"
	ClassStaff       Class = "staff"
	ClassResend      Class = "resend" // a member asks for their open ballots again
	// ClassQuestionnaire is a campaign's answers to the policy
	// questionnaire (ballots+q-TOKEN@).
	ClassQuestionnaire Class = "questionnaire"
	ClassUnknown       Class = "unknown"
)

// IsMachine reports whether messages of class c come from a program (a
// bounce, an automatic reply, a read receipt, our own loop): they are
// recorded and never answered.
func IsMachine(c Class) bool {
	switch c {
	case ClassBounce, ClassAutoReply, ClassLoop, ClassReadReceipt, ClassChallenge:
		return true
	}
	return false
}

// Mailbox identifies our own address: Local "ballots", Domain "example.org".
type Mailbox struct{ Local, Domain string }

// Tag is the routing part of a plus address: ballots+v-abc@ gives
// Tag{Kind: "v", Token: "abc"}; ballots+nominate@ gives Tag{Kind: "nominate"};
// join and resend likewise. The kinds v, c, u, s and b carry a token, which
// is lowercased.
type Tag struct{ Kind, Token string }

// tokenKinds are the tag kinds that carry a token after a dash.
var tokenKinds = map[string]bool{"v": true, "c": true, "u": true, "s": true, "b": true, "q": true}

// plainKinds are the tag kinds without a token.
var plainKinds = map[string]bool{"nominate": true, "join": true, "resend": true}

// FindTag returns the first plus tag addressed to our mailbox among
// m.Recipients (local part and domain compared case-insensitively).
func FindTag(m *Message, box Mailbox) (Tag, bool) {
	for _, r := range m.Recipients {
		if tag, ok := parseTag(r, box); ok {
			return tag, true
		}
	}
	return Tag{}, false
}

// parseTag reads the tag of one address if it is a plus address of box.
func parseTag(addr string, box Mailbox) (Tag, bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || !strings.EqualFold(addr[at+1:], box.Domain) {
		return Tag{}, false
	}
	base, detail, ok := strings.Cut(addr[:at], "+")
	if !ok || !strings.EqualFold(base, box.Local) {
		return Tag{}, false
	}
	detail = strings.ToLower(detail)
	if plainKinds[detail] {
		return Tag{Kind: detail}, true
	}
	kind, token, ok := strings.Cut(detail, "-")
	if !ok || !tokenKinds[kind] || token == "" {
		return Tag{}, false
	}
	return Tag{Kind: kind, Token: token}, true
}

// Owns reports whether addr is box's address, with or without a plus tag.
func (box Mailbox) Owns(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || box.Local == "" || !strings.EqualFold(addr[at+1:], box.Domain) {
		return false
	}
	base, _, _ := strings.Cut(addr[:at], "+")
	return strings.EqualFold(base, box.Local)
}

var ballotCodePattern = regexp.MustCompile(`(?i)ballot\s+code\s*:\s*\*{0,2}([a-z2-7]{20,64})\b`)

// BallotCodes returns the tokens written as "Ballot code: XXXX" in the text
// (or in the HTML's text when there is no text part), lowercased, in order,
// without duplicates.
func BallotCodes(m *Message) []string {
	text := m.Text
	if strings.TrimSpace(text) == "" && m.HTML != "" {
		text = htmlToText(m.HTML, false)
	}
	var codes []string
	seen := map[string]bool{}
	for _, sm := range ballotCodePattern.FindAllStringSubmatch(text, -1) {
		c := strings.ToLower(sm[1])
		if !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	return codes
}

// Classify says what m is. The checks run in this order: bounce,
// auto-reply, loop, then the plus tag it was sent to, then its content.
func Classify(m *Message, box Mailbox) Class {
	// RFC 8058 / RFC 2369: a mail client's unsubscribe message to our
	// List-Unsubscribe address may be marked automatic (Apple Mail sets
	// Auto-Submitted and X-Apple-Unsubscribe); it is still a request.
	if tag, ok := FindTag(m, box); ok && tag.Kind == "u" && !m.deliveryStatus && m.reportType == "" {
		return ClassUnsubscribe
	}
	if isBounce(m) {
		return ClassBounce
	}
	if isReadReceipt(m) {
		return ClassReadReceipt
	}
	if isChallenge(m) {
		return ClassChallenge
	}
	if IsAutoReply(m) {
		return ClassAutoReply
	}
	if m.From != "" && box.Owns(m.From) {
		return ClassLoop
	}
	if tag, ok := FindTag(m, box); ok {
		switch tag.Kind {
		case "v":
			return ClassVote
		case "nominate":
			return ClassNomination
		case "join":
			return ClassJoin
		case "c":
			return ClassConfirm
		case "u":
			return ClassUnsubscribe
		case "s":
			return ClassStaff
		case "q":
			return ClassQuestionnaire
		case "resend":
			return ClassResend
		case "b":
			// VERP (our envelope sender): only delivery reports come back here.
			return ClassBounce
		}
	}
	// A reply that lost its plus address still carries the ballot code
	// quoted back; failing that, one that names one of our messages in
	// In-Reply-To or References is read as a vote (below): the processor
	// matches it to a ballot, and only for the ballot's voter.
	if len(BallotCodes(m)) > 0 {
		return ClassVote
	}
	subject := strings.ToLower(m.Subject)
	if _, tagged := FindTag(m, box); !tagged && toPlainAddress(m, box) && strings.Contains(subject, "ballot") &&
		!replyPrefix.MatchString(subject) {
		// A new message to the plain address, "ballot" in the subject, no
		// code: a lost ballot. A reply that lost its tag and code is not a
		// request: it stays unmatched, kept for staff.
		return ClassResend
	}
	if strings.Contains(subject, "nomination") || strings.Contains(subject, "nominate") || strings.TrimSpace(subject) == "form" {
		return ClassNomination
	}
	if len(OwnReferences(m, box)) > 0 {
		return ClassVote
	}
	return ClassUnknown
}

// OwnReferences returns the local parts of the Message-IDs in m's
// In-Reply-To and References that are on our domain (the messages ballotd
// sent), In-Reply-To first, without duplicates.
func OwnReferences(m *Message, box Mailbox) []string {
	var out []string
	seen := map[string]bool{}
	for _, ref := range append(append([]string{}, m.InReplyTo...), m.References...) {
		local, domain, ok := strings.Cut(ref, "@")
		if !ok || local == "" || !strings.EqualFold(domain, box.Domain) || seen[local] {
			continue
		}
		seen[local] = true
		out = append(out, local)
	}
	return out
}

// isReadReceipt reports a message disposition notification: a read or
// displayed receipt (RFC 8098), including Outlook's plain "Read:" receipts
// that carry no report part.
func isReadReceipt(m *Message) bool {
	// RFC 8098 §3: multipart/report; report-type=disposition-notification
	// with a message/disposition-notification part.
	if m.disposition || (m.mediaType == "multipart/report" && m.reportType == "disposition-notification") {
		return true
	}
	// Outlook and Exchange send receipts as a message class header, or as
	// a plain message with "Read:" / "Not read:" subjects.
	if strings.HasPrefix(strings.ToLower(m.Header.Get("Content-Class")), "urn:content-classes:mdn") {
		return true
	}
	subject := strings.ToLower(strings.TrimSpace(m.Subject))
	if readSubject.MatchString(subject) && (m.embedded || strings.Contains(strings.ToLower(m.Text), "was read on") ||
		strings.Contains(strings.ToLower(m.Text), "was displayed") || strings.Contains(strings.ToLower(m.Text), "your message")) {
		return true
	}
	return false
}

// readSubject is the subject of a read receipt in the common clients.
var readSubject = regexp.MustCompile(`^(read|not read|read receipt|return receipt|displayed|gelesen|ungelesen|lu|non lu|leído|leido|lido|letto|gelezen|прочитано|已读|已讀|開封済み|읽음)\s*:`)

// isChallenge reports a challenge-response request: a spam filter asking
// us to prove we are human before our mail is delivered. Answering one
// would confirm the ballot address to a stranger's filter; it is recorded
// and never answered.
func isChallenge(m *Message) bool {
	h := &m.Header
	for _, k := range []string{"X-Boxbe-Pending", "X-Challenge", "X-Spamarrest-Noauth", "X-SpamArrest-Challenge", "X-Sender-Verification"} {
		if h.Has(k) {
			return true
		}
	}
	text := m.Subject + "\n" + m.Text
	if len(text) > 4000 {
		text = text[:4000]
	}
	return matchesChallenge(text)
}

// matchesChallenge is challengeText.MatchString(text), without the regular
// expression (most of the time classifying took) when text has none of the
// words every one of its branches holds. The check is on lower case; "ſ"
// is the one letter that (?i) folds onto a letter of these words (s) and
// lower case does not.
func matchesChallenge(text string) bool {
	lower := strings.ToLower(text)
	for _, w := range []string{"verif", "human", "real", "challenge", "held", "spam", "ſpam", "boxbe"} {
		if strings.Contains(lower, w) {
			return challengeText.MatchString(text)
		}
	}
	return false
}

// challengeText is the wording of challenge-response systems (Boxbe,
// SpamArrest, Mailbug, Bluebottle and similar).
var challengeText = regexp.MustCompile(`(?i)(please\s+verify\s+(that\s+)?you('|\s+a)re\s+(a\s+)?(human|real|person)|verify\s+(yourself|your\s+(email|address|identity))\s+(to|so\s+that|in\s+order)|(sender|email)\s+verification\s+(request|required)|confirm\s+(that\s+)?you('|\s+a)re\s+(a\s+)?(human|real\s+person)|prove\s+(that\s+)?you('|\s+a)re\s+(a\s+)?(human|real)|challenge[-\s+]response|your\s+(message|email)\s+(is|has\s+been)\s+(being\s+)?held\s+(pending|until)|awaiting\s+(your\s+)?verification|spam\s+?arrest|boxbe|i\s+use\s+.{0,40}to\s+(protect|block).{0,40}spam)`)

// replyPrefix matches the subject of a reply or a forward.
var replyPrefix = regexp.MustCompile(`^\s*(re|fwd?|aw|sv|tr|antw)\s*(\[\d+\])?\s*:`)

// toPlainAddress reports whether m was sent to box's address without a tag.
func toPlainAddress(m *Message, box Mailbox) bool {
	for _, r := range m.Recipients {
		if at := strings.LastIndexByte(r, '@'); at >= 0 && strings.EqualFold(r[:at], box.Local) && strings.EqualFold(r[at+1:], box.Domain) {
			return true
		}
	}
	return false
}

// daemonLocalPart matches sender local parts used by mail systems.
var daemonLocalPart = regexp.MustCompile(`^(mailer[-_.]?daemon|mail[-_.]?daemon|mdaemon|po+st[-_.]?master|bounces?|mail[-_.]?delivery|mailer|mail[-_.]?admin)([-_.+].*)?$`)

func localPart(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return addr[:at]
	}
	return addr
}

// fromMailSystem reports whether the sender is a mail system rather than a
// person.
func fromMailSystem(m *Message) bool {
	if daemonLocalPart.MatchString(localPart(m.From)) {
		return true
	}
	name := strings.ToLower(m.FromName)
	return strings.Contains(name, "mailer-daemon") || strings.Contains(name, "mail delivery") ||
		strings.Contains(name, "postmaster") || strings.Contains(name, "mail administrator") ||
		strings.Contains(name, "delivery subsystem") || strings.Contains(name, "mail system")
}

// bounceSubject matches the subjects mail systems give non-delivery reports.
var bounceSubject = regexp.MustCompile(`(?i)(undeliver|undelivered mail|mail failed|mail failure|delivery status|failed|failure|error|returned mail|return(ed)? to sender|delivery (status notification|failure|failed|has failed|problem|report|notification)|failure notice|non[- ]?delivery|mail delivery (failed|failure|system)|could not be delivered|couldn't be delivered|not delivered|delivery unsuccessful|mail system error|message not deliverable|unzustellbar|nicht zugestellt|non remis|non recapitabile|no se puede entregar|onbestelbaar|permanent error|failed delivery|rejected|delivery notification|warning: could not send|mail could not be|message you sent|bounce|nondeliverable|error sending|delivery error|returned|unknown user|user unknown|mailbox (is )?full|quota)`)

// bounceSubjectWords are the phrases of bounceSubject, written out: for an
// ASCII subject, containing one (in lower case) is matching it.
var bounceSubjectWords = []string{"undeliver", "mail failed", "mail failure", "delivery status", "failed", "failure", "error",
	"returned mail", "return to sender", "returned to sender", "delivery problem", "delivery report", "delivery notification",
	"non-delivery", "non delivery", "nondelivery", "mail delivery system", "could not be delivered", "couldn't be delivered",
	"not delivered", "delivery unsuccessful", "mail system error", "message not deliverable", "unzustellbar", "nicht zugestellt",
	"non remis", "non recapitabile", "no se puede entregar", "onbestelbaar", "permanent error", "failed delivery", "rejected",
	"warning: could not send", "mail could not be", "message you sent", "bounce", "nondeliverable", "error sending",
	"delivery error", "returned", "unknown user", "user unknown", "mailbox full", "mailbox is full", "quota"}

// matchesBounceSubject is bounceSubject.MatchString(subject): for an ASCII
// subject (nearly all) by its phrases, as a regular expression of so many
// branches under (?i) takes a while on every message.
func matchesBounceSubject(subject string) bool {
	for i := 0; i < len(subject); i++ {
		if subject[i] >= utf8.RuneSelf {
			return bounceSubject.MatchString(subject)
		}
	}
	lower := strings.ToLower(subject)
	for _, w := range bounceSubjectWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// bounceBody matches the wording of plain-text (non-RFC 3464) bounces from
// common MTAs: qmail, Postfix, Exim, Sendmail, Exchange, Notes and others.
var bounceBody = regexp.MustCompile(`(?i)(this is the qmail-send program|i'm afraid i wasn't able to deliver|this is the mail system at host|this message was created automatically by mail delivery software|the following addresses had permanent fatal errors|transcript of session follows|this is the mailer-daemon|could not be delivered to|invalid user address|no such user here|mailbox is full|"notificationtype"\s*:\s*"(bounce|complaint)"|"bouncetype"\s*:|delivery to the following recipients? (failed|has failed|was aborted)|your message did not reach some or all of the intended recipients|delivery has failed to these recipients|could not be delivered to one or more recipients|message could not be delivered|undeliverable message|was not delivered to|permanent error|a message that you sent could not be delivered|unable to deliver|delivery failed|could not deliver|recipient address rejected|user unknown|no such user|mailbox unavailable|host or domain name not found|said: 5\d\d|\b5\.\d{1,3}\.\d{1,3}\b|your mail to the following recipients could not be delivered|the original message was received at|message delivery failed|this is an automatically generated delivery status notification|delivery status notification)`)

// forwardSubject matches a person forwarding a message.
var forwardSubject = regexp.MustCompile(`(?i)^\s*(fwd?|tr|wg|rv|enc|i)\s*:`)

// isBounce reports a non-delivery report.
func isBounce(m *Message) bool {
	// RFC 3464 (DSN): multipart/report; report-type=delivery-status, or a
	// message/delivery-status part anywhere.
	if m.deliveryStatus || (m.mediaType == "multipart/report" && strings.Contains(m.reportType, "delivery-status")) {
		return true
	}
	// RFC 5965 (ARF): a feedback report is a delivery-side report about our
	// mail too; like a bounce it is recorded and never answered.
	if m.feedbackReport || (m.mediaType == "multipart/report" && m.reportType == "feedback-report") {
		return true
	}
	// Exim names the failed recipients in its own header.
	if m.Header.Has("X-Failed-Recipients") {
		return true
	}
	// Exchange marks its non-delivery reports.
	if m.Header.Has("X-MS-Exchange-Message-Is-Ndr") {
		return true
	}
	daemon := fromMailSystem(m)
	nullSender := strings.TrimSpace(m.Header.Get("Return-Path")) == "<>"
	subject := matchesBounceSubject(m.Subject)
	if daemon && (subject || m.embedded) {
		return true
	}
	programSender := daemon || isNoReply(localPart(m.From))
	// The body's wording counts only from a sender or with a subject that
	// could be a mail system's: a member's reply (nearly every message) is
	// not searched, which is most of the time classifying takes.
	if programSender || nullSender || subject || m.From == "" {
		body := m.Text
		if body == "" && m.HTML != "" {
			body = htmlToText(m.HTML, false)
		}
		if len(body) > 20000 {
			body = body[:20000]
		}
		bodyMatch := bounceBody.MatchString(body)
		forwarded := forwardSubject.MatchString(m.Subject) && !programSender && !nullSender
		if bodyMatch && !forwarded {
			return true
		}
		// RFC 3464 §2 in spirit: a report from the null sender that returns
		// the original message (or its headers).
		if nullSender && m.embedded && (subject || bodyMatch || programSender) {
			return true
		}
	}
	// Microsoft's feedback loop (JMRP) sends complaints as a plain
	// message with the original attached.
	if m.embedded && strings.HasPrefix(strings.ToLower(m.Subject), "complaint about message from") {
		return true
	}
	// Apple Mail's unsubscribe message (X-Apple-Unsubscribe) is feedback
	// from a mail client, handled like a complaint report.
	if strings.EqualFold(strings.TrimSpace(m.Header.Get("X-Apple-Unsubscribe")), "true") {
		return true
	}
	return false
}

// autoReplySubject matches the subjects of vacation and other automatic
// replies, in several languages.
var autoReplySubject = regexp.MustCompile(`(?i)(^|\W)(out of (the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|autorespons|automatische antwort|abwesenheitsnotiz|r[ée]ponse automatique|absence du bureau|respuesta autom[áa]tica|fuera de la oficina|risposta automatica|fuori sede|resposta autom[áa]tica|automatisch antwoord|automatiskt svar|automatisk svar|autovastaus|automatyczna odpowied|odpowied[źz] automatyczna|автоответ|автоматический ответ|自動応答|自动回复|自動回覆|vacation( reply| message)?:|away from (the )?office|\[auto[- ]generated\]|ticket received)`)

// NoAnswer says why m must not be answered by mail to recipient, or ""
// when it may be. Machines are never answered (no mail loops, no
// backscatter): a bounce, an automatic reply, an empty or null sender, a
// mail-system or no-reply address, our own address.
func NoAnswer(m *Message, recipient string, box Mailbox) string {
	switch {
	case m == nil:
		return "unreadable message"
	case strings.TrimSpace(recipient) == "":
		return "no recipient"
	case m.From == "":
		return "empty sender"
	case strings.TrimSpace(m.Header.Get("Return-Path")) == "<>":
		return "null sender (Return-Path <>)"
	case box.Owns(m.From) || box.Owns(recipient):
		return "our own address"
	}
	for _, a := range []string{m.From, recipient} {
		lp := strings.ToLower(localPart(a))
		if daemonLocalPart.MatchString(lp) || isNoReply(lp) {
			return "mail-system or no-reply address " + a
		}
	}
	if isBounce(m) {
		return "a delivery report"
	}
	if IsAutoReply(m) {
		return "an automatic reply"
	}
	return ""
}

// IsAutoReply reports a message sent by a program rather than a person.
func IsAutoReply(m *Message) bool {
	h := &m.Header
	// RFC 3834 §5: Auto-Submitted other than "no" marks an automatic
	// message (auto-replied, auto-generated, auto-notified).
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && !strings.HasPrefix(v, "no") {
		return true
	}
	// De-facto headers of vacation programs and autoresponders.
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply", "X-Autogenerated", "X-Auto-Generated"} {
		if v := strings.ToLower(strings.TrimSpace(h.Get(k))); v != "" && v != "no" && v != "false" {
			return true
		}
	}
	// RFC 2076 §3.9 / RFC 3834 §3.1.8: Precedence bulk, junk, list and
	// auto_reply are never answered.
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "junk", "list", "auto_reply", "auto-reply":
		return true
	}
	// Apple Mail's vacation responder.
	if strings.EqualFold(strings.TrimSpace(h.Get("X-Apple-Action")), "vacation") {
		return true
	}
	// Exchange: an inbox rule loop marker means the message was sent by a
	// rule; X-Auto-Response-Suppress alone is set on ordinary replies too, so
	// it counts only with an out-of-office subject or a null sender.
	if h.Has("X-MS-Exchange-Inbox-Rules-Loop") {
		return true
	}
	subject := autoReplySubject.MatchString(m.Subject)
	if subject {
		return true
	}
	if strings.TrimSpace(h.Get("Return-Path")) == "<>" {
		// RFC 3834 §3.3: automatic responses go to a null reverse-path.
		return true
	}
	if xars := strings.ToLower(h.Get("X-Auto-Response-Suppress")); xars != "" && strings.Contains(strings.ToLower(m.Subject), "oof") {
		return true
	}
	// Senders that are programs by name.
	lp := localPart(m.From)
	if daemonLocalPart.MatchString(lp) || isNoReply(lp) {
		return true
	}
	return false
}

var noReplyPattern = regexp.MustCompile(`^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|auto[-_.]?reply|autoresponder|mailer|notifications?)([-_.+].*)?$`)

func isNoReply(local string) bool {
	return noReplyPattern.MatchString(local)
}
