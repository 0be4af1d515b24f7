package message

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"unicode/utf8"
)

// corpusSeeds adds up to limit files of dir (relative to the corpus) as
// seeds, in name order.
func corpusSeeds(f *testing.F, dir string, limit int) {
	entries, err := os.ReadDir(filepath.Join(corpusDir(), dir))
	if err != nil {
		return // no corpus: the inline seeds still run
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	step := max(1, len(names)/max(1, limit))
	for i := 0; i < len(names); i += step {
		if b, err := os.ReadFile(filepath.Join(corpusDir(), dir, names[i])); err == nil {
			f.Add(b)
		}
	}
}

// FuzzDSN feeds the DSN reader whole messages (seeded with the bounces of
// ~80 MTAs) and, the same bytes, as a bare delivery-status part.
func FuzzDSN(f *testing.F) {
	corpusSeeds(f, "set-of-emails/maildir/bsd", 60)
	f.Add([]byte("Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822;a@b\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550\n  user unknown\n"))
	f.Add([]byte("Status: 4.2.2 (mailbox full)\n\n\n\nStatus:\nAction: delayed\n"))
	check := func(t *testing.T, b Bounce) {
		if b.Status != "" && (findStatus(b.Status, true) != b.Status) {
			t.Errorf("status %q is not a status code", b.Status)
		}
		if !utf8.ValidString(b.Diagnostic) || len(b.Diagnostic) > maxDiagnostic {
			t.Errorf("diagnostic invalid or too long (%d bytes)", len(b.Diagnostic))
		}
		if b.Status != "" && b.Hard != permanentStatus(b.Status) {
			t.Errorf("status %q but hard=%v", b.Status, b.Hard)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if m, err := Parse(raw); err == nil {
			check(t, ReadBounce(m))
		}
		m := &Message{dsnFields: raw}
		check(t, ReadBounce(m))
	})
}

// FuzzReplyText reads the reply text of whole messages (seeded with the
// corpus's client replies) and checks the sender from their
// Authentication-Results: neither may panic, and the reply text is valid
// UTF-8.
func FuzzReplyText(f *testing.F) {
	corpusSeeds(f, "discourse/spec/fixtures/emails", 40)
	corpusSeeds(f, "talon/tests/fixtures", 20)
	f.Add([]byte("From: a@example.net\r\nAuthentication-Results: mx.example.org; dkim=pass header.d=example.net; dmarc=fail (p=reject) header.from=example.net\r\n" +
		"Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=\"a\"@example.net\r\n\r\nYES\r\n\r\nOn Mon, 1 Jan 2024, Ballots <ballots@example.org> wrote:\r\n> Reply YES or NO\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw)
		if err != nil {
			return
		}
		r := ReplyText(m)
		if !utf8.ValidString(r) {
			t.Errorf("ReplyText is not valid UTF-8: %q", r)
		}
		a := CheckSender(m.Header, "mx.example.org", m.From)
		if a.OK && !a.Checked {
			t.Errorf("checked nothing but OK with an authserv-id configured")
		}
		_ = CheckSender(m.Header, "", m.From)
	})
}
