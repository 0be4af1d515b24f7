package mailer

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/ballotd/ballotd/templates"
)

// chartMax is how many open races the digest's turnout chart draws; the
// table beside it has them all.
const chartMax = 30

// chartScale is how many image pixels the chart has for each CSS pixel it
// is shown at: 2, so a phone's dense screen draws it sharp.
const chartScale = 2

// chartDPI is the chart's resolution: at 96 dots per inch per CSS pixel a
// 10-point label is as large as the text around the image in a mail
// client; the image has chartScale times that.
const chartDPI = 96 * chartScale

// chartWidth is the width the chart is shown at in CSS pixels: narrow
// enough that a phone (390 pixels wide) shows it at nearly full size.
const chartWidth = 400

// chartAxisMax is where the turnout axis ends: 100 %, never past it.
const chartAxisMax = 1.0

// chartCSSSize is the turnout chart's size in CSS pixels for n races: a
// row of 24 pixels a race and 60 for the title and the axis.
func chartCSSSize(n int) (w, h int) { return chartWidth, 60 + 24*n }

// chartSize is the turnout chart's size in image pixels for n races.
func chartSize(n int) (w, h int) {
	w, h = chartCSSSize(n)
	return w * chartScale, h * chartScale
}

// chartInside is the turnout above which a bar's percentage is written
// inside the bar's end (in white) rather than after it, so the axis can
// stop at 100 %.
const chartInside = .8

var (
	chartBar  = color.RGBA{0x3b, 0x6f, 0xb6, 0xff}
	chartMin  = color.RGBA{0xc0, 0x1c, 0x28, 0xff}
	chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
)

// digestChart draws the digest's turnout chart of its first chartMax open
// races as a part of the message whose Message-ID is msgID, and points the
// digest's HTML at it.
func digestChart(d *templates.Digest, msgID string) (Inline, error) {
	d.ChartRaces = d.Open[:min(len(d.Open), chartMax)]
	d.ChartMore = len(d.Open) - len(d.ChartRaces)
	png, err := turnoutChart(d.ChartRaces)
	if err != nil {
		return Inline{}, err
	}
	cid := "turnout." + msgID
	d.Chart = htmltemplate.URL("cid:" + cid)
	d.ChartWidth, _ = chartCSSSize(len(d.ChartRaces))
	return Inline{ContentID: cid, Type: "image/png", Name: "turnout.png", Data: png}, nil
}

// turnoutChart draws the turnout of each race (voted ÷ eligible, not the
// support a candidate needs) as a horizontal bar, the first race on top,
// with its percentage at the bar's end (inside it past chartInside) and,
// when the race's wave has a minimum turnout, a red mark across the bar
// where it lies. The axis runs from 0 to chartAxisMax (100 %). The PNG is
// chartSize(len(races)) pixels; the same races make the same bytes.
func turnoutChart(races []templates.DigestRace) ([]byte, error) {
	n := len(races)
	p := plot.New()
	p.Title.Text = "Turnout so far"
	p.Title.TextStyle.Font = font.From(chartFont, 11)
	p.X.Min, p.X.Max = 0, chartAxisMax
	p.X.Tick.Label.Font = font.From(chartFont, 9)
	p.X.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0 %"}, {Value: .25, Label: "25 %"},
		{Value: .5, Label: "50 %"}, {Value: .75, Label: "75 %"}, {Value: 1, Label: "100 %"}}
	p.Y.Tick.Label.Font = font.From(chartFont, 10)

	// Row i from the bottom is race n-1-i, so the list reads top down.
	names := make([]string, n)
	turnout := make(plotter.Values, n)
	ends := plotter.XYLabels{XYs: make(plotter.XYs, n), Labels: make([]string, n)}
	var marks []plot.Plotter
	for i, r := range races {
		row := n - 1 - i
		t := max(0, min(1, r.Turnout))
		names[row], turnout[row] = r.Code, t
		ends.XYs[row] = plotter.XY{X: t, Y: float64(row)}
		ends.Labels[row] = fmt.Sprintf(" %.1f %% ", r.Turnout*100)
		if r.MinTurnout > 0 {
			mark, err := plotter.NewLine(plotter.XYs{{X: r.MinTurnout, Y: float64(row) - .4}, {X: r.MinTurnout, Y: float64(row) + .4}})
			if err != nil {
				return nil, fmt.Errorf("turnout chart: %s minimum: %w", r.Code, err)
			}
			mark.Color, mark.Width = chartMin, vg.Points(2)
			marks = append(marks, mark)
			p.Title.Text = "Turnout so far (red: the minimum turnout)"
		}
	}
	bars, err := plotter.NewBarChart(turnout, vg.Points(12))
	if err != nil {
		return nil, fmt.Errorf("turnout chart: %w", err)
	}
	bars.Horizontal, bars.Color, bars.LineStyle.Width = true, chartBar, 0
	labels, err := plotter.NewLabels(ends)
	if err != nil {
		return nil, fmt.Errorf("turnout chart: %w", err)
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Font = font.From(chartFont, 9)
		labels.TextStyle[i].YAlign = draw.YCenter
		if ends.XYs[i].X > chartInside {
			// Inside the bar's end, right-aligned: a full bar's label
			// needs no room past 100 %.
			labels.TextStyle[i].XAlign = draw.XRight
			labels.TextStyle[i].Color = color.White
		}
	}
	p.Add(bars, labels)
	p.Add(marks...) // over the bars
	p.NominalY(names...)

	w, h := chartSize(n)
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(w)*vg.Inch/chartDPI, vg.Length(h)*vg.Inch/chartDPI),
		vgimg.UseDPI(chartDPI), vgimg.UseBackgroundColor(color.White))
	// A margin so the "100 %" tick and the title are not cut at the edges.
	p.Draw(draw.Crop(draw.New(c), vg.Points(4), -vg.Points(14), vg.Points(2), -vg.Points(4)))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("turnout chart: png: %w", err)
	}
	return buf.Bytes(), nil
}
