package message

import (
	"errors"
	"fmt"
	"mime"
	"regexp"
	"strconv"
	"strings"
)

// MaxQuestions bounds a questionnaire: more is a mistake in the file.
const MaxQuestions = 40

// questionLine is a numbered line: "1. text", "2) text", "Q3: text",
// "Question 4 - text".
var questionLine = regexp.MustCompile(`(?i)^\s*(?:q(?:uestion)?\s*)?(\d{1,2})\s*[.):-]\s*(.*?)\s*$`)

// ParseQuestions reads a questionnaire file (BALLOTD_QUESTIONNAIRE): one
// question per number, "1. …", "2. …" in order; a question may go on over
// the following lines; lines starting with # and text before the first
// number are not questions.
func ParseQuestions(text string) ([]string, error) {
	var qs []string
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if m := questionLine.FindStringSubmatch(t); m != nil {
			n, _ := strconv.Atoi(m[1])
			if n != len(qs)+1 {
				return nil, fmt.Errorf("line %d: question %d where %d was expected; number the questions 1, 2, 3 … in order", i+1, n, len(qs)+1)
			}
			qs = append(qs, m[2])
			continue
		}
		if len(qs) > 0 {
			qs[len(qs)-1] = strings.TrimSpace(qs[len(qs)-1] + " " + t)
		}
	}
	if len(qs) == 0 {
		return nil, errors.New("no numbered questions (write them as 1. …, 2. …)")
	}
	if len(qs) > MaxQuestions {
		return nil, fmt.Errorf("%d questions; at most %d", len(qs), MaxQuestions)
	}
	for i, q := range qs {
		if q == "" {
			return nil, fmt.Errorf("question %d is empty", i+1)
		}
	}
	return qs, nil
}

// QAnswer is a campaign's answer to one question.
type QAnswer struct {
	Number   int    `json:"number"`
	Question string `json:"question"`
	Answer   string `json:"answer"`
}

// maxAnswer bounds one answer kept and mailed to staff.
const maxAnswer = 8000

// ReadAnswers reads a campaign's reply to the questionnaire with
// questions: answers under the questions they quote ("> 2. …" then the
// answer, the way a mail client's inline reply looks), or numbered
// answers in their own text ("2. …"). An answer given both ways is
// taken from the quoted question. It returns the answers in question
// order and the numbers of the questions no answer was found for.
func ReadAnswers(m *Message, questions []string) (answers []QAnswer, unread []int) {
	got := map[int]string{}
	if strings.TrimSpace(m.Text) != "" {
		for n, a := range underQuoted(m.Text, len(questions)) {
			got[n] = a
		}
	}
	for n, a := range numbered(ReplyText(m), questions) {
		if _, ok := got[n]; !ok {
			got[n] = a
		}
	}
	for i, q := range questions {
		a := strings.TrimSpace(got[i+1])
		if a == "" {
			unread = append(unread, i+1)
			continue
		}
		answers = append(answers, QAnswer{Number: i + 1, Question: q, Answer: clip(a, maxAnswer)})
	}
	return answers, unread
}

// underQuoted reads answers written under quoted numbered questions: the
// unquoted lines after "> n. …", up to the next quoted line that is a
// question, a signature, or the end.
func underQuoted(text string, n int) map[int]string {
	out := map[int]string{}
	cur := 0
	var buf []string
	flush := func() {
		if cur > 0 {
			if a := reasonText(buf); a != "" {
				out[cur] = a
			}
		}
		buf = nil
	}
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		t := strings.TrimRight(line, " \t")
		if t == "--" || t == "-- " {
			break
		}
		if q, ok := strings.CutPrefix(strings.TrimLeft(t, " \t"), ">"); ok {
			q = strings.TrimLeft(q, "> ")
			if m := questionLine.FindStringSubmatch(q); m != nil {
				k, _ := strconv.Atoi(m[1])
				if k >= 1 && k <= n {
					flush()
					cur = k
				}
			}
			continue
		}
		if cur > 0 {
			buf = append(buf, t)
		}
	}
	flush()
	return out
}

// numbered reads answers numbered in the campaign's own text: each
// numbered line starts the answer to that question and takes the lines
// after it. A line repeating the question is not part of the answer.
func numbered(text string, questions []string) map[int]string {
	out := map[int]string{}
	cur := 0
	var buf []string
	flush := func() {
		if cur > 0 {
			if a := reasonText(buf); a != "" && out[cur] == "" {
				out[cur] = a
			}
		}
		buf = nil
	}
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		t := strings.TrimRight(line, " \t")
		if m := questionLine.FindStringSubmatch(t); m != nil {
			if k, _ := strconv.Atoi(m[1]); k >= 1 && k <= len(questions) {
				flush()
				cur = k
				rest := stripQuestion(m[2], questions[k-1])
				if rest != "" {
					buf = append(buf, rest)
				}
				continue
			}
		}
		if cur > 0 {
			if sameText(t, questions[cur-1]) {
				continue
			}
			buf = append(buf, t)
		}
	}
	flush()
	return out
}

// stripQuestion removes the question from the start of a numbered line
// that repeats it before the answer ("1. Do you …? Yes.").
func stripQuestion(line, question string) string {
	if sameText(line, question) {
		return ""
	}
	if len(line) > len(question) && sameText(line[:len(question)], question) {
		return strings.TrimLeft(line[len(question):], " :-–—")
	}
	return line
}

func sameText(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " "))
}

// attachmentName finds the file names of a message's attachments in its
// MIME headers (Content-Disposition or Content-Type name parameters).
var attachmentName = regexp.MustCompile(`(?im)^content-(?:disposition|type):[^\n]*?(?:\n[ \t][^\n]*?)*?\b(?:file)?name\*?=\s*("[^"\n]*"|[^;\s]+)`)

// Attachments returns the file names of m's attachments, as the sender
// named them (at most 20).
func Attachments(m *Message) []string {
	var out []string
	raw := strings.ReplaceAll(string(m.Raw), "\r\n", "\n")
	seen := map[string]bool{}
	for _, g := range attachmentName.FindAllStringSubmatch(raw, 40) {
		name := strings.Trim(g[1], `"`)
		if d, err := new(mime.WordDecoder).DecodeHeader(name); err == nil {
			name = d
		}
		name = oneLine(name)
		if name == "" || seen[name] || len(out) == 20 {
			continue
		}
		seen[name] = true
		out = append(out, clip(name, 200))
	}
	return out
}
