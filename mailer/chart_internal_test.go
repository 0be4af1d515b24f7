package mailer

import (
	"bytes"
	"image/png"
	"testing"

	"github.com/ballotd/ballotd/templates"
)

// The turnout chart's axis ends at 100 % (a full bar's figure is written
// inside the bar, not past the axis), and the image has twice the pixels
// it is shown at, for phones.
func TestChartAxisTo100AndDoublePixels(t *testing.T) {
	t.Parallel()
	if chartAxisMax != 1 {
		t.Errorf("the axis ends at %v, want 1 (100 %%)", chartAxisMax)
	}
	if chartScale != 2 {
		t.Errorf("chart scale %d, want 2", chartScale)
	}
	if chartInside >= chartAxisMax {
		t.Errorf("labels go inside bars past %v: a full bar's label would run past the axis", chartInside)
	}
	races := []templates.DigestRace{{Code: "MA-SEN", Turnout: 1}, {Code: "MA-07", Turnout: .5, MinTurnout: .3}, {Code: "MA-08", Turnout: 0}}
	b, err := turnoutChart(races)
	if err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	cw, ch := chartCSSSize(len(races))
	if got := m.Bounds(); got.Dx() != 2*cw || got.Dy() != 2*ch || cw != 400 || ch != 60+24*3 {
		t.Errorf("chart bounds %v, want %d×%d (twice %d×%d CSS pixels)", got, 2*cw, 2*ch, cw, ch)
	}
}
