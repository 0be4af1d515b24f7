// Package report owns how results are shown to people: a race's tally as
// text, the endorsements as CSV, and the public page of the endorsements
// (export endorsements --format html, /results, the demo's page) with its
// receipt check and the Content-Security-Policy that lets only that check
// run.
package report

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/templates"
)

// Tally writes a race's tally as text: a line of turnout and threshold,
// then a table of the candidates.
func Tally(w io.Writer, t ballots.Tally) error {
	fmt.Fprintf(w, "%s (%s): %d of %d eligible voted, turnout %.1f %%; endorsement needs %g %% support",
		t.Race, t.Status, t.Voted, t.Eligible, t.Turnout*100, t.Threshold*100)
	if t.MinTurnout > 0 {
		fmt.Fprintf(w, " and %g %% turnout", t.MinTurnout*100)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NO.\tCANDIDATE\tVOTES\tSUPPORT\tENDORSED")
	for _, c := range t.Candidates {
		endorsed := "no"
		if c.Endorsed {
			endorsed = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f %%\t%s\n", c.Number, c.Name, c.Votes, c.Support*100, endorsed)
	}
	return tw.Flush()
}

// EndorsementsCSV writes the endorsements as CSV, one row a candidate.
func EndorsementsCSV(w io.Writer, l ballots.EndorsementList) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"wave", "state", "office", "race", "candidate", "groups", "reason", "votes", "voted", "eligible", "support", "turnout", "reachable", "turnout_reachable"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	// Text from forms and CSVs is escaped so a spreadsheet shows it and
	// never runs it; numbers are ballotd's own.
	cell := ballots.SpreadsheetCell
	for _, x := range l.Endorsements {
		cw.Write([]string{cell(x.Wave), cell(x.State), cell(string(x.Office)), cell(x.Race), cell(x.Candidate),
			cell(strings.Join(x.Groups, "; ")), cell(x.Reason),
			strconv.Itoa(x.Votes), strconv.Itoa(x.Voted), strconv.Itoa(x.Eligible), f(x.Support), f(x.Turnout),
			strconv.Itoa(x.Reachable), f(x.TurnoutReachable)})
	}
	cw.Flush()
	return cw.Error()
}

// pageData is what the public page shows: the endorsements and the
// organisation that made them (BALLOTD_ORG_*), which titles and introduces
// the page when set.
type pageData struct {
	ballots.EndorsementList
	Org templates.Org
}

// page is the public page of the endorsements, with its receipt check.
var page = template.Must(template.New("endorsements").Funcs(template.FuncMap{
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f %%", f*100) },
	"width": func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"state": race.StateName,
	"title": func(o race.Office) string { return o.Title() },
	// verifyScript is the receipt check, inserted as it is (its CSP hash).
	"verifyScript": func() template.JS { return template.JS(verifyScript) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Org.Name}}{{.Org.Name}}: endorsed candidates{{else}}Endorsed candidates{{if .Wave}}: {{.Wave}}{{end}}{{end}}</title>
<style>
body{font-family:system-ui,-apple-system,Helvetica,Arial,sans-serif;line-height:1.45;max-width:760px;margin:0 auto;padding:16px;color:#1d1d1f;background:#fff}
h1{font-size:1.6em;margin:.2em 0 .6em}
.intro{color:#444;margin:0 0 1.2em}
.card{border:1px solid #dde3ea;border-radius:10px;padding:14px 16px;margin:0 0 14px}
.card h2{font-size:1.25em;margin:0}
.race{color:#3b6fb6;font-weight:600;font-size:.9em;text-transform:uppercase;letter-spacing:.03em}
.meta{color:#555;font-size:.95em;margin:.4em 0 0}
.reason{white-space:pre-line;margin:.8em 0 0}
.code{white-space:nowrap}
.bar{background:#eef1f5;border-radius:4px;height:8px;margin:.5em 0}
.bar span{display:block;height:8px;border-radius:4px;background:#3b6fb6}
details{margin:1.5em 0}
table{border-collapse:collapse;font-size:.85em;width:100%}
td{padding:2px 6px;border-bottom:1px solid #eee;vertical-align:top}
td.hash{word-break:break-all;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;color:#444}
td.choice{word-break:normal;overflow-wrap:normal;hyphens:none;min-width:7em}
code{font-size:.95em}
#verify-form{display:flex;flex-wrap:wrap;gap:8px;margin:.6em 0}
#verify-code{flex:1 1 12em;min-width:0;font-size:16px;padding:8px 10px;border:1px solid #b8c2cc;border-radius:6px;font-family:ui-monospace,Menlo,Consolas,monospace}
#verify-form button{font-size:16px;padding:8px 16px;border:0;border-radius:6px;background:#3b6fb6;color:#fff}
#verify-result{font-weight:600;margin:.4em 0}
#verify-result.found{color:#1d7a35}
#verify-result.missing{color:#a33}
</style></head>
<body>
{{if .Org.Name}}<h1>{{.Org.Name}}: endorsed candidates</h1>
<p class="intro">The candidates {{if .Org.URL}}<a href="{{.Org.URL}}">{{.Org.Name}}</a>{{else}}{{.Org.Name}}{{end}} endorses{{if .Wave}} in {{.Wave}}{{end}}, as its members chose them by email ballot. Every counted vote is listed below, so each member can check theirs.</p>
{{else}}<h1>Endorsed candidates{{if .Wave}}: {{.Wave}}{{end}}</h1>
{{end}}{{if not .Endorsements}}<p>No candidate has been endorsed yet.</p>{{end}}
{{range .Endorsements}}<div class="card">
<div class="race">{{title .Office}} · {{state .State}} · <span class="code">{{.Race}}</span></div>
<h2>{{.Candidate}}</h2>
<div class="bar"><span style="width:{{width .Support}}"></span></div>
<p class="meta">Support {{pct .Support}} ({{.Votes}} of {{.Voted}} who voted) · turnout {{pct .Turnout}} ({{.Voted}} of {{.Eligible}} eligible{{if lt .Reachable .Eligible}}; {{pct .TurnoutReachable}} of the {{.Reachable}} reachable{{end}})</p>
{{if .Groups}}<p class="meta">Nominated by {{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}</p>{{end}}
{{if .Reason}}<p class="reason">{{.Reason}}</p>{{end}}
</div>
{{end}}
{{if .Questionnaires}}<h2 style="font-size:1.2em" id="questionnaires">Policy questionnaires</h2>
<p>Every candidate on a ballot passed our policy questionnaire; here are their campaigns' answers.</p>
{{range .Questionnaires}}<details id="q-{{.ID}}"><summary>{{.Candidate}} ({{.Race}}{{if .Wave}}, {{.Wave}}{{end}})</summary>
{{range .Answers}}<p><strong>{{.Number}}. {{.Question}}</strong></p><p class="reason">{{.Answer}}</p>
{{end}}</details>
{{end}}{{end}}
{{if .Receipts}}<h2 style="font-size:1.2em" id="check">Check your vote</h2>
<p>Every counted vote is listed by the SHA-256 of the receipt code its voter was mailed, beside the choice counted. Paste the receipt code from your receipt email: your browser computes its hash and looks it up in this page. Nothing is sent anywhere.</p>
<form id="verify-form" autocomplete="off"><input id="verify-code" type="text" inputmode="text" autocapitalize="none" autocorrect="off" spellcheck="false" placeholder="abcd-efgh-ijkl-mnop" aria-label="Receipt code"><button type="submit">Check</button></form>
<p id="verify-result" role="status" aria-live="polite"></p>
<noscript><p>Without JavaScript, compute the hash with <code>printf %s 'YOUR-RECEIPT-CODE' | sha256sum</code> and find it below.</p></noscript>
{{range .Receipts}}<details><summary>{{.Race}} ({{.Wave}}): {{len .Receipts}} counted votes</summary>
<table>{{range .Receipts}}<tr><td class="hash">{{.Hash}}</td><td class="choice">{{.Choice}}</td></tr>
{{end}}</table></details>
{{end}}<script type="application/json" id="receipt-hashes">{{.Receipts}}</script>
<script>{{verifyScript}}</script>
{{end}}</body></html>
`))

// Page writes the public page of the endorsements l, made by org.
func Page(w io.Writer, l ballots.EndorsementList, org templates.Org) error {
	return page.Execute(w, pageData{EndorsementList: l, Org: org})
}

// verifyScript is the results page's receipt check: it hashes the code a
// member pastes in the browser and looks it up in the page's own list, so
// it works from a saved copy and tells the server nothing.
//
//go:embed results_verify.js
var verifyScript string

// CSP is the Content-Security-Policy of the served results page:
// the one inline script is allowed by its hash (CSP Level 3, hash-source),
// nothing is loaded from anywhere, and the form posts nowhere, so a
// receipt code cannot leave the page even with the script blocked.
var CSP = func() string {
	h := sha256.Sum256([]byte(verifyScript))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'; " +
		"style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()
