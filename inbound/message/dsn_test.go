package message

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadBounceTable checks what ReadBounce extracts from real bounces of
// many MTAs, RFC 3464 and plain text, against values read by hand from
// each file.
func TestReadBounceTable(t *testing.T) {
	needCorpus(t)
	cases := []struct {
		file      string
		status    string
		hard      bool
		recipient string
		diag      string // a substring of the diagnostic
	}{
		{"lhost-postfix-01", "5.1.1", true, "r@p351355.pool.example.ne.jp", "No such user"},
		{"lhost-postfix-17", "5.4.4", true, "kijitora@example.org", "Name service error"},
		{"lhost-sendmail-01", "5.1.1", true, "userunknown@bouncehammer.jp", "User Unknown"},
		{"lhost-sendmail-20", "5.4.6", true, "kijitora@example.com", "Too many hops"},
		{"lhost-exim-01", "5.7.0", false, "kijitora@example.ed.jp", "550 5.7.0"}, // policy: about us, not the address
		{"lhost-exim-07", "", false, "shiba@example.com", "mailbox is full"},
		{"lhost-exim-37", "", true, "kijitora@example.net", "553 neko.example.com does not exist"},
		{"lhost-qmail-01", "5.5.0", true, "kijitora@example.ne.jp", "said: 550 Unknown user"},
		{"lhost-qmail-10", "", true, "kijitora@neko2.example.co.jp", "account is locked"},
		{"lhost-gmail-01", "5.1.1", true, "userunknown@example.jp", "550"},
		{"lhost-gmail-19", "", false, "neko-nyaan@google.example.com", "Storage quota exceeded"},
		{"lhost-office365-01", "5.1.10", true, "kijitora@example.com", "RecipientNotFound"},
		{"lhost-exchange2007-01", "5.1.1", true, "mikeneko@example.co.jp", "RecipNotFound"},
		{"lhost-amazonses-01", "5.0.0", true, "shironeko@example.co.jp", "Unknown address error"},
		{"lhost-yahoo-01", "5.1.1", true, "kijitora@example.org", "User Unknown"},
		{"lhost-courier-01", "5.0.0", true, "kijitora@example.co.jp", "User Unknown"},
		{"lhost-opensmtpd-01", "5.1.1", true, "apdugoaidugoaidugoaeiudggadi@gmail.com", "550 5.1.1"},
		{"lhost-mailru-01", "5.1.1", true, "kijitora@example.jp", "User Unknown"},
		{"lhost-messagingserver-01", "5.1.1", true, "kijitora@example.jp", "User Unknown"},
		{"lhost-zoho-01", "5.1.1", true, "kijitora@example.co.jp", "Invalid Address"},
		{"lhost-domino-01", "", true, "kijitora@example.jp", "not listed in Domino Directory"},
		{"lhost-apachejames-01", "", true, "kijitora@example.com", "no such user here"},
		{"lhost-activehunter-02", "", true, "kijitora@example.ed.jp", "Recipient address rejected: User unknown"},
		{"rfc3464-01", "5.1.1", true, "userunknown@bouncehammer.jp", "User Unknown"},
		{"rhost-google-01", "5.2.1", true, "shironeko@example.ne.jp", "account that you tried to reach is disabled"},
		{"rhost-franceptt-01", "5.1.1", true, "pseudo-local-part-kijitora-nyaaan@orange.fr", "Invalid recipient"},
		// Two failed recipients and no per-message block: the first one.
		{"discourse/spec/fixtures/emails/bounced_email_multiple_status_codes.eml", "5.1.1", true, "linux-admin@b-s-c.co.jp", `unknown user: "linux-admin"`},
		{"discourse/spec/fixtures/emails/hard_bounce_via_verp.eml", "5.1.1", true, "linux-admin@b-s-c.co.jp", "unknown user"},
	}
	mtas := map[string]bool{}
	for _, c := range cases {
		rel := c.file
		if !strings.Contains(rel, "/") {
			rel = "set-of-emails/maildir/bsd/" + rel + ".eml"
			mtas[c.file[:strings.LastIndexByte(c.file, '-')]] = true
		}
		b := ReadBounce(parseCorpus(t, rel))
		if b.Status != c.status || b.Hard != c.hard || b.Recipient != c.recipient || !strings.Contains(b.Diagnostic, c.diag) {
			t.Errorf("%s: got status %q hard %v recipient %q diagnostic %q;\n\twant status %q hard %v recipient %q diagnostic containing %q",
				c.file, b.Status, b.Hard, b.Recipient, b.Diagnostic, c.status, c.hard, c.recipient, c.diag)
		}
	}
	t.Logf("bounce table: %d files (set-of-emails: %d MTAs; discourse)", len(cases), len(mtas))
}

var dsnStatusField = regexp.MustCompile(`(?mi)^Status:\s*([245]\.\d{1,3}\.\d{1,3})`)

// TestReadBounceCorpus reads every bounce of set-of-emails: an RFC 3464
// report's status must be one its delivery-status part states; the share of
// bounces with a status, a diagnostic and a recipient is logged.
func TestReadBounceCorpus(t *testing.T) {
	needCorpus(t)
	dir := filepath.Join(corpusDir(), "set-of-emails/maildir/bsd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total, standard, standardOK, withStatus, withDiag, withRecipient, hard int
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "arf-") || strings.HasPrefix(name, "rfc3834-") {
			continue // feedback reports and auto-replies, not bounces
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		b := ReadBounce(m)
		total++
		if b.Status != "" {
			withStatus++
		}
		if b.Diagnostic != "" {
			withDiag++
		}
		if b.Recipient != "" {
			withRecipient++
		}
		if b.Hard {
			hard++
		}
		if !b.Standard {
			continue
		}
		var stated []string
		for _, sm := range dsnStatusField.FindAllStringSubmatch(string(m.dsnFields), -1) {
			stated = append(stated, sm[1])
		}
		if len(stated) == 0 {
			continue
		}
		standard++
		ok := false
		for _, s := range stated {
			ok = ok || s == b.Status
		}
		if !ok {
			t.Errorf("%s: status %q, delivery-status part states %v", name, b.Status, stated)
			continue
		}
		standardOK++
	}
	t.Logf("bounces read: %d; RFC 3464 with a Status field: %d, status extracted correctly: %d; "+
		"with a status: %d, a diagnostic: %d, a recipient: %d; hard: %d",
		total, standard, standardOK, withStatus, withDiag, withRecipient, hard)
}

func TestPermanentStatus(t *testing.T) {
	for status, want := range map[string]bool{
		"5.0.0": true, "5.1.1": true, "5.1.10": true, "5.2.1": true, "5.4.4": true, "5.5.0": true,
		"5.2.2": false, "5.2.3": false, "5.3.4": false, "5.6.0": false, "5.7.1": false, "5.7.26": false,
		"4.2.2": false, "4.4.1": false, "2.0.0": false, "": false,
	} {
		if got := permanentStatus(status); got != want {
			t.Errorf("permanentStatus(%q) = %v, want %v", status, got, want)
		}
	}
}

// An RFC 5965 abuse report is read as a complaint; a delivery report is
// not.
func TestReadBounceComplaint(t *testing.T) {
	arf := "From: fbl@provider.example\r\nTo: ballots+b-x@example.org\r\nSubject: FW: ballot\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n" +
		"--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: fbl/1.0\r\nVersion: 1\r\n\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: ballots@example.org\r\nTo: member@example.net\r\n\r\n--b--\r\n"
	dsn := "From: MAILER-DAEMON@mx.example\r\nTo: ballots+b-x@example.org\r\nSubject: Undelivered Mail\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n" +
		"Final-Recipient: rfc822; member@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n"
	for raw, want := range map[string]bool{arf: true, dsn: false} {
		m, err := Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := ReadBounce(m).Complaint; got != want {
			t.Errorf("complaint = %v; want %v for\n%s", got, want, raw)
		}
	}
}
