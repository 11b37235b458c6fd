package anomaly

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// Target is what a threshold rule (or another configured objective)
// holds a KPI to: the rule fires above Above or below Below.
type Target struct {
	Name string
	KPI  string
	// Unit is ratio, seconds or count; ThresholdKPIs' when empty.
	Unit         string
	Above, Below *float64
	// SetAt is when the target was set; zero when unknown.
	SetAt time.Time
}

// TargetOf is the target of a threshold rule.
func TargetOf(r ThresholdRule, setAt time.Time) Target {
	return Target{Name: r.Name, KPI: r.KPI, Unit: ThresholdKPIs[r.KPI].unit, Above: r.Above, Below: r.Below, SetAt: setAt}
}

// Achieved is what one slice achieved over the review period: one point
// per evaluation, in time order, ideally the KPI over consecutive windows
// of the rule's length (overlapping trailing windows move together, and
// make a drift look like a shift). Ratios carry Num and Den (a ratio
// without trials is not reviewed), durations Value in seconds (Den the
// number of durations, when known), counts Value.
type Achieved struct {
	Slice  map[metrics.Dimension]string
	Points []baselines.Point
}

// ReviewOptions tune ReviewTarget.
type ReviewOptions struct {
	// WideMargin is the margin, in robust standard deviations of the
	// achieved values, beyond which a target always met is stale
	// (default 3).
	WideMargin float64
	// SuggestLevel is the level of the band whose end is the suggested
	// target (default 0.95: the upper end for an above target is a value
	// the slice exceeds one evaluation in forty).
	SuggestLevel float64
	// ShiftLevel is the level of the band of the values before the split
	// that the values after it are judged against (default 0.9).
	ShiftLevel float64
	// MinPoints is the least number of values reviewed (default 8), and
	// half of it the least on each side of the split.
	MinPoints int
	// Step is the length of one point (default a day): it dates the
	// model's intervals.
	Step time.Duration
}

func (o ReviewOptions) withDefaults() ReviewOptions {
	if o.WideMargin <= 0 {
		o.WideMargin = 3
	}
	if o.SuggestLevel <= 0 || o.SuggestLevel >= 1 {
		o.SuggestLevel = 0.95
	}
	if o.ShiftLevel <= 0 || o.ShiftLevel >= 1 {
		o.ShiftLevel = 0.9
	}
	if o.MinPoints <= 0 {
		o.MinPoints = 8
	}
	if o.Step <= 0 {
		o.Step = 24 * time.Hour
	}
	return o
}

// The findings of a review.
const (
	TargetStale    = "stale"     // always met by a wide margin: it can no longer fire when it matters
	TargetNeverMet = "never_met" // missed at every evaluation
	TargetShifted  = "shifted"   // the achieved values changed level since the target was set
)

// Review is the review of one target on one slice.
type Review struct {
	Target Target
	Slice  map[metrics.Dimension]string
	// Points is how many values were reviewed, Met how many meet the
	// target.
	Points, Met int
	// Worst, Median and Best are the achieved values, worst in the
	// direction the target guards (the highest for an above target).
	Worst, Median, Best float64
	// Spread is the achieved values' robust standard deviation (1.4826
	// MAD, on the log scale for durations), never below the noise of
	// their kind: Poisson's for counts, the binomial's at the typical
	// denominator for ratios, 5% for durations.
	Spread float64
	// Margin is the distance from the worst value to the target, in
	// Spreads; negative when the target was missed. For a target with
	// both bounds, the smaller.
	Margin float64
	// Findings are TargetStale, TargetNeverMet and TargetShifted, as they
	// apply; none for a target that holds.
	Findings []string
	// SplitAt is where the values were split to look for a shift: the
	// target's SetAt when it falls inside the period with enough values
	// on each side, else the middle. ShiftDirection is up or down, when
	// shifted, and Beyond how many of the values after the split lie
	// beyond the band of those before, on that side, of After.
	SplitAt        time.Time
	ShiftDirection string
	Beyond, After  int
	// Suggested is the suggested target: the end of the SuggestLevel
	// band of the model learnt on the values since the shift (or on all
	// of them), on the side the target guards; SuggestedAbove and
	// SuggestedBelow for a target with both bounds.
	SuggestedAbove, SuggestedBelow *float64
	Summary                        string
}

// ReviewTarget compares what a slice achieved with its target (docs/alerting.md):
//
//   - stale: every value meets the target, and the worst of them by at
//     least WideMargin spreads, so that a deterioration of that size
//     would still not fire;
//   - never met: no value meets it;
//   - shifted: the values after the split leave the band that the values
//     before it predict (baselines.Fit and Model.Forecast, without
//     season, at ShiftLevel), at least half of them and at least
//     MinPoints/2 on the same side: the behaviour the target was set for
//     has changed.
//
// The suggested target is the end of the band, at SuggestLevel, of the
// model learnt on the values since a shift, or on all of them.
func ReviewTarget(t Target, a Achieved, opts ReviewOptions) Review {
	o := opts.withDefaults()
	if t.Unit == "" {
		t.Unit = ThresholdKPIs[t.KPI].unit
	}
	r := Review{Target: t, Slice: a.Slice}
	var pts []baselines.Point
	for _, p := range a.Points {
		if p.Present && !math.IsNaN(p.Value) && (t.Unit != "seconds" || p.Value > 0) && (t.Unit != "ratio" || p.Den > 0) {
			pts = append(pts, p)
		}
	}
	r.Points = len(pts)
	if len(pts) < o.MinPoints {
		r.Summary = fmt.Sprintf("%s on %s: %d values, too few to review (at least %d).", describeTarget(t), sliceName(a.Slice), len(pts), o.MinPoints)
		return r
	}
	kind, fitOpts := reviewModel(t.Unit, pts, o.Step)
	vals := make([]float64, len(pts))
	for i, p := range pts {
		vals[i] = p.Value
		if meets(t, p.Value) {
			r.Met++
		}
	}
	sorted := append([]float64(nil), vals...)
	sort.Float64s(sorted)
	r.Median = mid(sorted)
	r.Worst, r.Best = sorted[len(sorted)-1], sorted[0]
	if t.Above == nil && t.Below != nil {
		r.Worst, r.Best = sorted[0], sorted[len(sorted)-1]
	}
	r.Spread = spread(t.Unit, pts, sorted)
	r.Margin = math.Inf(1)
	if t.Above != nil {
		r.Margin = math.Min(r.Margin, (scale(t.Unit, *t.Above)-scale(t.Unit, sorted[len(sorted)-1]))/r.Spread)
	}
	if t.Below != nil {
		r.Margin = math.Min(r.Margin, (scale(t.Unit, sorted[0])-scale(t.Unit, *t.Below))/r.Spread)
	}
	switch {
	case r.Met == r.Points && r.Margin >= o.WideMargin:
		r.Findings = append(r.Findings, TargetStale)
	case r.Met == 0:
		r.Findings = append(r.Findings, TargetNeverMet)
	}

	// A shift: the values after the split against the band of those
	// before it.
	split := len(pts) / 2
	if !t.SetAt.IsZero() {
		i := sort.Search(len(pts), func(i int) bool { return !pts[i].Start.Before(t.SetAt) })
		if i >= o.MinPoints/2 && len(pts)-i >= o.MinPoints/2 {
			split = i
		}
	}
	r.SplitAt = pts[split].Start
	before, after := pts[:split], pts[split:]
	m := baselines.Fit(kind, before, fitOpts)
	up, down := 0, 0
	for _, p := range after {
		iv := m.Forecast(p.Start, o.Step, baselines.ForecastOptions{Level: o.ShiftLevel, Den: func(time.Time) float64 { return p.Den }}).Intervals[0]
		switch {
		case p.Value > iv.Upper:
			up++
		case p.Value < iv.Lower:
			down++
		}
	}
	r.After = len(after)
	need := max(o.MinPoints/2, (len(after)+1)/2)
	current := pts
	switch {
	case up >= need:
		r.ShiftDirection, r.Beyond = "up", up
	case down >= need:
		r.ShiftDirection, r.Beyond = "down", down
	}
	if r.ShiftDirection != "" {
		r.Findings = append(r.Findings, TargetShifted)
		current = after
	}

	cur := baselines.Fit(kind, current, fitOpts)
	last := current[len(current)-1].Start.Add(o.Step)
	iv := cur.Forecast(last, o.Step, baselines.ForecastOptions{Level: o.SuggestLevel}).Intervals[0]
	if t.Above != nil {
		r.SuggestedAbove = &iv.Upper
	}
	if t.Below != nil {
		r.SuggestedBelow = &iv.Lower
	}
	r.Summary = reviewSummary(r, o, len(current) != len(pts))
	return r
}

// reviewModel is the model of achieved values: ratios as rates,
// durations as durations, counts (and deployments per day) as a median
// and robust spread with Poisson's floor (baselines' dense counts);
// never seasonal, as the values are windows' aggregates.
func reviewModel(unit string, pts []baselines.Point, step time.Duration) (baselines.Kind, baselines.Options) {
	o := baselines.Options{Step: step, NoSeason: true, MinHistory: 4}
	switch unit {
	case "ratio":
		return baselines.Rate, o
	case "seconds":
		return baselines.Duration, o
	}
	o.Dense = true
	return baselines.Count, o
}

// meets reports whether v meets the target (does not fire it).
func meets(t Target, v float64) bool {
	return !(t.Above != nil && v > *t.Above) && !(t.Below != nil && v < *t.Below)
}

// scale is where spreads are measured: the log of a duration, the value
// otherwise.
func scale(unit string, v float64) float64 {
	if unit == "seconds" {
		return math.Log(math.Max(v, 1e-9))
	}
	return v
}

// spread is the robust standard deviation of the values on their scale,
// floored at the noise of their kind.
func spread(unit string, pts []baselines.Point, sorted []float64) float64 {
	xs := make([]float64, len(sorted))
	for i, v := range sorted {
		xs[i] = scale(unit, v)
	}
	med := mid(xs)
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - med)
	}
	sort.Float64s(dev)
	s := 1.4826 * mid(dev)
	var floor float64
	switch unit {
	case "seconds":
		floor = 0.05
	case "ratio":
		dens := make([]float64, 0, len(pts))
		for _, p := range pts {
			dens = append(dens, p.Den)
		}
		sort.Float64s(dens)
		n := math.Max(mid(dens), 1)
		p := math.Min(math.Max(med, 0.01), 0.99)
		floor = math.Sqrt(p * (1 - p) / n)
	default:
		floor = math.Sqrt(math.Max(med, 1))
	}
	return math.Max(s, floor)
}

func mid(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func describeTarget(t Target) string {
	var parts []string
	if t.Above != nil {
		parts = append(parts, "above "+reviewFormat(t.Unit, *t.Above))
	}
	if t.Below != nil {
		parts = append(parts, "below "+reviewFormat(t.Unit, *t.Below))
	}
	return fmt.Sprintf("%s (%s %s)", t.Name, t.KPI, strings.Join(parts, " or "))
}

func sliceName(s map[metrics.Dimension]string) string {
	var parts []string
	for _, d := range []metrics.Dimension{metrics.Service, metrics.Team, metrics.Environment} {
		if v := s[d]; v != "" {
			parts = append(parts, string(d)+" "+v)
		}
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, ", ")
}

func reviewSummary(r Review, o ReviewOptions, sinceShift bool) string {
	t, u := r.Target, r.Target.Unit
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s: ", describeTarget(t), sliceName(r.Slice))
	has := func(f string) bool {
		for _, x := range r.Findings {
			if x == f {
				return true
			}
		}
		return false
	}
	switch {
	case has(TargetStale):
		fmt.Fprintf(&b, "met by all %d values, the worst (%s; median %s) by %.1f spreads: it can no longer fire when it matters.",
			r.Points, reviewFormat(u, r.Worst), reviewFormat(u, r.Median), r.Margin)
	case has(TargetNeverMet):
		fmt.Fprintf(&b, "missed by all %d values, the best %s (median %s): it fires all the time, and says nothing.",
			r.Points, reviewFormat(u, r.Best), reviewFormat(u, r.Median))
	default:
		fmt.Fprintf(&b, "met by %d of %d values (median %s, worst %s).", r.Met, r.Points, reviewFormat(u, r.Median), reviewFormat(u, r.Worst))
	}
	if r.ShiftDirection != "" {
		side := "above"
		if r.ShiftDirection == "down" {
			side = "below"
		}
		fmt.Fprintf(&b, " The values changed on %s: %d of the %d since lie %s the %.0f%% band of those before.",
			r.SplitAt.UTC().Format("2006-01-02"), r.Beyond, r.After, side, 100*o.ShiftLevel)
	}
	if len(r.Findings) == 0 {
		b.WriteString(" The target holds.")
		return b.String()
	}
	// A suggested count is a model's quantile: one decimal is plenty.
	suggested := func(v float64) string {
		if u == "count" {
			v = math.Round(v*10) / 10
		}
		return reviewFormat(u, v)
	}
	var sug []string
	if r.SuggestedAbove != nil {
		sug = append(sug, "above "+suggested(*r.SuggestedAbove))
	}
	if r.SuggestedBelow != nil {
		sug = append(sug, "below "+suggested(*r.SuggestedBelow))
	}
	from := fmt.Sprintf("the %d values", r.Points)
	if sinceShift {
		from = "the values since the change"
	}
	fmt.Fprintf(&b, " Suggested: fire %s, the end of the %.0f%% band of %s.", strings.Join(sug, " or "), 100*o.SuggestLevel, from)
	return b.String()
}

// reviewFormat writes a value of a review in its unit: ratios and
// durations as everywhere, counts to three significant digits (a rule's
// 1/7 deployments a day is 0.143).
func reviewFormat(unit string, v float64) string {
	switch {
	case unit != "count":
		return format(unit, v)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
