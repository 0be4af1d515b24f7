package message

import (
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	oneChoice    = []Choice{{Number: 1, Name: "Ed Markey"}}
	threeChoices = []Choice{{Number: 1, Name: "Ed Markey"}, {Number: 2, Name: "Ayanna Pressley"}, {Number: 3, Name: "Joe Kennedy"}}
)

const ballotCode = "abcdefghijklmnopqrstuvwx234567ab"

// gmailQuote is a Gmail-style quote of our ballot beneath the reply.
const gmailQuote = `
On Tue, Mar 3, 2026 at 9:00 AM Ballots <ballots+v-` + ballotCode + `@example.org> wrote:

> U.S. Senate, Massachusetts: Ed Markey
> Do you endorse Ed Markey? Reply YES or NO.
> No one else is on this ballot.
>
> Ballot code: ` + ballotCode + `
`

const outlookBlock = `

________________________________
From: Ballots <ballots+v-` + ballotCode + `@example.org>
Sent: Tuesday, March 3, 2026 9:00 AM
To: Member <member@example.net>
Subject: Your ballot: U.S. Senate

Do you endorse Ed Markey? Reply YES or NO.
No one else is on this ballot. Yes, it matters.
Ballot code: ` + ballotCode + `
`

func textMessage(body string) *Message {
	return &Message{Text: body}
}

func TestReadAnswer(t *testing.T) {
	tests := []struct {
		name    string
		m       *Message
		choices []Choice
		want    AnswerKind
		number  int
	}{
		{"top-posted yes, Gmail quote with instructions", textMessage("YES\n" + gmailQuote), oneChoice, AnswerYes, 0},
		{"top-posted no, Gmail quote", textMessage("no\n\n" + gmailQuote), oneChoice, AnswerNo, 0},
		{"Outlook unquoted block", textMessage("Yes" + outlookBlock), oneChoice, AnswerYes, 0},
		{"Outlook unquoted block, no", textMessage("NO" + outlookBlock), oneChoice, AnswerNo, 0},
		{"HTML only with gmail_quote", &Message{HTML: `<div dir="ltr">No</div><br><div class="gmail_quote"><div class="gmail_attr">On Tue, Mar 3, 2026 Ballots wrote:</div><blockquote class="gmail_quote">Reply YES or NO.<br>Yes means you endorse.<br>Ballot code: ` + ballotCode + `</blockquote></div>`}, oneChoice, AnswerNo, 0},
		{"bottom-posted", textMessage(strings.TrimPrefix(gmailQuote, "\n") + "\nYes\n"), oneChoice, AnswerYes, 0},
		{"yes and no", textMessage("yes and no"), oneChoice, AnswerUnclear, 0},
		{"yes then no on next line", textMessage("Yes\nNo\n"), oneChoice, AnswerUnclear, 0},
		{"yes with prose containing no one", textMessage("Yes. Thanks for organizing, I hope no one is left out."), oneChoice, AnswerYes, 0},
		{"yes please", textMessage("Yes please"), oneChoice, AnswerYes, 0},
		{"I vote yes", textMessage("I vote yes"), oneChoice, AnswerYes, 0},
		{"YES - go Markey", textMessage("YES - go Markey"), oneChoice, AnswerYes, 0},
		{"yes!", textMessage("yes!"), oneChoice, AnswerYes, 0},
		{"oui", textMessage("Oui"), oneChoice, AnswerYes, 0},
		{"nein", textMessage("Nein."), oneChoice, AnswerNo, 0},
		{"nope", textMessage("nope"), oneChoice, AnswerNo, 0},
		{"surname alone, one choice", textMessage("Markey"), oneChoice, AnswerYes, 0},
		{"no idea", textMessage("No idea who this is"), oneChoice, AnswerUnclear, 0},
		{"not sure, yes", textMessage("Not sure, maybe yes"), oneChoice, AnswerUnclear, 0},
		{"greeting then yes", textMessage("Hi,\n\nYes\n\nThanks,\nSam"), oneChoice, AnswerYes, 0},
		{"no with the name", textMessage("No, I support Markey"), oneChoice, AnswerUnclear, 0},
		{"I don't know", textMessage("I don't know"), oneChoice, AnswerUnclear, 0},
		{"yes but negated", textMessage("Yes I do not support him"), oneChoice, AnswerUnclear, 0},
		{"yes then no wait", textMessage("Yes. No, wait."), oneChoice, AnswerUnclear, 0},
		{"sí", textMessage("Sí"), oneChoice, AnswerYes, 0},
		{"y", textMessage("y"), oneChoice, AnswerYes, 0},
		{"NO above quote header", textMessage("NO\nOn Tue, Mar 3, 2026 at 9:00 AM Ballots <ballots@example.org> wrote:\n> Reply YES or NO\n"), oneChoice, AnswerNo, 0},
		{"none with one choice", textMessage("none"), oneChoice, AnswerUnclear, 0},
		{"number 2 of 3", textMessage("2"), threeChoices, AnswerCandidate, 2},
		{"#2", textMessage("#2"), threeChoices, AnswerCandidate, 2},
		{"2.", textMessage("2."), threeChoices, AnswerCandidate, 2},
		{"surname", textMessage("Markey"), threeChoices, AnswerCandidate, 1},
		{"full name lowercase", textMessage("ayanna pressley"), threeChoices, AnswerCandidate, 2},
		{"accented", textMessage("Pressléy"), threeChoices, AnswerCandidate, 2},
		{"I vote for 3", textMessage("I vote for 3, thanks"), threeChoices, AnswerCandidate, 3},
		{"none", textMessage("none"), threeChoices, AnswerNone, 0},
		{"none of them", textMessage("None of them."), threeChoices, AnswerNone, 0},
		{"abstain is not NONE", textMessage("I abstain"), threeChoices, AnswerUnclear, 0},
		{"two candidates", textMessage("Markey or Kennedy"), threeChoices, AnswerUnclear, 0},
		{"two numbers", textMessage("1 and 3"), threeChoices, AnswerUnclear, 0},
		{"number off the ballot", textMessage("7"), threeChoices, AnswerUnclear, 0},
		{"yes with several choices", textMessage("yes"), threeChoices, AnswerUnclear, 0},
		{"number in prose", textMessage("I have 2 questions about this"), threeChoices, AnswerUnclear, 0},
		{"empty", textMessage(""), oneChoice, AnswerUnclear, 0},
		{"only the quote", textMessage(strings.TrimPrefix(gmailQuote, "\n")), oneChoice, AnswerUnclear, 0},
		{"unquoted one-tap list below the answer", textMessage("2\n\nOne tap to answer from your phone (each opens a reply with the answer\n  1. Ed Markey: mailto:ballots+v-x@example.org?subject=Re&body=1\n  3. Joe Kennedy: mailto:ballots+v-x@example.org?subject=Re&body=3\n"), threeChoices, AnswerCandidate, 2},
		{"unquoted clarification below the answer", textMessage("YES\n\nThank you for replying to your ballot in the U.S. Senate race\nWe could not tell what your vote is\n  NO: mailto:x"), oneChoice, AnswerYes, 0},
		{"unquoted rule below the answer", textMessage("Kennedy\n\nHow it works:\n- Answering NO or NONE counts as having voted and supports no candidate.\n- 1. Ed Markey"), threeChoices, AnswerCandidate, 3},
		{"unquoted ballot echo only", textMessage("Do you endorse Ed Markey? Reply YES or NO.\nBallot code: " + ballotCode), oneChoice, AnswerUnclear, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReadAnswer(tt.m, tt.choices, "")
			if got.Kind != tt.want || got.Number != tt.number {
				t.Errorf("ReadAnswer = %+v, want %s %d (reply text %q)", got, tt.want, tt.number, ReplyText(tt.m))
			}
			if got.Kind == AnswerUnclear && got.Reason == "" {
				t.Errorf("unclear answer without a reason")
			}
		})
	}
}

// replyClients are real client replies from the corpus whose reply text is
// replaced by a vote.
var replyClients = []string{
	"talon/tests/fixtures/standard_replies/android.eml",
	"talon/tests/fixtures/standard_replies/aol.eml",
	"talon/tests/fixtures/standard_replies/apple_mail.eml",
	"talon/tests/fixtures/standard_replies/apple_mail_2.eml",
	"talon/tests/fixtures/standard_replies/comcast.eml",
	"talon/tests/fixtures/standard_replies/gmail.eml",
	"talon/tests/fixtures/standard_replies/hotmail.eml",
	"talon/tests/fixtures/standard_replies/iphone.eml",
	"talon/tests/fixtures/standard_replies/outlook.eml",
	"talon/tests/fixtures/standard_replies/sparrow.eml",
	"talon/tests/fixtures/standard_replies/thunderbird.eml",
	"talon/tests/fixtures/standard_replies/yahoo.eml",
	"talon/tests/fixtures/reply-quotations-share-block.eml",
	"discourse/spec/fixtures/emails/android_gmail.eml",
	"discourse/spec/fixtures/emails/dutch.eml",
	"discourse/spec/fixtures/emails/exchange_html_reply.eml",
	"discourse/spec/fixtures/emails/gmail_html_reply.eml",
	"discourse/spec/fixtures/emails/hebrew_reply.eml",
	"discourse/spec/fixtures/emails/html_only.eml",
	"discourse/spec/fixtures/emails/ios_default.eml",
	"discourse/spec/fixtures/emails/iphone_signature.eml",
	"discourse/spec/fixtures/emails/multiline_wrote.eml",
	"discourse/spec/fixtures/emails/on_date_contact_wrote.eml",
	"discourse/spec/fixtures/emails/original_message.eml",
	"discourse/spec/fixtures/emails/quirks_exchange_xars.eml",
	"discourse/spec/fixtures/emails/text_and_html_reply.eml",
	"discourse/spec/fixtures/emails/chinese_reply.eml",
	"discourse/spec/fixtures/emails/reply_with_8bit_encoding.eml",
	"redmine/test/fixtures/mail_handler/outlook_2010_html_only.eml",
	"redmine/test/fixtures/mail_handler/outlook_web_access_2010_html_only.eml",
	"redmine/test/fixtures/mail_handler/issue_update_with_quoted_reply_above.eml",
	"redmine/test/fixtures/mail_handler/issue_update_with_multiple_quoted_reply_above.eml",
	"redmine/test/fixtures/mail_handler/ticket_reply.eml",
}

// loosePattern matches the words of s separated by any whitespace, tags or
// &nbsp; (so text found by ReplyText can be located in the HTML source).
func loosePattern(s string) *regexp.Regexp {
	var parts []string
	for _, w := range strings.Fields(s) {
		parts = append(parts, regexp.QuoteMeta(html.EscapeString(w))+"|"+regexp.QuoteMeta(w))
	}
	for i, p := range parts {
		parts[i] = "(?:" + p + ")"
	}
	return regexp.MustCompile(strings.Join(parts, `(?:\s|<[^>]*>|&nbsp;|\x{a0})+`))
}

// replaceReply puts vote where the sender's reply text is in m (its text
// part, or its HTML part for HTML-only mail). It reports false when the
// reply text cannot be located.
func replaceReply(m *Message, vote string) bool {
	reply := ReplyText(m)
	lines := strings.Split(reply, "\n")
	first, last := strings.TrimSpace(lines[0]), strings.TrimSpace(lines[len(lines)-1])
	if first == "" {
		return false
	}
	field := &m.Text
	if strings.TrimSpace(m.Text) == "" {
		field = &m.HTML
	}
	s := *field
	loc := loosePattern(first).FindStringIndex(s)
	if loc == nil {
		return false
	}
	end := loc[1]
	if len(lines) > 1 {
		l := loosePattern(last).FindStringIndex(s[loc[0]:])
		if l == nil {
			return false
		}
		end = loc[0] + l[1]
	}
	*field = s[:loc[0]] + vote + s[end:]
	return true
}

// TestReadAnswerClients replaces the reply of real client messages with a
// vote and checks that ReadAnswer reads it back; it logs precision and
// recall over the table.
func TestReadAnswerClients(t *testing.T) {
	needCorpus(t)
	votes := []struct {
		text    string
		choices []Choice
		want    AnswerKind
		number  int
	}{
		{"YES", oneChoice, AnswerYes, 0},
		{"NO", oneChoice, AnswerNo, 0},
		{"Markey", oneChoice, AnswerYes, 0},
		{"2", threeChoices, AnswerCandidate, 2},
		{"Markey", threeChoices, AnswerCandidate, 1},
		{"none", threeChoices, AnswerNone, 0},
		{"yes and no", oneChoice, AnswerUnclear, 0},
	}
	total, correct, wrong, unclear, skipped := 0, 0, 0, 0, 0
	sources := append([]string(nil), replyClients...)
	bodies, _ := filepath.Glob(filepath.Join(corpusDir(), "email_reply_parser/test/emails/*.txt"))
	for _, b := range bodies {
		rel, _ := filepath.Rel(corpusDir(), b)
		sources = append(sources, rel)
	}
	for _, rel := range sources {
		raw, err := os.ReadFile(filepath.Join(corpusDir(), rel))
		if err != nil {
			t.Fatal(err)
		}
		if !looksLikeMail(raw) {
			raw = wrapBody(raw)
		}
		for _, v := range votes {
			m, err := Parse(raw)
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			if !replaceReply(m, v.text) {
				skipped++
				t.Logf("%s: reply text %q not found in the part", rel, ReplyText(m))
				break
			}
			total++
			if r := normalizeSpace(ReplyText(m)); r != v.text {
				t.Errorf("%s, vote %q: ReplyText = %q", rel, v.text, r)
			}
			got := ReadAnswer(m, v.choices, "")
			switch {
			case got.Kind == v.want && got.Number == v.number:
				correct++
			case got.Kind == AnswerUnclear:
				unclear++
				t.Errorf("%s, vote %q: unclear (%s); reply text %q", rel, v.text, got.Reason, ReplyText(m))
			default:
				wrong++
				t.Errorf("%s, vote %q: got %+v, want %s %d; reply text %q", rel, v.text, got, v.want, v.number, ReplyText(m))
			}
		}
	}
	decided := correct + wrong
	t.Logf("vote table: %d cases from %d messages (%d skipped): %d correct, %d wrong, %d unclear; precision %.3f recall %.3f",
		total, len(sources), skipped, correct, wrong, unclear,
		float64(correct)/float64(max(1, decided)), float64(correct)/float64(max(1, total)))
	if skipped > len(sources)/4 {
		t.Errorf("%d of %d messages skipped", skipped, len(sources))
	}
}

func FuzzParse(f *testing.F) {
	for _, rel := range []string{
		"discourse/spec/fixtures/emails/gmail_html_reply.eml",
		"discourse/spec/fixtures/emails/big5.eml",
		"set-of-emails/maildir/bsd/rfc3464-01.eml",
		"enmime/testdata/mail/mime-bad-content-type.raw",
		"redmine/test/fixtures/mail_handler/outlook_2010_html_only.eml",
	} {
		if b, err := os.ReadFile(filepath.Join(corpusDir(), rel)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("From: a@b.c\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n+AGEAYgBj-\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw)
		if err != nil {
			return
		}
		for name, s := range map[string]string{"Text": m.Text, "HTML": m.HTML, "Subject": m.Subject, "ReplyText": ReplyText(m)} {
			if !utf8.ValidString(s) {
				t.Errorf("%s is not valid UTF-8: %q", name, s)
			}
		}
		_ = Classify(m, testBox)
	})
}

func FuzzReadAnswer(f *testing.F) {
	f.Add("YES\n"+gmailQuote, 1)
	f.Add("No"+outlookBlock, 1)
	f.Add("2", 3)
	f.Add("none of them", 3)
	for _, rel := range []string{"email_reply_trimmer/test/emails/embedded_email_german_1.txt", "email_reply_parser/test/emails/email_1_2.txt"} {
		if b, err := os.ReadFile(filepath.Join(corpusDir(), rel)); err == nil {
			f.Add(string(b), 2)
		}
	}
	f.Fuzz(func(t *testing.T, text string, n int) {
		choices := threeChoices
		if n%2 == 1 {
			choices = oneChoice
		}
		m := &Message{Text: text}
		if r := ReplyText(m); !utf8.ValidString(r) && utf8.ValidString(text) {
			t.Errorf("ReplyText is not valid UTF-8: %q", r)
		}
		a := ReadAnswer(m, choices, "")
		switch a.Kind {
		case AnswerYes, AnswerNo:
			if len(choices) != 1 {
				t.Errorf("%s with %d choices", a.Kind, len(choices))
			}
		case AnswerCandidate:
			if _, ok := choiceByNumber(choices, a.Number); !ok || len(choices) < 2 {
				t.Errorf("candidate %d with %d choices", a.Number, len(choices))
			}
		case AnswerNone:
			if len(choices) < 2 {
				t.Errorf("none with one choice")
			}
		case AnswerUnclear:
			if a.Reason == "" {
				t.Errorf("unclear without reason")
			}
		default:
			t.Errorf("unknown kind %q", a.Kind)
		}
	})
}
