package templates

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStampEqualsRender: for the kinds sent to every member, a filled
// stamp is byte for byte what executing the templates gives, for every
// race shape and every plain name.
func TestStampEqualsRender(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	race := OpenRace{Race: Race{Code: "MA-07", Title: "U.S. House, MA-07", Close: time.Date(2026, 3, 8, 22, 0, 0, 0, time.UTC), ThresholdPct: "60 %"},
		Rule: []string{"A candidate is endorsed with at least 60 % of the votes cast.", "Your latest reply counts."}}
	one := []Candidate{{Number: 1, Name: "Ed Markey", Bio: "Senator since 2013 & a <climate> champion.", Groups: []string{"Indivisible Northampton", "Somerville"}}}
	many := []Candidate{{Number: 1, Name: "Jordan Rivera"}, {Number: 2, Name: "Sam O'Kafor", Bio: "Organiser \"for\" 10 years.\n\nSecond paragraph."},
		{Number: 3, Name: "Zoë Ünal", Groups: []string{"Group A"}}}
	data := map[string]func(cs []Candidate) func(name, code string) any{
		"ballot": func(cs []Candidate) func(name, code string) any {
			return func(name, code string) any {
				return Ballot{Name: name, Race: race, Candidates: cs, Single: len(cs) == 1, Code: code}
			}
		},
		"reminder": func(cs []Candidate) func(name, code string) any {
			return func(name, code string) any {
				return Reminder{Name: name, Race: race, Candidates: cs, Single: len(cs) == 1, Code: code}
			}
		},
	}
	names := []string{"", "Alice", "José María de la Cruz", "Nguyễn Văn An", "Dr. A. B. Smith-Jones, Jr.", "李小龍", "Ørjan Ødegård"}
	for kind, mk := range data {
		for _, cs := range [][]Candidate{one, many} {
			for _, name := range names {
				if !PlainName(name) {
					t.Fatalf("%q should be plain", name)
				}
				d := mk(cs)
				st, ok := set.Stamp(kind, name != "", d)
				if !ok {
					t.Fatalf("%s: no stamp made for ballotd's own template", kind)
				}
				var t1, h1, t2, h2 bytes.Buffer
				subj1, err := set.Render(kind, d(name, "ABCDEFGHIJKLMNOP234567"), &t1, &h1)
				if err != nil {
					t.Fatal(err)
				}
				subj2 := st.Fill(name, "ABCDEFGHIJKLMNOP234567", &t2, &h2)
				if subj1 != subj2 || t1.String() != t2.String() || h1.String() != h2.String() {
					t.Errorf("%s, %d candidates, name %q: stamp differs from render\nsubject %q / %q\ntext:\n%s\n---\n%s\nhtml:\n%s\n---\n%s",
						kind, len(cs), name, subj1, subj2, t1.String(), t2.String(), h1.String(), h2.String())
				}
			}
		}
	}
}

// TestStampRefused: no stamp where filling it might not equal rendering: an
// operator's template, or one that transforms the name.
func TestStampRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ballot.txt"), []byte(`{{define "subject"}}Ballot{{end}}Dear {{.Name}}, code {{.Code}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reminder.html"), []byte(`<p>{{upper .Name}} {{.Code}}</p>`), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"ballot", "reminder"} {
		if _, ok := set.Stamp(kind, true, func(name, code string) any { return Ballot{Name: name, Code: code} }); ok {
			t.Errorf("%s: stamped an overridden template", kind)
		}
	}
	// Bypassing the override rule, the check itself refuses a template
	// that changes the name (upper), and takes one that does not.
	set.own["reminder"], set.own["ballot"] = true, true
	if _, ok := set.Stamp("reminder", true, func(name, code string) any { return Reminder{Name: name, Code: code} }); ok {
		t.Error("stamped a template that upper-cases the name")
	}
	if _, ok := set.Stamp("ballot", true, func(name, code string) any { return Ballot{Name: name, Code: code} }); !ok {
		t.Error("refused a template that takes the name as it is")
	}
}

// TestPlainName: the names a stamp may take unchanged.
func TestPlainName(t *testing.T) {
	for name, want := range map[string]bool{
		"": true, "Alice": true, "José María": true, "Smith-Jones, Jr.": true, "Nguyễn Văn An": true,
		"O'Brien": false, "Tom & Jerry": false, "<b>x</b>": false, `Al "Bud"`: false, "a+b": false, "x\ty": false, "\x1eNa\x1e": false,
	} {
		if got := PlainName(name); got != want {
			t.Errorf("PlainName(%q) = %v, want %v", name, got, want)
		}
	}
}
