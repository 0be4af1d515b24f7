package ballots

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Why a message was refused, deferred or bounced: a small fixed set, so
// that reports and metric labels stay bounded. ClassifyFailure picks one.
const (
	ReasonUnknownMailbox = "unknown_mailbox" // X.1.1, X.1.6, X.1.10 (as Microsoft uses it), X.2.1: no such user, disabled
	ReasonMailboxFull    = "mailbox_full"    // X.2.2: over quota
	ReasonPolicy         = "policy"          // X.7.x: spam, block lists, DMARC, reputation
	ReasonGreylisting    = "greylisting"     // a temporary refusal that says so
	ReasonThrottled      = "throttled"       // X.4.5, X.5.3, 421/452 rates and quotas
	ReasonTLS            = "tls"             // X.7.10, X.7.11, certificate and STARTTLS trouble
	ReasonDNS            = "dns"             // X.1.2, X.4.4, null MX: no such domain, no route
	ReasonNetwork        = "network"         // no reply at all: refused, cut, timed out
	ReasonOther          = "other"
)

// FailureReasons lists every reason, in the order reports show them.
var FailureReasons = []string{ReasonUnknownMailbox, ReasonMailboxFull, ReasonPolicy, ReasonGreylisting,
	ReasonThrottled, ReasonTLS, ReasonDNS, ReasonNetwork, ReasonOther}

// enhancedRe finds an RFC 3463 status code (class.subject.detail) at the
// start of a reply text or after the basic code.
var enhancedRe = regexp.MustCompile(`^(?:[245]\d\d[ -])?([245])\.(\d{1,3})\.(\d{1,3})\b`)

// ParseEnhanced returns the RFC 3463 enhanced status code at the start of
// a reply ("550 5.1.1 user unknown" or "5.1.1 user unknown"), "" if none.
func ParseEnhanced(reply string) string {
	m := enhancedRe.FindStringSubmatch(strings.TrimSpace(reply))
	if m == nil {
		return ""
	}
	return m[1] + "." + m[2] + "." + m[3]
}

// FormatReply is the reply as stored on a row: the basic code, the
// enhanced code when the server gave one, and the text, as the server
// wrote it ("550 5.1.1 user unknown").
func FormatReply(code int, enhanced [3]int, text string) string {
	if enhanced[0] < 2 || enhanced[1] < 0 || enhanced[2] < 0 {
		return fmt.Sprintf("%d %s", code, text)
	}
	return fmt.Sprintf("%d %d.%d.%d %s", code, enhanced[0], enhanced[1], enhanced[2], text)
}

// ClassifyFailure returns the reason (one of FailureReasons) for a reply
// with basic code code (0 when there was no reply: a network error), the
// RFC 3463 enhanced code enhanced ("" if none) and text: what the
// enhanced code says when it is specific, else what the words say.
func ClassifyFailure(code int, enhanced, text string) string {
	t := strings.ToLower(text)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(t, w) {
				return true
			}
		}
		return false
	}
	// Greylisting (RFC 6647) has no code of its own: it is a temporary
	// refusal, mostly 450/451 4.7.1 or 4.2.0, that says so.
	if has("greylist", "graylist", "grey-list", "gray-list") {
		return ReasonGreylisting
	}
	var subject, detail int
	if parts := strings.Split(enhanced, "."); len(parts) == 3 {
		subject, _ = strconv.Atoi(parts[1])
		detail, _ = strconv.Atoi(parts[2])
	}
	switch {
	case subject == 1 && detail == 10 && has("null mx"):
		return ReasonDNS // RFC 7505: the domain takes no mail
	// RFC 3463 §3.2 X.1.1 bad destination mailbox, X.1.6 moved; X.1.10
	// as Microsoft 365 uses it ("RecipientNotFound"); X.2.1 disabled.
	case subject == 1 && (detail == 1 || detail == 6 || detail == 10) || subject == 2 && detail == 1:
		return ReasonUnknownMailbox
	case subject == 2 && detail == 2: // X.2.2 mailbox full
		return ReasonMailboxFull
	case subject == 1 && detail == 2, subject == 4 && detail == 4:
		// X.1.2 bad destination system, X.4.4 unable to route
		return ReasonDNS
	case subject == 7 && (detail == 10 || detail == 11), subject == 7 && detail == 4 && has("tls"):
		// RFC 5248: X.7.10 encryption needed, X.7.11 required
		return ReasonTLS
	case subject == 4 && detail == 5, subject == 5 && detail == 3:
		// X.4.5 mail system congestion, X.5.3 too many recipients
		return ReasonThrottled
	case subject == 7:
		return ReasonPolicy
	}
	switch {
	case has("user unknown", "unknown user", "no such user", "does not exist", "mailbox unavailable",
		"recipient not found", "no mailbox", "invalid recipient", "address rejected: user"):
		return ReasonUnknownMailbox
	case has("mailbox full", "over quota", "quota exceeded", "insufficient storage", "mailbox is full"):
		return ReasonMailboxFull
	case has("tls", "x509", "certificate", "handshake"):
		return ReasonTLS
	case has("no such host", "nxdomain", "lookup ", "no mx", "host not found", "domain not found"):
		return ReasonDNS
	case has("spam", "blocked", "blacklist", "blocklist", "block list", "policy", "reputation",
		"dmarc", "spf", "dkim", "denied", "abuse"):
		return ReasonPolicy
	case code == 421 || code == 452 || has("rate", "too many", "try again later", "throttl", "quota"):
		return ReasonThrottled
	case code == 0:
		return ReasonNetwork
	}
	return ReasonOther
}

// Recipient domain classes: the mailbox providers most members use, one
// label each, and "other", so reports and metric labels stay bounded.
const (
	DomainGmail     = "gmail"
	DomainMicrosoft = "microsoft"
	DomainYahoo     = "yahoo"
	DomainICloud    = "icloud"
	DomainOther     = "other"
)

// DomainClasses lists every domain class, in the order reports show them.
var DomainClasses = []string{DomainGmail, DomainMicrosoft, DomainYahoo, DomainICloud, DomainOther}

// domainClasses maps a recipient domain to its class; a domain not here
// is DomainOther.
var domainClasses = map[string]string{
	"gmail.com": DomainGmail, "googlemail.com": DomainGmail,
	"outlook.com": DomainMicrosoft, "hotmail.com": DomainMicrosoft, "live.com": DomainMicrosoft, "msn.com": DomainMicrosoft,
	"yahoo.com": DomainYahoo, "ymail.com": DomainYahoo, "aol.com": DomainYahoo,
	"icloud.com": DomainICloud, "me.com": DomainICloud, "mac.com": DomainICloud,
}

// DomainClass returns the class of addr's domain (one of DomainClasses).
func DomainClass(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if c, ok := domainClasses[strings.ToLower(strings.TrimSpace(addr[at+1:]))]; ok {
		return c
	}
	return DomainOther
}

// domainClassSQL is DomainClass in SQL over the address column col.
func domainClassSQL(col string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CASE lower(split_part(%s, '@', 2))", col)
	for _, class := range DomainClasses[:len(DomainClasses)-1] {
		var ds []string
		for d, c := range domainClasses {
			if c == class {
				ds = append(ds, d)
			}
		}
		sort.Strings(ds)
		for _, d := range ds {
			fmt.Fprintf(&b, " WHEN '%s' THEN '%s'", d, class)
		}
	}
	fmt.Fprintf(&b, " ELSE '%s' END", DomainOther)
	return b.String()
}
