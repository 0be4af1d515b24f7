package inbound

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Choice is one candidate on a ballot.
type Choice struct {
	Number int    // 1-based ballot number
	Name   string // full name, e.g. "Ed Markey"
}

// AnswerKind says what a reply means.
type AnswerKind string

// The kinds of answer ReadAnswer finds.
const (
	AnswerYes       AnswerKind = "yes"       // only valid with exactly one choice
	AnswerNo        AnswerKind = "no"        // only valid with exactly one choice
	AnswerCandidate AnswerKind = "candidate" // Number set; only with 2+ choices
	AnswerNone      AnswerKind = "none"      // only with 2+ choices
	AnswerUnclear   AnswerKind = "unclear"
)

// Answer is what a reply to a ballot means.
type Answer struct {
	Kind   AnswerKind
	Number int    // the chosen candidate's number for AnswerCandidate
	Reason string // for unclear: a short human sentence for the clarification email
	// Read, when set, says how a near-miss was read, for the receipt:
	// `"Pressly" as Ayanna Pressley`.
	Read string
	// Quote is the start of the member's own text as read (shortened), for
	// the clarification email.
	Quote string
}

// Reasons given with AnswerUnclear.
const (
	reasonNothing = "we found no answer"
	reasonBoth    = `we found both "yes" and "no"`
)

// maxAnswerLines is how many non-empty lines of the reply are read: a
// vote is short, and later prose must not change it.
const maxAnswerLines = 3

var (
	yesWords = map[string]bool{"yes": true, "yeah": true, "yep": true, "yup": true, "aye": true, "oui": true, "ja": true}
	noWords  = map[string]bool{"no": true, "nope": true, "nay": true, "non": true, "nein": true}
	// shortOnly words count only when they are (nearly) the whole answer.
	shortYes = map[string]bool{"y": true, "si": true}
	shortNo  = map[string]bool{"n": true}
	// "no" followed by these is not an answer ("no idea", "no one").
	notAnswerAfterNo = map[string]bool{
		"one": true, "idea": true, "clue": true, "opinion": true, "preference": true, "problem": true,
		"worries": true, "doubt": true, "matter": true, "longer": true, "more": true, "need": true,
		"reason": true, "rush": true, "comment": true, "body": true, "time": true,
	}
	negators = map[string]bool{"not": true, "dont": true, "don't": true, "cannot": true, "can't": true, "cant": true, "never": true, "unsure": true, "maybe": true, "perhaps": true, "undecided": true}
	// numberLead words introduce a candidate number in a longer sentence.
	numberLead = map[string]bool{"vote": true, "voting": true, "number": true, "option": true, "candidate": true, "choice": true, "choose": true, "pick": true, "for": true, "#": true}
)

// ballotEcho matches lines of the ballot itself that a reply may carry
// unquoted; reading stops there.
var ballotEcho = regexp.MustCompile(`(?i)(ballot code\s*:|reply (with )?(yes|no|the number|none)|yes or no|\bor none\b|receipt code\s*:)`)

// ReadAnswer reads the vote in ReplyText(m) for a ballot with the given
// choices. It reads the first few non-empty lines; the first sentence that
// holds an answer decides, and any contradiction nearby makes the answer
// unclear. With one choice the answers are yes and no (the candidate's name
// means yes); with several, a candidate's number or name, or none.
//
// voter is the member's own name: a line that is (part of) it is a
// signature, never an answer.
func ReadAnswer(m *Message, choices []Choice, voter string) Answer {
	return readAnswerText(ReplyText(m), choices)
}

// finding is what one sentence says.
type finding struct {
	yes, no, none bool
	candidates    []int // candidate numbers, in order, distinct
	badNumber     int   // a number that is not on the ballot
	negated       bool
}

func (f finding) empty() bool {
	return !f.yes && !f.no && !f.none && len(f.candidates) == 0 && f.badNumber == 0
}

func readAnswerText(text string, choices []Choice) Answer {
	if len(choices) == 0 {
		return Answer{Kind: AnswerUnclear, Reason: "the ballot has no candidates"}
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if ballotEcho.MatchString(l) {
			break
		}
		lines = append(lines, l)
		if len(lines) == maxAnswerLines {
			break
		}
	}
	var decided *finding
	for _, line := range lines {
		for _, seg := range segments(line) {
			f := readSegment(seg, choices)
			if f.empty() {
				continue
			}
			if decided == nil {
				decided = &f
				continue
			}
			// Later sentences may only repeat the answer, never start
			// with a different one.
			if leadsWithDifferentAnswer(seg, *decided, choices) {
				return Answer{Kind: AnswerUnclear, Reason: "we found more than one answer"}
			}
		}
	}
	if decided == nil {
		return Answer{Kind: AnswerUnclear, Reason: reasonNothing}
	}
	return judge(*decided, choices)
}

// judge turns the deciding finding into an answer.
func judge(f finding, choices []Choice) Answer {
	if len(choices) == 1 {
		switch {
		case f.none:
			return Answer{Kind: AnswerUnclear, Reason: `"none" is not an answer when the ballot has one candidate: reply YES or NO`}
		case f.yes && f.no:
			return Answer{Kind: AnswerUnclear, Reason: reasonBoth}
		case f.no && len(f.candidates) > 0:
			// "No, I support Markey": too ambiguous to count.
			return Answer{Kind: AnswerUnclear, Reason: `we found "no" together with the candidate's name`}
		case f.negated && (f.yes || len(f.candidates) > 0):
			return Answer{Kind: AnswerUnclear, Reason: `we could not tell whether you meant "yes"`}
		case f.no:
			return Answer{Kind: AnswerNo}
		case f.yes || len(f.candidates) > 0:
			return Answer{Kind: AnswerYes}
		case f.badNumber != 0:
			return Answer{Kind: AnswerUnclear, Reason: fmt.Sprintf("we found the number %d, but this ballot asks for YES or NO", f.badNumber)}
		}
		return Answer{Kind: AnswerUnclear, Reason: reasonNothing}
	}
	switch {
	case len(f.candidates) > 1:
		return Answer{Kind: AnswerUnclear, Reason: "we found more than one candidate"}
	case len(f.candidates) == 1 && (f.none || f.no):
		return Answer{Kind: AnswerUnclear, Reason: "we found both a candidate and a refusal"}
	case len(f.candidates) == 1 && f.negated:
		return Answer{Kind: AnswerUnclear, Reason: "we could not tell whether you chose this candidate"}
	case len(f.candidates) == 1:
		return Answer{Kind: AnswerCandidate, Number: f.candidates[0]}
	case f.none && !f.yes:
		return Answer{Kind: AnswerNone}
	case f.badNumber != 0:
		return Answer{Kind: AnswerUnclear, Reason: fmt.Sprintf("we found the number %d, which is not on the ballot", f.badNumber)}
	case f.yes || f.no:
		return Answer{Kind: AnswerUnclear, Reason: "this ballot has several candidates: reply with a number or a name, or NONE"}
	}
	return Answer{Kind: AnswerUnclear, Reason: reasonNothing}
}

var segmentSplit = regexp.MustCompile(`[.!?;]+(\s+|$)|\s+[-–—]+\s+|,\s+(but|though|although)\s+`)

// segments splits a line into sentences.
func segments(line string) []string {
	var out []string
	for _, s := range segmentSplit.Split(line, -1) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// fold lowercases s and removes accents.
func fold(s string) string {
	var sb strings.Builder
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		sb.WriteRune(unicode.ToLower(r))
	}
	return sb.String()
}

// words splits folded text into words, keeping '#' and digits and
// apostrophes inside words.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '#' || r == '\'')
	})
}

var numberToken = regexp.MustCompile(`^#?(\d{1,3})(st|nd|rd|th)?$`)

// readSegment reads one sentence.
func readSegment(seg string, choices []Choice) finding {
	var f finding
	folded := fold(seg)
	ws := words(folded)
	if len(ws) == 0 {
		return f
	}
	short := len(ws) <= 6
	for i, w := range ws {
		w = strings.Trim(w, "'")
		switch {
		case yesWords[w] && (short || i == 0):
			f.yes = true
		case shortYes[w] && len(ws) <= 2:
			f.yes = true
		case w == "no" && i+1 < len(ws) && notAnswerAfterNo[ws[i+1]]:
			// "no one", "no idea": not an answer.
		case noWords[w] && (short || i == 0):
			f.no = true
		case shortNo[w] && len(ws) <= 2:
			f.no = true
		case w == "none" || w == "abstain" || w == "abstaining" || w == "neither" || w == "abstention":
			f.none = true
		case negators[w]:
			f.negated = true
		}
		if sm := numberToken.FindStringSubmatch(w); sm != nil && len(choices) > 1 {
			// A bare number counts in a short answer or after "vote",
			// "number", "option"...; not in prose ("I have 2 kids").
			if len(ws) <= 3 || (i > 0 && numberLead[ws[i-1]]) || strings.HasPrefix(w, "#") {
				n, _ := strconv.Atoi(sm[1])
				if c, ok := choiceByNumber(choices, n); ok {
					f.candidates = appendDistinct(f.candidates, c)
				} else if f.badNumber == 0 {
					f.badNumber = n
				}
			}
		}
	}
	for _, c := range namedChoices(folded, choices) {
		f.candidates = appendDistinct(f.candidates, c)
	}
	return f
}

// leadsWithDifferentAnswer reports whether a later sentence starts with an
// answer other than the deciding one (e.g. "Yes. No, wait.").
func leadsWithDifferentAnswer(seg string, decided finding, choices []Choice) bool {
	ws := words(fold(seg))
	if len(ws) == 0 {
		return false
	}
	first := strings.Trim(ws[0], "'")
	if first == "no" && len(ws) > 1 && notAnswerAfterNo[ws[1]] {
		return false
	}
	isYes := yesWords[first] || (shortYes[first] && len(ws) <= 2)
	isNo := noWords[first] || (shortNo[first] && len(ws) <= 2)
	isNone := first == "none" || first == "abstain" || first == "neither"
	if len(choices) == 1 {
		return (isYes && decided.no) || (isNo && !decided.no) || isNone
	}
	f := readSegment(seg, choices)
	if len(ws) <= 3 && len(f.candidates) > 0 {
		for _, c := range f.candidates {
			if len(decided.candidates) == 0 || decided.candidates[0] != c {
				return true
			}
		}
	}
	return (isNone && !decided.none) || (decided.none && len(f.candidates) > 0 && len(ws) <= 3)
}

func choiceByNumber(choices []Choice, n int) (int, bool) {
	for _, c := range choices {
		if c.Number == n {
			return n, true
		}
	}
	return 0, false
}

func appendDistinct(list []int, n int) []int {
	for _, x := range list {
		if x == n {
			return list
		}
	}
	return append(list, n)
}

// namedChoices returns the candidates named in folded text: by full name,
// or by surname when no other candidate shares it.
func namedChoices(folded string, choices []Choice) []int {
	surnames := map[string]int{}
	for _, c := range choices {
		if ws := words(fold(c.Name)); len(ws) > 0 {
			surnames[ws[len(ws)-1]]++
		}
	}
	text := " " + strings.Join(words(folded), " ") + " "
	var out []int
	for _, c := range choices {
		ws := words(fold(c.Name))
		if len(ws) == 0 {
			continue
		}
		full := " " + strings.Join(ws, " ") + " "
		sur := ws[len(ws)-1]
		if strings.Contains(text, full) || (surnames[sur] == 1 && len(sur) >= 2 && strings.Contains(text, " "+sur+" ")) {
			out = appendDistinct(out, c.Number)
		}
	}
	return out
}
