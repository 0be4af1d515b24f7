// Package progress owns the progress line of a long step (an import, a
// race opening, a demo's sending): a line redrawn in place on a terminal,
// a plain line every few seconds otherwise (logs, CI).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Line shows how far a long step has got: a line redrawn in place on
// a terminal, a plain line every few seconds otherwise (logs, CI).
type Line struct {
	w     io.Writer
	label string
	tty   bool
	every time.Duration // the least time between two lines when w is not a terminal
	start time.Time
	last  time.Time
	width int // of the line drawn on the terminal, to blank what a shorter one leaves
}

// New starts a progress line labelled label on w.
func New(w io.Writer, label string) *Line {
	now := time.Now()
	return &Line{w: w, label: label, tty: IsTerminal(w), every: 5 * time.Second, start: now, last: now}
}

// Elapsed is the time since the line started.
func (p *Line) Elapsed() time.Duration { return time.Since(p.start) }

// Show draws line: in place on a terminal (at most every 100ms), as a new
// line otherwise (at most every 5s); final draws it in any case.
func (p *Line) Show(line string, final bool) {
	now := time.Now()
	period := p.every
	if p.tty {
		period = 100 * time.Millisecond
	}
	if !final && now.Sub(p.last) < period {
		return
	}
	p.last = now
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", max(0, p.width-len(line))))
	p.width = len(line)
}

// Step shows n units done, a share of the whole (0 to 1), and the rate
// since the start: a bar on a terminal, the count with detail otherwise.
func (p *Line) Step(share float64, n int, unit, detail string) {
	rate := float64(n) / time.Since(p.start).Seconds()
	if p.tty {
		share = min(max(share, 0), 1)
		bar := strings.Repeat("#", int(share*30)) + strings.Repeat(".", 30-int(share*30))
		p.Show(fmt.Sprintf("%s [%s] %3.0f%% %s %s, %s %s/s", p.label, bar, share*100, Grouped(n), unit, Grouped(int(rate)), unit), false)
		return
	}
	p.Show(fmt.Sprintf("%s: %s %s (%s), %s %s/s", p.label, Grouped(n), unit, detail, Grouped(int(rate)), unit), false)
}

// Done ends the terminal's line, if anything was drawn on it.
func (p *Line) Done() {
	if p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}

// Clear blanks the terminal's line, if anything was drawn on it, so that
// the next output takes its place.
func (p *Line) Clear() {
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

// ImportRows is an import's Progress for a file of size bytes.
func (p *Line) ImportRows(size int64) func(read int64, rows int) {
	return func(read int64, rows int) {
		share := 0.0
		if size > 0 {
			share = float64(read) / float64(size)
		}
		p.Step(share, rows, "rows", fmt.Sprintf("%d of %d bytes read", read, size))
	}
}

// OpenRace is a race open's ballots.OpenProgress.
func (p *Line) OpenRace(n int, read float64) {
	p.Step(read, n, "ballots", fmt.Sprintf("%.0f %% of members read", read*100))
}

// Grouped writes n with thousands separators: 12,345.
func Grouped(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// IsTerminal reports whether w is a terminal, where a line can be redrawn;
// a writer that wraps another (a redacting one) says which by an
// Unwrap() io.Writer method.
func IsTerminal(w io.Writer) bool {
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		w = u.Unwrap()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
