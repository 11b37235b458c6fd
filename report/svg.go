package report

import (
	"math"
	"strconv"
	"strings"
)

// Charts are drawn in Go as plain coordinates and labels (a chart) that
// the page template turns into inline SVG, so that html/template escapes
// every label and no markup is ever assembled from strings.

const (
	chartWidth  = 640.0
	noData      = "no data in this period"
	legendY     = 38.0
	legendFont  = 6.2 // approximate width of a legend character, in px
	plotTop     = 56.0
	plotBottom  = 48.0 // below the plot: tick labels and the x axis title
	lineLeft    = 64.0
	lineRight   = 24.0
	lineHeight  = 280.0
	barLeft     = 96.0
	barRight    = 72.0
	barRowSpace = 30.0
)

// chart is one SVG chart, ready to draw: every coordinate in px of a
// chartWidth × Height view box.
type chart struct {
	Title          string
	Height         float64
	XAxis, YAxis   segment
	XTicks, YTicks []tick
	XTitle, YTitle label
	Bands          []string // polygon points
	Lines          []string // polyline points
	Dots           []point
	Flags          []point // values flagged by anomaly detection
	Bars           []bar
	Legend         []legendItem
	Empty          *label // the "no data" notice
}

type point struct{ X, Y float64 }

type segment struct{ X1, Y1, X2, Y2 float64 }

// tick is a tick mark, its grid line across the plot, and its label.
type tick struct {
	Mark, Grid segment
	Label      label
}

type label struct {
	X, Y   float64
	Text   string
	Anchor string // start, middle or end
}

type bar struct {
	X, Y, W, H float64
	Value      label
}

// legendItem is a swatch (line, band or bar) and its text, or a note with
// no swatch.
type legendItem struct {
	Kind string // line, band, bar or note
	X    float64
	Text label
}

// band is a baseline band in axis units.
type band struct{ Lower, Expected, Upper float64 }

// lineChart describes a line chart over consecutive buckets. A nil value
// is absent and leaves a gap in the line; a nil band draws none there.
type lineChart struct {
	Title, XTitle, YTitle string
	Labels                []string // of each bucket, for the x axis
	Values                []*float64
	LineLabel             string
	Bands                 []*band
	// BandLabel names the band in the legend when one is drawn; NoBand is
	// the legend's note when none is.
	BandLabel, NoBand string
	// Flagged marks the values that anomaly detection flagged, named
	// FlagLabel in the legend.
	Flagged   []bool
	FlagLabel string
}

func (c lineChart) draw() chart {
	out := chart{Title: c.Title, Height: lineHeight}
	left, right, top, bottom := lineLeft, chartWidth-lineRight, plotTop, lineHeight-plotBottom
	out.XAxis = segment{left, bottom, right, bottom}
	out.YAxis = segment{left, top, left, bottom}
	out.XTitle = label{(left + right) / 2, lineHeight - 8, c.XTitle, "middle"}
	out.YTitle = label{16, (top + bottom) / 2, c.YTitle, "middle"}

	hi, present := 0.0, 0
	for _, v := range c.Values {
		if v != nil {
			hi = math.Max(hi, *v)
			present++
		}
	}
	drawBand := false
	for _, b := range c.Bands {
		if b != nil {
			hi = math.Max(hi, b.Upper)
			drawBand = true
		}
	}
	ticks, top2 := niceTicks(hi)
	y := func(v float64) float64 { return bottom - v/top2*(bottom-top) }
	for _, t := range ticks {
		out.YTicks = append(out.YTicks, tick{Mark: segment{left - 4, y(t), left, y(t)}, Grid: segment{left, y(t), right, y(t)},
			Label: label{left - 7, y(t) + 4, formatTick(t, ticks), "end"}})
	}
	n := len(c.Labels)
	x := func(i int) float64 {
		if n <= 1 {
			return (left + right) / 2
		}
		return left + 8 + float64(i)*(right-left-16)/float64(n-1)
	}
	every := max(1, int(math.Ceil(float64(n)/8)))
	for i, l := range c.Labels {
		if i%every != 0 {
			continue
		}
		out.XTicks = append(out.XTicks, tick{Mark: segment{x(i), bottom, x(i), bottom + 4}, Label: label{x(i), bottom + 17, l, "middle"}})
	}

	if present == 0 {
		out.Empty = &label{(left + right) / 2, (top + bottom) / 2, noData, "middle"}
	} else {
		// Consecutive present values join; a lone one is a dot alone.
		var run []string
		flush := func() {
			if len(run) > 1 {
				out.Lines = append(out.Lines, strings.Join(run, " "))
			}
			run = nil
		}
		for i, v := range c.Values {
			if v == nil {
				flush()
				continue
			}
			run = append(run, coord(x(i), y(*v)))
			out.Dots = append(out.Dots, point{x(i), y(*v)})
			if i < len(c.Flagged) && c.Flagged[i] {
				out.Flags = append(out.Flags, point{x(i), y(*v)})
			}
		}
		flush()
	}
	if drawBand && present > 0 {
		// One polygon per run of buckets with a band: upper edge forward,
		// lower edge back. A lone bucket gets a narrow box.
		var upper, lower []string
		flush := func() {
			if len(upper) > 0 {
				for i, j := 0, len(lower)-1; i < j; i, j = i+1, j-1 {
					lower[i], lower[j] = lower[j], lower[i]
				}
				out.Bands = append(out.Bands, strings.Join(append(upper, lower...), " "))
			}
			upper, lower = nil, nil
		}
		for i, b := range c.Bands {
			if b == nil {
				flush()
				continue
			}
			next := i+1 < len(c.Bands) && c.Bands[i+1] != nil
			prev := i > 0 && c.Bands[i-1] != nil
			if !next && !prev {
				upper = []string{coord(x(i)-4, y(b.Upper)), coord(x(i)+4, y(b.Upper))}
				lower = []string{coord(x(i)-4, y(b.Lower)), coord(x(i)+4, y(b.Lower))}
				flush()
				continue
			}
			upper = append(upper, coord(x(i), y(b.Upper)))
			lower = append(lower, coord(x(i), y(b.Lower)))
		}
		flush()
	}

	items := []legendItem{{Kind: "line", Text: label{Text: c.LineLabel}}}
	switch {
	case len(out.Bands) > 0:
		items = append(items, legendItem{Kind: "band", Text: label{Text: c.BandLabel}})
	case c.NoBand != "":
		items = append(items, legendItem{Kind: "note", Text: label{Text: c.NoBand}})
	}
	if len(out.Flags) > 0 {
		items = append(items, legendItem{Kind: "flag", Text: label{Text: c.FlagLabel}})
	}
	out.Legend = layoutLegend(items, left)
	return out
}

// barChart describes a horizontal bar chart of percentages, one bar per
// category; a nil value has no bar and says Absent instead.
type barChart struct {
	Title, XTitle, YTitle string
	Categories            []string
	Values                []*float64 // 0–100
	BarLabel, Absent      string
}

func (c barChart) draw() chart {
	n := max(len(c.Categories), 1)
	height := plotTop + float64(n)*barRowSpace + plotBottom
	out := chart{Title: c.Title, Height: height}
	left, right, top, bottom := barLeft, chartWidth-barRight, plotTop, height-plotBottom
	out.XAxis = segment{left, bottom, right, bottom}
	out.YAxis = segment{left, top, left, bottom}
	out.XTitle = label{(left + right) / 2, height - 8, c.XTitle, "middle"}
	out.YTitle = label{16, (top + bottom) / 2, c.YTitle, "middle"}
	x := func(v float64) float64 { return left + v/100*(right-left) }
	for _, t := range []float64{0, 25, 50, 75, 100} {
		out.XTicks = append(out.XTicks, tick{Mark: segment{x(t), bottom, x(t), bottom + 4}, Grid: segment{x(t), top, x(t), bottom},
			Label: label{x(t), bottom + 17, formatTick(t, nil), "middle"}})
	}
	present := 0
	for i, cat := range c.Categories {
		mid := top + (float64(i)+0.5)*barRowSpace
		out.YTicks = append(out.YTicks, tick{Mark: segment{left - 4, mid, left, mid}, Label: label{left - 7, mid + 4, cat, "end"}})
		var v *float64
		if i < len(c.Values) {
			v = c.Values[i]
		}
		if v == nil {
			out.Bars = append(out.Bars, bar{X: left, Y: mid - 9, W: 0, H: 18, Value: label{left + 6, mid + 4, c.Absent, "start"}})
			continue
		}
		present++
		w := math.Max(x(math.Min(math.Max(*v, 0), 100))-left, 0)
		out.Bars = append(out.Bars, bar{X: left, Y: mid - 9, W: w, H: 18,
			Value: label{left + w + 5, mid + 4, strconv.FormatFloat(*v, 'f', 1, 64) + "%", "start"}})
	}
	if present == 0 {
		out.Bars = nil
		out.Empty = &label{(left + right) / 2, (top + bottom) / 2, noData, "middle"}
	}
	out.Legend = layoutLegend([]legendItem{{Kind: "bar", Text: label{Text: c.BarLabel}}}, left)
	return out
}

// layoutLegend places the legend's items in one row above the plot.
func layoutLegend(items []legendItem, x float64) []legendItem {
	var out []legendItem
	for _, it := range items {
		if it.Text.Text == "" {
			continue
		}
		it.X = x
		tx := x + 24
		if it.Kind == "note" {
			tx = x
		}
		it.Text = label{tx, legendY + 4, it.Text.Text, "start"}
		out = append(out, it)
		x = tx + float64(len([]rune(it.Text.Text)))*legendFont + 18
	}
	return out
}

// niceTicks returns 4–6 round ticks from 0 that cover hi, and the top of
// the axis (the last tick).
func niceTicks(hi float64) ([]float64, float64) {
	if hi <= 0 || math.IsNaN(hi) || math.IsInf(hi, 0) {
		hi = 1
	}
	raw := hi / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for i := 0; ; i++ {
		t := float64(i) * step
		ticks = append(ticks, t)
		if t >= hi-step*1e-9 {
			return ticks, t
		}
	}
}

// formatTick writes a tick value with as many decimals as its ticks' step
// needs.
func formatTick(v float64, ticks []float64) string {
	decimals := 0
	if len(ticks) > 1 {
		step := ticks[1] - ticks[0]
		for decimals < 4 && math.Abs(step*math.Pow(10, float64(decimals))-math.Round(step*math.Pow(10, float64(decimals)))) > 1e-9 {
			decimals++
		}
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

func coord(x, y float64) string {
	return strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64)
}

// chartSVG draws a chart. Every text goes through html/template, which
// escapes it; coordinates are numbers.
const chartSVG = `<figure class="chart">
<svg viewBox="0 0 640 {{f .Height}}" width="640" height="{{f .Height}}" role="img" aria-label="{{.Title}}">
<title>{{.Title}}</title>
<text class="chart-title" x="8" y="20">{{.Title}}</text>
{{- range .YTicks}}{{if .Grid.X2}}
<line class="grid" x1="{{f .Grid.X1}}" y1="{{f .Grid.Y1}}" x2="{{f .Grid.X2}}" y2="{{f .Grid.Y2}}"/>{{end}}{{end}}
{{- range .XTicks}}{{if .Grid.X2}}
<line class="grid" x1="{{f .Grid.X1}}" y1="{{f .Grid.Y1}}" x2="{{f .Grid.X2}}" y2="{{f .Grid.Y2}}"/>{{end}}{{end}}
{{- range .Bands}}
<polygon class="band" points="{{.}}"/>{{end}}
{{- range .Bars}}{{if .W}}
<rect class="bar" x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}"/>{{end}}
<text class="value" x="{{f .Value.X}}" y="{{f .Value.Y}}" text-anchor="{{.Value.Anchor}}">{{.Value.Text}}</text>{{end}}
{{- range .Lines}}
<polyline class="series" points="{{.}}"/>{{end}}
{{- range .Dots}}
<circle class="dot" cx="{{f .X}}" cy="{{f .Y}}" r="2.5"/>{{end}}
{{- range .Flags}}
<circle class="flagged" cx="{{f .X}}" cy="{{f .Y}}" r="5.5"/>{{end}}
<line class="axis" x1="{{f .XAxis.X1}}" y1="{{f .XAxis.Y1}}" x2="{{f .XAxis.X2}}" y2="{{f .XAxis.Y2}}"/>
<line class="axis" x1="{{f .YAxis.X1}}" y1="{{f .YAxis.Y1}}" x2="{{f .YAxis.X2}}" y2="{{f .YAxis.Y2}}"/>
{{- range .XTicks}}
<line class="axis" x1="{{f .Mark.X1}}" y1="{{f .Mark.Y1}}" x2="{{f .Mark.X2}}" y2="{{f .Mark.Y2}}"/>
<text class="tick" x="{{f .Label.X}}" y="{{f .Label.Y}}" text-anchor="{{.Label.Anchor}}">{{.Label.Text}}</text>{{end}}
{{- range .YTicks}}
<line class="axis" x1="{{f .Mark.X1}}" y1="{{f .Mark.Y1}}" x2="{{f .Mark.X2}}" y2="{{f .Mark.Y2}}"/>
<text class="tick" x="{{f .Label.X}}" y="{{f .Label.Y}}" text-anchor="{{.Label.Anchor}}">{{.Label.Text}}</text>{{end}}
<text class="axis-title" x="{{f .XTitle.X}}" y="{{f .XTitle.Y}}" text-anchor="middle">{{.XTitle.Text}}</text>
<text class="axis-title" x="{{f .YTitle.X}}" y="{{f .YTitle.Y}}" text-anchor="middle" transform="rotate(-90 {{f .YTitle.X}} {{f .YTitle.Y}})">{{.YTitle.Text}}</text>
{{- with .Empty}}
<text class="empty" x="{{f .X}}" y="{{f .Y}}" text-anchor="middle">{{.Text}}</text>{{end}}
<g class="legend">
{{- range .Legend}}
{{- if eq .Kind "line"}}
<line class="series" x1="{{f .X}}" y1="38" x2="{{f (add .X 18)}}" y2="38"/><circle class="dot" cx="{{f (add .X 9)}}" cy="38" r="2.5"/>
{{- else if eq .Kind "band"}}
<rect class="band" x="{{f .X}}" y="32" width="18" height="12"/>
{{- else if eq .Kind "flag"}}
<circle class="flagged" cx="{{f (add .X 9)}}" cy="38" r="5.5"/>
{{- else if eq .Kind "bar"}}
<rect class="bar" x="{{f .X}}" y="32" width="18" height="12"/>
{{- end}}
<text class="legend-text" x="{{f .Text.X}}" y="{{f .Text.Y}}">{{.Text.Text}}</text>
{{- end}}
</g>
</svg>
</figure>`
