package message

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// normalizeSpace collapses all whitespace so that comparisons ignore line
// wrapping and blank lines.
func normalizeSpace(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\u00a0", " ")), " ")
}

// trimmerDifferByDesign are the email_reply_trimmer cases where ReplyText
// deliberately differs: the trimmer keeps quoted lines that precede new
// text and keeps forwarded content, while ReplyText removes quoted regions
// wherever they are (bottom-posting) and everything from a forward marker.
var trimmerDifferByDesign = map[string]bool{
	"embedded_email_7.txt":  true,
	"embedded_email_16.txt": true,
	"embedded_email_17.txt": true,
	"forwarded_message.txt": true,
	"quote_and_text.txt":    true,
	"quote_only.txt":        true,
}

// TestReplyTextTrimmer compares ReplyText with email_reply_trimmer's
// expected trimmed output for each of its test bodies.
func TestReplyTextTrimmer(t *testing.T) {
	needCorpus(t)
	dir := filepath.Join(corpusDir(), "email_reply_trimmer/test")
	entries, err := os.ReadDir(filepath.Join(dir, "emails"))
	if err != nil {
		t.Fatal(err)
	}
	pass, total := 0, 0
	var failed []string
	for _, e := range entries {
		body, err := os.ReadFile(filepath.Join(dir, "emails", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dir, "trimmed", e.Name()))
		if err != nil {
			continue
		}
		total++
		got := ReplyText(&Message{Text: string(body)})
		if normalizeSpace(got) == normalizeSpace(string(want)) {
			pass++
			continue
		}
		failed = append(failed, e.Name())
		if !trimmerDifferByDesign[e.Name()] {
			t.Errorf("%s differs from the trimmer's output", e.Name())
		}
		t.Logf("%s:\n--- got\n%s\n--- want\n%s", e.Name(), got, want)
	}
	ratio := float64(pass) / float64(max(1, total))
	t.Logf("reply trimmer: %d/%d equal (%.2f); differ: %v", pass, total, ratio, failed)
	if total < 60 {
		t.Errorf("found %d trimmer cases, want at least 60", total)
	}
	if ratio < 0.90 {
		t.Errorf("pass ratio %.2f, want at least 0.90", ratio)
	}
}

// TestReplyTextHTML checks the HTML-only replies of talon's fixtures: each
// is "Hi. I am fine. Thanks, Alex" above the quoted message.
func TestReplyTextHTML(t *testing.T) {
	needCorpus(t)
	files, err := filepath.Glob(filepath.Join(corpusDir(), "talon/tests/fixtures/html_replies/*.html"))
	if err != nil || len(files) < 9 {
		t.Fatalf("found %d talon HTML replies (%v), want 9", len(files), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got := ReplyText(&Message{HTML: string(b)})
		if normalizeSpace(got) != "Hi. I am fine. Thanks, Alex" {
			t.Errorf("%s: ReplyText = %q", filepath.Base(f), got)
		}
	}
}
