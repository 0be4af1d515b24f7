package message

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseQuestions(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
		err        string
	}{
		{name: "numbered, continued lines, comments", text: "# Policy questionnaire, 2026\nAnswer all.\n\n1. Do you support Medicare\n   for All?\n2) Will you refuse corporate PAC money?\nQ3: Your top priority?\n",
			want: []string{"Do you support Medicare for All?", "Will you refuse corporate PAC money?", "Your top priority?"}},
		{name: "out of order", text: "1. a\n3. c\n", err: "question 3 where 2 was expected"},
		{name: "none", text: "Just text.\n", err: "no numbered questions"},
		{name: "empty question", text: "1.\n\n2. b\n", err: "question 1 is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseQuestions(c.text)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestReadAnswers(t *testing.T) {
	qs := []string{"Do you support Medicare for All?", "Will you refuse corporate PAC money?", "What is your top priority?"}
	head := "From: Rivera HQ <hq@rivera.example>\r\nTo: ballots+q-tok@example.org\r\nSubject: Re: Policy questionnaire\r\nMessage-ID: <q1@rivera.example>\r\n"
	cases := []struct {
		name, headers, body string
		want                map[int]string
		unread              []int
	}{
		{name: "numbered answers on top, questions quoted below",
			body: "1. Yes, since 2019.\n2. Yes.\n3. Housing.\nIt is the crisis.\n\nOn Mon, Feb 2, 2026, Ballots <ballots@example.org> wrote:\n> 1. Do you support Medicare for All?\n> 2. Will you refuse corporate PAC money?\n",
			want: map[int]string{1: "Yes, since 2019.", 2: "Yes.", 3: "Housing.\nIt is the crisis."}},
		{name: "inline under the quoted questions (Thunderbird style)",
			body: "On 2/2/26 Ballots wrote:\n> Hello,\n> Please reply by Friday.\n>\n> 1. Do you support Medicare for All?\n\nYes.\n\n> 2. Will you refuse corporate PAC money?\n\nWe already do.\nNo PAC has given.\n\n> 3. What is your top priority?\n>\n> As a 501(c)(4), we stay on the independent side.\n\n-- \nRivera HQ\n",
			want: map[int]string{1: "Yes.", 2: "We already do.\nNo PAC has given."}, unread: []int{3}},
		{name: "numbered with the question repeated before the answer",
			body: "1. Do you support Medicare for All? Yes.\n2. Will you refuse corporate PAC money?\nYes, all of it.\n3) What is your top priority?\n",
			want: map[int]string{1: "Yes.", 2: "Yes, all of it."}, unread: []int{3}},
		{name: "nothing numbered: all unread (an attachment, say)", body: "Please find our answers attached.\n", unread: []int{1, 2, 3}},
		{name: "numbers beyond the questions are not answers", body: "1. Yes\n7. extra\n", want: map[int]string{1: "Yes\n7. extra"}, unread: []int{2, 3}},
		{name: "HTML only, numbered", headers: "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
			body: "<html><body><p>1. Yes.</p><p>2. No &amp; never.</p><p>3. Jobs.</p></body></html>",
			want: map[int]string{1: "Yes.", 2: "No & never.", 3: "Jobs."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse([]byte(head + c.headers + "\r\n" + strings.ReplaceAll(c.body, "\n", "\r\n")))
			if err != nil {
				t.Fatal(err)
			}
			answers, unread := ReadAnswers(m, qs)
			got := map[int]string{}
			for _, a := range answers {
				if a.Question != qs[a.Number-1] {
					t.Errorf("answer %d carries question %q", a.Number, a.Question)
				}
				got[a.Number] = a.Answer
			}
			if c.want == nil {
				c.want = map[int]string{}
			}
			if !reflect.DeepEqual(got, c.want) || !reflect.DeepEqual(unread, c.unread) {
				t.Errorf("got %v unread %v\nwant %v unread %v", got, unread, c.want, c.unread)
			}
		})
	}
}

func TestAttachments(t *testing.T) {
	raw := "From: hq@rivera.example\r\nTo: ballots+q-tok@example.org\r\nSubject: answers\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n--b\r\nContent-Type: application/pdf; name=\"answers.pdf\"\r\nContent-Disposition: attachment;\r\n\tfilename=\"answers.pdf\"\r\n\r\nJVBERi0=\r\n--b--\r\n"
	m, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := Attachments(m); !reflect.DeepEqual(got, []string{"answers.pdf"}) {
		t.Errorf("Attachments = %q", got)
	}
}
