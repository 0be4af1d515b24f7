package templates

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/testskip"
)

func TestMain(m *testing.M) { testskip.Main(m) }

// screenshots, when set, is a directory TestHTMLFitsPhone writes phone
// screenshots of the screenshotCases to, for README:
//
//	go test ./templates -run TestHTMLFitsPhone -screenshots ../docs
var screenshots = flag.String("screenshots", "", "write phone screenshots of some golden cases to this directory")

// screenshotCases are the golden cases README shows.
var screenshotCases = []string{"ballot.several-unnamed", "announcement.endorsed-member"}

// phoneWidth is the narrowest screen the HTML mail must fit: a phone's
// 390 CSS pixels (iPhone 12 to 15).
const phoneWidth = 390

// chromium finds a headless Chromium: $BALLOTD_CHROMIUM, else chromium,
// chromium-browser or google-chrome on PATH; "" for none.
func chromium() string {
	if p := os.Getenv("BALLOTD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestHTMLFitsPhone lays out the HTML part of every golden case in
// headless Chromium, each in a frame phoneWidth wide, and fails for any
// that is wider than the frame: a phone would make its reader scroll
// sideways (a fixed-width table, an unbroken code, an image without
// max-width). Without Chromium it is skipped, and says so (testskip.Skip).
func TestHTMLFitsPhone(t *testing.T) {
	bin := chromium()
	if bin == "" {
		testskip.Skip(t, "no headless Chromium (apt-get install chromium, or set BALLOTD_CHROMIUM)")
	}
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	cases := goldenCases(t)
	// One page holds every case in a srcdoc frame (same origin as the
	// page, so its script can measure them), and writes each frame's
	// scroll width into the page once all have loaded; --dump-dom prints it.
	var page bytes.Buffer
	page.WriteString("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>\n")
	for i, c := range cases {
		_, h, err := goldenFiles(set, c)
		if err != nil {
			t.Fatalf("%s.%s: %v", c.kind, c.name, err)
		}
		fmt.Fprintf(&page, "<iframe id=\"f%d\" style=\"width:%dpx;height:200px;border:0;display:block\" srcdoc=\"%s\"></iframe>\n",
			i, phoneWidth, html.EscapeString(string(h)))
	}
	page.WriteString(`<script>window.addEventListener('load', () => {
  for (const f of document.querySelectorAll('iframe')) {
    const p = document.createElement('pre');
    p.className = 'width';
    const d = f.contentDocument.documentElement;
    p.textContent = f.id + ' ' + d.scrollWidth + ' ' + d.scrollHeight;
    document.body.appendChild(p);
  }
});</script></body></html>`)
	file := filepath.Join(t.TempDir(), "phone.html")
	if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000", "--dump-dom", "file://"+file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	widths := regexp.MustCompile(`<pre class="width">f(\d+) (\d+) (\d+)</pre>`).FindAllStringSubmatch(string(out), -1)
	if len(widths) != len(cases) {
		t.Fatalf("Chromium measured %d of %d cases:\n%s", len(widths), len(cases), stderr.String())
	}
	for _, w := range widths {
		i, _ := strconv.Atoi(w[1])
		width, _ := strconv.Atoi(w[2])
		c := cases[i]
		if width > phoneWidth {
			t.Errorf("%s.%s is %d px wide on a %d px phone: its reader scrolls sideways", c.kind, c.name, width, phoneWidth)
		}
		if *screenshots != "" && slices.Contains(screenshotCases, c.kind+"."+c.name) {
			height, _ := strconv.Atoi(w[3])
			screenshot(t, ctx, bin, set, c, height)
		}
	}
}

// screenshot writes a phone-sized PNG of case c, height CSS pixels tall
// at twice the pixels (as a phone's screen has them), to the screenshots
// directory as KIND.CASE.png.
func screenshot(t *testing.T, ctx context.Context, bin string, set *Set, c goldenCase, height int) {
	_, h, err := goldenFiles(set, c)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), c.kind+"."+c.name+".html")
	if err := os.WriteFile(src, h, 0o644); err != nil {
		t.Fatal(err)
	}
	dst, err := filepath.Abs(filepath.Join(*screenshots, c.kind+"."+c.name+".png"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--force-device-scale-factor=2", fmt.Sprintf("--window-size=%d,%d", phoneWidth, height),
		"--screenshot="+dst, "file://"+src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("screenshot of %s.%s: %v\n%s", c.kind, c.name, err, out)
	}
	t.Logf("wrote %s", dst)
}
