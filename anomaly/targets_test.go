package anomaly_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

var quarterStart = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

func f64(v float64) *float64 { return &v }

// quarter draws 91 daily values.
func quarter(draw func(i int) baselines.Point) []baselines.Point {
	out := make([]baselines.Point, 91)
	for i := range out {
		p := draw(i)
		p.Start, p.Present = quarterStart.Add(time.Duration(i)*24*time.Hour), true
		out[i] = p
	}
	return out
}

func binomial(r *rand.Rand, n int, p float64) baselines.Point {
	k := 0
	for range n {
		if r.Float64() < p {
			k++
		}
	}
	return baselines.Point{Num: float64(k), Den: float64(n), Value: float64(k) / float64(n)}
}

func lognormal(r *rand.Rand, median, sd float64) baselines.Point {
	return baselines.Point{Value: median * math.Exp(r.NormFloat64()*sd), Den: 5}
}

func poissonPoint(r *rand.Rand, mu float64) baselines.Point {
	l, k, p := math.Exp(-mu), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return baselines.Point{Value: float64(k)}
		}
		k++
	}
}

func TestReviewTarget(t *testing.T) {
	checkout := map[metrics.Dimension]string{metrics.Service: "checkout"}
	for _, tc := range []struct {
		name     string
		target   anomaly.Target
		points   func(r *rand.Rand, i int) baselines.Point
		findings []string
		shift    string
		// the suggested value must lie in [lo, hi]
		lo, hi  float64
		summary string
	}{
		{"a failure rate far below its target", anomaly.Target{Name: "cfr", KPI: "change_failure_rate", Above: f64(0.30)},
			func(r *rand.Rand, i int) baselines.Point { return binomial(r, 40, 0.02) }, []string{anomaly.TargetStale}, "", 0.02, 0.10,
			"cfr (change_failure_rate above 30.0%) on service checkout: met by all 91 values, the worst (7.5%; median 2.5%) by "},
		{"a response time never met", anomaly.Target{Name: "mttr", KPI: "mttr_p90", Above: f64(4 * 3600)},
			func(r *rand.Rand, i int) baselines.Point { return lognormal(r, 12*3600, 0.3) }, []string{anomaly.TargetNeverMet}, "", 12 * 3600, 40 * 3600,
			"mttr (mttr_p90 above 4.0 h) on service checkout: missed by all 91 values, the best "},
		{"deployments fell since the target was set", anomaly.Target{Name: "deploys", KPI: "deployments_per_day", Below: f64(1),
			SetAt: quarterStart.Add(40 * 24 * time.Hour)},
			func(r *rand.Rand, i int) baselines.Point {
				if i < 40 {
					return poissonPoint(r, 20)
				}
				return poissonPoint(r, 6)
			}, []string{anomaly.TargetShifted}, "down", 0, 5,
			"The values changed on 2026-08-10: 51 of the 51 since lie below the 90% band of those before. Suggested: fire below 1.2, "},
		{"a target that holds", anomaly.Target{Name: "cfr", KPI: "change_failure_rate", Above: f64(0.15)},
			func(r *rand.Rand, i int) baselines.Point { return binomial(r, 30, 0.06) }, nil, "", 0.06, 0.2,
			" values (median 6.7%, worst 16.7%). The target holds."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(16, 3))
			rev := anomaly.ReviewTarget(tc.target, anomaly.Achieved{Slice: checkout, Points: quarter(func(i int) baselines.Point { return tc.points(r, i) })}, anomaly.ReviewOptions{})
			if !slices.Equal(rev.Findings, tc.findings) || rev.ShiftDirection != tc.shift {
				t.Errorf("findings %v shift %q, want %v %q\n%s", rev.Findings, rev.ShiftDirection, tc.findings, tc.shift, rev.Summary)
			}
			sug := rev.SuggestedAbove
			if tc.target.Below != nil {
				sug = rev.SuggestedBelow
			}
			if sug == nil || *sug < tc.lo || *sug > tc.hi {
				t.Errorf("suggested %v, want within [%v, %v]", sug, tc.lo, tc.hi)
			}
			if !strings.Contains(rev.Summary, tc.summary) {
				t.Errorf("summary %q lacks %q", rev.Summary, tc.summary)
			}
			t.Log(rev.Summary)
		})
	}
}

// The margin on a hand-computed series: values 2%, 3%, 4%, … of 100
// deployments, the target 20%.
func TestReviewMargin(t *testing.T) {
	var pts []baselines.Point
	for i := range 9 {
		k := float64(2 + i%5) // 2, 3, 4, 5, 6, 2, 3, 4, 5 of 100
		pts = append(pts, baselines.Point{Start: quarterStart.Add(time.Duration(i) * 7 * 24 * time.Hour), Num: k, Den: 100, Value: k / 100, Present: true})
	}
	rev := anomaly.ReviewTarget(anomaly.Target{Name: "cfr", KPI: "change_failure_rate", Above: f64(0.2)}, anomaly.Achieved{Points: pts},
		anomaly.ReviewOptions{Step: 7 * 24 * time.Hour})
	// Median 4%, MAD 1% (1.4826%); the binomial floor at 100 trials is
	// sqrt(0.04·0.96/100) = 1.96%, which wins: (20% − 6%) / 1.96% = 7.14.
	if rev.Worst != 0.06 || rev.Median != 0.04 || math.Abs(rev.Spread-math.Sqrt(0.04*0.96/100)) > 1e-12 ||
		math.Abs(rev.Margin-0.14/math.Sqrt(0.04*0.96/100)) > 1e-9 {
		t.Errorf("worst %v median %v spread %v margin %v; want 0.06, 0.04, 0.0196, 7.14", rev.Worst, rev.Median, rev.Spread, rev.Margin)
	}
	if !slices.Equal(rev.Findings, []string{anomaly.TargetStale}) {
		t.Errorf("findings %v, want stale", rev.Findings)
	}
	// Closer than three spreads, it is no longer stale.
	rev = anomaly.ReviewTarget(anomaly.Target{Name: "cfr", KPI: "change_failure_rate", Above: f64(0.1)}, anomaly.Achieved{Points: pts},
		anomaly.ReviewOptions{Step: 7 * 24 * time.Hour})
	if len(rev.Findings) != 0 || rev.Met != 9 {
		t.Errorf("target 10%%: findings %v, met %d (%s)", rev.Findings, rev.Met, rev.Summary)
	}
	if rev := anomaly.ReviewTarget(anomaly.Target{Name: "cfr", KPI: "change_failure_rate", Above: f64(0.2)}, anomaly.Achieved{Points: pts[:5]},
		anomaly.ReviewOptions{}); rev.Findings != nil || !strings.Contains(rev.Summary, "5 values, too few to review (at least 8)") {
		t.Errorf("too few: %v %q", rev.Findings, rev.Summary)
	}
}

// A steady series is not called shifted, whatever its kind: 100 quarters
// of each, split in the middle.
func TestReviewNoShiftWhenSteady(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target anomaly.Target
		draw   func(r *rand.Rand) baselines.Point
	}{
		{"ratio", anomaly.Target{Name: "cfr", KPI: "change_failure_rate", Above: f64(0.5)}, func(r *rand.Rand) baselines.Point { return binomial(r, 5+r.IntN(30), 0.1) }},
		{"duration", anomaly.Target{Name: "mttr", KPI: "mttr_median", Above: f64(86400)}, func(r *rand.Rand) baselines.Point { return lognormal(r, 3600, 0.5) }},
		{"count", anomaly.Target{Name: "inc", KPI: "incidents", Above: f64(30)}, func(r *rand.Rand) baselines.Point { return poissonPoint(r, 4) }},
	} {
		shifted := 0
		for seed := range uint64(100) {
			r := rand.New(rand.NewPCG(seed, 8))
			rev := anomaly.ReviewTarget(tc.target, anomaly.Achieved{Points: quarter(func(int) baselines.Point { return tc.draw(r) })}, anomaly.ReviewOptions{})
			if rev.ShiftDirection != "" {
				shifted++
			}
		}
		if shifted > 1 {
			t.Errorf("%s: %d of 100 steady quarters called shifted", tc.name, shifted)
		}
	}
}

func TestTargetOf(t *testing.T) {
	r := anomaly.ThresholdRule{Name: "checkout-cfr", KPI: "change_failure_rate", Above: f64(0.15)}
	set := quarterStart
	if got := anomaly.TargetOf(r, set); got.Name != "checkout-cfr" || got.Unit != "ratio" || *got.Above != 0.15 || got.Below != nil || !got.SetAt.Equal(set) {
		t.Errorf("TargetOf = %+v", got)
	}
}
