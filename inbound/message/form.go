package message

import (
	"bytes"
	"fmt"
	"net/mail"
	"regexp"
	"strings"

	"golang.org/x/net/html"

	"github.com/ballotd/ballotd/internal/race"
)

// Form is a nomination form as a group leader wrote it (DESIGN.md,
// "Nomination form"), read and checked on its own, without the database.
type Form struct {
	Group     string      // the nominating group as written; "" when not given
	Candidate string      // the candidate's name, honorific ("Sen.") removed
	Office    race.Office // from Office, else from the race code
	State     string      // postal code
	Race      string      // canonical race code: MA-SEN, MA-07, AK-AL
	// Local is true when the form confirms the group completed its local
	// endorsement process.
	Local  bool
	Reason string // free text, paragraphs kept
	// Campaign is the campaign's email address (where the policy
	// questionnaire goes), "" when not given.
	Campaign string
	// Partners is the progressive partners' endorsements as written
	// (free text or a list, one line), "" when not given.
	Partners string
	// FirstTime is "yes" or "no" (a first-time candidate), "" when not
	// given.
	FirstTime string
	// PastRaces is the candidate's past races as written, "" when not
	// given.
	PastRaces string
	// Text is the form as received (the sender's own text), for quoting back.
	Text string
}

// Problem is one thing wrong with a form, named by its field.
type Problem struct {
	Field string
	Text  string
}

// String implements fmt.Stringer.
func (p Problem) String() string { return p.Field + ": " + p.Text }

// form fields, by canonical key.
const (
	fGroup     = "Group"
	fCandidate = "Candidate"
	fOffice    = "Office"
	fState     = "State"
	fDistrict  = "District"
	fLocal     = "Local endorsement"
	fReason    = "Reason for endorsement"
	fCampaign  = "Campaign email"
	fPartners  = "Partner endorsements"
	fFirstTime = "First-time candidate"
	fPastRaces = "Past races"
	fIgnored   = "-"
)

// fieldNames maps the field names leaders write (lowercased, single spaces)
// to the canonical field: DESIGN.md's wording and the seed's ("Elected
// Office", "Candidate District", "Reason for Endorsement").
var fieldNames = map[string]string{
	"group": fGroup, "group name": fGroup, "indivisible group": fGroup, "nominating group": fGroup, "your group": fGroup, "local group": fGroup,
	"candidate": fCandidate, "candidate name": fCandidate, "candidate's name": fCandidate, "name of candidate": fCandidate, "nominee": fCandidate,
	"office": fOffice, "elected office": fOffice, "office sought": fOffice, "candidate office": fOffice, "seat": fOffice,
	"state": fState, "candidate state": fState,
	"district": fDistrict, "candidate district": fDistrict, "race": fDistrict, "race code": fDistrict, "congressional district": fDistrict,
	"local endorsement": fLocal, "local endorsement complete": fLocal, "local endorsement completed": fLocal,
	"local endorsement process": fLocal, "local endorsement process completed": fLocal, "local process": fLocal, "local process completed": fLocal,
	"reason": fReason, "reason for endorsement": fReason, "reasons for endorsement": fReason, "reason for nomination": fReason,
	"reason for endorsing": fReason, "why": fReason,
	"campaign email": fCampaign, "campaign e-mail": fCampaign, "campaign email address": fCampaign, "campaign contact": fCampaign,
	"campaign contact email": fCampaign, "candidate email": fCampaign, "candidate's email": fCampaign,
	"partner endorsements": fPartners, "partner endorsement": fPartners, "progressive partner endorsements": fPartners,
	"partners": fPartners, "progressive partners": fPartners, "endorsed by partners": fPartners, "other endorsements": fPartners,
	"first-time candidate": fFirstTime, "first time candidate": fFirstTime, "first-time": fFirstTime, "first time": fFirstTime,
	"first-time candidate?": fFirstTime, "first run": fFirstTime, "first race": fFirstTime,
	"past races": fPastRaces, "past race": fPastRaces, "previous races": fPastRaces, "prior races": fPastRaces,
	"past elections": fPastRaces, "electoral history": fPastRaces, "past performance": fPastRaces,
	"year": fIgnored,
}

// fieldLine matches "Name: value", allowing Markdown or HTML-to-text bold
// marks around the name and a full-width colon.
var fieldLine = regexp.MustCompile(`^\s*[*_]*\s*([A-Za-z][A-Za-z .'’/()-]{0,48}?)\s*[*_]*\s*[:：]\s*[*_]*\s*(.*?)\s*[*_]*\s*$`)

// field returns the canonical field and value of line, if it is a field.
func field(line string) (key, value string, ok bool) {
	m := fieldLine.FindStringSubmatch(line)
	if m == nil {
		return "", "", false
	}
	name := strings.ToLower(strings.Join(strings.Fields(strings.ReplaceAll(m[1], "’", "'")), " "))
	key, ok = fieldNames[name]
	return key, stripHint(m[2]), ok
}

// hint is the explanation the blank form gives after a value
// ("Office:   (U.S. Senate, U.S. House or Governor)").
var hint = regexp.MustCompile(`(^|\s{2,})\([^()]*\)\s*$`)

func stripHint(v string) string { return strings.TrimSpace(hint.ReplaceAllString(v, "")) }

// nominatedLine is the seed's closing sentence: "Indivisible Northampton
// nominated Sen. Ed Markey for a national endorsement."
var nominatedLine = regexp.MustCompile(`(?i)^\s*(.{3,80}?)\s+nominated\s+(.{3,80}?)\s+for\s+(?:a|the)\s+national\s+endorsement`)

// honorific is a title before a candidate's name.
var honorific = regexp.MustCompile(`(?i)^(u\.?s\.?\s+)?(sen\.?|senator|rep\.?|representative|gov\.?|governor|congresswoman|congressman|congressmember|lt\.?\s+gov\.?)\s+`)

func cleanName(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.Trim(s, " .,;")
	return honorific.ReplaceAllString(s, "")
}

// fields is what one block of text says.
type fields struct {
	values    map[string]string // the first value of each field
	last      map[string]string // the last value of each field
	lead      string            // the last short line before the first field: a name heading
	nominated [2]string
	reason    []string
	problems  []Problem
	any       bool
}

// readFields reads the fields of text. Fields come in any order; the
// reason starts at its (last) field and takes every following line that is
// not itself a field, to the end of the text.
func readFields(text string) fields {
	f := fields{values: map[string]string{}, last: map[string]string{}}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	inReason := false
	var lastPlain string
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " \t")
		if m := nominatedLine.FindStringSubmatch(line); m != nil && f.nominated[0] == "" {
			f.nominated = [2]string{strings.TrimSpace(m[1]), cleanName(m[2])}
		}
		key, value, ok := field(line)
		if !ok {
			if inReason {
				f.reason = append(f.reason, line)
			} else if t := strings.TrimSpace(line); t != "" {
				lastPlain = t
			}
			continue
		}
		if !f.any {
			f.lead = lastPlain
		}
		f.any = true
		if key == fReason {
			// A later form (one quoted after a blank form) has the reason.
			inReason, f.reason = true, nil
			if value != "" {
				f.reason = append(f.reason, value)
			}
			continue
		}
		if key == fIgnored {
			continue
		}
		if value == "" {
			// "Group:" with the value on the next line (HTML tables).
			for j := i + 1; j < len(lines); j++ {
				t := strings.TrimSpace(lines[j])
				if t == "" {
					continue
				}
				if _, _, isField := field(t); !isField {
					value, i = t, j
				}
				break
			}
		}
		if value == "" {
			continue
		}
		f.last[key] = value
		if old, dup := f.values[key]; dup && !strings.EqualFold(strings.Join(strings.Fields(old), " "), strings.Join(strings.Fields(value), " ")) {
			f.problems = append(f.problems, Problem{key, fmt.Sprintf("given twice (%q and %q); give it once", old, value)})
			continue
		}
		f.values[key] = value
	}
	return f
}

// reasonText joins reason lines, keeping paragraphs and dropping the blank
// lines around them.
func reasonText(lines []string) string {
	var out []string
	for _, l := range lines {
		if strings.TrimSpace(l) == "" && (len(out) == 0 || out[len(out)-1] == "") {
			continue
		}
		out = append(out, strings.TrimSpace(l))
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// quotedText returns the lines of text quoted with ">", one quote level
// removed, without their own quotes and signatures.
func quotedText(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		t := strings.TrimLeft(l, " \t")
		if !strings.HasPrefix(t, ">") {
			continue
		}
		t = strings.TrimPrefix(t[1:], " ")
		b.WriteString(t)
		b.WriteByte('\n')
	}
	return trimReply(b.String())
}

// htmlQuoted returns the text of the quoted parts of an HTML message
// (blockquotes, Gmail's and Thunderbird's quote blocks, Outlook's quoted
// message and what follows it), in order.
func htmlQuoted(src string) string {
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		return ""
	}
	var buf bytes.Buffer
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			switch quoteKind(c) {
			case quoteSkip:
				html.Render(&buf, c)
				continue
			case quoteStop:
				for ; c != nil; c = c.NextSibling {
					html.Render(&buf, c)
				}
				return
			}
			walk(c)
		}
	}
	walk(doc)
	if buf.Len() == 0 {
		return ""
	}
	return htmlToText(buf.String(), false)
}

// ReadForm reads the nomination form in m: the sender's own text (plain, or
// the HTML part's text), with the form they quote back (a reply to our
// list of problems) filling in what the new text does not say; the new text
// wins. Signatures and what follows them are not read. It returns the form
// and every problem found in it.
func ReadForm(m *Message) (Form, []Problem) {
	fresh := ReplyText(m)
	cur := readFields(fresh)
	var base fields
	if strings.TrimSpace(m.Text) != "" {
		base = readFields(quotedText(m.Text))
	} else {
		base = readFields(htmlQuoted(m.HTML))
	}
	var form Form
	form.Text = fresh
	probs := append([]Problem{}, cur.problems...)
	if r := failedAuth(m); r != "" {
		probs = append(probs, Problem{"Sender", "your address could not be authenticated (" + r + "); send the form from your own mail account"})
	}
	if !cur.any && !base.any {
		return form, []Problem{{"Form", "no nomination form found: fill in the blank form below, one field per line"}}
	}
	get := func(k string) string {
		if v := cur.values[k]; v != "" {
			return strings.TrimSpace(v)
		}
		// In the quoted text, the form as received comes last (after our
		// list of problems and the blank form).
		return strings.TrimSpace(base.last[k])
	}
	nominated := cur.nominated
	if nominated[0] == "" {
		nominated = base.nominated
	}
	form.Group = strings.Join(strings.Fields(get(fGroup)), " ")
	if form.Group == "" {
		form.Group = nominated[0]
	}
	form.Candidate = cleanName(get(fCandidate))
	if form.Candidate == "" {
		form.Candidate = nominated[1]
	}
	if form.Candidate == "" && nameHeading(cur.lead) {
		form.Candidate = cleanName(cur.lead)
	}
	if form.Candidate == "" {
		probs = append(probs, Problem{fCandidate, "missing: the candidate's full name"})
	}
	form.Reason = reasonText(cur.reason)
	if form.Reason == "" {
		form.Reason = reasonText(base.reason)
	}
	if form.Reason == "" {
		probs = append(probs, Problem{fReason, "missing: why the group endorses the candidate, after \"Reason for endorsement:\""})
	}
	switch local := strings.ToLower(strings.Trim(get(fLocal), " .!")); {
	case local == "" && nominated[0] != "":
		// "X nominated Y for a national endorsement": the group states it
		// finished its local process.
		form.Local = true
	case local == "":
		probs = append(probs, Problem{fLocal, "missing: confirm the group completed its local endorsement process (Local endorsement: yes)"})
	case yesWord(local):
		form.Local = true
	default:
		probs = append(probs, Problem{fLocal, fmt.Sprintf("%q: a group nominates only after completing its local endorsement process (Local endorsement: yes)", get(fLocal))})
	}
	probs = append(probs, readRace(&form, get(fOffice), get(fState), get(fDistrict))...)
	probs = append(probs, readFactors(&form, get)...)
	return form, probs
}

// maxFactor bounds the free-text fields staff weigh (partners, past
// races): one line each in the vetting notice.
const maxFactor = 500

// readFactors reads the optional fields staff weigh in vetting (seed 002,
// step 3): the campaign's email, partner endorsements, whether the
// candidate runs for the first time, and past races.
func readFactors(form *Form, get func(string) string) []Problem {
	var probs []Problem
	if v := get(fCampaign); v != "" {
		if a, ok := campaignAddress(v); ok {
			form.Campaign = a
		} else {
			probs = append(probs, Problem{fCampaign, fmt.Sprintf("%q: not an email address; give the campaign's address, such as team@candidate.example", v)})
		}
	}
	form.Partners = clip(oneLine(get(fPartners)), maxFactor)
	form.PastRaces = clip(oneLine(get(fPastRaces)), maxFactor)
	switch v := strings.ToLower(strings.Trim(get(fFirstTime), " .!")); {
	case v == "":
	case yesWord(v) || v == "first time" || v == "first-time":
		form.FirstTime = "yes"
	case noWord(v):
		form.FirstTime = "no"
	default:
		probs = append(probs, Problem{fFirstTime, fmt.Sprintf("%q: answer yes or no (and list past races under \"Past races:\")", get(fFirstTime))})
	}
	return probs
}

func noWord(s string) bool {
	switch s {
	case "no", "n", "false", "none", "incumbent", "no, incumbent":
		return true
	}
	return strings.HasPrefix(s, "no ") || strings.HasPrefix(s, "no,") || strings.HasPrefix(s, "no -") || strings.HasPrefix(s, "no (")
}

// mailtoTail is what HTML-to-text leaves after a linked address:
// "team@x.example <mailto:team@x.example>" or "[mailto:…]".
var mailtoTail = regexp.MustCompile(`(?i)\s*[<\[(]mailto:[^>\])]*[>\])]\s*$`)

// campaignAddress reads an email address as leaders write it: bare,
// with a display name, or as a linked address from an HTML mail. It
// returns the address, lowercased.
func campaignAddress(v string) (string, bool) {
	v = strings.TrimSpace(mailtoTail.ReplaceAllString(v, ""))
	v = strings.TrimPrefix(strings.TrimPrefix(v, "mailto:"), "MAILTO:")
	a, err := mail.ParseAddress(v)
	if err != nil {
		return "", false
	}
	local, domain, ok := strings.Cut(a.Address, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || strings.ContainsAny(a.Address, " \t\r\n,;") {
		return "", false
	}
	return strings.ToLower(a.Address), true
}

// oneLine joins s's lines and runs of spaces into single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// clip cuts s to at most n bytes at a space, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndexByte(s[:n], ' ')
	if cut < 0 {
		cut = n
	}
	return s[:cut] + " …"
}

// nameHeading reports whether a line above the form reads as a name
// heading ("Sen. Ed Markey") rather than a greeting.
func nameHeading(s string) bool {
	n := len(strings.Fields(s))
	return n >= 2 && n <= 6 && len(s) <= 60 && !strings.ContainsAny(s[len(s)-1:], ":,!?")
}

// authFailed matches a failed DMARC result in Authentication-Results.
var authFailed = regexp.MustCompile(`(?i)\bdmarc\s*=\s*fail\b`)

// failedAuth returns the failing result of the sender's authentication
// (RFC 8601 Authentication-Results, dmarc=fail), or "".
func failedAuth(m *Message) string {
	for _, v := range m.Header.Values("Authentication-Results") {
		if authFailed.MatchString(v) {
			return "DMARC failed"
		}
	}
	return ""
}

func yesWord(s string) bool {
	switch s {
	case "yes", "y", "true", "x", "done", "complete", "completed", "confirmed", "yes, completed", "yes, complete", "✓", "✔":
		return true
	}
	return strings.HasPrefix(s, "yes ") || strings.HasPrefix(s, "yes,")
}

// officeOf reads an office as leaders write it.
func officeOf(s string) (race.Office, bool) {
	t := strings.ToLower(strings.NewReplacer(".", "", ",", " ").Replace(s))
	t = strings.Join(strings.Fields(t), " ")
	t = strings.TrimPrefix(t, "us ")
	t = strings.TrimPrefix(t, "united states ")
	switch t {
	case "senate", "senator", "sen", "us senate":
		return race.Senate, true
	case "house", "house of representatives", "representative", "rep", "congress", "congressional", "congresswoman", "congressman", "congressmember", "member of congress":
		return race.House, true
	case "governor", "gov", "state governor":
		return race.Governor, true
	}
	return "", false
}

// DistrictNumber reads a House district number as leaders write it
// ("7", "District 7", "#7", "7th") and returns its digits.
func DistrictNumber(s string) (string, bool) {
	m := districtNumber.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return m[1], true
}

var districtNumber = regexp.MustCompile(`(?i)^(?:district\s*)?(?:#\s*)?(\d{1,2})(?:st|nd|rd|th)?$`)

// readRace settles the race from the office, state and district fields,
// which must agree.
func readRace(form *Form, office, state, district string) []Problem {
	var probs []Problem
	if office != "" {
		o, ok := officeOf(office)
		if !ok {
			probs = append(probs, Problem{fOffice, fmt.Sprintf("%q: we take U.S. Senate, U.S. House or Governor", office)})
		}
		form.Office = o
	}
	if state != "" {
		st, err := race.ParseState(state)
		if err != nil {
			probs = append(probs, Problem{fState, fmt.Sprintf("%q: not a U.S. state name or postal code", state)})
		}
		form.State = st
	}
	var rc race.Code
	switch d := strings.TrimSpace(district); {
	case d == "":
	case districtNumber.MatchString(d) || strings.EqualFold(d, "at-large") || strings.EqualFold(d, "at large") || strings.EqualFold(d, "AL"):
		if form.State == "" {
			probs = append(probs, Problem{fDistrict, fmt.Sprintf("%q: give the race code (such as MA-07) or the state", d)})
			break
		}
		n := "AL"
		if m := districtNumber.FindStringSubmatch(d); m != nil {
			n = m[1]
		}
		var err error
		if rc, err = race.Parse(form.State + "-" + n); err != nil {
			probs = append(probs, Problem{fDistrict, fmt.Sprintf("%q: not a district", d)})
		}
	default:
		var err error
		if rc, err = race.Parse(d); err != nil {
			probs = append(probs, Problem{fDistrict, fmt.Sprintf("%q: not a race code; write it as MA-SEN, MA-GOV, MA-07 or AK-AL", d)})
		}
	}
	if rc.Code == "" && district == "" {
		switch {
		case form.Office == race.Senate && form.State != "":
			rc, _ = race.Parse(form.State + "-SEN")
		case form.Office == race.Governor && form.State != "":
			rc, _ = race.Parse(form.State + "-GOV")
		case form.Office == race.House:
			probs = append(probs, Problem{fDistrict, "missing: a House nomination needs the district, such as MA-07"})
		case office == "" && state == "":
			probs = append(probs, Problem{fDistrict, "missing: the race code, such as MA-SEN, MA-GOV or MA-07"})
		case office == "" && form.State != "":
			probs = append(probs, Problem{fOffice, "missing: U.S. Senate, U.S. House or Governor"})
		}
	}
	if rc.Code == "" {
		return probs
	}
	form.Race = rc.Code
	if form.Office != "" && form.Office != rc.Office {
		probs = append(probs, Problem{fOffice, fmt.Sprintf("%q does not agree with the race %s (%s)", office, rc.Code, rc.Office.Title())})
	}
	if form.State != "" && form.State != rc.State {
		probs = append(probs, Problem{fState, fmt.Sprintf("%q does not agree with the race %s (%s)", state, rc.Code, race.StateName(rc.State))})
	}
	if form.Office == "" {
		form.Office = rc.Office
	}
	if form.State == "" {
		form.State = rc.State
	}
	return probs
}

// BlankForm is the nomination form to fill in, as sent with every answer
// that lists problems.
const BlankForm = `Group:
Candidate:
Office:                  (U.S. Senate, U.S. House or Governor)
State:
District:                (race code: MA-SEN, MA-GOV, MA-07, AK-AL)
Local endorsement: yes   (the group completed its local endorsement process)
Campaign email:          (where the policy questionnaire goes)
Partner endorsements:    (optional: progressive partners who endorse the candidate)
First-time candidate:    (optional: yes or no)
Past races:              (optional)
Reason for endorsement:
(several lines, to the end of the form)`
