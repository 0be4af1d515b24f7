package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/internal/report"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/templates"
)

// pageReceipts is the receipt list a results page embeds for its check,
// as the page's script reads it.
type pageReceipts []struct {
	Wave     string `json:"wave"`
	Race     string `json:"race"`
	Receipts []struct {
		Hash   string `json:"sha256"`
		Choice string `json:"choice"`
	} `json:"receipts"`
}

// pageScripts returns the JSON text of the page's receipt list and its
// inline script, exactly as a browser reads them ("" when absent).
func pageScripts(page string) (data, script string) {
	data = between(page, `<script type="application/json" id="receipt-hashes">`, "</script>")
	script = between(page, "<script>", "</script>")
	return data, script
}

// getPage GETs url, waiting (bounded) for serve's listener to come up.
func getPage(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	var resp *http.Response
	var err error
	// serve opens its HTTP listener as it starts: a bounded wait for it.
	if !testenv.Poll(30*time.Second, func() bool { resp, err = http.Get(url); return err == nil }) {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// verifyHarness runs the page's script under node against a stand-in for
// the few elements it uses, types the code, submits the form and prints
// what the page shows. With "fallback" the page has no crypto.subtle and
// hashes in plain JavaScript.
const verifyHarness = `
const fs = require("fs"), vm = require("vm");
const [scriptFile, dataFile, typed, mode] = process.argv.slice(2);
let submit;
const el = {
  "receipt-hashes": {textContent: fs.readFileSync(dataFile, "utf8")},
  "verify-form": {addEventListener(ev, fn) { if (ev === "submit") submit = fn; }},
  "verify-code": {value: typed},
  "verify-result": {textContent: "", className: ""},
};
const ctx = {document: {getElementById: (id) => el[id]}, Uint8Array};
if (mode !== "fallback") ctx.crypto = require("crypto").webcrypto;
vm.runInNewContext(fs.readFileSync(scriptFile, "utf8"), ctx);
Promise.resolve(submit({preventDefault() {}})).then(() => {
  process.stdout.write(el["verify-result"].className + "|" + el["verify-result"].textContent);
});
`

// runVerifyScript runs page's receipt check under node with typed as the
// code and returns what it shows, "class|text".
func runVerifyScript(t *testing.T, page, typed string, fallback bool) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the page's script is not run (the Go check of the same rule ran)")
	}
	data, script := pageScripts(page)
	dir := t.TempDir()
	files := map[string]string{"harness.js": verifyHarness, "verify.js": script, "data.json": data}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mode := "subtle"
	if fallback {
		mode = "fallback"
	}
	out, err := exec.Command(node, filepath.Join(dir, "harness.js"), filepath.Join(dir, "verify.js"), filepath.Join(dir, "data.json"), typed, mode).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	return string(out)
}

// TestResultsPageChecksAReceipt: serve shows the results page at
// BALLOTD_PUBLIC_URL/results. While a held race waits for release the page
// shows none of it; once released it lists the race, and the receipt code
// alice was mailed, typed in capitals without dashes, is found there: by
// the Go rule the page's script follows, and by the page's own script
// under node (with Web Crypto and with its plain-JavaScript SHA-256),
// which says "not found" for a code nobody was mailed. The receipt and the
// announcement link to the page; its one script is allowed by hash.
func TestResultsPageChecksAReceipt(t *testing.T) {
	t.Parallel()
	h := newHeldWave(t)
	addr := freeAddr(t)
	h.env["BALLOTD_HTTP_ADDR"] = addr
	h.env["BALLOTD_PUBLIC_URL"] = "http://" + addr + "/"
	resultsURL := "http://" + addr + "/results"
	db := h.db()
	stop := h.serve()
	defer stop()

	resp, page := getPage(t, resultsURL)
	if resp.StatusCode != 200 || !strings.Contains(page, "No candidate has been endorsed yet") || strings.Contains(page, "receipt-hashes") {
		t.Fatalf("results before any close: %d\n%s", resp.StatusCode, page)
	}

	h.shift(db, "", "-1 second", "")
	bs := memberMail(t, h.waitSent(1+2), "staff@example.org") // two ballots, beside the vetting notice
	a := parseSent(t, bs[0])
	h.reply(a.To, a.ReplyTo, voteReply(a, a.To, "a1", "YES"))
	sentReceipt := h.waitSent(4)[3]
	receipt := parseSent(t, sentReceipt)
	_, rest, ok := strings.Cut(receipt.Body, "Receipt code: ")
	if !ok {
		t.Fatalf("receipt without a code: %s", receipt.Body)
	}
	code := strings.Fields(rest)[0]
	if !strings.Contains(receipt.Body, "paste it at "+resultsURL+"#check") || !strings.Contains(htmlPart(string(sentReceipt.Data)), `<a href="`+resultsURL+`#check">`) {
		t.Errorf("receipt does not link the results page:\n%s", receipt.Body)
	}

	h.shift(db, "", "", "-1 second")
	h.waitSent(5) // the held-results notice to staff
	if _, page := getPage(t, resultsURL); strings.Contains(page, "Jane Doe") || strings.Contains(page, hash(code)) {
		t.Fatalf("held results shown before release:\n%s", page)
	}

	h.ballotd("results", "release", "MA-07")
	announced := 0
	for _, e := range h.waitSent(5 + 3)[5:] {
		if p := parseSent(t, e); strings.HasPrefix(p.Subject, "Results: ") {
			announced++
			if !strings.Contains(p.Body, "paste your receipt code at "+resultsURL+"#check") || !strings.Contains(htmlPart(string(e.Data)), `<a href="`+resultsURL+`#check">`) {
				t.Errorf("announcement to %s does not link the results page:\n%s", p.To, p.Body)
			}
		}
	}
	if announced != 3 {
		t.Errorf("%d announcements, want 3", announced)
	}

	resp, page = getPage(t, resultsURL)
	if resp.StatusCode != 200 || !strings.Contains(page, "<h2>Jane Doe</h2>") || !strings.Contains(page, `id="verify-form"`) {
		t.Fatalf("results after release: %d\n%s", resp.StatusCode, page)
	}
	data, script := pageScripts(page)
	if script == "" || !strings.Contains(script, "crypto.subtle") {
		t.Fatalf("the page has no receipt check script:\n%s", page)
	}
	sum := sha256.Sum256([]byte(script))
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		!strings.Contains(csp, "form-action 'none'") {
		t.Errorf("CSP %q does not allow the page's script by its hash", csp)
	}

	// What the member types: capitals, no dashes, a stray space.
	typed := " " + strings.ToUpper(strings.ReplaceAll(code, "-", "")) + " "
	canon, ok := ballots.CanonicalReceipt(typed)
	if !ok || canon != code {
		t.Fatalf("CanonicalReceipt(%q) = %q, %v; want %q", typed, canon, ok, code)
	}
	var list pageReceipts
	if err := json.Unmarshal([]byte(data), &list); err != nil {
		t.Fatalf("the page's receipt list: %v\n%s", err, data)
	}
	found := ""
	for _, r := range list {
		for _, x := range r.Receipts {
			if x.Hash == ballots.ReceiptHash(canon) {
				found = r.Race + " " + x.Choice
			}
		}
	}
	if found != "MA-07 YES: Jane Doe" {
		t.Fatalf("alice's receipt in the page's list: %q, want MA-07 YES: Jane Doe\n%s", found, data)
	}

	for _, fallback := range []bool{false, true} {
		if got := runVerifyScript(t, page, typed, fallback); got != "found|counted: YES. MA-07 (July): counted as YES: Jane Doe." {
			t.Errorf("page script (fallback %v) with alice's code: %q", fallback, got)
		}
		if got := runVerifyScript(t, page, "aaaa-bbbb-cccc-dddd", fallback); !strings.HasPrefix(got, "missing|not found: ") {
			t.Errorf("page script (fallback %v) with a code nobody was mailed: %q", fallback, got)
		}
	}
	if got := runVerifyScript(t, page, "1234", false); !strings.HasPrefix(got, "missing|not found: a receipt code is 16 letters") {
		t.Errorf("page script with a malformed code: %q", got)
	}

	if resp, err := http.Post(resultsURL, "text/plain", strings.NewReader("x")); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /results: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestResultsPageInChromium opens a saved copy of the results page
// (file://, as a member who saved it would) in headless Chromium at phone
// width, types a receipt code in capitals without dashes and submits the
// form: the page's script, with the browser's Web Crypto, answers
// "counted: YES", a wrong code "not found", and nothing is wider than a
// 390 px screen (no name is broken to fit: choice cells do not break words). The two lines added to the copy only fill the box and
// press Check; the check itself is the page's.
func TestResultsPageInChromium(t *testing.T) {
	t.Parallel()
	var browser string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no headless Chromium installed (Debian: apt-get install chromium): the page's script ran under node in TestResultsPageChecksAReceipt")
	}
	code := "k7qm-2xfa-p4ne-w3rd"
	l := ballots.EndorsementList{Endorsements: []ballots.Endorsement{{Wave: "March", State: "MA", Office: race.House, Race: "MA-07",
		Candidate: "Alexandria Montgomery-Fitzgerald", Groups: []string{"Indivisible Somerville"}, Votes: 2, Voted: 3, Eligible: 4, Support: 2.0 / 3, Turnout: 0.75, Reachable: 4, TurnoutReachable: 0.75}},
		Receipts: []ballots.RaceReceipts{{Wave: "March", Race: "MA-07", Receipts: []ballots.ReceiptLine{
			{Hash: ballots.ReceiptHash(code), Choice: "YES: Alexandria Montgomery-Fitzgerald"},
			{Hash: ballots.ReceiptHash("b2cd-efgh-ijkl-mn34"), Choice: "NO: Alexandria Montgomery-Fitzgerald"}}}}}
	var page strings.Builder
	if err := report.Page(&page, l, templates.Org{}); err != nil {
		t.Fatal(err)
	}
	// Headless Chromium's window is at least 500 px wide: the page is laid
	// out in a 390 px root instead, and the widest element measured.
	phone := strings.Replace(page.String(), "<html lang=\"en\">", "<html lang=\"en\" style=\"width:390px\">", 1)
	if phone == page.String() {
		t.Fatal("the page's <html> tag changed: update this test")
	}
	for _, tc := range []struct{ typed, want string }{
		{strings.ToUpper(strings.ReplaceAll(code, "-", "")), `class="found">counted: YES. MA-07 (March): counted as YES: Alexandria Montgomery-Fitzgerald.</p>`},
		{"aaaa-bbbb-cccc-dddd", `class="missing">not found: `},
	} {
		fill := `<script>document.querySelectorAll("details").forEach(function (d) { d.open = true; });` +
			`document.getElementById("verify-code").value = "` + tc.typed + `"; document.getElementById("verify-form").requestSubmit();` +
			`setTimeout(function () { var r = 0; document.querySelectorAll("body *").forEach(function (e) { r = Math.max(r, Math.ceil(e.getBoundingClientRect().right)); });` +
			`var broken = []; document.querySelectorAll("td.choice, h2, .meta").forEach(function (e) { var n = e.firstChild, m, re = /[^\s-]+/g;` +
			`for (; n; n = n.nextSibling) { if (n.nodeType !== 3) continue; while ((m = re.exec(n.data))) { var g = document.createRange(); g.setStart(n, m.index); g.setEnd(n, m.index + m[0].length);` +
			`if (g.getClientRects().length > 1) broken.push(m[0]); } } });` +
			`document.body.setAttribute("data-width", r); document.body.setAttribute("data-broken", broken.join(" ")); }, 100);</script></body>`
		file := filepath.Join(t.TempDir(), "results.html")
		if err := os.WriteFile(file, []byte(strings.Replace(phone, "</body>", fill, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--window-size=390,900", "--virtual-time-budget=5000", "--dump-dom", "file://"+file).Output()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", browser, err)
		}
		dom := string(out)
		if !strings.Contains(dom, tc.want) {
			t.Errorf("typed %q: the page shows %q, want %q", tc.typed, between(dom, `<p id="verify-result"`, "</p>"), tc.want)
		}
		if w := between(dom, `data-width="`, `"`); w == "" || len(w) > 3 || w > "390" {
			t.Errorf("typed %q: the page is %s px wide at a 390 px screen", tc.typed, w)
		}
		if b := between(dom, `data-broken="`, `"`); b != "" || !strings.Contains(dom, `data-broken=`) {
			t.Errorf("typed %q: words broken across lines at 390 px: %q", tc.typed, b)
		}
	}
}
