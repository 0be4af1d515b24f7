package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// The reply table (issue 16): inbound/message/testdata/replies/*.txt hold replies to
// ballots written the way members write them, each with the outcome a
// careful election official would record. The format is described in
// testdata/replies/README. TestReplyTable reads every case through Parse,
// Classify and ReadAnswer and fails on any vote the member did not cast.

// replyTableDir holds the table's files.
const replyTableDir = "testdata/replies"

// The addresses and identifiers every built message uses.
const (
	replyTableToken   = "abcdefghijklmnopqrstuvwx234567ab"
	replyTableBallot  = "ballots+v-" + replyTableToken + "@example.org"
	replyTableBallotM = "m7q2k4x9t3bz5wlr8c6nvj4h@example.org" // the ballot's Message-ID
	replyTableSubject = "Your ballot: US Senate, Massachusetts (MA-SEN)"
)

// Thresholds of issue 16.
const (
	replyTableMinRecallClear = 0.99
	replyTableMinRecallAll   = 0.90
)

// replyCase is one case of the table.
type replyCase struct {
	File    string // base name of the file
	Line    int    // line of the === line
	Name    string
	Choices []Choice
	Voter   string
	Want    string // yes, no, none, a candidate number, unclear, ignored
	Level   string // clear or human, for votes
	Type    string // text, html or raw
	Subject string // overrides the reply's subject (text and html)
	Body    string
}

func (c replyCase) where() string { return fmt.Sprintf("%s:%d %q", c.File, c.Line, c.Name) }

// isVote reports whether the case expects a vote to be recorded.
func (c replyCase) isVote() bool { return c.Want != "unclear" && c.Want != "ignored" }

// defaultVoter is the member's name when a case gives none.
const defaultVoter = "Maria Lopez"

// parseReplyCases reads one file of the table. Errors name the file and
// line; a malformed case is left out of the returned cases.
func parseReplyCases(file string, data []byte) ([]replyCase, []error) {
	var (
		cases []replyCase
		errs  []error
		cur   *replyCase
		state int // 0 preamble, 1 header, 2 body
		body  []string
		bad   bool
		seen  = map[string]int{}
	)
	fail := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)))
		bad = true
	}
	finish := func(endLine int) {
		if cur == nil {
			return
		}
		for len(body) > 0 && strings.TrimSpace(body[len(body)-1]) == "" {
			body = body[:len(body)-1]
		}
		cur.Body = strings.Join(body, "\n")
		c := cur
		switch {
		case state == 1:
			fail(c.Line, "case %q: no --- line before the body", c.Name)
		case strings.TrimSpace(c.Body) == "" && c.Want != "unclear":
			fail(c.Line, "case %q: empty body", c.Name)
		}
		if len(c.Choices) == 0 && c.Want != "ignored" {
			fail(c.Line, "case %q: no choices", c.Name)
		}
		switch c.Want {
		case "":
			fail(c.Line, "case %q: no want", c.Name)
		case "yes", "no":
			if len(c.Choices) != 1 {
				fail(c.Line, "case %q: want %s needs exactly one choice", c.Name, c.Want)
			}
		case "none":
			if len(c.Choices) < 2 {
				fail(c.Line, "case %q: want none needs several choices", c.Name)
			}
		case "unclear", "ignored":
			if c.Level != "" {
				fail(c.Line, "case %q: level is for votes only", c.Name)
			}
		default:
			n, err := strconv.Atoi(c.Want)
			if err != nil {
				fail(c.Line, "case %q: unknown want %q (yes, no, none, a number, unclear, ignored)", c.Name, c.Want)
			} else if n < 1 || n > len(c.Choices) || len(c.Choices) < 2 {
				fail(c.Line, "case %q: want %d is not a candidate of %d choices", c.Name, n, len(c.Choices))
			}
		}
		if c.isVote() && c.Want != "" && c.Level == "" {
			fail(c.Line, "case %q: a vote needs a level (clear or human)", c.Name)
		}
		if !bad {
			cases = append(cases, *c)
		}
		cur, body, bad = nil, nil, false
		_ = endLine
	}

	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(text, "=== ") || text == "===" {
			finish(line - 1)
			name := strings.TrimSpace(strings.TrimPrefix(text, "==="))
			cur = &replyCase{File: file, Line: line, Name: name, Voter: defaultVoter, Type: "text"}
			state = 1
			if name == "" {
				fail(line, "case without a name")
			} else if prev, dup := seen[name]; dup {
				fail(line, "case %q: name already used at line %d", name, prev)
			}
			seen[name] = line
			continue
		}
		switch state {
		case 0:
			// Preamble: documentation, ignored.
		case 1:
			t := strings.TrimSpace(text)
			if t == "---" {
				state = 2
				continue
			}
			if t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			key, val, ok := strings.Cut(t, ":")
			if !ok {
				fail(line, "case %q: header line without a colon: %q", cur.Name, t)
				continue
			}
			key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
			switch key {
			case "choices":
				cur.Choices = nil
				for i, n := range strings.Split(val, "|") {
					n = strings.TrimSpace(n)
					if n == "" {
						fail(line, "case %q: empty choice %d", cur.Name, i+1)
					}
					cur.Choices = append(cur.Choices, Choice{Number: i + 1, Name: n})
				}
			case "voter":
				cur.Voter = val
			case "want":
				cur.Want = strings.ToLower(val)
				if cur.Want == "" {
					fail(line, "case %q: empty want", cur.Name)
				}
			case "level":
				cur.Level = strings.ToLower(val)
				if cur.Level != "clear" && cur.Level != "human" {
					fail(line, "case %q: unknown level %q (clear, human)", cur.Name, val)
				}
			case "type":
				cur.Type = strings.ToLower(val)
				if cur.Type != "text" && cur.Type != "html" && cur.Type != "raw" {
					fail(line, "case %q: unknown type %q (text, html, raw)", cur.Name, val)
				}
			case "subject":
				cur.Subject = val
			case "note":
				// A comment for the reader of the table.
			default:
				fail(line, "case %q: unknown header %q", cur.Name, key)
			}
		case 2:
			body = append(body, text)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	finish(line)
	return cases, errs
}

// loadReplyTable reads every *.txt file of dir.
func loadReplyTable(dir string) (cases []replyCase, files int, errs []error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, 0, []error{err}
	}
	sort.Strings(paths)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cs, es := parseReplyCases(filepath.Base(p), data)
		cases = append(cases, cs...)
		errs = append(errs, es...)
		files++
	}
	return cases, files, errs
}

// voterAddress derives the member's address from the name: "María López"
// gives maria.lopez@example.net.
func voterAddress(name string) string {
	var b strings.Builder
	dot := false
	for _, r := range norm.NFD.String(strings.ToLower(name)) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dot && b.Len() > 0 {
				b.WriteByte('.')
			}
			dot = false
			b.WriteRune(r)
		default:
			dot = true
		}
	}
	if b.Len() == 0 {
		return "member@example.net"
	}
	return b.String() + "@example.net"
}

// message builds the raw message of a case: the body itself for raw
// cases, else a reply from the voter to the ballot's address, text/plain or
// text/html, quoted-printable or 8bit.
func (c replyCase) message(seq int) []byte {
	crlf := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
	}
	if c.Type == "raw" {
		return []byte(crlf(c.Body) + "\r\n")
	}
	h := fnv.New32a()
	h.Write([]byte(c.Name))
	qp := c.Type == "html" || h.Sum32()%2 == 0
	subject := c.Subject
	if subject == "" {
		subject = "Re: " + replyTableSubject
	}
	media := "text/plain"
	if c.Type == "html" {
		media = "text/html"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <%s>\n", voterAddress(c.Voter))
	fmt.Fprintf(&b, "From: %s <%s>\n", mimeWord(c.Voter), voterAddress(c.Voter))
	fmt.Fprintf(&b, "To: Ballots <%s>\n", replyTableBallot)
	fmt.Fprintf(&b, "Subject: %s\n", mimeWord(subject))
	fmt.Fprintf(&b, "Date: Mon, 30 Nov 2026 15:%02d:%02d +0000\n", seq/60%60, seq%60)
	fmt.Fprintf(&b, "Message-ID: <reply-%d-%08x@example.net>\n", seq, h.Sum32())
	fmt.Fprintf(&b, "In-Reply-To: <%s>\n", replyTableBallotM)
	fmt.Fprintf(&b, "References: <%s>\n", replyTableBallotM)
	b.WriteString("MIME-Version: 1.0\n")
	fmt.Fprintf(&b, "Content-Type: %s; charset=utf-8\n", media)
	body := crlf(c.Body) + "\r\n"
	if qp {
		b.WriteString("Content-Transfer-Encoding: quoted-printable\n\n")
		var q bytes.Buffer
		w := quotedprintable.NewWriter(&q)
		w.Write([]byte(body))
		w.Close()
		return append([]byte(crlf(b.String())), q.Bytes()...)
	}
	b.WriteString("Content-Transfer-Encoding: 8bit\n\n")
	return append([]byte(crlf(b.String())), body...)
}

// mimeWord encodes s as an RFC 2047 word when it is not ASCII.
func mimeWord(s string) string {
	for _, r := range s {
		if r > 126 {
			var q bytes.Buffer
			w := quotedprintable.NewWriter(&q)
			w.Write([]byte(s))
			w.Close()
			enc := strings.NewReplacer("=\r\n", "", " ", "_", "?", "=3F", "_", "=5F").Replace(q.String())
			return "=?utf-8?Q?" + enc + "?="
		}
	}
	return s
}

// outcome writes an answer as a want value.
func outcome(a Answer) string {
	switch a.Kind {
	case AnswerCandidate:
		return strconv.Itoa(a.Number)
	case AnswerYes, AnswerNo, AnswerNone, AnswerUnclear:
		return string(a.Kind)
	}
	return "?" + string(a.Kind)
}

// recorded reports whether the outcome records a vote.
func recorded(got string) bool { return got != "unclear" && !strings.HasPrefix(got, "?") }

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func TestReplyTable(t *testing.T) {
	cases, files, errs := loadReplyTable(replyTableDir)
	for _, err := range errs {
		t.Errorf("reply table format: %v", err)
	}
	if len(cases) == 0 {
		t.Fatalf("no cases in %s", replyTableDir)
	}
	box := Mailbox{Local: "ballots", Domain: "example.org"}
	var (
		recordedVotes, correctVotes int
		clearVotes, clearRead       int
		allVotes, allRead           int
		machines, machinesIgnored   int
		misses                      []string
	)
	for i, c := range cases {
		if c.isVote() {
			allVotes++
			if c.Level == "clear" {
				clearVotes++
			}
		}
		m, err := Parse(c.message(i))
		if err != nil {
			t.Errorf("%s: Parse: %v", c.where(), err)
			if c.isVote() {
				misses = append(misses, fmt.Sprintf("%s: want %s (%s), not parsed", c.where(), c.Want, c.Level))
			}
			continue
		}
		class := Classify(m, box)
		if c.Want == "ignored" {
			machines++
			if IsMachine(class) {
				machinesIgnored++
				continue
			}
			t.Errorf("%s: a machine's message classified %q: it must be ignored (IsMachine)", c.where(), class)
			if class != ClassVote {
				continue
			}
		} else if class != ClassVote {
			t.Errorf("%s: a member's reply to a ballot classified %q, want %q", c.where(), class, ClassVote)
			if c.isVote() {
				misses = append(misses, fmt.Sprintf("%s: want %s (%s), classified %s", c.where(), c.Want, c.Level, class))
			}
			continue
		}
		a := ReadAnswer(m, c.Choices, c.Voter)
		got := outcome(a)
		if recorded(got) {
			recordedVotes++
			if got == c.Want {
				correctVotes++
			} else {
				t.Errorf("%s: WRONG VOTE: recorded %s, want %s (read %q)", c.where(), got, c.Want, a.Quote)
			}
		}
		if c.isVote() {
			if got == c.Want {
				allRead++
				if c.Level == "clear" {
					clearRead++
				}
			} else if !recorded(got) {
				misses = append(misses, fmt.Sprintf("%s: want %s (%s), got %s: %s", c.where(), c.Want, c.Level, got, a.Reason))
			}
		}
	}
	for _, s := range misses {
		t.Logf("missed vote %s", s)
	}
	precision := ratio(correctVotes, recordedVotes)
	recallClear := ratio(clearRead, clearVotes)
	recallAll := ratio(allRead, allVotes)
	summary := fmt.Sprintf("reply table: %d cases in %d files, precision %.3f (%d/%d), recall clear %.3f (%d/%d), recall all %.3f (%d/%d), machines ignored %d/%d",
		len(cases), files, precision, correctVotes, recordedVotes, recallClear, clearRead, clearVotes,
		recallAll, allRead, allVotes, machinesIgnored, machines)
	t.Log(summary)
	fmt.Println(summary)
	if precision < 1 {
		t.Errorf("precision %.3f: %d votes recorded that the member did not cast", precision, recordedVotes-correctVotes)
	}
	if recallClear < replyTableMinRecallClear {
		t.Errorf("recall on clear votes %.3f < %.2f", recallClear, replyTableMinRecallClear)
	}
	if recallAll < replyTableMinRecallAll {
		t.Errorf("recall on all votes %.3f < %.2f", recallAll, replyTableMinRecallAll)
	}
	if machinesIgnored < machines {
		t.Errorf("%d of %d machines' messages not ignored", machines-machinesIgnored, machines)
	}
}

// TestReplyTableFormat checks that a malformed case is reported with its
// file and line rather than skipped in silence.
func TestReplyTableFormat(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"no want", "=== a\nchoices: Ed Markey\n---\nyes\n", "bad.txt:1: case \"a\": no want"},
		{"unknown want", "\n=== a\nchoices: Ed Markey\nwant: maybe\nlevel: clear\n---\nyes\n", "bad.txt:2: case \"a\": unknown want"},
		{"yes with several", "=== a\nchoices: A B | C D\nwant: yes\nlevel: clear\n---\nyes\n", "bad.txt:1: case \"a\": want yes needs exactly one choice"},
		{"number out of range", "=== a\nchoices: A B | C D\nwant: 3\nlevel: clear\n---\n3\n", "bad.txt:1: case \"a\": want 3 is not"},
		{"vote without level", "=== a\nchoices: Ed Markey\nwant: yes\n---\nyes\n", "bad.txt:1: case \"a\": a vote needs a level"},
		{"unknown header", "=== a\nchoices: Ed Markey\nwant: yes\nlevel: clear\nwnat: no\n---\nyes\n", "bad.txt:5: case \"a\": unknown header"},
		{"no separator", "=== a\nchoices: Ed Markey\nwant: yes\nlevel: clear\nyes\n", "bad.txt:5: case \"a\": header line without a colon"},
		{"duplicate", "=== a\nchoices: Ed Markey\nwant: yes\nlevel: clear\n---\nyes\n=== a\nchoices: Ed Markey\nwant: no\nlevel: clear\n---\nno\n", "bad.txt:7: case \"a\": name already used at line 1"},
	} {
		cases, errs := parseReplyCases("bad.txt", []byte(tc.data))
		joined := errors.Join(errs...)
		if joined == nil || !strings.Contains(joined.Error(), tc.want) {
			t.Errorf("%s: errors %v, want one containing %q", tc.name, joined, tc.want)
		}
		if tc.name != "duplicate" && len(cases) != 0 {
			t.Errorf("%s: malformed case kept: %+v", tc.name, cases)
		}
	}
	good := "# preamble\n=== a\nchoices: Ed Markey\nwant: yes\nlevel: clear\n---\n  Yes \n-- \nMaria\n\n\n=== b\nchoices: A B | C D\nwant: unclear\ntype: html\n---\n<p>2?</p>\n"
	cases, errs := parseReplyCases("good.txt", []byte(good))
	if len(errs) != 0 || len(cases) != 2 {
		t.Fatalf("good file: %d cases, errors %v", len(cases), errs)
	}
	if cases[0].Body != "  Yes \n-- \nMaria" || cases[1].Type != "html" || cases[1].Choices[1] != (Choice{2, "C D"}) {
		t.Errorf("good file read as %+v", cases)
	}
	if a := voterAddress("María de la Cruz Jr."); a != "maria.de.la.cruz.jr@example.net" {
		t.Errorf("voterAddress: %s", a)
	}
}
