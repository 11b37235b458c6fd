package baselines

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var monday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// days builds n daily points from monday with value f(i, weekday index).
func days(n int, f func(i, wd int) Point) []Point {
	out := make([]Point, n)
	for i := range out {
		p := f(i, i%7)
		p.Start = monday.Add(time.Duration(i) * day)
		out[i] = p
	}
	return out
}

func poisson(r *rand.Rand, mu float64) float64 {
	// Knuth's method is fine for the small means here.
	l, k, p := math.Exp(-mu), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return float64(k)
		}
		k++
	}
}

func count(v float64) Point { return Point{Value: v, Present: true} }

// TestSparseCounts: a few deployments on weekdays and none at weekends.
// An ordinary weekend is no anomaly; a weekday with none is.
func TestSparseCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	train := days(56, func(i, wd int) Point {
		if wd >= 5 {
			return count(0)
		}
		return count(poisson(r, 7))
	})
	m := Fit(Count, train, Options{Step: day})
	if m.Status != Ready {
		t.Fatalf("status %s after 8 weeks", m.Status)
	}
	next := monday.Add(56 * day) // a Monday
	cases := []struct {
		name    string
		start   time.Time
		value   float64
		anomaly bool
		dir     string
	}{
		{"ordinary Saturday", next.Add(5 * day), 0, false, ""},
		{"ordinary Sunday", next.Add(6 * day), 0, false, ""},
		{"Saturday hotfix", next.Add(5 * day), 1, false, ""},
		{"ordinary Monday", next, 7, false, ""},
		{"busy Tuesday", next.Add(day), 11, false, ""},
		{"Wednesday with none", next.Add(2 * day), 0, true, "down"},
		{"Thursday burst", next.Add(3 * day), 25, true, "up"},
	}
	for _, c := range cases {
		s := m.Score(Point{Start: c.start, Value: c.value, Present: true})
		if s.Anomaly != c.anomaly || (c.anomaly && s.Direction != c.dir) {
			t.Errorf("%s (%v): anomaly %v %s, tail %.4g, expected %.2f in [%v, %v]; want anomaly %v %s",
				c.name, c.value, s.Anomaly, s.Direction, s.Tail, s.Expected, s.Lower, s.Upper, c.anomaly, c.dir)
		}
	}
}

// TestRareCounts: incidents about once a fortnight. One is ordinary, and
// even two stay below the minimum count; five in a day is an anomaly.
func TestRareCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	train := days(56, func(i, wd int) Point { return count(poisson(r, 1.0/14)) })
	train[3].Value = 1 // the series has started
	m := Fit(Count, train, Options{Step: day})
	at := monday.Add(60 * day)
	for _, c := range []struct {
		v       float64
		anomaly bool
	}{{0, false}, {1, false}, {2, false}, {5, true}} {
		if s := m.Score(Point{Start: at, Value: c.v, Present: true}); s.Anomaly != c.anomaly {
			t.Errorf("%v incidents: anomaly %v (tail %.3g, judged %v), want %v", c.v, s.Anomaly, s.Tail, s.Judged, c.anomaly)
		}
	}
}

// TestOverdispersedCounts switch to the negative binomial, whose band is
// wider than Poisson's for the same mean.
func TestOverdispersedCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	train := days(70, func(i, wd int) Point {
		// A gamma-mixed Poisson: the mean itself varies day to day.
		mu := 10 * -math.Log(r.Float64()+1e-12)
		return count(poisson(r, mu))
	})
	m := Fit(Count, train, Options{Step: day, NoSeason: true})
	if m.Family != NegBinomial || m.Dispersion < 2 {
		t.Fatalf("family %s, dispersion %.2f; want negative binomial", m.Family, m.Dispersion)
	}
	_, _, up := m.Band(0)
	if up < m.Expected[0]+3*math.Sqrt(m.Expected[0]) {
		t.Errorf("band top %v is no wider than Poisson's around %v", up, m.Expected[0])
	}
}

// TestPastOutbreaksAreDownWeighted: a training outbreak does not raise the
// baseline enough to hide the next one.
func TestPastOutbreaksAreDownWeighted(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	train := days(56, func(i, wd int) Point { return count(poisson(r, 4)) })
	for i := 20; i < 23; i++ {
		train[i].Value = 60
	}
	m := Fit(Count, train, Options{Step: day, NoSeason: true})
	if m.Expected[0] > 5.5 {
		t.Errorf("expected %.2f after an outbreak in training; the outbreak was not down-weighted", m.Expected[0])
	}
	if s := m.Score(Point{Start: monday.Add(60 * day), Value: 20, Present: true}); !s.Anomaly {
		t.Errorf("20 against a baseline of 4 is no anomaly: %+v", s)
	}
}

// TestExclusions: maintenance intervals do not train the model.
func TestExclusions(t *testing.T) {
	train := days(42, func(i, wd int) Point { return count(5) })
	for i := 10; i < 20; i++ {
		train[i].Value = 40 // a migration week
	}
	excl := func(t time.Time) bool { return !t.Before(monday.Add(10*day)) && t.Before(monday.Add(20*day)) }
	m := Fit(Count, train, Options{Step: day, NoSeason: true, Exclude: excl})
	if m.Expected[0] > 5.1 || m.Samples != 32 {
		t.Errorf("expected %.2f from %d samples; the excluded days leaked in", m.Expected[0], m.Samples)
	}
}

// TestRates: a change failure rate of 1 in 20 going to 2 in 20 is noise;
// 8 in 20 is an anomaly.
func TestRates(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	train := days(56, func(i, wd int) Point {
		k := 0.0
		for range 20 {
			if r.Float64() < 0.05 {
				k++
			}
		}
		return Point{Num: k, Den: 20, Value: k / 20, Present: true}
	})
	m := Fit(Rate, train, Options{Step: day})
	if m.Status != Ready || math.Abs(m.Expected[0]-0.05) > 0.02 {
		t.Fatalf("status %s, rate %.3f", m.Status, m.Expected[0])
	}
	at := monday.Add(60 * day)
	for _, c := range []struct {
		k, n    float64
		anomaly bool
	}{{1, 20, false}, {2, 20, false}, {3, 20, false}, {8, 20, true}, {1, 1, false}, {0, 20, false}} {
		s := m.Score(Point{Start: at, Num: c.k, Den: c.n, Value: c.k / c.n, Present: true})
		if s.Anomaly != c.anomaly {
			t.Errorf("%v of %v: anomaly %v (tail %.3g), want %v", c.k, c.n, s.Anomaly, s.Tail, c.anomaly)
		}
	}
}

// TestDurations: MTTR three times its usual level is an anomaly; the usual
// spread is not.
func TestDurations(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	train := days(56, func(i, wd int) Point {
		return Point{Value: 2 * 3600 * math.Exp(0.3*r.NormFloat64()), Present: true}
	})
	m := Fit(Duration, train, Options{Step: day})
	at := monday.Add(60 * day)
	for _, c := range []struct {
		v       float64
		anomaly bool
		dir     string
	}{{2 * 3600, false, ""}, {2.8 * 3600, false, ""}, {6 * 3600, true, "up"}, {2 * 3600 / 4.0, true, "down"}} {
		s := m.Score(Point{Start: at, Value: c.v, Present: true})
		if s.Anomaly != c.anomaly || (c.anomaly && s.Direction != c.dir) {
			t.Errorf("%.0fs: anomaly %v %s (tail %.3g), want %v %s", c.v, s.Anomaly, s.Direction, s.Tail, c.anomaly, c.dir)
		}
	}
}

// TestWarmUp: a series with a week of history is learning and never
// alerts, whatever it sees.
func TestWarmUp(t *testing.T) {
	for _, kind := range []Kind{Count, Rate, Duration} {
		train := days(5, func(i, wd int) Point { return Point{Value: 3, Num: 1, Den: 10, Present: true} })
		m := Fit(kind, train, Options{Step: day})
		s := m.Score(Point{Start: monday.Add(6 * day), Value: 1000, Num: 10, Den: 10, Present: true})
		if m.Status != Learning || s.Anomaly || s.Judged {
			t.Errorf("%s: status %s, score %+v; want learning and no verdict", kind, m.Status, s)
		}
	}
}

func TestDistributions(t *testing.T) {
	sum := func(pmf func(int) float64, n int) float64 {
		s := 0.0
		for k := 0; k <= n; k++ {
			s += pmf(k)
		}
		return s
	}
	for name, total := range map[string]float64{
		"poisson":      sum(func(k int) float64 { return poissonPMF(k, 3.5) }, 100),
		"negbin":       sum(func(k int) float64 { return negbinPMF(k, 3.5, 2.5) }, 400),
		"binomial":     sum(func(k int) float64 { return betabinPMF(k, 20, 0.1, 0) }, 20),
		"betabinomial": sum(func(k int) float64 { return betabinPMF(k, 20, 2, 18) }, 20),
	} {
		if math.Abs(total-1) > 1e-9 {
			t.Errorf("%s mass sums to %v", name, total)
		}
	}
	// Known values: P(X >= 2 | Bin(20, 0.05)) = 0.2642; P(Y <= 0 | Pois(7)) = e^-7.
	_, up := discrete{func(k int) float64 { return betabinPMF(k, 20, 0.05, 0) }, 20}.tails(2)
	lo, _ := discrete{func(k int) float64 { return poissonPMF(k, 7) }, -1}.tails(0)
	if math.Abs(up-0.26416) > 1e-4 || math.Abs(lo-math.Exp(-7)) > 1e-12 {
		t.Errorf("tails: binomial %v, poisson %v", up, lo)
	}
	if q := normalQuantile(0.975); math.Abs(q-1.959964) > 1e-5 {
		t.Errorf("normal 0.975 quantile %v", q)
	}
}

func TestKthLargest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for n := 1; n < 60; n++ {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(r.IntN(8)) // ties on purpose
		}
		sorted := append([]float64(nil), xs...)
		slices.Sort(sorted)
		for k := 1; k <= n; k++ {
			if got, want := kthLargest(append([]float64(nil), xs...), k), sorted[n-k]; got != want {
				t.Fatalf("n %d, k %d: %v, want %v (%v)", n, k, got, want, xs)
			}
		}
	}
}

// TestSparseDurations: a team's MTTR, mostly one or two incidents a day,
// with only a few days of three or more (too few for a spread of their
// own), fits its spread on every day, so a median of four incidents forty
// times the usual is an anomaly and one twice the usual is not.
func TestSparseDurations(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	train := days(56, func(i, wd int) Point {
		return Point{Value: 4 * 3600 * math.Exp(0.8*r.NormFloat64()), Den: float64(1 + i%2), Present: true}
	})
	// Three medians of three, far from the usual level by chance: alone,
	// their spread would be several log units.
	for k, f := range map[int]float64{10: 12, 30: 1.0 / 10, 50: 9} {
		train[k].Value, train[k].Den = 4*3600*f, 3
	}
	m := Fit(Duration, train, Options{Step: day, NoSeason: true})
	at := monday.Add(60 * day)
	for _, c := range []struct {
		f       float64
		anomaly bool
	}{{2, false}, {40, true}} {
		s := m.Score(Point{Start: at, Value: m.Expected[0] * c.f, Den: 4, Present: true})
		if s.Anomaly != c.anomaly {
			t.Errorf("%g× the usual MTTR of 4 incidents: anomaly %v (tail %.3g, band %.0f–%.0f s), want %v", c.f, s.Anomaly, s.Tail, s.Lower, s.Upper, c.anomaly)
		}
	}
}
