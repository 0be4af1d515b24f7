// Package templates holds every email ballotd sends, as text and HTML
// templates embedded in the binary, and the typed data each one is filled
// with. A directory given to Load overrides any file by name.
//
// Each kind has KIND.txt (whose "subject" block is the Subject line) and
// KIND.html. Templates are parsed once; Render executes them into a caller's
// buffers.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed *.txt *.html
var files embed.FS

// Kinds are the messages there are templates for.
var Kinds = []string{"ballot", "receipt", "clarify", "closed", "not-voter", "unmatched", "announcement", "unauthenticated"}

// Set is the parsed templates, safe for concurrent use.
type Set struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

var funcs = map[string]any{
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f %%", f*100) },
	"upper": strings.ToUpper,
	"when":  func(t time.Time) string { return t.UTC().Format("Monday 2 January 2006, 15:04 MST") },
}

// Load parses the embedded templates, each overridden by a file of the same
// name in dir when dir is not "".
func Load(dir string) (*Set, error) {
	var fsys fs.FS = files
	s := &Set{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	read := func(name string) ([]byte, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return b, nil
			}
			if !os.IsNotExist(err) {
				return nil, fmt.Errorf("template %s: %w", name, err)
			}
		}
		return fs.ReadFile(fsys, name)
	}
	for _, k := range Kinds {
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
	}
	return s, nil
}

// Render fills kind's templates with data: the subject (one line) and the
// text and HTML bodies written into text and html.
func (s *Set) Render(kind string, data any, text, html *bytes.Buffer) (subject string, err error) {
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
	return strings.Join(strings.Fields(sb.String()), " "), nil
}

// Candidate is one candidate as a ballot shows them.
type Candidate struct {
	Number int
	Name   string
	Bio    string
	Groups []string
}

// Race is what every message about a race says of it.
type Race struct {
	Code         string // MA-SEN
	Title        string // "U.S. Senate, Massachusetts"
	Close        time.Time
	ThresholdPct string // "60 %"
}

// Ballot is the data of a ballot email.
type Ballot struct {
	Name       string // the member's name, may be empty
	Race       Race
	Candidates []Candidate
	Single     bool   // one candidate: answer YES or NO
	Code       string // the ballot code, also the reply address's token
}

// Receipt is the data of a vote receipt.
type Receipt struct {
	Name    string
	Race    Race
	Choice  string // "YES for Ed Markey", "2. Jane Doe", "NONE of the candidates"
	Receipt string
	Code    string
}

// Clarify is the data of the answer to a reply ballotd could not read.
type Clarify struct {
	Name       string
	Race       Race
	Reason     string
	Candidates []Candidate
	Single     bool
	Code       string
}

// Closed is the data of the answer to a vote after the close.
type Closed struct {
	Name string
	Race Race
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
}

// Announcement is the data of the results email.
type Announcement struct {
	Name     string
	Race     Race
	Eligible int
	Voted    int
	Turnout  string
	Results  []Result
	Endorsed []string
}
