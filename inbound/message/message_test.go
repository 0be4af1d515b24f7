package message

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// corpusDataFiles returns every corpus file except the notes and licences
// (README, LICENSE, INDEX, FILES-COMMITS).
func corpusDataFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(corpusDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.ToUpper(d.Name())
		for _, meta := range []string{"README", "LICENSE", "INDEX", "FILES-COMMITS"} {
			if strings.HasPrefix(name, meta) {
				return nil
			}
		}
		rel, _ := filepath.Rel(corpusDir(), p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wrapBody makes a message of a body-only corpus file (reply bodies,
// signatures, HTML fragments).
func wrapBody(body []byte) []byte {
	ct := "text/plain; charset=utf-8"
	if strings.Contains(strings.ToLower(string(body[:min(len(body), 2000)])), "<html") ||
		strings.Contains(strings.ToLower(string(body[:min(len(body), 2000)])), "<div") {
		ct = "text/html; charset=utf-8"
	}
	return append([]byte("From: Member <member@example.net>\r\nTo: ballots+v-abcdefghijklmnopqrstuvwx@example.org\r\n"+
		"Subject: Re: Your ballot\r\nContent-Type: "+ct+"\r\n\r\n"), body...)
}

// TestParseCorpus runs every corpus file through Parse and Classify: the
// files that are emails as they are, the body-only files (reply bodies,
// signatures, HTML) wrapped in a minimal header.
func TestParseCorpus(t *testing.T) {
	needCorpus(t)
	files := corpusDataFiles(t)
	mails, bodies, parsed, withProblems := 0, 0, 0, 0
	classes := map[Class]int{}
	for _, rel := range files {
		raw := readCorpus(t, rel)
		if looksLikeMail(raw) {
			mails++
		} else {
			bodies++
			// The bare body is not a message; Parse must say so or cope.
			if _, err := Parse(raw); err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("%s (bare body): %v", rel, err)
			}
			raw = wrapBody(raw)
		}
		m, err := Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		parsed++
		if len(m.Problems) > 0 {
			withProblems++
		}
		for name, s := range map[string]string{"Text": m.Text, "HTML": m.HTML, "Subject": m.Subject, "FromName": m.FromName, "ReplyText": ReplyText(m)} {
			if !utf8.ValidString(s) {
				t.Errorf("%s: %s is not valid UTF-8", rel, name)
			}
		}
		if m.Parts < 1 {
			t.Errorf("%s: Parts = %d", rel, m.Parts)
		}
		c := Classify(m, testBox)
		if c == "" {
			t.Errorf("%s: empty class", rel)
		}
		classes[c]++
	}
	t.Logf("corpus: %d files (%d emails, %d bodies wrapped), %d parsed, %d with problems noted, classes %v",
		len(files), mails, bodies, parsed, withProblems, classes)
	if parsed <= 900 {
		t.Errorf("parsed %d corpus files, want > 900", parsed)
	}
	if mails < 800 {
		t.Errorf("found %d emails in the corpus, want at least 800", mails)
	}
}

func TestParseHeader(t *testing.T) {
	raw := "Message-ID: <abc@mail.example.net>\r\n" +
		"In-Reply-To: <ballot-1@example.org>\r\n" +
		"References: <x@example.org>\r\n <ballot-1@example.org>\r\n" +
		"From: =?UTF-8?Q?Jos=C3=A9_P=C3=A9rez?= <Jose.Perez@Example.NET>\r\n" +
		"Reply-To: Other <OTHER@example.net>\r\n" +
		"To: Ballots <ballots+v-ABCDEFGHIJKLMNOPQRSTUVWX@example.org>, a@example.net\r\n" +
		"Cc: A@example.net, b@example.net\r\n" +
		"Delivered-To: ballots@example.org\r\n" +
		"X-Original-To: ballots+v-abcdefghijklmnopqrstuvwx@example.org\r\n" +
		"Subject: =?ISO-8859-1?Q?Re:_Vot=E9?=\r\n" +
		"Date: Tue, 3 Mar 2026 09:00:00 +0100\r\n" +
		"Content-Type: text/plain; charset=iso-8859-1\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Oui, j'approuve =E0 100 %=\r\n.\r\n"
	m, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("MessageID", m.MessageID, "abc@mail.example.net")
	check("InReplyTo", strings.Join(m.InReplyTo, " "), "ballot-1@example.org")
	check("References", strings.Join(m.References, " "), "x@example.org ballot-1@example.org")
	check("From", m.From, "jose.perez@example.net")
	check("FromName", m.FromName, "José Pérez")
	check("ReplyTo", m.ReplyTo, "other@example.net")
	check("Recipients", strings.Join(m.Recipients, " "),
		"ballots+v-abcdefghijklmnopqrstuvwx@example.org a@example.net b@example.net ballots@example.org")
	check("Subject", m.Subject, "Re: Voté")
	check("Text", m.Text, "Oui, j'approuve à 100 %.\n")
	if m.Date.IsZero() || m.Date.UTC().Hour() != 8 {
		t.Errorf("Date = %v", m.Date)
	}
	if len(m.Problems) != 0 {
		t.Errorf("Problems = %q", m.Problems)
	}
}

func TestParseDamage(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		text     string
		problems bool
	}{
		{"unknown charset falls back to UTF-8", "From: a@b.c\nContent-Type: text/plain; charset=x-nonsense\n\nYes ✓\n", "Yes ✓\n", true},
		{"unknown charset falls back to windows-1252", "From: a@b.c\nContent-Type: text/plain; charset=x-nonsense\n\nOui \xe0 \x93vous\x94\n", "Oui à “vous”\n", true},
		{"UTF-8 label on latin1 bytes", "From: a@b.c\nContent-Type: text/plain; charset=utf-8\n\nJa, f\xfcr\n", "Ja, für\n", true},
		{"latin1 label on UTF-8 bytes", "From: a@b.c\nContent-Type: text/plain; charset=iso-8859-1\n\nJa, für\n", "Ja, für\n", true},
		{"UTF-7", "From: a@b.c\nContent-Type: text/plain; charset=utf-7\n\nHi +AOk-t+AOk-\n", "Hi été\n", false},
		{"damaged base64", "From: a@b.c\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nWUVT!\nIQ\n", "YES!", true},
		{"missing closing boundary", "From: a@b.c\nContent-Type: multipart/alternative; boundary=zz\n\n--zz\nContent-Type: text/plain\n\nNO\n--zz\nContent-Type: text/html\n\n<p>NO</p>", "NO", true},
		{"multipart without parts", "From: a@b.c\nContent-Type: multipart/alternative; boundary=zz\n\nYES\n", "YES\n", true},
		{"unfolded part header", "From: a@b.c\nContent-Type: multipart/mixed;\n boundary=zz\n\n--zz\nContent-Type: text/plain;\ncharset=utf-8\n\nyes\n--zz--\n", "yes", true},
		{"attachment skipped", "From: a@b.c\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nNO\n--zz\nContent-Type: text/plain\n\nYES\n--zz--\n", "YES", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if m.Text != tt.text {
				t.Errorf("Text = %q, want %q", m.Text, tt.text)
			}
			if got := len(m.Problems) > 0; got != tt.problems {
				t.Errorf("Problems = %q, want some: %v", m.Problems, tt.problems)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, MaxMessageSize+1)
	if _, err := Parse(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: err = %v, want ErrTooLarge", err)
	}
	deep := "From: a@b.c\nContent-Type: multipart/mixed; boundary=b0\n\n"
	for i := 1; i <= MaxDepth+2; i++ {
		deep += fmt.Sprintf("--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i-1, i)
	}
	if _, err := Parse([]byte(deep)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep: err = %v, want ErrTooDeep", err)
	}
	many := "From: a@b.c\nContent-Type: multipart/mixed; boundary=b\n\n" + strings.Repeat("--b\n\nx\n", MaxParts+1) + "--b--\n"
	if _, err := Parse([]byte(many)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("many parts: err = %v, want ErrTooLarge", err)
	}
	for _, raw := range []string{"", "\n\n", "no header here at all\n"} {
		if _, err := Parse([]byte(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q): err = %v, want ErrMalformed", raw, err)
		}
	}
}
