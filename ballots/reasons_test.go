package ballots_test

import (
	"testing"

	"github.com/ballotd/ballotd/ballots"
)

// Replies are kept whole, enhanced code and all, and classified by the
// enhanced code when it is specific, else by their words.
func TestClassifyFailure(t *testing.T) {
	for _, tc := range []struct {
		code     int
		enhanced [3]int
		text     string
		reply    string
		reason   string
	}{
		{550, [3]int{5, 1, 1}, "user unknown", "550 5.1.1 user unknown", ballots.ReasonUnknownMailbox},
		{550, [3]int{5, 0, 0}, "No such user here", "550 5.0.0 No such user here", ballots.ReasonUnknownMailbox},
		{552, [3]int{5, 2, 2}, "The email account that you tried to reach is over quota", "552 5.2.2 The email account that you tried to reach is over quota", ballots.ReasonMailboxFull},
		{554, [3]int{5, 7, 1}, "Message rejected as spam", "554 5.7.1 Message rejected as spam", ballots.ReasonPolicy},
		{550, [3]int{5, 7, 26}, "Unauthenticated email is not accepted (DMARC)", "550 5.7.26 Unauthenticated email is not accepted (DMARC)", ballots.ReasonPolicy},
		{451, [3]int{4, 7, 1}, "Greylisted, please try again later", "451 4.7.1 Greylisted, please try again later", ballots.ReasonGreylisting},
		{452, [3]int{4, 5, 3}, "Too many recipients", "452 4.5.3 Too many recipients", ballots.ReasonThrottled},
		{421, [3]int{4, 0, 0}, "Rate limited", "421 4.0.0 Rate limited", ballots.ReasonThrottled},
		{530, [3]int{5, 7, 10}, "Must issue a STARTTLS command first", "530 5.7.10 Must issue a STARTTLS command first", ballots.ReasonTLS},
		{550, [3]int{5, 1, 10}, "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "", ballots.ReasonUnknownMailbox},
		{556, [3]int{5, 1, 10}, "Recipient address has null MX", "", ballots.ReasonDNS},
		{550, [3]int{5, 1, 2}, "Host unknown", "550 5.1.2 Host unknown", ballots.ReasonDNS},
		{550, [3]int{-1, -1, -1}, "mailbox unavailable", "550 mailbox unavailable", ballots.ReasonUnknownMailbox},
		{0, [3]int{}, "dial tcp 127.0.0.1:25: connect: connection refused", "0 dial tcp 127.0.0.1:25: connect: connection refused", ballots.ReasonNetwork},
		{0, [3]int{}, "tls: failed to verify certificate: x509: certificate signed by unknown authority", "", ballots.ReasonTLS},
		{0, [3]int{}, "dial tcp: lookup mx.example.net: no such host", "", ballots.ReasonDNS},
		{554, [3]int{5, 6, 0}, "content rejected", "554 5.6.0 content rejected", ballots.ReasonOther},
	} {
		reply := ballots.FormatReply(tc.code, tc.enhanced, tc.text)
		if tc.reply != "" && reply != tc.reply {
			t.Errorf("FormatReply(%d, %v, %q) = %q; want %q", tc.code, tc.enhanced, tc.text, reply, tc.reply)
		}
		enh := ""
		if tc.code != 0 {
			enh = ballots.ParseEnhanced(reply)
		}
		if got := ballots.ClassifyFailure(tc.code, enh, tc.text); got != tc.reason {
			t.Errorf("ClassifyFailure(%d, %q, %q) = %s; want %s", tc.code, enh, tc.text, got, tc.reason)
		}
	}
}

func TestDomainClass(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"a@gmail.com": ballots.DomainGmail, "a@GoogleMail.com": ballots.DomainGmail, "a@hotmail.com": ballots.DomainMicrosoft,
		"a@outlook.com": ballots.DomainMicrosoft, "a@live.com": ballots.DomainMicrosoft, "a@aol.com": ballots.DomainYahoo,
		"a@yahoo.com": ballots.DomainYahoo, "a@icloud.com": ballots.DomainICloud, "a@me.com": ballots.DomainICloud,
		"a@gmail.com.evil.example": ballots.DomainOther, "a@example.org": ballots.DomainOther, "no-at-sign": ballots.DomainOther,
	} {
		if got := ballots.DomainClass(addr); got != want {
			t.Errorf("DomainClass(%q) = %s; want %s", addr, got, want)
		}
	}
}
