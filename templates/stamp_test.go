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

// TestFooterStampEqualsRender: a filled footer stamp is byte for byte what
// RenderFooter gives, for each kind of footer, with and without an
// organisation, a district and a one-click link; an operator's footer is
// not stamped.
func TestFooterStampEqualsRender(t *testing.T) {
	t.Parallel()
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	const tok = "k3q2m7abcdefghij234567xyzab"
	orgs := []Org{{}, {Name: "Working Families", Address: "1 Main St, Boston <MA>", URL: "https://wfp.example/?a=1&b=2"}}
	for _, org := range orgs {
		for _, forWhom := range []string{FooterMember, FooterJoining, FooterLeft} {
			for _, district := range []string{"", "MA-07", "a&b<c>"} {
				for _, link := range []bool{false, true} {
					mk := func(tk string) Footer {
						f := Footer{Org: org, For: forWhom, District: district, Address: "ballots+u-" + tk + "@example.org"}
						if link {
							f.Link = "https://ballots.example/unsubscribe?t=" + tk
						}
						return f
					}
					fs, ok := set.StampFooter(mk)
					if !ok {
						t.Fatalf("no footer stamp for ballotd's own footer (%q, %q, link %v)", forWhom, district, link)
					}
					for _, body := range []string{"<html><body><p>Hi</p></body>\n</html>\n", "<p>no body tag</p>"} {
						var t1, h1, t2, h2 bytes.Buffer
						t1.WriteString("Hello\n")
						t2.WriteString("Hello\n")
						h1.WriteString(body)
						h2.WriteString(body)
						if err := set.RenderFooter(mk(tok), &t1, &h1); err != nil {
							t.Fatal(err)
						}
						fs.Fill(tok, &t2, &h2)
						if t1.String() != t2.String() || h1.String() != h2.String() {
							t.Errorf("footer %q, org %q, district %q, link %v: stamp differs from render\ntext:\n%s\n---\n%s\nhtml:\n%s\n---\n%s",
								forWhom, org.Name, district, link, t1.String(), t2.String(), h1.String(), h2.String())
						}
					}
				}
			}
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "footer.txt"), []byte("-- \nStop: {{.Address}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	own, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := own.StampFooter(func(tk string) Footer { return Footer{Address: tk} }); ok {
		t.Error("an operator's footer was stamped")
	}
}
