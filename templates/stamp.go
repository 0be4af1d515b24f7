package templates

import (
	"bytes"
	"strings"
	"unicode"
)

// A Stamp is one kind's message for one race with the member's name and
// ballot code left as holes: made once per race, filled per member. The
// ballot and the reminder go to every member of a race with nothing else
// different, and executing their templates (the candidate list, the rule)
// for each costs more than all else ballotd does to a message.
//
// A Stamp is made only where filling it is provably the same as executing
// the template: the kind's templates are ballotd's own (an operator's
// override might branch on the name), the template is executed twice with
// two different marker values in the holes and must give the same text
// around them, and only names that no context escapes or changes
// (PlainName) are filled in; any other name goes through Render.
type Stamp struct {
	subject, text, html []piece
}

// piece is literal text followed by a hole (or none).
type piece struct {
	lit  string
	hole hole
}

type hole uint8

const (
	noHole hole = iota
	nameHole
	codeHole
)

// markers are values for the name and the code that occur nowhere else in
// a message; a pair of them, different in length and letters, shows
// whether the template treats the holes as opaque text. The name markers
// hold a space and a non-ASCII letter, which PlainName lets through: a
// context that would encode them (a URL) changes the marker and so refuses
// the stamp.
//
// The code markers are letters and digits only, like a code: the code
// stands inside the one-tap mailto: links too, where a URL context would
// encode anything else and refuse every stamp.
var markers = [2]struct{ name, code string }{
	{"\x1eNa \u00e9\x1e", "q0q0ca0q0q"},
	{"\x1eNbb \u00fc\x1e", "q0q0cbb0q0q"},
}

// Stamp makes kind's stamp from data, which builds the template data with
// the given name and code. named says whether the member has a name: the
// templates greet a member without one differently, so each case has its
// own stamp. It returns false where a stamp cannot be proved equal to
// Render, and the caller renders each message.
func (s *Set) Stamp(kind string, named bool, data func(name, code string) any) (*Stamp, bool) {
	if !s.own[kind] {
		return nil, false
	}
	var runs [2]Stamp
	for i, m := range markers {
		name := m.name
		if !named {
			name = ""
		}
		var text, html bytes.Buffer
		subject, err := s.render(kind, data(name, m.code), &text, &html)
		if err != nil {
			return nil, false
		}
		runs[i] = Stamp{split(subject, name, m.code), split(text.String(), name, m.code), split(html.String(), name, m.code)}
	}
	if !samePieces(runs[0].subject, runs[1].subject) || !samePieces(runs[0].text, runs[1].text) || !samePieces(runs[0].html, runs[1].html) {
		return nil, false
	}
	return &runs[0], true
}

// Fill writes the stamp's bodies for a member with name and code into text
// and html, and returns the subject; name must be PlainName.
func (st *Stamp) Fill(name, code string, text, html *bytes.Buffer) (subject string) {
	fill := func(w *bytes.Buffer, ps []piece) {
		for _, p := range ps {
			w.WriteString(p.lit)
			switch p.hole {
			case nameHole:
				w.WriteString(name)
			case codeHole:
				w.WriteString(code)
			}
		}
	}
	fill(text, st.text)
	fill(html, st.html)
	var sb bytes.Buffer
	fill(&sb, st.subject)
	return strings.Join(strings.Fields(sb.String()), " ")
}

// PlainName reports whether name is made only of letters, marks, digits,
// spaces and . , - so that neither HTML nor text changes it, and a stamp
// can take it as it is. Others (O'Brien, names with & or <) are rendered.
func PlainName(name string) bool {
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsDigit(r) && r != ' ' && r != '.' && r != ',' && r != '-' {
			return false
		}
	}
	return true
}

// split cuts out at each occurrence of name (when not empty) and code.
func split(out, name, code string) []piece {
	var ps []piece
	for {
		i, h, n := strings.Index(out, code), codeHole, len(code)
		if name != "" {
			if j := strings.Index(out, name); j >= 0 && (i < 0 || j < i) {
				i, h, n = j, nameHole, len(name)
			}
		}
		if i < 0 {
			return append(ps, piece{lit: out})
		}
		ps = append(ps, piece{lit: out[:i], hole: h})
		out = out[i+n:]
	}
}

func samePieces(a, b []piece) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A FooterStamp is the footer of member mail for one Footer with its
// unsubscribe token left as a hole: made once per footer (an organisation,
// whom it is for, a district), filled per member. As for Stamp, it is made
// only from ballotd's own footer, and only where the footer rendered with
// two different tokens gives the same text around them.
type FooterStamp struct {
	text, html []piece
}

// StampFooter makes the footer stamp of the footer f(token) gives, where
// the token (lowercase letters and digits) appears in f's Address and Link
// and nowhere else. It returns false when the footer cannot be stamped, and
// the caller renders each (RenderFooter).
func (s *Set) StampFooter(f func(token string) Footer) (*FooterStamp, bool) {
	if !s.ownFooter {
		return nil, false
	}
	var runs [2]FooterStamp
	for i, m := range markers {
		var text, html bytes.Buffer
		ft := f(m.code)
		if err := s.footText.Execute(&text, ft); err != nil {
			return nil, false
		}
		if err := s.footHTML.Execute(&html, ft); err != nil {
			return nil, false
		}
		runs[i] = FooterStamp{split(text.String(), "", m.code), split(html.String(), "", m.code)}
	}
	if !samePieces(runs[0].text, runs[1].text) || !samePieces(runs[0].html, runs[1].html) {
		return nil, false
	}
	return &runs[0], true
}

// Fill ends a member mail with the footer for token, as RenderFooter
// would with the footer the stamp was made from.
func (fs *FooterStamp) Fill(token string, text, html *bytes.Buffer) {
	fill := func(w *bytes.Buffer, ps []piece) {
		for _, p := range ps {
			w.WriteString(p.lit)
			if p.hole == codeHole {
				w.WriteString(token)
			}
		}
	}
	fill(text, fs.text)
	i := bytes.LastIndex(html.Bytes(), []byte("</body>"))
	if i < 0 {
		fill(html, fs.html)
		return
	}
	var tail [64]byte
	t := append(tail[:0], html.Bytes()[i:]...)
	html.Truncate(i)
	fill(html, fs.html)
	html.Write(t)
}
