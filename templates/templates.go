// Package templates holds every email ballotd sends, as text and HTML
// templates embedded in the binary, the typed data each one is filled
// with, and the mail kinds with their payload types (kinds.go): what an
// outbox row carries. A directory given to Load overrides any file by
// name.
//
// Each template has NAME.txt (whose "subject" block is the Subject line)
// and NAME.html (Names lists them); which kind renders which is mailer's
// table of kinds. Templates are parsed once; Render executes them into a
// caller's buffers. footer.txt and footer.html are the one footer every
// member mail ends with (RenderFooter), kept apart so no kind's template
// repeats it.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed *.txt *.html
var files embed.FS

// DefaultQuestions is the policy questionnaire ballotd ships
// (BALLOTD_QUESTIONNAIRE=default): numbered questions, as in a
// questionnaire file.
//
//go:embed questions.default
var DefaultQuestions string

// Names are the templates there are files for, each NAME.txt and
// NAME.html, sorted; the footer's files are not among them (RenderFooter).
// Which kind renders which template is mailer's table of kinds.
var Names = names()

// footer is the name of the footer's files.
const footer = "footer"

func names() []string {
	ts, _ := fs.Glob(files, "*.txt")
	var out []string
	for _, t := range ts {
		if n := strings.TrimSuffix(t, ".txt"); n != footer {
			out = append(out, n)
		}
	}
	return out
}

// when writes a time for people: in words and in the zone the time
// carries (a race's close is in its state's zone, the digest's times in
// BALLOTD_STAFF_TZ): "Tuesday 3 March 2026, 5:00 pm Eastern time", or
// "… 5:00 pm Europe/Paris time" for a zone ZoneWords does not know. A time
// in UTC (or the process's Local) is written for operators, in UTC.
func when(t time.Time) string {
	if words := ZoneWords(t.Location()); words != "" {
		return t.Format("Monday 2 January 2006, 3:04 pm") + " " + words
	}
	if loc := t.Location(); loc != time.UTC && loc != time.Local && loc.String() != "UTC" {
		// A zone named by an operator (BALLOTD_STAFF_TZ) that has no
		// words here: its name says where.
		return t.Format("Monday 2 January 2006, 3:04 pm") + " " + loc.String() + " time"
	}
	return t.UTC().Format("Monday 2 January 2006, 15:04 MST")
}

// ZoneWords names a US time zone as people say it ("Eastern time"), or
// "" for a zone it does not know.
func ZoneWords(loc *time.Location) string {
	switch loc.String() {
	case "America/New_York", "America/Detroit", "America/Indiana/Indianapolis", "America/Kentucky/Louisville":
		return "Eastern time"
	case "America/Chicago":
		return "Central time"
	case "America/Denver", "America/Boise":
		return "Mountain time"
	case "America/Phoenix":
		return "Arizona time"
	case "America/Los_Angeles":
		return "Pacific time"
	case "America/Anchorage":
		return "Alaska time"
	case "Pacific/Honolulu":
		return "Hawaii time"
	}
	return ""
}

// mailto builds an RFC 6068 mailto: URL. The address is written as it is
// (a ballot address has only letters, digits, '+', '-' and '@'); the
// subject and body are percent-encoded, spaces as %20 (RFC 6068 §5: '+'
// would not be read as a space).
func mailto(addr, subject, body string) string {
	return "mailto:" + addr + "?subject=" + url.PathEscape(subject) + "&body=" + url.PathEscape(body)
}

// Set is the parsed templates, safe for concurrent use.
type Set struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
	// own is the kinds whose templates both come from the binary, not
	// from the override directory: only those are stamped (Stamp).
	own map[string]bool
	// footText and footHTML are the member mail footer (RenderFooter).
	footText *texttemplate.Template
	footHTML *htmltemplate.Template
	// ownFooter says the footer comes from the binary (StampFooter).
	ownFooter bool
}

var funcs = map[string]any{
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f %%", f*100) },
	"upper": strings.ToUpper,
	"when":  when,
	// inc is i + 1: a list's number from its index.
	"inc": func(i int) int { return i + 1 },
	// mailto is a one-tap answer (RFC 6068): a link that opens a reply to
	// addr with the subject and the body (the answer) filled in.
	"mailto": mailto,
	// lines splits text into its lines, for quoting.
	"lines": func(s string) []string { return strings.Split(s, "\n") },
	// barWidth is a turnout bar's width in pixels, 0 to 200 (the digest
	// draws a chart now; kept for override templates that use it).
	"barWidth": func(f float64) int { return int(max(0, min(1, f)) * 200) },
}

// Load parses the embedded templates, each overridden by a file of the same
// name in dir when dir is not "".
func Load(dir string) (*Set, error) {
	var fsys fs.FS = files
	s := &Set{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}, own: map[string]bool{}}
	overridden := map[string]bool{}
	read := func(name string) ([]byte, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				overridden[strings.TrimSuffix(strings.TrimSuffix(name, ".txt"), ".html")] = true
				return b, nil
			}
			if !os.IsNotExist(err) {
				return nil, fmt.Errorf("template %s: %w", name, err)
			}
		}
		return fs.ReadFile(fsys, name)
	}
	for _, k := range Names {
		tb, err := read(k + ".txt")
		if err != nil {
			return nil, fmt.Errorf("template %s.txt: %w", k, err)
		}
		tt, err := texttemplate.New(k).Funcs(funcs).Option("missingkey=error").Parse(string(tb))
		if err != nil {
			return nil, fmt.Errorf("template %s.txt: %w", k, err)
		}
		if tt.Lookup("subject") == nil {
			return nil, fmt.Errorf("template %s.txt: no {{define \"subject\"}} block", k)
		}
		hb, err := read(k + ".html")
		if err != nil {
			return nil, fmt.Errorf("template %s.html: %w", k, err)
		}
		ht, err := htmltemplate.New(k).Funcs(funcs).Option("missingkey=error").Parse(string(hb))
		if err != nil {
			return nil, fmt.Errorf("template %s.html: %w", k, err)
		}
		s.text[k], s.html[k] = tt, ht
		s.own[k] = !overridden[k]
	}
	tb, err := read("footer.txt")
	if err != nil {
		return nil, fmt.Errorf("template footer.txt: %w", err)
	}
	if s.footText, err = texttemplate.New("footer").Funcs(funcs).Option("missingkey=error").Parse(string(tb)); err != nil {
		return nil, fmt.Errorf("template footer.txt: %w", err)
	}
	hb, err := read("footer.html")
	if err != nil {
		return nil, fmt.Errorf("template footer.html: %w", err)
	}
	if s.footHTML, err = htmltemplate.New("footer").Funcs(funcs).Option("missingkey=error").Parse(string(hb)); err != nil {
		return nil, fmt.Errorf("template footer.html: %w", err)
	}
	s.ownFooter = !overridden["footer"]
	return s, nil
}

// RenderFooter ends a rendered member mail with the footer: appended to
// the text, and put before the HTML's closing </body> (appended when it
// has none).
func (s *Set) RenderFooter(f Footer, text, html *bytes.Buffer) error {
	if err := s.footText.Execute(text, f); err != nil {
		return fmt.Errorf("render footer text: %w", err)
	}
	var foot bytes.Buffer
	if err := s.footHTML.Execute(&foot, f); err != nil {
		return fmt.Errorf("render footer html: %w", err)
	}
	insertFooter(html, foot.Bytes())
	return nil
}

// insertFooter puts foot before the HTML's closing </body>, or after it
// all when it has none.
func insertFooter(html *bytes.Buffer, foot []byte) {
	i := bytes.LastIndex(html.Bytes(), []byte("</body>"))
	if i < 0 {
		html.Write(foot)
		return
	}
	var tail [64]byte
	t := append(tail[:0], html.Bytes()[i:]...)
	html.Truncate(i)
	html.Write(foot)
	html.Write(t)
}

// Org is the organisation ballotd sends for (BALLOTD_ORG_NAME,
// BALLOTD_ORG_ADDRESS, BALLOTD_ORG_URL); all "" when not configured, and
// then no mail names one.
type Org struct {
	Name    string // "Working Families"
	Address string // postal address, one line
	URL     string // the organisation's web site
}

// Footer kinds: whom a member mail is for (Footer.For).
const (
	FooterMember  = ""        // a member
	FooterJoining = "joining" // someone asking to join, not a member yet
	FooterLeft    = "left"    // a member who has just left: no way to stop
)

// Footer is the data of the footer on every member mail: why the member
// gets it and how to stop.
type Footer struct {
	Org      Org
	For      string // FooterMember, FooterJoining or FooterLeft
	District string // the member's district, "MA-07" ("" for none)
	// Link is the one-click unsubscribe page ("" without
	// BALLOTD_PUBLIC_URL); Address is the unsubscribe address, where any
	// mail unsubscribes (the mailto: of List-Unsubscribe).
	Link    string
	Address string
}

// Render fills kind's templates with data: the subject (one line) and the
// text and HTML bodies written into text and html.
func (s *Set) Render(kind string, data any, text, html *bytes.Buffer) (subject string, err error) {
	subject, err = s.render(kind, data, text, html)
	return strings.Join(strings.Fields(subject), " "), err
}

// render is Render with the subject as the template wrote it.
func (s *Set) render(kind string, data any, text, html *bytes.Buffer) (subject string, err error) {
	tt, ok := s.text[kind]
	if !ok {
		return "", fmt.Errorf("no template %q", kind)
	}
	var sb strings.Builder
	if err := tt.ExecuteTemplate(&sb, "subject", data); err != nil {
		return "", fmt.Errorf("render %s subject: %w", kind, err)
	}
	if err := tt.Execute(text, data); err != nil {
		return "", fmt.Errorf("render %s text: %w", kind, err)
	}
	if err := s.html[kind].Execute(html, data); err != nil {
		return "", fmt.Errorf("render %s html: %w", kind, err)
	}
	return sb.String(), nil
}

// Candidate is one candidate as a ballot shows them.
type Candidate struct {
	Number int
	Name   string
	Bio    string
	Groups []string
}

// Race is what every message about a race says of it, in any phase.
type Race struct {
	Code  string // MA-SEN
	Title string // "U.S. Senate, Massachusetts"
	// Close is when voting closes; for a closed race, when it closed.
	Close        time.Time
	ThresholdPct string // "60 %"
}

// OpenRace is a race while voting is open, with its rule in the present
// tense ("you can change your vote until then"). Only the mail that asks
// for a vote (the ballot and the reminder) is given one: the mail about a
// closed race has a Race, so its templates cannot state the open rule.
type OpenRace struct {
	Race
	// Rule is the endorsement rule in plain words, one sentence a line,
	// from the wave's settings (ballots.RuleLines).
	Rule []string
	// Answers is the link to the candidates' answers to the policy
	// questionnaire on the public page, "" for none.
	Answers string
}

// Ballot is the data of a ballot email.
type Ballot struct {
	Name       string // the member's name, may be empty
	Race       OpenRace
	Candidates []Candidate
	Single     bool   // one candidate: answer YES or NO
	Code       string // the ballot code, also the reply address's token
	// Reply is the ballot's reply address, for the one-tap answers.
	Reply string
}

// Receipt is the data of a vote receipt.
type Receipt struct {
	Name    string
	Race    Race
	Choice  string // "YES for Ed Markey", "2. Jane Doe", "NONE of the candidates"
	Receipt string
	Code    string
	// Read says how a near-miss answer was read: `"Pressly" as Ayanna
	// Pressley`.
	Read string
	// ResultsURL is the results page, where the receipt can be checked in
	// a browser (BALLOTD_PUBLIC_URL/results); "" when there is none.
	ResultsURL string
}

// NoChange is the data of the note to a reply that changed nothing: the
// same vote again, or (Stale) a reply written before the vote that stands.
type NoChange struct {
	Name   string
	Race   Race
	Choice string // the vote that stands, in words
	Stale  bool
	Code   string
}

// Clarify is the data of the answer to a reply ballotd could not read.
type Clarify struct {
	Name       string
	Race       Race
	Reason     string
	Quote      string // the start of what the member wrote, as read
	Candidates []Candidate
	Single     bool
	Code       string
	Reply      string // the ballot's reply address, for the one-tap answers
}

// Closed is the data of the answer to a vote after the close.
type Closed struct {
	Name string
	Race Race
	// Results, when the race's results are out, is what was decided.
	Results *Announcement
}

// Unauthenticated is the data of the notice sent to a ballot's voter when
// a reply from their address failed sender authentication (DMARC).
type Unauthenticated struct {
	Name   string
	Race   Race
	Sender string
}

// NotVoter is the data of the notice sent to a ballot's voter when someone
// else replied to it.
type NotVoter struct {
	Name   string
	Race   Race
	Sender string
}

// Unmatched is the data of the answer to a message that matched no ballot.
type Unmatched struct {
	Subject string
}

// Result is one candidate's line in an announcement.
type Result struct {
	Number   int
	Name     string
	Votes    int
	Support  string // "72.5 %"
	Endorsed bool
	// Applied is the rule as applied to the candidate
	// (ballots.CandidateApplied): "endorsed: 76.6 % support, above the
	// 60 % needed; 67.0 % turnout".
	Applied string
}

// Announcement is the data of the results email, the held-results notice
// and the results in a late vote's answer: a closed race. Its Race has no
// open-race rule; Applied is the rule as it was applied.
type Announcement struct {
	Name string
	Race Race
	// Applied is the endorsement rule as applied, in the past tense, one
	// sentence a line (ballots.RuleAppliedLines).
	Applied  []string
	Eligible int
	Voted    int
	Turnout  string
	// Reachable is eligible minus the members whose ballot could not be
	// delivered; TurnoutReachable is the turnout over them ("75.0 %").
	Reachable        int
	Unreachable      int
	TurnoutReachable string
	Results          []Result
	Endorsed         []string
	// LeaderOf names the nominating groups the recipient leads, when the
	// announcement goes to a group leader rather than a member.
	LeaderOf []string
	// ResultsURL is the results page, where a receipt can be checked in a
	// browser (BALLOTD_PUBLIC_URL/results); "" when there is none.
	ResultsURL string
	// YouVoted says the recipient voted in this race: only they are
	// thanked for their vote.
	YouVoted bool
}

// Reminder is the data of the one reminder to a member who has not voted.
type Reminder struct {
	Name       string
	Race       OpenRace
	Candidates []Candidate
	Single     bool
	Code       string
	Reply      string // the ballot's reply address, for the one-tap answers
}

// VettingCandidate is a candidate in the vetting notice and the digest.
type VettingCandidate struct {
	ID     int64    `json:"id"`
	Race   string   `json:"race"`
	Wave   string   `json:"wave"`
	Name   string   `json:"name"`
	Status string   `json:"status"`
	Groups []string `json:"groups"`
	// Nominated says a group nominated the candidate (in the digest;
	// staff add candidates without a nomination).
	Nominated bool `json:"nominated"`
	// Conflicts are the other candidates of the race nominated by groups
	// (in the digest's conflicts section).
	Conflicts []string `json:"conflicts"`
	// What the nomination forms said (partner endorsements, first-time
	// candidate "yes"/"no"/"", past races) and the questionnaire's status
	// ("" when the step does not apply), in the digest's vetting queue.
	Partners      []string `json:"partners,omitempty"`
	FirstTime     string   `json:"first_time,omitempty"`
	PastRaces     []string `json:"past_races,omitempty"`
	Questionnaire string   `json:"questionnaire,omitempty"`
}

// Factors says what staff weigh beyond the groups, one line: how many
// groups, partners, first-time candidate, past races, questionnaire;
// "" when there is nothing to say.
func (c VettingCandidate) Factors() string {
	var ws []string
	if len(c.Groups) > 0 {
		ws = append(ws, fmt.Sprintf("%d group%s", len(c.Groups), map[bool]string{true: "", false: "s"}[len(c.Groups) == 1]))
	}
	if len(c.Partners) > 0 {
		ws = append(ws, "partners: "+strings.Join(c.Partners, "; "))
	}
	switch c.FirstTime {
	case "yes":
		ws = append(ws, "first-time candidate")
	case "no":
		ws = append(ws, "has run before")
	}
	if len(c.PastRaces) > 0 {
		ws = append(ws, "past races: "+strings.Join(c.PastRaces, "; "))
	}
	if c.Questionnaire != "" {
		ws = append(ws, "questionnaire: "+c.Questionnaire)
	}
	return strings.Join(ws, "; ")
}

// VettingRace is one race of the vetting notice.
type VettingRace struct {
	Code       string             `json:"code"`
	Candidates []VettingCandidate `json:"candidates"`
}

// Vetting is the data of the notice to staff that a wave's nominations
// have closed (ballots builds it when they close).
type Vetting struct {
	Wave       string        `json:"wave"`
	VotingOpen time.Time     `json:"voting_open"`
	Races      []VettingRace `json:"races"`
}

// DigestResult is a closed race's tally in the digest (ballots.Tally).
type DigestResult struct {
	Race       string                  `json:"race"`
	Eligible   int                     `json:"eligible"`
	Voted      int                     `json:"voted"`
	Turnout    float64                 `json:"turnout"`
	Candidates []DigestResultCandidate `json:"candidates"`
}

// DigestResultCandidate is one candidate's line of a DigestResult.
type DigestResultCandidate struct {
	Number   int     `json:"number"`
	Name     string  `json:"name"`
	Votes    int     `json:"votes"`
	Support  float64 `json:"support"`
	Endorsed bool    `json:"endorsed"`
}

// DigestRace is an open race in the digest.
type DigestRace struct {
	Code      string    `json:"code"`
	Wave      string    `json:"wave"`
	Eligible  int       `json:"eligible"`
	Reachable int       `json:"reachable"`
	Voted     int       `json:"voted"`
	Turnout   float64   `json:"turnout"`
	Closes    time.Time `json:"closes"`
	Left      string    `json:"left"`
	// MinTurnout is the wave's minimum turnout, 0 for none (not the
	// endorsement threshold).
	MinTurnout float64 `json:"min_turnout"`
}

// DigestProblem is a message needing a look in the digest.
type DigestProblem struct {
	Kind    string `json:"kind"`
	ID      int64  `json:"id"`
	Address string `json:"address"`
	Detail  string `json:"detail"`
}

// Digest is the data of the staff digest (ballots.Digest.Mail builds it).
type Digest struct {
	Since       *time.Time          `json:"since"`
	At          time.Time           `json:"at"`
	Nominations []VettingCandidate  `json:"nominations"`
	Vetting     []VettingCandidate  `json:"vetting"`
	Conflicts   []VettingCandidate  `json:"conflicts"`
	Open        []DigestRace        `json:"open"`
	Problems    []DigestProblem     `json:"problems"`
	Results     []DigestResult      `json:"results"`
	Undelivered []DigestUndelivered `json:"undelivered"`
	// Delivery is the open races' mail by recipient domain class, the
	// total last; none when no open race has mail.
	Delivery []DigestDelivery `json:"delivery,omitempty"`
	// Sending is, per wave with ballots still to send, when at this pace
	// they will all be out.
	Sending []DigestSending `json:"sending,omitempty"`
	// HeldAnswers counts the automatic answers the rate limit held back
	// since the last digest.
	HeldAnswers int `json:"held_answers"`
	// Questionnaires are approved candidates who stay off the ballot
	// until their policy questionnaire passes.
	Questionnaires []DigestQuestionnaire `json:"questionnaires"`
	// Chart is the cid: URL (RFC 2392) of the turnout chart sent with the
	// HTML part, "" for none; ChartRaces are the open races it draws and
	// ChartMore how many it leaves out; ChartWidth is the width the HTML
	// shows it at, in CSS pixels (the image has twice as many, for phones'
	// dense screens). The renderer sets them.
	Chart      htmltemplate.URL `json:"-"`
	ChartRaces []DigestRace     `json:"-"`
	ChartMore  int              `json:"-"`
	ChartWidth int              `json:"-"`
	// Org is the organisation, named in the subject, and Reply the
	// digest's reply address, for the one-tap APPROVE and REJECT (the
	// renderer sets both).
	Org   Org    `json:"-"`
	Reply string `json:"-"`
}

// DigestQuestionnaire is an approved candidate waiting on their policy
// questionnaire, in the digest. Blocked says their race cannot open: no
// candidate of it is on the ballot yet.
type DigestQuestionnaire struct {
	ID      int64  `json:"id"`
	Race    string `json:"race"`
	Wave    string `json:"wave"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Words   string `json:"words"` // where it stands, as staff read it
	Blocked bool   `json:"blocked"`
}

// ToDo is what the digest asks of staff and tells them, for its subject,
// the most pressing first: "3 to vet", "1 to look at", "2 results",
// "2 races open"; else "2 new candidates", or "nothing to do".
func (d Digest) ToDo() []string {
	var out []string
	count := func(n int, one, many string) {
		switch {
		case n == 1:
			out = append(out, "1 "+one)
		case n > 1:
			out = append(out, fmt.Sprintf("%d %s", n, many))
		}
	}
	count(len(d.Vetting), "to vet", "to vet")
	count(len(d.Questionnaires), "questionnaire waiting", "questionnaires waiting")
	count(len(d.Problems), "to look at", "to look at")
	undelivered := 0
	for _, u := range d.Undelivered {
		undelivered += u.Count
	}
	count(undelivered, "ballot undelivered", "ballots undelivered")
	count(len(d.Results), "result", "results")
	count(len(d.Open), "race open", "races open")
	if len(out) == 0 {
		// Nothing asks for staff: say what is new.
		count(len(d.Nominations), "new candidate", "new candidates")
	}
	if len(out) == 0 {
		out = append(out, "nothing to do")
	}
	return out
}

// WaveGroup is candidates of one wave, for a digest section that names
// the wave once rather than on every line.
type WaveGroup struct {
	Wave       string
	Candidates []VettingCandidate
}

// ByWave groups cs by wave, in the order each wave first appears.
func (Digest) ByWave(cs []VettingCandidate) []WaveGroup {
	var out []WaveGroup
	at := map[string]int{}
	for _, c := range cs {
		i, ok := at[c.Wave]
		if !ok {
			i = len(out)
			at[c.Wave] = i
			out = append(out, WaveGroup{Wave: c.Wave})
		}
		out[i].Candidates = append(out[i].Candidates, c)
	}
	return out
}

// StatusWords is a candidate's status as staff read it: "waiting for
// vetting", "approved", "rejected", "withdrawn"; "added by staff,
// approved" for a candidate no group nominated.
func (c VettingCandidate) StatusWords() string {
	w := c.Status
	if w == "nominated" {
		w = "waiting for vetting"
	}
	if !c.Nominated && c.Status != "nominated" {
		w = "added by staff, " + w
	}
	return w
}

// DigestUndelivered is one reason ballots did not reach members, in the
// digest: how many, and the first few addresses.
type DigestUndelivered struct {
	Reason    string   `json:"reason"`
	Count     int      `json:"count"`
	Addresses []string `json:"addresses"`
}

// DigestSending is a wave's ballots still to send: at PerMinute (all
// mail, the last ten minutes), all out at Out; Known false when none went
// out lately (a relay paused, a quota used up), so no time can be told.
type DigestSending struct {
	Wave      string    `json:"wave"`
	Remaining int       `json:"remaining"`
	PerMinute int       `json:"per_minute"`
	Out       time.Time `json:"out"`
	Known     bool      `json:"known"`
}

// DigestDelivery is one line of the digest's delivery table: the mail to
// one class of recipient domains (gmail, microsoft, yahoo, icloud, other,
// or total) and its top reasons ("unknown_mailbox 12, policy 3").
type DigestDelivery struct {
	Domains    string `json:"domains"`
	Sent       int    `json:"sent"`
	Deferred   int    `json:"deferred"`
	Bounced    int    `json:"bounced"`
	Complaints int    `json:"complaints"`
	Reasons    string `json:"reasons"`
}
