package anomaly

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/baselines"
)

// ScoreOptions configure offline scoring.
type ScoreOptions struct {
	// Kind is count, rate, duration, dense (workload metrics: the
	// streaming baselines.Dense model) or auto (the default), which picks
	// from the data.
	Kind string
	// Season is the season in intervals; 0 detects it, -1 turns it off.
	Season int
	// Window is how many past intervals train each score of a count, rate
	// or duration (default 8 weeks of the series' step, at least 28).
	Window  int
	Options baselines.Options
}

// ScoreKinds are the values of ScoreOptions.Kind ("" is auto).
var ScoreKinds = []string{"count", "rate", "duration", "dense", "auto"}

// Scored is one scored row.
type Scored struct {
	Time    time.Time
	Value   float64
	Present bool // the row has a value
	// Ready: the model has left its warm-up; Expected and the band are
	// meaningless otherwise.
	Ready                  bool
	Expected, Lower, Upper float64
	// Judged: the row's value was judged (Ready, Present, and enough data
	// in the interval). Score is in [0, 1], higher for rarer values: 1
	// minus the two-sided tail probability of the test that decided.
	Judged bool
	Score  float64
	// Tail is 1 − Score, kept apart for the rarest rows whose Score
	// rounds to 1.
	Tail    float64
	Test    string // interval, window or silence
	Anomaly bool
}

// ScoreReport says what ScoreSeries chose and what it found in the rows.
type ScoreReport struct {
	Kind   string
	Step   time.Duration
	Season int // in steps; 0 for none
	// What the rows held: rows without a value, rows whose timestamp an
	// earlier row already had, rows earlier than the row before them,
	// rows off the step's grid (more than a tenth of a step), and the
	// intervals missing between the first and the last row.
	Missing, Repeated, OutOfOrder, OffGrid, Gaps int
}

// ScoreSeries scores every row online: a row is judged by a model learnt
// from the rows of earlier timestamps only, and gets exactly one output
// row, in input order. Rows may be in any order, repeat timestamps, skip
// intervals, change interval or lie off the grid (docs/baselines.md says
// how each is treated).
func ScoreSeries(points []baselines.Point, rates bool, o ScoreOptions) ([]Scored, ScoreReport, error) {
	if len(points) == 0 {
		return nil, ScoreReport{}, errors.New("no rows")
	}
	order := make([]int, len(points))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return points[order[a]].Start.Before(points[order[b]].Start) })
	rep := ScoreReport{Step: detectStep(points, order)}
	for i, p := range points {
		if !p.Present {
			rep.Missing++
		}
		if i > 0 && p.Start.Before(points[i-1].Start) {
			rep.OutOfOrder++
		}
	}
	for k := 1; k < len(order); k++ {
		if points[order[k]].Start.Equal(points[order[k-1]].Start) {
			rep.Repeated++
		}
	}
	kind := o.Kind
	if kind == "" || kind == "auto" {
		kind = detectKind(points, rates, rep.Step)
	}
	if kind == "rate" && !rates {
		return nil, rep, errors.New("kind rate needs num and den columns")
	}
	rep.Kind = kind
	out := make([]Scored, len(points))
	for i, p := range points {
		out[i] = Scored{Time: p.Start, Value: p.Value, Present: p.Present}
	}
	if kind == "dense" {
		scoreDense(points, order, o, out, &rep)
		return out, rep, nil
	}
	var k baselines.Kind
	switch kind {
	case "count":
		k = baselines.Count
	case "rate":
		k = baselines.Rate
	case "duration":
		k = baselines.Duration
	default:
		return nil, rep, fmt.Errorf("unknown kind %q: want %s", kind, strings.Join(ScoreKinds, ", "))
	}
	scoreIntervals(points, order, k, o, out, &rep)
	return out, rep, nil
}

// detectStep is the most common difference between consecutive distinct
// timestamps, each first snapped to a usual monitoring interval (1 s to
// a week) when within a tenth of one, else to the second; a day when
// there is none.
func detectStep(points []baselines.Point, order []int) time.Duration {
	counts := map[time.Duration]int{}
	best, bestN := 24*time.Hour, 0
	for k := 1; k < len(order); k++ {
		d := snapStep(points[order[k]].Start.Sub(points[order[k-1]].Start))
		if d <= 0 {
			continue
		}
		counts[d]++
		if n := counts[d]; n > bestN || (n == bestN && d < best) {
			best, bestN = d, n
		}
	}
	return best
}

var usualSteps = []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

func snapStep(d time.Duration) time.Duration {
	for _, u := range usualSteps {
		if (d - u).Abs() <= u/10 {
			return u
		}
	}
	return d.Round(time.Second)
}

// scoreDense runs the streaming dense model over the rows in time order.
// Rows of one timestamp are judged alike, then learnt as their median.
func scoreDense(points []baselines.Point, order []int, o ScoreOptions, out []Scored, rep *ScoreReport) {
	do := baselines.DenseOptions{Step: rep.Step, Alpha: o.Options.Alpha}
	if o.Options.MinHistory > 0 {
		do.Warmup = o.Options.MinHistory
	}
	switch {
	case o.Season < 0:
		do.NoSeason = true
	case o.Season > 0:
		do.Periods = []time.Duration{time.Duration(o.Season) * rep.Step}
	}
	d := baselines.NewDense(do)
	grid := gridOf(points, order, rep.Step)
	var season time.Duration
	for k := 0; k < len(order); {
		t := points[order[k]].Start
		var vals []float64
		j := k
		for ; j < len(order) && points[order[j]].Start.Equal(t); j++ {
			i := order[j]
			p := points[i]
			if grid.off(t) {
				rep.OffGrid++
			}
			y := math.NaN()
			if p.Present {
				y = p.Value
				vals = append(vals, y)
			}
			s := d.Score(t, y)
			out[i].Ready = s.Ready
			out[i].Expected, out[i].Lower, out[i].Upper = s.Expected, s.Lower, s.Upper
			if s.Judged {
				out[i].Judged, out[i].Score, out[i].Tail, out[i].Test, out[i].Anomaly = true, 1-s.Tail, s.Tail, s.Test, s.Anomaly
			}
			season = s.Season
		}
		if len(vals) > 0 {
			d.Learn(t, median(vals))
		}
		k = j
	}
	rep.Gaps = grid.gaps(points, order)
	rep.Season = int(season / rep.Step)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// grid is the step's grid of a series: intervals are counted from anchor,
// which is the most common phase of the timestamps within a step.
type grid struct {
	anchor time.Time
	step   time.Duration
}

func gridOf(points []baselines.Point, order []int, step time.Duration) grid {
	phases := map[time.Duration]int{}
	first := points[order[0]].Start
	best, bestN := time.Duration(0), 0
	for _, i := range order {
		ph := (points[i].Start.Sub(first) % step).Round(time.Second)
		if ph < 0 {
			ph += step
		}
		phases[ph]++
		if n := phases[ph]; n > bestN {
			best, bestN = ph, n
		}
	}
	return grid{anchor: first.Add(best), step: step}
}

// index is the interval of t: the nearest grid point.
func (g grid) index(t time.Time) int64 {
	return int64(math.Round(float64(t.Sub(g.anchor)) / float64(g.step)))
}

func (g grid) start(k int64) time.Time { return g.anchor.Add(time.Duration(k) * g.step) }

// off reports a timestamp more than a tenth of a step from the grid.
func (g grid) off(t time.Time) bool {
	d := t.Sub(g.start(g.index(t)))
	return d > g.step/10 || d < -g.step/10
}

// gaps counts the grid intervals between the first and last row that no
// row falls in.
func (g grid) gaps(points []baselines.Point, order []int) int {
	first, last := g.index(points[order[0]].Start), g.index(points[order[len(order)-1]].Start)
	seen := map[int64]bool{}
	for _, i := range order {
		seen[g.index(points[i].Start)] = true
	}
	return int(last-first+1) - len(seen)
}

// scoreIntervals scores counts, rates and durations on the step's grid:
// each row belongs to its nearest interval; an interval's rows are judged
// alike, by a model fitted on the intervals before it (at most Window of
// them), and train later models as one point: the row of the median
// value. Intervals without rows are
// missing, neither zero nor judged. Intervals flagged as anomalies do not
// train later counts and rates, as in live learning.
func scoreIntervals(points []baselines.Point, order []int, k baselines.Kind, o ScoreOptions, out []Scored, rep *ScoreReport) {
	step := rep.Step
	g := gridOf(points, order, step)
	// The intervals, in time order, with their merged points.
	var idx []int64
	merged := map[int64]baselines.Point{}
	rowsOf := map[int64][]int{}
	for _, i := range order {
		p := points[i]
		if g.off(p.Start) {
			rep.OffGrid++
		}
		j := g.index(p.Start)
		if _, ok := rowsOf[j]; !ok {
			idx = append(idx, j)
		}
		rowsOf[j] = append(rowsOf[j], i)
	}
	for _, j := range idx {
		// An interval of several rows trains as its median row (the lower
		// median), trials or durations included.
		var present []baselines.Point
		for _, i := range rowsOf[j] {
			if p := points[i]; p.Present {
				present = append(present, p)
			}
		}
		p := baselines.Point{}
		if len(present) > 0 {
			sort.SliceStable(present, func(a, b int) bool { return present[a].Value < present[b].Value })
			p = present[(len(present)-1)/2]
		}
		p.Start = g.start(j)
		merged[j] = p
	}
	rep.Gaps = int(idx[len(idx)-1]-idx[0]+1) - len(idx)

	season := o.Season
	if season == 0 {
		vals := make([]baselines.Point, len(idx))
		for n, j := range idx {
			vals[n] = merged[j]
		}
		season = detectSeason(vals, step)
	}
	window := o.Window
	if window <= 0 {
		window = max(28, int(8*7*24*time.Hour/step))
	}
	opts := o.Options
	opts.Step = step
	opts.Origin = g.anchor
	if season > 1 {
		opts.Period = season
		rep.Season = season
	} else {
		opts.NoSeason = true
	}
	flagged := map[time.Time]bool{}
	opts.Exclude = func(t time.Time) bool { return flagged[t] }
	history := baselines.History(step)
	for n, j := range idx {
		var train []baselines.Point
		for m := sort.Search(n, func(m int) bool { return idx[m] >= j-int64(window) }); m < n; m++ {
			train = append(train, merged[idx[m]])
		}
		model := baselines.Fit(k, train, opts)
		recent := make([]baselines.Point, 0, history)
		for b := j - int64(history) + 1; b < j; b++ {
			p, ok := merged[b]
			if !ok {
				p = baselines.Point{Start: g.start(b)}
			}
			recent = append(recent, p)
		}
		anomalous := false
		for _, i := range rowsOf[j] {
			p := points[i]
			p.Start = g.start(j)
			s := model.ScoreRecent(append(recent, p))
			r := &out[i]
			r.Ready = model.Status == baselines.Ready
			r.Expected, r.Lower, r.Upper = s.Expected, s.Lower, s.Upper
			if s.Judged {
				tail := math.Min(1, 2*s.Tail)
				r.Judged, r.Score, r.Tail, r.Test, r.Anomaly = true, 1-tail, tail, s.Test, s.Anomaly
			}
			anomalous = anomalous || s.Anomaly
		}
		if anomalous && baselines.ExcludesFlagged(k) {
			flagged[g.start(j)] = true
		}
	}
}

// detectKind: num and den make a rate; a step under an hour a dense
// series (workload metrics); otherwise non-negative integers a count,
// positive values a duration, anything else a dense series.
func detectKind(points []baselines.Point, rates bool, step time.Duration) string {
	if rates {
		return "rate"
	}
	if step < time.Hour {
		return "dense"
	}
	ints, positive := true, true
	for _, p := range points {
		if !p.Present {
			continue
		}
		if p.Value < 0 || p.Value != math.Trunc(p.Value) {
			ints = false
		}
		if p.Value <= 0 {
			positive = false
		}
	}
	switch {
	case ints:
		return "count"
	case positive:
		return "duration"
	}
	return "dense"
}

// detectSeason picks the weekly season of daily or hourly series, or the
// lag of highest autocorrelation up to a quarter of the series, when that
// autocorrelation is above 0.3; 1 means none.
func detectSeason(points []baselines.Point, step time.Duration) int {
	var cands []int
	switch step {
	case 24 * time.Hour:
		return 7 // weekly, as live baselines: slots shrink to the mean when there is no season
	case time.Hour:
		return 168
	default:
		for l := 2; l <= len(points)/4; l++ {
			cands = append(cands, l)
		}
	}
	xs := make([]float64, len(points))
	mean, n := 0.0, 0.0
	for i, p := range points {
		if p.Present {
			xs[i] = p.Value
			mean += p.Value
			n++
		}
	}
	if n == 0 {
		return 1
	}
	mean /= n
	type lagACF struct {
		lag int
		acf float64
	}
	var best []lagACF
	for _, l := range cands {
		if 3*l > len(xs) {
			continue
		}
		num, den := 0.0, 0.0
		for i := range xs {
			den += (xs[i] - mean) * (xs[i] - mean)
			if i >= l {
				num += (xs[i] - mean) * (xs[i-l] - mean)
			}
		}
		if den > 0 {
			best = append(best, lagACF{l, num / den})
		}
	}
	sort.Slice(best, func(i, j int) bool { return best[i].acf > best[j].acf })
	if len(best) > 0 && best[0].acf > 0.3 {
		return best[0].lag
	}
	return 1
}

// WriteScores writes the scored rows as CSV: timestamp, value, expected,
// lower, upper, score, anomaly and test. A row without a value has an
// empty value and score; a row of a model still warming up has an empty
// expected value, band and score.
func WriteScores(w io.Writer, rows []Scored) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"timestamp", "value", "expected", "lower", "upper", "score", "anomaly", "test"})
	f := func(v float64, ok bool) string {
		if !ok {
			return ""
		}
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	for _, r := range rows {
		cw.Write([]string{r.Time.Format(time.RFC3339Nano), f(r.Value, r.Present), f(r.Expected, r.Ready), f(r.Lower, r.Ready),
			f(r.Upper, r.Ready), f(r.Score, r.Judged), strconv.FormatBool(r.Anomaly), r.Test})
	}
	cw.Flush()
	return cw.Error()
}
