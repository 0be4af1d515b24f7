package message

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

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

// hedgeEmoji are the emoji of doubt: 🤔 🤷 😕 😬 🙃 ❓ ❔.
const hedgeEmoji = "\U0001F914\U0001F937\U0001F615\U0001F62C\U0001F643\u2753\u2754"

// lineHasQuestion reports whether any clause of line asks a question.
func lineHasQuestion(clauses []clause, line int) bool {
	for _, c := range clauses {
		if c.line == line && strings.Contains(c.text, "?") {
			return true
		}
	}
	return false
}

// Reasons given with AnswerUnclear.
const (
	reasonNothing   = "we found no answer"
	reasonNotAlone  = "we count a name, a number, yes or no only when it is the whole answer, not inside a sentence"
	reasonNegation  = "your reply has a negation (such as \"not\" or \"won't\") where we expected the answer"
	reasonQuestion  = "your reply asks a question"
	reasonSecond    = "a later line of your reply changes or questions the answer"
	reasonOther     = "a later line of your reply names another answer"
	reasonAmbiguous = "the name you wrote fits more than one candidate"
	reasonOwnName   = "what you wrote is also your own name, which may be your signature"
	reasonHedge     = "your reply sounds unsure, or sets a condition"
)

// ReadAnswer reads the vote in ReplyText(m) for a ballot with the given
// choices, as a careful election official would: a vote is counted only
// when the member's own text (quote, signature and ballot echo removed)
// begins with an answer and is nothing but an answer. The answer may have
// a lead-in ("I vote", "my vote:") and a polite tail ("thanks", an emoji).
// Later lines may comment freely, but a later line that names another
// answer or candidate, hedges, sets a condition or changes its mind makes
// the reply unclear. With one choice the answers are yes and no (the
// candidate's name alone means yes); with several, a candidate's number or
// name, or none.
//
// voter is the member's own name: a line that is (part of) it is a
// signature, never an answer.
func ReadAnswer(m *Message, choices []Choice, voter string) Answer {
	return readAnswerText(ReplyText(m), choices, voter)
}

// meaning is what one clause of a reply says.
type meaning struct {
	kind     AnswerKind // "" when the clause is not an answer at all
	number   int        // the candidate for AnswerCandidate
	byNumber bool       // the candidate was given by number, not by name
	read     string     // how a near-miss name was read
}

func readAnswerText(text string, choices []Choice, voter string) Answer {
	if len(choices) == 0 {
		return Answer{Kind: AnswerUnclear, Reason: "the ballot has no candidates"}
	}
	b := newBallotWords(choices, voter)
	lines := ownLines(text, b)
	quote := quoteOf(lines)
	unclear := func(reason string) Answer {
		return Answer{Kind: AnswerUnclear, Reason: reason, Quote: quote}
	}
	var clauses []clause
	for i, l := range lines {
		for _, c := range splitClauses(l) {
			c.line = i
			clauses = append(clauses, c)
		}
	}
	// Greetings and thanks above the answer are skipped.
	for len(clauses) > 0 && b.isPleasantry(clauses[0].text) {
		clauses = clauses[1:]
	}
	if len(clauses) == 0 {
		return unclear(reasonNothing)
	}
	first := clauses[0]
	if strings.Contains(first.text, "?") || (len(clauses) > 1 && clauses[1].line == first.line && lineHasQuestion(clauses, first.line)) {
		// A question on the answer's line: "Kennedy, really?"
		return unclear(reasonQuestion)
	}
	for _, l := range lines {
		if strings.ContainsAny(l, hedgeEmoji) {
			return unclear(reasonHedge)
		}
	}
	toks := tokens(first.text)
	if hasCue(toks, hedgeWords) || hasCue(toks, conditionWords) {
		return unclear(reasonHedge)
	}
	m, why := b.readAnswer(toks)
	if m.kind == "" {
		if why == "" {
			switch {
			case hasCue(toks, negations):
				why = reasonNegation
			case b.mentionsAnswer(toks):
				why = reasonNotAlone
			default:
				why = reasonNothing
			}
		}
		return unclear(why)
	}
	// The clauses after the answer: comments are welcome, but not another
	// answer, a hedge or a second thought.
	for _, c := range clauses[1:] {
		if c.line == first.line {
			// The answer's own line holds no condition or hedge at all:
			// "Sí, pero solo si…".
			if t := tokens(c.text); hasCue(t, conditionWords) || hasCue(t, hedgeWords) {
				return unclear(reasonHedge)
			}
		}
		if why := b.contradicts(c, m); why != "" {
			return unclear(why)
		}
	}
	a := judge(m, choices)
	a.Quote = quote
	if a.Kind == AnswerUnclear {
		return a
	}
	a.Read = m.read
	return a
}

// judge checks the answer against the kind of ballot.
func judge(m meaning, choices []Choice) Answer {
	single := len(choices) == 1
	switch m.kind {
	case AnswerYes, AnswerNo:
		if !single {
			return Answer{Kind: AnswerUnclear, Reason: "this ballot has several candidates: reply with a number or a name, or NONE"}
		}
		return Answer{Kind: m.kind}
	case AnswerCandidate:
		if single {
			// The candidate's name alone on a YES/NO ballot means yes; a
			// number does not (the ballot asks for YES or NO).
			if m.number == choices[0].Number && !m.byNumber {
				return Answer{Kind: AnswerYes}
			}
			return Answer{Kind: AnswerUnclear, Reason: "this ballot asks for YES or NO"}
		}
		if _, ok := choiceByNumber(choices, m.number); !ok {
			return Answer{Kind: AnswerUnclear, Reason: fmt.Sprintf("we found the number %d, which is not on the ballot", m.number)}
		}
		return Answer{Kind: AnswerCandidate, Number: m.number}
	case AnswerNone:
		if single {
			return Answer{Kind: AnswerUnclear, Reason: `"none" is not an answer when the ballot has one candidate: reply YES or NO`}
		}
		return Answer{Kind: AnswerNone}
	}
	return Answer{Kind: AnswerUnclear, Reason: reasonNothing}
}

// clause is a piece of a line between sentence or clause punctuation.
type clause struct {
	text string
	line int // which line of the member's text it is on
}

// splitClauses splits a line at sentence ends, commas, colons after an
// answer, dashes and ellipses; a '?' stays with its clause.
func splitClauses(line string) []clause {
	var out []clause
	var sb strings.Builder
	flush := func() {
		if t := strings.TrimSpace(sb.String()); t != "" {
			out = append(out, clause{text: t})
		}
		sb.Reset()
	}
	rs := []rune(line)
	for i, r := range rs {
		switch r {
		case '.', '!', ';', ',', '…', '¡', '¿', '。', '，', '！', '；', '、', '،', '؛':
			// "No. 2" and "2." keep a number's dot; decimal points too.
			if r == '.' && i > 0 && i+1 < len(rs) && unicode.IsDigit(rs[i-1]) && unicode.IsDigit(rs[i+1]) {
				sb.WriteRune(r)
				continue
			}
			// "Rep. Pressley", "Raphael G. Warnock", "No. 2": the dot
			// of an abbreviation or an initial ends nothing.
			if r == '.' && i+2 < len(rs) && unicode.IsSpace(rs[i+1]) && unicode.IsDigit(rs[i+2]) && numberAbbreviation(rs[:i]) {
				// "No. 2" is "number 2"; "No 2" stays unclear (no to 2?).
				s := sb.String()
				sb.Reset()
				sb.WriteString(s[:len(s)-2] + "number")
				continue
			}
			if r == '.' && i+1 < len(rs) && unicode.IsSpace(rs[i+1]) && abbreviationBefore(rs[:i]) {
				sb.WriteRune(' ')
				continue
			}
			flush()
		case '?', '？', '؟':
			sb.WriteRune('?')
			flush()
		case '-', '–', '—':
			// A dash between words separates clauses; inside a word it joins.
			if i > 0 && i+1 < len(rs) && !unicode.IsSpace(rs[i-1]) && !unicode.IsSpace(rs[i+1]) {
				sb.WriteRune(r)
				continue
			}
			flush()
		default:
			sb.WriteRune(r)
		}
	}
	flush()
	return out
}

// abbreviations end in a dot that does not end a sentence.
var abbreviations = map[string]bool{"mr": true, "mrs": true, "ms": true, "dr": true, "rep": true, "sen": true,
	"gov": true, "rev": true, "jr": true, "sr": true, "st": true, "no": true, "nr": true, "prof": true, "hon": true, "mx": true}

// abbreviationBefore reports whether the word before a dot is an
// abbreviation or an initial.
func abbreviationBefore(rs []rune) bool {
	j := len(rs)
	for j > 0 && unicode.IsLetter(rs[j-1]) {
		j--
	}
	w := strings.ToLower(string(rs[j:]))
	if j > 0 && !unicode.IsSpace(rs[j-1]) {
		return false
	}
	if w == "no" || w == "nr" {
		// "No. 2", but "No. Never."
		return false
	}
	return abbreviations[w] || (utf8.RuneCountInString(w) == 1 && unicode.IsUpper(rs[j]))
}

// numberAbbreviation reports "No" or "Nr" before a dot: "No. 2".
func numberAbbreviation(rs []rune) bool {
	j := len(rs)
	for j > 0 && unicode.IsLetter(rs[j-1]) {
		j--
	}
	w := strings.ToLower(string(rs[j:]))
	return (w == "no" || w == "nr") && (j == 0 || unicode.IsSpace(rs[j-1]))
}

// normalize applies NFKC (full-width letters from CJK keyboards), makes
// curly quotes and apostrophes straight, and drops zero-width characters.
func normalize(s string) string {
	s = norm.NFKC.String(s)
	return quoteFolder.Replace(s)
}

var quoteFolder = strings.NewReplacer(
	"\u2018", "'", "\u2019", "'", "\u201b", "'", "\u02bc", "'", "\u2032", "'", "`", "'", "\u00b4", "'",
	"\u201c", `"`, "\u201d", `"`, "\u201e", `"`, "\u00ab", `"`, "\u00bb", `"`,
	"\u200b", "", "\u200c", "", "\u200d", "", "\u2060", "", "\ufeff", "", "\u00ad", "",
)

// fold lowercases s and removes accents, keeping Hangul and other
// composed scripts whole.
func fold(s string) string {
	var sb strings.Builder
	for _, r := range norm.NFD.String(normalize(s)) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		switch r {
		case 'đ', 'Đ':
			r = 'd'
		case 'ł', 'Ł':
			r = 'l'
		case 'ß':
			sb.WriteString("ss")
			continue
		}
		sb.WriteRune(unicode.ToLower(r))
	}
	return norm.NFC.String(sb.String())
}

// tokens splits text into folded words: letters and digits, '#' before a
// number, and apostrophes inside words ("don't"). Han, kana and Thai
// characters have no spaces between words; each run is one token.
func tokens(s string) []string {
	f := fold(s)
	raw := strings.FieldsFunc(f, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '#' || r == '\'' || unicode.Is(unicode.Mc, r))
	})
	var out []string
	for _, w := range splitScripts(raw) {
		w = strings.Trim(w, "'")
		// "#2" stays, "2#" or "##" do not.
		if strings.Contains(w, "#") {
			rest := strings.TrimLeft(w, "#")
			if rest == "" {
				continue
			}
			if strings.Contains(rest, "#") {
				w = strings.ReplaceAll(rest, "#", " ")
				out = append(out, strings.Fields(w)...)
				continue
			}
			if rest[0] >= '0' && rest[0] <= '9' {
				w = "#" + rest
			} else {
				w = rest
			}
		}
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// splitScripts splits words where digits meet Chinese, Japanese or Korean
// letters, which are written without spaces: "我投2号" is "我投 2 号".
func splitScripts(words []string) []string {
	var out []string
	for _, w := range words {
		start, prev := 0, 0
		for i, r := range w {
			c := 0
			switch {
			case unicode.IsDigit(r):
				c = 1
			case unicode.In(r, unicode.Han, unicode.Hangul, unicode.Hiragana, unicode.Katakana):
				c = 2
			}
			if i > 0 && c != 0 && prev != 0 && c != prev {
				out = append(out, w[start:i])
				start = i
			}
			if c != 0 {
				prev = c
			}
		}
		out = append(out, w[start:])
	}
	return out
}

// phrase is a sequence of folded tokens.
type phrase []string

func phrases(list ...string) []phrase {
	out := make([]phrase, 0, len(list))
	for _, s := range list {
		out = append(out, phrase(tokens(s)))
	}
	return out
}

// matchAt reports the length of the longest phrase of list that toks has at
// position i, or 0.
func matchAt(toks []string, i int, list []phrase) int {
	best := 0
	for _, p := range list {
		if len(p) <= best || i+len(p) > len(toks) {
			continue
		}
		ok := true
		for k, w := range p {
			if toks[i+k] != w {
				ok = false
				break
			}
		}
		if ok {
			best = len(p)
		}
	}
	return best
}

// hasCue reports whether toks contain any phrase of list.
func hasCue(toks []string, list []phrase) bool {
	for i := range toks {
		if matchAt(toks, i, list) > 0 {
			return true
		}
	}
	return false
}

// The words of answers, in English and the languages most spoken by US
// members: Spanish, Chinese, Vietnamese, Tagalog, Korean, Portuguese,
// French, German, Italian, Dutch, Arabic and Russian. All are folded
// (lowercase, no accents).
var (
	yesPhrases = phrases(
		"yes", "yeah", "yea", "yep", "yup", "yes yes", "yess", "yesss", "yas", "ya", "aye", "y", "si", "sí",
		"sure", "absolutely", "definitely", "certainly", "of course", "ok", "okay", "affirmative", "totally",
		"absolutely yes", "definitely yes", "yes absolutely", "yes definitely", "yes of course", "of course yes",
		"yes indeed", "a big yes", "big yes", "strong yes", "hell yes", "heck yes", "a yes", "yes sir", "yes ma'am",
		"i approve", "approve", "i agree", "agree", "agreed", "endorse", "i endorse", "i support", "support",
		"yes i do", "yes i endorse", "i do", "count me in", "sure thing", "you bet", "hell yeah", "heck yeah", "yes please",
		"oo naman", "oo naman po", "sim claro", "si por supuesto", "نعم بالتأكيد", "بالتأكيد", "да конечно", "конечно да",
		// Spanish, Portuguese, Italian, French, German, Dutch
		"si claro", "claro", "claro que si", "por supuesto", "desde luego", "sim", "claro que sim", "com certeza",
		"certo", "certamente", "oui", "bien sur", "ja", "jawohl", "ja klar", "klar", "natuurlijk", "jazeker", "ja hoor",
		"ja graag", "oui bien sur", "hard yes", "firm yes",
		"voto si", "voto sim",
		// Chinese, Vietnamese, Tagalog, Korean, Arabic, Russian
		"是", "是的", "对", "對", "好", "好的", "同意", "赞成", "贊成", "支持", "可以",
		"co", "vang", "dong y", "u", "da", "ung ho", "co a",
		"oo", "opo", "oo po", "oho",
		"네", "예", "찬성", "동의", "좋아요", "네 찬성", "찬성합니다", "동의합니다", "네 찬성합니다",
		"نعم", "اجل", "ايوه", "موافق",
		"да", "конечно", "за", "согласен", "согласна",
	)
	noPhrases = phrases(
		"no", "nope", "nah", "naw", "nay", "n", "no no", "definitely not", "absolutely not", "of course not",
		"certainly not", "hell no", "heck no", "hard no", "firm no", "nee hoor", "a big no", "big no", "strong no", "a no", "no sir", "no thank you", "no thanks",
		"i oppose", "oppose", "against", "i'm against", "im against", "i am against", "reject", "i reject", "disapprove",
		"i disapprove", "i do not", "i don't", "i do not endorse", "i don't endorse", "do not endorse", "don't endorse",
		"not endorse",
		"claro que no", "por supuesto que no", "de ninguna manera", "no gracias", "nao", "claro que nao", "certo que nao",
		"bien sur que non", "absolument pas", "auf keinen fall", "natuurlijk niet", "assolutamente no", "khong a", "hindi po talaga",
		"конечно нет", "nao obrigado", "non", "non merci", "nein", "nein danke", "nee", "neen", "nee bedankt",
		"不", "不是", "否", "不同意", "反对", "反對", "不支持", "不要", "不行",
		"khong", "khong dong y", "khong ung ho",
		"hindi", "hindi po", "ayoko",
		"아니요", "아니오", "아니", "반대", "아뇨",
		"لا", "كلا",
		"нет", "против", "не согласен", "не согласна",
	)
	nonePhrases = phrases(
		"none", "none of them", "none of the above", "none of these", "none of those", "none of the candidates",
		"no one", "noone", "nobody", "neither", "neither one", "neither of them", "neither candidate",
		"no candidate", "no endorsement", "nobody please",
		"ninguno", "ninguna", "ninguno de ellos", "ninguno de los dos", "nadie", "ninguno de los candidatos", "ninguno de los tres",
		"ninguno de los cuatro", "ninguna de ellas", "aucun des candidats", "aucun des deux", "aucun des trois", "aucune d'entre elles",
		"keiner von ihnen", "keiner von beiden", "keinen von ihnen", "nessuno dei tre", "nessuno di loro", "nessuno dei candidati",
		"nenhum dos candidatos", "nenhum deles", "nenhum dos dois", "nenhum dos tres", "geen van hen", "geen van de kandidaten",
		"都不支持", "都不选择", "一个也不", "没有人", "아무도 아님", "없습니다", "لا أحد منهم", "لا احد منهم", "никто из них", "ни один из них",
		"wala sa kanila po", "khong ai het",
		"nenhum", "nenhuma", "nenhum deles", "ninguem", "aucun", "aucune", "aucun d'entre eux", "personne",
		"keiner", "keine", "keinen", "niemand", "geen", "geen van beide", "geen van allen", "nessuno",
		"nessuno dei due",
		"都不", "都不选", "都不選", "一个都不", "无", "無", "都不要",
		"khong ai", "khong ai ca", "khong chon ai",
		"wala", "wala po", "wala sa kanila",
		"없음", "없어요", "아무도", "아무도 없음",
		"لا احد", "لا أحد",
		"никто", "ни один", "никого", "ни за кого",
	)
	// leadIns may come before the answer: "I vote", "my vote is".
	leadIns = phrases(
		"i vote", "i vote for", "i'm voting", "i'm voting for", "im voting", "im voting for", "i am voting",
		"i am voting for", "i'll vote", "i'll vote for", "i will vote", "i will vote for", "vote", "vote for",
		"voting", "voting for", "my vote", "my vote is", "my vote is for", "my vote goes to", "my vote is a",
		"my vote would be", "my answer", "my answer is", "answer", "my choice", "my choice is", "choice",
		"i choose", "i pick", "i select", "i'd like to vote", "i would like to vote", "i want to vote",
		"i'd like to vote for", "i would like to vote for", "i want to vote for", "please count my vote as",
		"please record my vote as", "count me as", "put me down for", "put me down as", "i say", "i'm for",
		"im for", "i am for", "i'm a", "i am a", "i go with", "i'll go with", "going with", "i'm going with",
		"for", "to", "on", "please", "hi", "hello", "ok", "okay", "so",
		"mi voto", "mi voto es", "voto", "voto por", "voto para", "o meu voto", "meu voto", "meu voto e",
		"je vote", "je vote pour", "mon vote", "ich stimme", "ich stimme fur", "ich wahle", "meine stimme",
		"ik stem", "ik stem op", "mijn stem", "il mio voto", "voto per", "我投", "我选", "我選", "投", "选", "選", "我投票给", "我投給",
		"toi bau", "toi chon", "boto ko", "ang boto ko", "제 투표는", "أصوت", "انا اصوت", "я голосую", "голосую за",
	)
	// tails may follow the answer: "thanks", "please".
	tails = phrases(
		"thanks", "thank you", "thx", "ty", "tks", "thanks so much", "thank you so much", "thanks a lot",
		"thanks again", "please", "pls", "plz", "from me", "for me", "vote", "my vote", "all the way", "100",
		"gracias", "obrigado", "obrigada", "merci", "danke", "dank je", "bedankt", "grazie", "salamat", "salamat po",
		"cam on", "감사합니다", "谢谢", "謝謝", "شكرا", "спасибо", "po",
	)
	// hedgeWords make an answer unsure.
	hedgeWords = phrases(
		"maybe", "perhaps", "probably", "possibly", "leaning", "lean", "leaning towards", "not sure", "unsure",
		"undecided", "think", "i think", "guess", "i guess", "suppose", "might", "torn", "hmm", "hmmm", "idk",
		"on the fence", "not certain", "kind of", "kinda", "sort of", "sorta", "tentatively", "tentative",
		"i believe", "depends", "quizas", "quiza", "tal vez", "talvez", "peut etre", "vielleicht", "forse", "misschien",
		"может быть", "наверное", "也许", "可能", "아마", "có lẽ", "co le", "siguro", "baka",
	)
	// conditionWords attach a condition or a reservation to an answer.
	conditionWords = phrases(
		"if", "unless", "only if", "provided", "as long as", "but", "except", "anyone but", "anybody but",
		"although", "though", "however", "assuming", "si no", "pero", "sauf", "aber", "mais", "ma", "maar",
		"但", "但是", "如果", "nhung", "neu", "pero po", "하지만", "만약", "لكن", "но", "если",
	)
	// changeCues change or question an answer given before them.
	changeCues = phrases(
		"i meant", "i mean", "meant to say", "meant to write", "on second thought", "on second thoughts",
		"second thoughts", "changed my mind", "change my mind", "change my vote", "changing my vote",
		"scratch that", "correction", "never mind", "nevermind", "disregard", "ignore my", "ignore that",
		"ignore the", "no wait", "typo", "by mistake", "mistake", "undo", "retract", "instead", "en realidad",
		"quise decir", "en fait", "eigentlich", "eigenlijk", "на самом деле", "其实", "不对",
	)
	// leadingCues change an answer when they start a clause with more in
	// it: "Actually, no", "Sorry I meant 2" (but "none of them, sorry").
	leadingCues = phrases("actually", "wait", "sorry", "oops", "hmm", "perdon", "pardon", "doch", "scusa", "抱歉", "oh wait")
	// negations, with a reference to the choice, question it.
	negations = phrases(
		"not", "don't", "dont", "do not", "won't", "wont", "will not", "can't", "cant", "cannot", "never",
		"isn't", "doesn't", "doesnt", "does not", "didn't", "didnt", "shouldn't", "wouldn't", "hasn't", "haven't",
		"hasnt", "havent", "has not", "have not", "nor", "no way", "against", "oppose", "nunca", "jamais", "nie",
		"niet", "mai", "не", "没有", "沒有",
	)
	// choiceWords say that a clause is about the vote or a candidate.
	choiceWords = phrases(
		"vote", "voting", "voted", "endorse", "endorsement", "support", "back", "backing", "choose", "choice",
		"pick", "ballot", "candidate", "him", "her", "them", "he", "she", "they", "his", "hers", "he's", "she's",
		"they're", "answer", "option", "yes", "no", "none",
	)
	// numberLeads make a number a candidate's number: "option 2".
	numberLeads = phrases("option", "candidate", "number", "choice", "nr", "num", "opcion", "numero", "option number",
		"candidate number", "the number", "#", "nummer", "номер", "candidato", "candidat", "kandidat", "opcao", "opzione")
	numberWords = map[string]int{
		"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
		"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
		"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6,
		"primero": 1, "primer": 1, "primera": 1, "segundo": 2, "segunda": 2, "tercero": 3, "tercera": 3, "cuarto": 4, "cuarta": 4,
		"premier": 1, "premiere": 1, "deuxieme": 2, "second e": 2, "troisieme": 3, "quatrieme": 4,
		"erste": 1, "ersten": 1, "zweite": 2, "zweiten": 2, "dritte": 3, "dritten": 3,
		"primo": 1, "terzo": 3, "quarto": 4, "eerste": 1, "tweede": 2, "derde": 3,
	}
	ordinals = map[string]bool{"first": true, "second": true, "third": true, "fourth": true, "fifth": true, "sixth": true,
		"1st": true, "2nd": true, "3rd": true, "4th": true, "5th": true, "6th": true,
		"primero": true, "primer": true, "primera": true, "segundo": true, "segunda": true, "tercero": true, "tercera": true,
		"cuarto": true, "cuarta": true, "premier": true, "premiere": true, "deuxieme": true, "troisieme": true, "quatrieme": true,
		"erste": true, "ersten": true, "zweite": true, "zweiten": true, "dritte": true, "dritten": true,
		"primo": true, "terzo": true, "quarto": true, "eerste": true, "tweede": true, "derde": true, "last": true}
	// articles may stand before an ordinal: "the second", "el segundo".
	articles = map[string]bool{"the": true, "el": true, "la": true, "le": true, "der": true, "die": true, "das": true,
		"den": true, "il": true, "lo": true, "de": true, "het": true, "o": true}
	// numberSuffixes follow a number in Chinese and Korean: "2号", "2번".
	numberSuffixes = map[string]bool{"号": true, "號": true, "번": true, "번째": true, "位": true, "号候选人": true}
	honorifics     = map[string]bool{
		"mr": true, "mrs": true, "ms": true, "miss": true, "mx": true, "dr": true, "rep": true, "sen": true,
		"senator": true, "representative": true, "congresswoman": true, "congressman": true, "congressmember": true,
		"gov": true, "governor": true, "candidate": true, "prof": true, "professor": true, "judge": true,
		"mayor": true, "the": true, "rev": true, "reverend": true, "pastor": true, "sister": true, "father": true, "hon": true, "honorable": true, "councilmember": true, "councilwoman": true, "councilman": true,
	}
	nameSuffixes = map[string]bool{"jr": true, "sr": true, "ii": true, "iii": true, "iv": true, "phd": true, "md": true, "esq": true}
	particles    = map[string]bool{"de": true, "la": true, "del": true, "van": true, "von": true, "der": true, "den": true,
		"da": true, "di": true, "du": true, "le": true, "st": true, "dos": true, "das": true, "ter": true, "ten": true, "bin": true, "al": true}
)

// candidateNames is what a candidate can be called.
type candidateNames struct {
	number  int
	name    string
	forms   []phrase // full name, given + surname, surname
	given   phrase   // given name, when no one else is called it
	surname string   // last word of the surname, for near misses
}

// ballotWords is what the reader knows of a ballot and its voter.
type ballotWords struct {
	choices   []Choice
	names     []candidateNames
	nameTok   map[string]bool // every token of every candidate's name
	voter     map[string]bool // tokens of the voter's own name
	voterName string
}

func newBallotWords(choices []Choice, voter string) *ballotWords {
	b := &ballotWords{choices: choices, nameTok: map[string]bool{}, voter: map[string]bool{}, voterName: voter}
	for _, w := range nameTokens(voter) {
		b.voter[w] = true
	}
	for _, c := range choices {
		words := nameWords(c.Name)
		cn := candidateNames{number: c.Number, name: c.Name}
		if n := len(words); n > 0 {
			cn.forms = append(cn.forms, product(words)...)
			// The surname with its particles: "de la Cruz".
			s := n - 1
			for s > 1 && particles[words[s-1][0][0]] {
				s--
			}
			if n > 1 {
				sur := product(words[s:])
				cn.forms = append(cn.forms, product(append([][]phrase{words[0]}, words[s:]...))...)
				cn.forms = append(cn.forms, sur...)
				last := words[n-1]
				if s < n-1 {
					cn.forms = append(cn.forms, last...)
				}
				// "Ocasio-Cortez": "Cortez" alone too.
				for _, v := range last {
					if len(v) > 1 {
						cn.forms = append(cn.forms, phrase{v[len(v)-1]})
					}
				}
				cn.given = words[0][0]
				if n >= 3 && s == n-1 {
					// "Wasserman Schultz", "Blunt Rochester": a double
					// surname without a hyphen.
					cn.forms = append(cn.forms, product(words[1:])...)
				}
			}
			cn.surname = words[n-1][0][0]
			if joined := strings.Join(words[n-1][len(words[n-1])-1], ""); len(words[n-1]) > 1 {
				cn.surname = joined
			}
		}
		for _, f := range cn.forms {
			for _, w := range f {
				b.nameTok[w] = true
			}
		}
		b.names = append(b.names, cn)
	}
	return b
}

// nameWords splits a name into its words without honorifics and
// suffixes; each word has the ways it can be written: "O'Rourke" as
// "orourke" or "o rourke", "Ocasio-Cortez" as "ocasio cortez" or
// "ocasiocortez".
func nameWords(name string) [][]phrase {
	var out [][]phrase
	for _, raw := range strings.Fields(normalize(name)) {
		split := phrase(tokens(strings.NewReplacer("'", " ", "-", " ", ".", " ").Replace(raw)))
		if len(split) == 0 {
			continue
		}
		if len(split) == 1 && (nameSuffixes[split[0]] || (honorifics[split[0]] && split[0] != "the")) {
			continue
		}
		joined := phrase{strings.Join(split, "")}
		if len(split) == 1 {
			out = append(out, []phrase{split})
			continue
		}
		if strings.Contains(raw, "'") {
			out = append(out, []phrase{joined, split})
		} else {
			out = append(out, []phrase{split, joined})
		}
	}
	return out
}

// product is every way of writing the words one after another.
func product(words [][]phrase) []phrase {
	out := []phrase{{}}
	for _, variants := range words {
		var next []phrase
		for _, p := range out {
			for _, v := range variants {
				next = append(next, append(append(phrase{}, p...), v...))
			}
		}
		out = next
	}
	return out
}

// nameTokens are the folded words of a name without honorifics, suffixes
// and apostrophes ("O'Rourke" is "orourke").
func nameTokens(name string) phrase {
	var out phrase
	for _, w := range nameWords(name) {
		out = append(out, w[0]...)
	}
	return out
}

// readAnswer reads a clause that must be nothing but an answer. It returns
// the meaning, or an empty meaning and, when it knows one, the reason.
func (b *ballotWords) readAnswer(toks []string) (meaning, string) {
	// Apostrophes inside names ("O'Rourke") are dropped for matching; they
	// stay in "don't".
	toks = trimTails(toks)
	var found []meaning
	i := 0
	leads := 0
	for i < len(toks) {
		if n := matchAt(toks, i, leadIns); n > 0 && (len(found) == 0 || toks[i] == "for" || toks[i] == "to" || toks[i] == "on") {
			i += n
			leads++
			continue
		}
		m, n, why := b.readAtom(toks, i)
		if n == 0 {
			return meaning{}, why
		}
		found = append(found, m)
		i += n
	}
	if len(found) == 0 {
		return meaning{}, ""
	}
	return agree(found)
}

// trimTails drops polite words at the end of an answer.
func trimTails(toks []string) []string {
	for len(toks) > 0 {
		cut := 0
		for _, p := range tails {
			if len(p) <= len(toks) && len(p) > cut {
				ok := true
				for k, w := range p {
					if toks[len(toks)-len(p)+k] != w {
						ok = false
						break
					}
				}
				if ok {
					cut = len(p)
				}
			}
		}
		if cut == 0 || cut == len(toks) {
			return toks
		}
		toks = toks[:len(toks)-cut]
	}
	return toks
}

// agree merges the atoms of one answer ("yes, Markey", "2 Pressley"): they
// must mean the same thing.
func agree(found []meaning) (meaning, string) {
	m := found[0]
	for _, f := range found[1:] {
		switch {
		case f.kind == m.kind && f.number == m.number:
			if f.read != "" {
				m.read = f.read
			}
			m.byNumber = m.byNumber && f.byNumber
		case m.kind == AnswerYes && f.kind == AnswerCandidate:
			// "Yes, Markey": the name carries the answer.
			m = f
		case m.kind == AnswerCandidate && f.kind == AnswerYes:
			// "Markey, yes".
		default:
			return meaning{}, "we found more than one answer"
		}
	}
	return m, ""
}

// readAtom reads one answer at toks[i]: yes, no, none, a number or a name.
// n is the number of tokens it took, 0 when there is none.
func (b *ballotWords) readAtom(toks []string, i int) (m meaning, n int, why string) {
	// Names first: "Neither" is not a name, but a candidate called "Sure"
	// would be.
	if m, n, why := b.readName(toks, i); n > 0 || why != "" {
		return m, n, why
	}
	if n := b.readNumber(toks, i, &m); n > 0 {
		return m, n, ""
	}
	best, kind := 0, AnswerKind("")
	for _, l := range []struct {
		list []phrase
		kind AnswerKind
	}{{nonePhrases, AnswerNone}, {noPhrases, AnswerNo}, {yesPhrases, AnswerYes}} {
		if n := matchAt(toks, i, l.list); n > best {
			best, kind = n, l.kind
		}
	}
	if best > 0 {
		// "no one", "no idea": "no" followed by more is not "no".
		return meaning{kind: kind}, best, ""
	}
	return meaning{}, 0, ""
}

// readNumber reads "2", "#2", "option 2", "number two", "the second one".
func (b *ballotWords) readNumber(toks []string, i int, m *meaning) int {
	j := i
	article := false
	if articles[toks[j]] && j+1 < len(toks) {
		j++
		article = true
	}
	lead := false
	if n := matchAt(toks, j, numberLeads); n > 0 && j+n < len(toks) {
		// "no 2" is not "no": but "no" alone is handled as an answer.
		if toks[j] == "no" && !isDigits(toks[j+n]) {
			return 0
		}
		j += n
		lead = true
	}
	w := toks[j]
	num := 0
	switch {
	case strings.HasPrefix(w, "#") && isDigits(w[1:]):
		num = atoi(w[1:])
	case isDigits(w) && len(w) <= 3:
		num = atoi(w)
	case w == "last" && (article || lead):
		num = len(b.choices)
	case numberWords[w] > 0:
		num = numberWords[w]
	default:
		return 0
	}
	if article && !ordinals[w] && !lead {
		return 0
	}
	j++
	if j < len(toks) && (ordinals[w] || isDigits(w)) && (ordinalNouns[toks[j]] || numberSuffixes[toks[j]]) {
		j++
	}
	m.kind, m.number, m.byNumber = AnswerCandidate, num, true
	return j - i
}

// ordinalNouns follow an ordinal: "the second one", "el segundo candidato".
var ordinalNouns = map[string]bool{"one": true, "candidate": true, "option": true, "choice": true, "name": true,
	"candidato": true, "candidata": true, "candidat": true, "kandidat": true, "opcion": true}

// readName reads a candidate's name at toks[i], with honorifics; why is
// set when the name fits several candidates or is the voter's own.
func (b *ballotWords) readName(toks []string, i int) (meaning, int, string) {
	j := i
	for j < len(toks) && honorifics[toks[j]] {
		j++
	}
	if j == len(toks) {
		return meaning{}, 0, ""
	}
	// Apostrophes and hyphens in names: "o'rourke", "ocasio-cortez".
	cand := make([]string, 0, len(toks)-j)
	for _, w := range toks[j:] {
		cand = append(cand, strings.ReplaceAll(w, "'", ""))
	}
	best := 0
	var who []int
	for _, cn := range b.names {
		forms := append([]phrase{}, cn.forms...)
		if cn.given != nil {
			forms = append(forms, cn.given)
		}
		for _, f := range forms {
			if len(f) > len(cand) || len(f) < best {
				continue
			}
			if !prefixEq(cand, f) {
				continue
			}
			// A suffix after the name: "Jr", "Sr".
			if len(f) > best {
				best, who = len(f), nil
			}
			if !containsInt(who, cn.number) {
				who = append(who, cn.number)
			}
		}
	}
	if best > 0 {
		k := j + best
		for k < len(toks) && nameSuffixes[toks[k]] {
			k++
		}
		if len(who) > 1 || (best == 1 && b.inOtherName(cand[0], who[0])) {
			// "Kelly" for Mark Kelly and Kelly Ayotte; "Gay" for Marcus
			// Gay and Mary Gay Scanlon.
			return meaning{}, 0, reasonAmbiguous
		}
		if b.ownName(cand[:best]) {
			return meaning{}, 0, reasonOwnName
		}
		return meaning{kind: AnswerCandidate, number: who[0]}, k - i, ""
	}
	// One edit away from a unique surname of five or more letters
	// ("Pressly"), alone or after the given name.
	if n, num, w := b.nearSurname(cand); n > 0 {
		k := j + n
		for k < len(toks) && nameSuffixes[toks[k]] {
			k++
		}
		return meaning{kind: AnswerCandidate, number: num, read: w}, k - i, ""
	}
	return meaning{}, 0, ""
}

// nearSurname matches a misspelt surname, alone or after the given name:
// one edit from exactly one candidate's surname of five or more letters,
// and from no other word of any candidate's name.
func (b *ballotWords) nearSurname(cand []string) (n, number int, read string) {
	near := func(w string) (candidateNames, bool) {
		if utf8.RuneCountInString(w) < 5 || b.nameTok[w] {
			return candidateNames{}, false
		}
		var hit candidateNames
		hits := 0
		for _, cn := range b.names {
			if utf8.RuneCountInString(cn.surname) >= 5 && oneEdit(w, cn.surname) {
				hit, hits = cn, hits+1
			}
		}
		if hits != 1 {
			return hit, false
		}
		for t := range b.nameTok {
			if t != hit.surname && oneEdit(w, t) {
				return hit, false
			}
		}
		return hit, true
	}
	if len(cand) >= 1 {
		if cn, ok := near(cand[0]); ok {
			return 1, cn.number, fmt.Sprintf("%q as %s", cand[0], cn.name)
		}
	}
	if len(cand) >= 2 {
		if cn, ok := near(cand[1]); ok && cn.given != nil && cand[0] == cn.given[0] {
			return 2, cn.number, fmt.Sprintf("%q as %s", cand[0]+" "+cand[1], cn.name)
		}
	}
	return 0, 0, ""
}

// inOtherName reports whether word is any word of the name of a candidate
// other than number.
func (b *ballotWords) inOtherName(word string, number int) bool {
	for _, cn := range b.names {
		if cn.number == number {
			continue
		}
		for _, f := range cn.forms {
			for _, w := range f {
				if w == word {
					return true
				}
			}
		}
	}
	return false
}

// ownName reports whether the name words are all the voter's own: a
// signature, not an answer.
func (b *ballotWords) ownName(ws []string) bool {
	if len(b.voter) == 0 {
		return false
	}
	for _, w := range ws {
		if !b.voter[w] {
			return false
		}
	}
	return true
}

// mentionsAnswer reports whether toks hold any answer word, name or
// number: a sentence around an answer, rather than no answer at all.
func (b *ballotWords) mentionsAnswer(toks []string) bool {
	for i, w := range toks {
		if b.nameTok[strings.ReplaceAll(w, "'", "")] || isDigits(strings.TrimPrefix(w, "#")) || numberWords[w] > 0 {
			return true
		}
		if matchAt(toks, i, yesPhrases) > 0 || matchAt(toks, i, noPhrases) > 0 || matchAt(toks, i, nonePhrases) > 0 {
			return true
		}
	}
	return false
}

// contradicts says why a later clause makes the answer unclear, or "".
func (b *ballotWords) contradicts(c clause, m meaning) string {
	toks := tokens(c.text)
	if len(toks) == 0 {
		return ""
	}
	about := hasCue(toks, choiceWords) || b.namesAny(toks)
	if hasCue(toks, changeCues) {
		return reasonSecond
	}
	if n := matchAt(toks, 0, leadingCues); n > 0 && !(n == len(toks) && toks[0] == "sorry") {
		// "Actually, no"; a lone "sorry" is politeness.
		return reasonSecond
	}
	if strings.Contains(c.text, "?") && about {
		return reasonQuestion
	}
	if (hasCue(toks, hedgeWords) || hasCue(toks, conditionWords)) && (about || len(toks) <= 4) {
		return reasonHedge
	}
	// "But …", "Only if …" opening a clause; "not (100%) sure".
	if matchAt(toks, 0, conditionWords) > 0 || (hasCue(toks, negations) && hasCue(toks, certaintyWords)) {
		return reasonHedge
	}
	// Another answer: a clause that is an answer must be the same one.
	if other, _ := b.readAnswer(toks); other.kind != "" {
		if _, why := agree([]meaning{m, other}); why != "" {
			return reasonOther
		}
		return ""
	}
	for i, w := range toks {
		bare := strings.ReplaceAll(w, "'", "")
		// Another candidate named anywhere.
		for _, cn := range b.names {
			if m.kind == AnswerCandidate && cn.number == m.number {
				continue
			}
			if len(b.names) == 1 {
				continue
			}
			for _, f := range append(append([]phrase{}, cn.forms...), cn.given) {
				if len(f) > 0 && prefixEq(stripApos(toks[i:]), f) && !b.ownName(f) {
					return reasonOther
				}
			}
		}
		// Yes or no against the answer ("yes" after NO).
		if matchAt(toks, i, yesPhrases) > 0 && (toks[i] == "yes" || toks[i] == "yeah" || toks[i] == "si") && m.kind == AnswerNo {
			return reasonOther
		}
		// "no" against the answer, but not in a slogan ("No Kings!") nor
		// a ballot measure's ("Vote No on Prop 22").
		if (w == "no" || w == "nope") && m.kind != AnswerNo && matchAt(toks, i, nonePhrases) == 0 &&
			(about || len(toks) <= 2) && !measureSlogan(toks, i) {
			return reasonOther
		}
		if matchAt(toks, i, nonePhrases) > 0 && m.kind != AnswerNone && len(b.names) > 1 && about {
			return reasonOther
		}
		// A number that is another candidate's, where it reads as one.
		if len(b.names) > 1 {
			num := 0
			if strings.HasPrefix(bare, "#") && isDigits(bare[1:]) {
				num = atoi(bare[1:])
			} else if isDigits(bare) && (len(toks) <= 3 || (i > 0 && matchAt(toks, i-1, numberLeads) > 0) ||
				hasCue(toks, numberChoiceCues)) {
				num = atoi(bare)
			}
			if num > 0 && !(m.kind == AnswerCandidate && m.number == num) {
				if _, ok := choiceByNumber(b.choices, num); ok {
					return reasonOther
				}
			}
		}
	}
	// A negation about the choice questions it; after NO or NONE it only
	// agrees.
	if m.kind != AnswerNo && m.kind != AnswerNone && hasCue(toks, negations) && (about || len(toks) <= 4) {
		return reasonSecond
	}
	return ""
}

// ballotMeasures are the words of a ballot measure's slogan: "Yes on Prop 22".
var ballotMeasures = map[string]bool{"prop": true, "proposition": true, "measure": true, "question": true,
	"amendment": true, "issue": true, "initiative": true, "referendum": true}

// certaintyWords, negated ("not 100% sure"), hedge an answer.
var certaintyWords = phrases("sure", "certain", "convinced", "decided")

// numberChoiceCues make a number in a later clause read as a choice:
// "or 3 if 1 drops out".
var numberChoiceCues = phrases("or", "if", "unless", "vote", "pick", "choice", "instead", "also", "too", "and")

// measureSlogan reports "yes/no on prop 22" at toks[i]: a ballot measure,
// not this vote.
func measureSlogan(toks []string, i int) bool {
	return i+2 < len(toks) && toks[i+1] == "on" &&
		ballotMeasures[toks[i+2]]
}

func (b *ballotWords) namesAny(toks []string) bool {
	for _, w := range toks {
		if b.nameTok[strings.ReplaceAll(w, "'", "")] {
			return true
		}
	}
	return false
}

func stripApos(ws []string) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = strings.ReplaceAll(w, "'", "")
	}
	return out
}

func prefixEq(ws []string, p phrase) bool {
	if len(p) > len(ws) {
		return false
	}
	for k, w := range p {
		if ws[k] != w {
			return false
		}
	}
	return true
}

func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
		if n > 1_000_000 {
			return n
		}
	}
	return n
}

// oneEdit reports whether a and b differ by exactly one insertion,
// deletion, substitution or transposition of adjacent letters.
func oneEdit(a, b string) bool {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > len(rb) {
		ra, rb = rb, ra
	}
	switch len(rb) - len(ra) {
	case 0:
		diff := -1
		for i := range ra {
			if ra[i] != rb[i] {
				if diff >= 0 {
					// A transposition: two adjacent differences, swapped.
					return diff == i-1 && ra[diff] == rb[i] && ra[i] == rb[diff] && string(ra[i+1:]) == string(rb[i+1:])
				}
				diff = i
			}
		}
		return diff >= 0
	case 1:
		i := 0
		for i < len(ra) && ra[i] == rb[i] {
			i++
		}
		return string(ra[i:]) == string(rb[i+1:])
	}
	return false
}

func choiceByNumber(choices []Choice, n int) (int, bool) {
	for _, c := range choices {
		if c.Number == n {
			return n, true
		}
	}
	return 0, false
}

// quoteOf is the start of the member's own text, shortened, for the
// clarification.
func quoteOf(lines []string) string {
	var sb strings.Builder
	for i, l := range lines {
		if i == 3 {
			break
		}
		if i > 0 {
			sb.WriteString("\n")
		}
		sb.WriteString(l)
	}
	s := sb.String()
	if utf8.RuneCountInString(s) > 200 {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:200])) + "…"
	}
	return s
}

// ballotEcho matches lines of the ballot itself that a reply may carry
// unquoted; reading stops there.
var ballotEcho = regexp.MustCompile(`(?i)(ballot code\s*:|voting is open on|nominated by local groups|^\s*nominated by:|reply (with )?(just )?(yes|no|the number|none)|yes or no|\bor none\b|receipt code\s*:|^\s*\d+\.\s.*\(nominated by|one tap to answer|mailto:|^\s*how it works:|why local groups nominated them|we could not tell what your vote is|thank you for replying to your ballot|we recorded your vote)`)

// closingLine is a sign-off: everything after it is a signature.
var closingLine = regexp.MustCompile(`(?i)^\W*(best|best regards|best wishes|all the best|regards|kind regards|warm regards|warmly|warmest|thanks|thank you|thanks so much|many thanks|thanks again|thx|ty|cheers|sincerely|yours|yours truly|cordially|respectfully|take care|love|xo|xoxo|peace|in solidarity|solidarity|onward|onwards|stay safe|saludos|atentamente|un saludo|gracias|muchas gracias|merci|cordialement|bien à vous|danke|viele grüße|mit freundlichen grüßen|lg|groeten|met vriendelijke groet|saluti|cordiali saluti|grazie|obrigad[oa]|abraços|atenciosamente|спасибо|с уважением|谢谢|謝謝|감사합니다|cảm ơn|salamat( po)?|شكرا)\W*(\s+\p{L}+){0,3}\W*$`)

// phoneLine is a line that is mostly a phone number.
var phoneLine = regexp.MustCompile(`(?i)^\W*((tel|phone|cell|mobile|mob|ph|m|c|t|o|office)\.?\s*:?\s*)?\+?[\d\s().\-–]{7,}\d\W*$|(^|\s)\(?\d{3}\)?[\s.\-]\d{3}[\s.\-]\d{4}`)

// addressLine is a postal address line or a unit, ward or precinct.
var addressLine = regexp.MustCompile(`(?i)^\W*(\d+\s+(\p{L}+\.?\s+){1,4}(st|street|ave|avenue|rd|road|blvd|boulevard|ln|lane|dr|drive|way|ct|court|pl|place|ter|terrace|pkwy|parkway|hwy|highway|cir|circle|sq|square)\b.*|(apt|apartment|unit|suite|ste|ward|precinct|district|box|po box|p\.o\. box|floor|fl|room|rm)\.?\s*#?\s*\d+\w*.*|.*,\s*[A-Z]{2}\s+\d{5}(-\d{4})?\s*)$`)

// sentFrom is a mail app's one-line signature, in any wording.
var sentFrom = regexp.MustCompile(`(?i)^\W*(sent|envoy[ée]|enviado|inviato|gesendet|verzonden|отправлено)\s+(from|via|with|using|by|on|de|depuis|desde|da|von|met|с|из)\b`)

// disclaimer is the legal notice some organisations append to every mail.
var disclaimer = regexp.MustCompile(`(?i)^\W*(confidentiality notice|confidential(ity)?\s*:|disclaimer\s*:|privileged (and|&) confidential|this (e-?mail|message|communication)( and any attachments?)? (is|are|may contain|contains|is intended)|the information (contained )?in this (e-?mail|message)|if you (have received|are not the intended))`)

// dashSignature is "- Maria" or "—ML" on a line of its own.
var dashSignature = regexp.MustCompile(`^\s*[-–—~]+\s*\p{L}[\p{L}.'\s]{0,40}$`)

// ownLines returns the non-empty lines of the member's own text, without
// the ballot's echo and the signature.
func ownLines(text string, b *ballotWords) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(normalize(l))
		if l == "" {
			continue
		}
		if ballotEcho.MatchString(l) || sentFrom.MatchString(l) {
			break
		}
		if len(out) > 0 && b.isSignature(l) {
			break
		}
		out = append(out, l)
	}
	return out
}

// isSignature reports a line that starts a signature: a sign-off, the
// voter's own name, a phone number, an address.
func (b *ballotWords) isSignature(l string) bool {
	if closingLine.MatchString(l) || phoneLine.MatchString(l) || addressLine.MatchString(l) || dashSignature.MatchString(l) ||
		disclaimer.MatchString(l) || greeting.MatchString(l) {
		// A greeting below the answer starts a message pasted back.
		return true
	}
	ws := nameTokens(strings.TrimLeft(l, "-–—~ "))
	if len(ws) > 0 && len(ws) <= 4 && len(b.voter) > 0 {
		own := 0
		for _, w := range ws {
			if b.voter[w] {
				own++
			}
		}
		// "Maria", "Maria Lopez", "Maria L." (an initial).
		if own > 0 && own+initials(ws) == len(ws) {
			return true
		}
	}
	// "Maria Lopez (she/her)", "Maria Lopez | Indivisible Springfield":
	// a line that starts with the voter's whole name.
	if full := nameTokens(b.voterName); len(full) >= 2 && len(ws) > len(full) && prefixEq(ws, full) {
		return true
	}
	return false
}

// initials counts one-letter words.
func initials(ws []string) int {
	n := 0
	for _, w := range ws {
		if utf8.RuneCountInString(w) == 1 {
			n++
		}
	}
	return n
}

// greeting is a salutation line above the answer.
var greeting = regexp.MustCompile(`(?i)^\W*(hi|hello|hey|dear|good (morning|afternoon|evening)|greetings|hola|buenos días|buenas|bonjour|salut|hallo|guten tag|ciao|olá|ola|hoi|привет|здравствуйте|你好|您好|안녕하세요|xin chào|kumusta)\b[\p{L}\s.,!']{0,40}$`)

// externalBanner is the warning an organisation's mail system puts above
// a message from outside.
var externalBanner = regexp.MustCompile(`(?i)^\W*(\[?external\]?|caution|warning|notice)\s*[:\-–]\s*(this|the) (e-?mail|message)\s+(originated|came|was sent|is) from outside`)

// thanksLine is a line of thanks with nothing else in it.
var thanksLine = regexp.MustCompile(`(?i)^\W*(thanks|thank you|many thanks|thanks so much|thank you so much)( (for|to) [\p{L}\s',]{0,80})?\W*$`)

// isPleasantry reports a greeting or thanks above the answer that holds no
// answer of its own.
func (b *ballotWords) isPleasantry(l string) bool {
	if externalBanner.MatchString(l) {
		return true
	}
	if strings.Contains(l, "?") {
		return false
	}
	if !greeting.MatchString(l) && !thanksLine.MatchString(l) {
		return false
	}
	toks := tokens(l)
	if hasCue(toks, negations) || hasCue(toks, hedgeWords) || hasCue(toks, conditionWords) {
		return false
	}
	// "Hi, yes" is split before this; "Hello Markey" is not a greeting.
	return !b.mentionsAnswer(toks[1:])
}
