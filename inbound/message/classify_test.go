package message

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testBox = Mailbox{Local: "ballots", Domain: "example.org"}

// labelled is one corpus message with the class its folder or file name
// gives it.
type labelled struct {
	rel  string
	want Class // ClassUnknown means "a person's message": neither bounce nor auto-reply
}

// labelledSet returns the labelled messages: set-of-emails maildir/bsd and
// maildir/err are delivery reports (rfc3834-* are auto-replies),
// maildir/not are not bounces; discourse files are labelled by name.
func labelledSet(t *testing.T) []labelled {
	t.Helper()
	var set []labelled
	for _, dir := range []string{"set-of-emails/maildir/bsd", "set-of-emails/maildir/err", "set-of-emails/maildir/not"} {
		entries, err := os.ReadDir(filepath.Join(corpusDir(), dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			rel := filepath.Join(dir, e.Name())
			switch {
			case strings.HasPrefix(e.Name(), "rfc3834-"):
				set = append(set, labelled{rel, ClassAutoReply})
			case e.Name() == "rb-issue-368-bug.eml":
				// Sisimai files it under "not", yet it is an automatic
				// "Mailbox full" rejection with Auto-Submitted: auto-replied;
				// it is left out of both sets.
			case e.Name() == "lhost-amazonses-12.eml" || e.Name() == "lhost-amazonses-13.eml":
				// SES "notificationType":"Delivery": a success notice sent
				// by a program, not a bounce.
				set = append(set, labelled{rel, ClassAutoReply})
			case strings.HasSuffix(dir, "/not"):
				set = append(set, labelled{rel, ClassUnknown})
			case e.Name() == "make-test-36.eml":
				// A person forwarding a bounce ("Fwd: Returned mail"): a
				// person's message.
				set = append(set, labelled{rel, ClassUnknown})
			default:
				set = append(set, labelled{rel, ClassBounce})
			}
		}
	}
	discourse := "discourse/spec/fixtures/emails"
	entries, err := os.ReadDir(filepath.Join(corpusDir(), discourse))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		want := ClassUnknown
		switch {
		case strings.Contains(name, "bounce"):
			want = ClassBounce
		case strings.HasPrefix(name, "auto_"):
			want = ClassAutoReply
		}
		set = append(set, labelled{filepath.Join(discourse, name), want})
	}
	// Ordinary client replies from the other corpora.
	for _, dir := range []string{"talon/tests/fixtures/standard_replies", "redmine/test/fixtures/mail_handler"} {
		entries, err := os.ReadDir(filepath.Join(corpusDir(), dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".eml") {
				set = append(set, labelled{filepath.Join(dir, e.Name()), ClassUnknown})
			}
		}
	}
	return set
}

// TestClassifyLabelled measures bounce and auto-reply detection on the
// labelled corpus sets and asserts floors.
func TestClassifyLabelled(t *testing.T) {
	needCorpus(t)
	type counts struct{ tp, fp, fn int }
	stats := map[Class]*counts{ClassBounce: {}, ClassAutoReply: {}}
	for _, l := range labelledSet(t) {
		m := parseCorpus(t, l.rel)
		got := Classify(m, testBox)
		for class, c := range stats {
			switch {
			case got == class && l.want == class:
				c.tp++
			case got == class:
				c.fp++
				t.Logf("false %s: %s (labelled %s)", class, l.rel, l.want)
			case l.want == class:
				c.fn++
				t.Logf("missed %s: %s (got %s) subject %q from %q", class, l.rel, got, m.Subject, m.From)
			}
		}
	}
	floors := map[Class]struct{ precision, recall float64 }{
		ClassBounce:    {precision: 0.99, recall: 0.95},
		ClassAutoReply: {precision: 0.99, recall: 0.99},
	}
	for class, c := range stats {
		p := float64(c.tp) / float64(max(1, c.tp+c.fp))
		r := float64(c.tp) / float64(max(1, c.tp+c.fn))
		t.Logf("%s: tp %d fp %d fn %d precision %.3f recall %.3f", class, c.tp, c.fp, c.fn, p, r)
		if p < floors[class].precision || r < floors[class].recall {
			t.Errorf("%s: precision %.3f recall %.3f, want at least %.2f / %.2f", class, p, r, floors[class].precision, floors[class].recall)
		}
	}
}

func mustParse(t *testing.T, raw string) *Message {
	t.Helper()
	m, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFindTag(t *testing.T) {
	tests := []struct {
		to   string
		want Tag
		ok   bool
	}{
		{"ballots+v-ABC234@example.org", Tag{Kind: "v", Token: "abc234"}, true},
		{"Ballots+Nominate@Example.ORG", Tag{Kind: "nominate"}, true},
		{"ballots+join@example.org", Tag{Kind: "join"}, true},
		{"ballots+resend@example.org", Tag{Kind: "resend"}, true},
		{"ballots+c-tok@example.org", Tag{Kind: "c", Token: "tok"}, true},
		{"ballots+u-tok@example.org", Tag{Kind: "u", Token: "tok"}, true},
		{"ballots+s-tok@example.org", Tag{Kind: "s", Token: "tok"}, true},
		{"ballots+q-tok@example.org", Tag{Kind: "q", Token: "tok"}, true},
		{"ballots+b-tok@example.org", Tag{Kind: "b", Token: "tok"}, true},
		{"ballots+v-@example.org", Tag{}, false},
		{"ballots+x-tok@example.org", Tag{}, false},
		{"ballots@example.org", Tag{}, false},
		{"ballots+v-tok@example.net", Tag{}, false},
		{"other+v-tok@example.org", Tag{}, false},
	}
	for _, tt := range tests {
		m := mustParse(t, "From: a@example.net\nTo: x@example.net, "+tt.to+"\n\nhi\n")
		got, ok := FindTag(m, testBox)
		if got != tt.want || ok != tt.ok {
			t.Errorf("FindTag(%s) = %+v, %v; want %+v, %v", tt.to, got, ok, tt.want, tt.ok)
		}
	}
}

func TestClassifyRules(t *testing.T) {
	const code = "abcdefghijklmnopqrstuvwx"
	tests := []struct {
		name string
		raw  string
		want Class
	}{
		{"vote tag", "From: m@example.net\nTo: ballots+v-" + code + "@example.org\n\nYES\n", ClassVote},
		{"nominate tag", "From: m@example.net\nTo: ballots+nominate@example.org\n\nform\n", ClassNomination},
		{"join tag", "From: m@example.net\nTo: ballots+join@example.org\n\nhi\n", ClassJoin},
		{"confirm tag", "From: m@example.net\nTo: ballots+c-tok@example.org\n\nhi\n", ClassConfirm},
		{"unsubscribe tag", "From: m@example.net\nTo: ballots+u-tok@example.org\n\nhi\n", ClassUnsubscribe},
		{"Apple Mail unsubscribe", "From: m@icloud.com\nTo: ballots+u-tok@example.org\nAuto-Submitted: auto-replied\nX-Apple-Unsubscribe: true\n\nunsubscribe\n", ClassUnsubscribe},
		{"staff tag", "From: staff@example.org\nTo: ballots+s-tok@example.org\n\nAPPROVE 12\n", ClassStaff},
		{"questionnaire tag", "From: hq@rivera.example\nTo: ballots+q-tok@example.org\nSubject: Re: Policy questionnaire\n\n1. Yes.\n", ClassQuestionnaire},
		{"verp tag", "From: someone@example.net\nTo: ballots+b-tok@example.org\n\nyour mail\n", ClassBounce},
		{"loop", "From: Ballots <ballots+v-" + code + "@example.org>\nTo: ballots+v-" + code + "@example.org\n\nBallot\n", ClassLoop},
		{"loop, plain address", "From: BALLOTS@example.org\nTo: ballots@example.org\n\nx\n", ClassLoop},
		{"resend tag", "From: m@example.net\nTo: ballots+resend@example.org\n\nplease\n", ClassResend},
		{"ballot to the plain address", "From: m@example.net\nTo: ballots@example.org\nSubject: My Ballot?\n\nlost it\n", ClassResend},
		{"reply that lost its tag is no request", "From: m@example.net\nTo: ballots@example.org\nSubject: Re: Your ballot\n\nYES\n", ClassUnknown},
		{"ballot subject to another address", "From: m@example.net\nTo: other@example.org\nSubject: ballot\n\nx\n", ClassUnknown},
		{"code only", "From: m@example.net\nTo: ballots@example.org\nIn-Reply-To: <b1@example.org>\n\nYes\n> Ballot code: " + strings.ToUpper(code) + "\n", ClassVote},
		{"nomination subject", "From: m@example.net\nTo: ballots@example.org\nSubject: Our NOMINATION for MA-07\n\nform\n", ClassNomination},
		{"unknown", "From: m@example.net\nTo: ballots@example.org\nSubject: hello\n\nhi\n", ClassUnknown},
		{"auto-submitted beats tag", "From: m@example.net\nTo: ballots+v-" + code + "@example.org\nAuto-Submitted: auto-replied\n\nI am away\n", ClassAutoReply},
		{"Auto-Submitted: no", "From: m@example.net\nTo: ballots+v-" + code + "@example.org\nAuto-Submitted: no\n\nYES\n", ClassVote},
		{"X-Auto-Response-Suppress alone", "From: m@example.net\nTo: ballots+v-" + code + "@example.org\nX-Auto-Response-Suppress: All\nSubject: RE: Your ballot\n\nYES\n", ClassVote},
		{"Exchange OOF", "From: m@example.net\nTo: ballots+v-" + code + "@example.org\nX-Auto-Response-Suppress: All\nSubject: Automatic reply: Your ballot\n\nI am out\n", ClassAutoReply},
		{"German subject", "From: m@example.net\nTo: ballots+v-" + code + "@example.org\nSubject: Abwesenheitsnotiz: Ihr Stimmzettel\n\nx\n", ClassAutoReply},
		{"French subject", "From: m@example.net\nTo: ballots+v-" + code + "@example.org\nSubject: =?UTF-8?Q?R=C3=A9ponse_automatique?=\n\nx\n", ClassAutoReply},
		{"Apple vacation", "From: m@example.net\nTo: ballots+v-" + code + "@example.org\nX-Apple-Action: VACATION\n\nx\n", ClassAutoReply},
		{"precedence bulk", "From: m@example.net\nTo: ballots+v-" + code + "@example.org\nPrecedence: bulk\n\nx\n", ClassAutoReply},
		{"noreply sender", "From: no-reply@service.example\nTo: ballots+v-" + code + "@example.org\n\nx\n", ClassAutoReply},
		{"bounce before auto-reply", "From: MAILER-DAEMON@mx.example.net\nTo: ballots+b-tok@example.org\nAuto-Submitted: auto-replied\nSubject: Undelivered Mail Returned to Sender\n\nThis is the mail system at host mx.\n", ClassBounce},
		{"qmail bounce", "From: MAILER-DAEMON@mx.example.net\nTo: ballots@example.org\nSubject: failure notice\n\nHi. This is the qmail-send program at mx.\n", ClassBounce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(mustParse(t, tt.raw), testBox); got != tt.want {
				t.Errorf("Classify = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBallotCodes(t *testing.T) {
	m := &Message{Text: "yes\n> Ballot code: ABCDEFGHIJKLMNOPQRSTUVWX\n> ballot code:abcdefghijklmnopqrstuvwx\nBallot Code: **zyxwvutsrqponmlkjihgfedc**\nBallot code: short\nBallot code: abcdefghijklmnopqrstuvwx0"}
	got := strings.Join(BallotCodes(m), " ")
	if want := "abcdefghijklmnopqrstuvwx zyxwvutsrqponmlkjihgfedc"; got != want {
		t.Errorf("BallotCodes = %q, want %q", got, want)
	}
	html := &Message{HTML: "<p>yes</p><blockquote>Ballot code: <b>abcdefghijklmnopqrstuvw2</b></blockquote>"}
	if got := BallotCodes(html); len(got) != 1 || got[0] != "abcdefghijklmnopqrstuvw2" {
		t.Errorf("BallotCodes(html) = %q", got)
	}
}
