package message

import (
	"strings"
	"testing"
)

// hugeForm is a 4 MB nomination: a form and then a flood of text, as a
// sender who wants to tie up the reader would write it.
var hugeForm = "Group: Nobody\nCandidate: X\n" + strings.Repeat("Lorem ipsum dolor sit amet, 12:30 on 2026 <x@example.org>.\n", 4<<20/60)

// BenchmarkReadFormHuge measures the reader's cost on a 4 MB form; the
// quote-header patterns are tried only on lines that could be one.
func BenchmarkReadFormHuge(b *testing.B) {
	m := &Message{Text: hugeForm}
	b.SetBytes(int64(len(hugeForm)))
	for b.Loop() {
		ReadForm(m)
	}
}
