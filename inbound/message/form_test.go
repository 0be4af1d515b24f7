package message

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/templates"
)

// formMessage builds a plain-text message from the leader with body.
func formMessage(t *testing.T, headers, body string) *Message {
	t.Helper()
	raw := "From: Lee Leader <lead@northampton.example>\r\nTo: ballots+nominate@example.org\r\nSubject: Nomination\r\nMessage-ID: <f1@northampton.example>\r\n" +
		headers + "\r\n" + strings.ReplaceAll(body, "\n", "\r\n")
	m, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const designForm = `Group: Indivisible Northampton
Candidate: Ed Markey
Office: U.S. Senate
State: MA
District: MA-SEN
Local endorsement: yes
Reason for endorsement:
A climate leader.

He co-wrote the Green New Deal.
`

// renderProblems is the text of our answer listing a form's problems.
func renderProblems(t *testing.T, form string) string {
	t.Helper()
	set, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	var text, html bytes.Buffer
	if _, err := set.Render("nomination-problems", templates.NominationProblems{Number: 3, Problems: []string{`District: "MA-99": not a race code`},
		Form: form, Blank: BlankForm}, &text, &html); err != nil {
		t.Fatal(err)
	}
	return text.String()
}

func quoteLines(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight("> "+l, " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestReadForm(t *testing.T) {
	seed, err := os.ReadFile("testdata/markey_form.txt")
	if err != nil {
		t.Fatal(err)
	}
	replyToProblems := "District: MA-SEN\nOffice: Senate\n\nOn Mon, Mar 2, 2026 at 9:00 AM Endorsement ballots <ballots@example.org> wrote:\n" +
		quoteLines(renderProblems(t, "Group: Indivisible Northampton\nCandidate: Ed Markey\nOffice: House\nDistrict: MA-99\nLocal endorsement: yes\nReason for endorsement:\nA climate leader.\n\nSecond paragraph."))
	markey := Form{Group: "Indivisible Northampton", Candidate: "Ed Markey", Office: race.Senate, State: "MA", Race: "MA-SEN", Local: true}
	with := func(f Form, edit func(*Form)) Form { edit(&f); return f }
	cases := []struct {
		name     string
		headers  string
		body     string
		want     Form     // Text is not compared; Reason only when wantReason is set
		reason   string   // the exact reason, when set
		reasonIn []string // phrases the reason must hold
		problems []string
	}{
		{name: "DESIGN wording", body: designForm, want: markey, reason: "A climate leader.\n\nHe co-wrote the Green New Deal."},
		{name: "seed wording verbatim (group and local endorsement from its closing sentence)", body: string(seed), want: markey,
			reasonIn: []string{"Sen. Markey is a leader of the climate movement", "\n\nSen. Markey knows how hard", "ready to fight for a more equitable future."}},
		{name: "seed wording with Group and Candidate lines, any order, any case", body: "candidate: Sen. Ed Markey\nGROUP: indivisible northampton\nState: Massachusetts\nElected Office: U.S. Senator\nCandidate District: MA-Sen\nLocal Endorsement: Yes\nReason for Endorsement:\n\nA champion.\n",
			want: with(markey, func(f *Form) { f.Group = "indivisible northampton" }), reason: "A champion."},
		{name: "House race by state and district number", body: "Group: Indivisible Somerville\nCandidate: Ayanna Pressley\nOffice: House\nState: Massachusetts\nDistrict: 7\nLocal endorsement: yes\nReason for endorsement: Fighter.\n",
			want: Form{Group: "Indivisible Somerville", Candidate: "Ayanna Pressley", Office: race.House, State: "MA", Race: "MA-07", Local: true}, reason: "Fighter."},
		{name: "HTML-only from Outlook, bold labels and table cells", headers: "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
			body: `<html><body><div class=WordSection1><p class=MsoNormal><b>Group:</b> Indivisible Northampton</p>
<p class=MsoNormal><b>Candidate:</b> Ed Markey</p><table><tr><td><b>Office:</b></td></tr><tr><td>U.S. Senate</td></tr></table>
<p class=MsoNormal><b>District:</b> MA-SEN</p><p class=MsoNormal><b>Local endorsement:</b> yes</p>
<p class=MsoNormal><b>Reason for endorsement:</b></p><p class=MsoNormal>A climate leader.</p><p class=MsoNormal>&nbsp;</p><p class=MsoNormal>Green New Deal.</p>
<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in"><p class=MsoNormal><b>From:</b> Ballots &lt;ballots@example.org&gt;<br><b>Sent:</b> Monday<br><b>To:</b> Lee<br><b>Subject:</b> form</p></div>
<p>Group: Somebody Else</p></div></body></html>`,
			want: markey, reasonIn: []string{"A climate leader.", "Green New Deal."}},
		{name: "form quoted back with a correction on top: the new text wins", body: "District: MA-SEN\nOffice: Senate\n\nOn Mon, Mar 2, 2026 at 9:00 AM Endorsement ballots <ballots@example.org> wrote:\n> We could not accept your nomination:\n>   District: \"MA-99\": not a race code\n>\n> Group: Indivisible Northampton\n> Candidate: Ed Markey\n> Office: House\n> District: MA-99\n> Local endorsement: yes\n> Reason for endorsement:\n> A climate leader.\n",
			want: markey, reason: "A climate leader."},
		{name: "reply to our problems email with corrections only: the rest read from the form quoted back, not the blank form",
			body: replyToProblems, want: markey, reason: "A climate leader.\n\nSecond paragraph."},
		{name: "HTML-only reply from Outlook with a correction on top of the quoted form", headers: "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
			body: `<html><body><div class=WordSection1><p class=MsoNormal>District: MA-SEN</p><p class=MsoNormal>Office: Senate</p>
<div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> Endorsement ballots &lt;ballots@example.org&gt;<br><b>Sent:</b> Monday<br><b>Subject:</b> We could not accept your nomination</div>
<div><p>We could not accept your nomination:</p><ul><li>District: "MA-99": not a race code</li><li>Candidate: given twice</li></ul><p>Blank form:</p><pre>` + BlankForm + `</pre>
<p>The form as we received it:</p><pre>Group: Indivisible Northampton
Candidate: Ed Markey
Office: House
District: MA-99
Local endorsement: yes
Reason for endorsement:
A climate leader.</pre></div></div></body></html>`,
			want: markey, reason: "A climate leader."},
		{name: "missing fields", body: "Group: Indivisible Northampton\nOffice: Senate\n",
			want: Form{Group: "Indivisible Northampton", Office: race.Senate},
			problems: []string{"Candidate: missing: the candidate's full name", "Reason for endorsement: missing: why the group endorses the candidate, after \"Reason for endorsement:\"",
				"Local endorsement: missing: confirm the group completed its local endorsement process (Local endorsement: yes)"}},
		{name: "wrong district: office and state disagree with the race code", body: "Group: Indivisible Northampton\nCandidate: Ed Markey\nOffice: U.S. Senate\nState: NY\nDistrict: MA-07\nLocal endorsement: yes\nReason for endorsement: x\n",
			want:     Form{Group: "Indivisible Northampton", Candidate: "Ed Markey", Office: race.Senate, State: "NY", Race: "MA-07", Local: true},
			problems: []string{`Office: "U.S. Senate" does not agree with the race MA-07 (U.S. House)`, `State: "NY" does not agree with the race MA-07 (Massachusetts)`}},
		{name: "unreadable district and office, local endorsement not done", body: "Group: G\nCandidate: Ed Markey\nOffice: Mayor\nDistrict: Western Mass\nLocal endorsement: not yet\nReason for endorsement: x\n",
			want: Form{Group: "G", Candidate: "Ed Markey"},
			problems: []string{`Local endorsement: "not yet": a group nominates only after completing its local endorsement process (Local endorsement: yes)`,
				`Office: "Mayor": we take U.S. Senate, U.S. House or Governor`, `District: "Western Mass": not a race code; write it as MA-SEN, MA-GOV, MA-07 or AK-AL`}},
		{name: "non-leader sender: the form itself is fine (the store checks leadership)", body: strings.Replace(designForm, "Group: Indivisible Northampton", "Group: Indivisible Springfield", 1),
			want: with(markey, func(f *Form) { f.Group = "Indivisible Springfield" })},
		{name: "DMARC fail", headers: "Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=northampton.example; dkim=none; dmarc=fail header.from=northampton.example\r\n",
			body: designForm, want: markey, problems: []string{"Sender: your address could not be authenticated (DMARC failed); send the form from your own mail account"}},
		{name: "duplicate keyword, same value twice", body: "Candidate: Ed Markey\n" + designForm,
			want: markey, problems: nil},
		{name: "duplicate keyword, conflicting", body: "Candidate: Elizabeth Warren\n" + designForm,
			want:     with(markey, func(f *Form) { f.Candidate = "Elizabeth Warren" }),
			problems: []string{`Candidate: given twice ("Elizabeth Warren" and "Ed Markey"); give it once`}},
		{name: "keywords after a signature are not read", body: designForm + "\n-- \nLee Leader\nGroup: Indivisible Springfield\nDistrict: MA-01\n",
			want: markey, reason: "A climate leader.\n\nHe co-wrote the Green New Deal."},
		{name: "form only in a signature", body: "Please send me the form.\n-- \nCandidate: Ed Markey\n",
			problems: []string{"Form: no nomination form found: fill in the blank form below, one field per line"}},
		{name: "governor by office and state name", body: "Group: Indivisible Boston\nCandidate: Gov. Maura Healey\nOffice: Governor\nState: massachusetts\nLocal endorsement: completed\nReason for endorsement:\nShe delivers.\n",
			want: Form{Group: "Indivisible Boston", Candidate: "Maura Healey", Office: race.Governor, State: "MA", Race: "MA-GOV", Local: true}, reason: "She delivers."},
		{name: "the factors staff weigh, DESIGN wording", body: strings.Replace(designForm, "Reason for endorsement:", "Campaign email: Team Markey <Team@Markey.example>\nPartner endorsements: Sunrise,   Working Families\nFirst-time candidate: no\nPast races: Senate 2014, 2020 (won)\nReason for endorsement:", 1),
			want: with(markey, func(f *Form) {
				f.Campaign, f.Partners, f.FirstTime, f.PastRaces = "team@markey.example", "Sunrise, Working Families", "no", "Senate 2014, 2020 (won)"
			}), reason: "A climate leader.\n\nHe co-wrote the Green New Deal."},
		{name: "factors in other wording: campaign contact, first time yes", body: "Campaign contact: mailto:hq@rivera.example\nProgressive partners: Our Revolution\nFirst time candidate: Yes!\n" + designForm,
			want: with(markey, func(f *Form) { f.Campaign, f.Partners, f.FirstTime = "hq@rivera.example", "Our Revolution", "yes" })},
		{name: "factors from Outlook HTML: a linked address, bold labels", headers: "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
			body: `<html><body><p><b>Group:</b> Indivisible Northampton</p><p><b>Candidate:</b> Ed Markey</p><p><b>District:</b> MA-SEN</p>
<p><b>Local endorsement:</b> yes</p><p><b>Campaign email:</b> <a href="mailto:team@markey.example">team@markey.example</a></p>
<p><b>First-time candidate:</b> No</p><p><b>Reason for endorsement:</b></p><p>A climate leader.</p></body></html>`,
			want: with(markey, func(f *Form) { f.Campaign, f.FirstTime = "team@markey.example", "no" }), reason: "A climate leader."},
		{name: "bad campaign email and first-time answer are problems, each named", body: "Campaign email: the Markey campaign\nFirst-time candidate: sort of\n" + designForm,
			want: markey, problems: []string{`Campaign email: "the Markey campaign": not an email address; give the campaign's address, such as team@candidate.example`,
				`First-time candidate: "sort of": answer yes or no (and list past races under "Past races:")`}},
		{name: "campaign email corrected on top of the form quoted back", body: "Campaign email: team@markey.example\n\nOn Mon, Mar 2, 2026 at 9:00 AM Endorsement ballots <ballots@example.org> wrote:\n" +
			quoteLines(renderProblems(t, "Group: Indivisible Northampton\nCandidate: Ed Markey\nDistrict: MA-SEN\nLocal endorsement: yes\nCampaign email: team at markey\nPartner endorsements: Sunrise\nReason for endorsement:\nA climate leader.")),
			want: with(markey, func(f *Form) { f.Campaign, f.Partners = "team@markey.example", "Sunrise" }), reason: "A climate leader."},
		{name: "the blank form quoted back gives no factors", body: designForm + "\n" + quoteLines(BlankForm), want: markey},
		{name: "at-large House seat", body: "Group: Indivisible Anchorage\nCandidate: Mary Peltola\nDistrict: AK-AL\nLocal endorsement: yes\nReason for endorsement: r\n",
			want: Form{Group: "Indivisible Anchorage", Candidate: "Mary Peltola", Office: race.House, State: "AK", Race: "AK-AL", Local: true}, reason: "r"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := formMessage(t, c.headers, c.body)
			got, probs := ReadForm(m)
			var ps []string
			for _, p := range probs {
				ps = append(ps, p.String())
			}
			if !reflect.DeepEqual(ps, c.problems) {
				t.Errorf("problems:\n got %q\nwant %q", ps, c.problems)
			}
			reason := got.Reason
			got.Reason, got.Text = "", ""
			if got != c.want {
				t.Errorf("form:\n got %+v\nwant %+v", got, c.want)
			}
			if c.reason != "" && reason != c.reason {
				t.Errorf("reason:\n got %q\nwant %q", reason, c.reason)
			}
			for _, in := range c.reasonIn {
				if !strings.Contains(reason, in) {
					t.Errorf("reason lacks %q:\n%s", in, reason)
				}
			}
		})
	}
}

// BenchmarkReadForm reads the seed's Markey form (about 3 KB of text).
func BenchmarkReadForm(b *testing.B) {
	seed, err := os.ReadFile("testdata/markey_form.txt")
	if err != nil {
		b.Fatal(err)
	}
	raw := "From: lead@northampton.example\r\nTo: ballots+nominate@example.org\r\nSubject: Nomination\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.ReplaceAll(string(seed), "\n", "\r\n")
	m, err := Parse([]byte(raw))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if f, probs := ReadForm(m); f.Candidate == "" || len(probs) != 0 {
			b.Fatal(f, probs)
		}
	}
}
