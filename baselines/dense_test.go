package baselines

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// denseRows is a five-minute series from a Monday: base(i) plus normal
// noise of sd 1.
func denseRows(n int, seed uint64, base func(i int, t time.Time) float64) ([]time.Time, []float64) {
	r := rand.New(rand.NewPCG(seed, seed))
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	ts, ys := make([]time.Time, n), make([]float64, n)
	for i := range ts {
		ts[i] = start.Add(time.Duration(i) * 5 * time.Minute)
		ys[i] = base(i, ts[i]) + r.NormFloat64()
	}
	return ts, ys
}

// run scores and learns every row in turn.
func run(d *Dense, ts []time.Time, ys []float64) []DenseScore {
	out := make([]DenseScore, len(ts))
	for i := range ts {
		out[i] = d.Score(ts[i], ys[i])
		d.Learn(ts[i], ys[i])
	}
	return out
}

func diurnal(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	return 20 * math.Max(0, math.Sin(math.Pi*(h-7)/12))
}

func flagged(s []DenseScore, from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		if s[i].Anomaly {
			out = append(out, i)
		}
	}
	return out
}

// TestDenseFindsSeason: a daily curve is found from the data (the daily
// candidate forecasts, its band follows the curve) and its ordinary rows
// raise nothing; a flat series gets no season.
func TestDenseFindsSeason(t *testing.T) {
	ts, ys := denseRows(6*288, 1, func(_ int, t time.Time) float64 { return 50 + diurnal(t) })
	d := NewDense(DenseOptions{Step: 5 * time.Minute})
	s := run(d, ts, ys)
	last := s[len(s)-1]
	if last.Season != 24*time.Hour {
		t.Errorf("season %v, want a day", last.Season)
	}
	if f := flagged(s, 0, len(s)); len(f) > 1 {
		t.Errorf("ordinary rows flagged: %v", f)
	}
	noon := d.Score(ts[0].Add(7*24*time.Hour+12*time.Hour), math.NaN())
	night := d.Score(ts[0].Add(7*24*time.Hour+2*time.Hour), math.NaN())
	if noon.Expected < 65 || night.Expected > 55 || noon.Judged {
		t.Errorf("expected %.1f at noon and %.1f at night (judged %v); want the curve's 70 and 50", noon.Expected, night.Expected, noon.Judged)
	}
	ts, ys = denseRows(6*288, 2, func(int, time.Time) float64 { return 50 })
	if s := run(NewDense(DenseOptions{Step: 5 * time.Minute}), ts, ys); s[len(s)-1].Season != 0 {
		t.Errorf("a flat series got season %v", s[len(s)-1].Season)
	}
}

// TestDenseLevelShift: a lasting shift of 6 sd is flagged at once, and
// re-learnt within two hours: it does not alarm for the days after.
func TestDenseLevelShift(t *testing.T) {
	const at = 4 * 288
	ts, ys := denseRows(7*288, 3, func(i int, t time.Time) float64 {
		v := 50 + diurnal(t)
		if i >= at {
			v += 6
		}
		return v
	})
	s := run(NewDense(DenseOptions{Step: 5 * time.Minute}), ts, ys)
	if f := flagged(s, at, at+3); len(f) == 0 {
		t.Errorf("the shift is not flagged in its first three rows: %+v", s[at:at+3])
	}
	if f := flagged(s, at+24, len(s)); len(f) > 0 {
		t.Errorf("rows after the first two hours of the shift flagged: %v", f)
	}
	if f := flagged(s, 0, at); len(f) > 1 {
		t.Errorf("rows before the shift flagged: %v", f)
	}
}

// TestDenseDriftAndSpike: a drift of a quarter sd per row (three sd an
// hour) is flagged within fifteen rows, before it is four sd away; a
// spike of 10 sd is flagged, and, clipped in learning, leaves the
// forecast and band as they were.
func TestDenseDriftAndSpike(t *testing.T) {
	const drift, spike = 3 * 288, 4 * 288
	ts, ys := denseRows(5*288, 4, func(i int, t time.Time) float64 {
		v := 50.0
		if i >= drift && i < drift+24 {
			v += 0.25 * float64(i-drift+1)
		}
		if i == spike {
			v += 10
		}
		return v
	})
	d := NewDense(DenseOptions{Step: 5 * time.Minute})
	s := run(d, ts[:spike+4], ys[:spike+4])
	if f := flagged(s, drift, drift+24); len(f) == 0 || f[0] > drift+15 {
		t.Errorf("the drift is flagged at rows %v, want within fifteen of %d", f, drift)
	}
	if !s[spike].Anomaly || s[spike].Direction != "up" || s[spike].Tail > 1e-4 {
		t.Errorf("the spike: %+v", s[spike])
	}
	// Three rows on, the forecast and band are what they were before it.
	after := d.Score(ts[spike+4], ys[spike+4])
	if after.Anomaly || after.Upper-after.Lower > 1.5*(s[spike].Upper-s[spike].Lower) || math.Abs(after.Expected-50) > 1.5 {
		t.Errorf("after the spike %+v; before it %+v", after, s[spike])
	}
}

// TestDenseScores: tails are probabilities, warm-up rows have no verdict
// and rows without a value no judgement.
func TestDenseScores(t *testing.T) {
	ts, ys := denseRows(2*288, 5, func(_ int, t time.Time) float64 { return 10 + diurnal(t)/4 })
	d := NewDense(DenseOptions{Step: 5 * time.Minute})
	for i, s := range run(d, ts, ys) {
		if s.Ready != (i >= 288) || s.Judged != s.Ready || s.Tail < 0 || s.Tail > 1 || (s.Ready && s.Lower > s.Upper) {
			t.Fatalf("row %d: %+v", i, s)
		}
	}
	if s := d.Score(ts[len(ts)-1].Add(5*time.Minute), math.NaN()); !s.Ready || s.Judged || s.Anomaly {
		t.Errorf("a row without a value: %+v", s)
	}
}

// BenchmarkDense streams a 20,000-row series (ten weeks at five minutes)
// through a model: the figure is per row, so 20,000 rows cost 20,000 times
// it.
func BenchmarkDense(b *testing.B) {
	ts, ys := denseRows(20_000, 6, func(_ int, t time.Time) float64 { return 50 + diurnal(t) })
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		run(NewDense(DenseOptions{Step: 5 * time.Minute}), ts, ys)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20_000, "ns/row")
}

// BenchmarkFitHourlyYear fits a count model on a year of hourly points,
// as a learn with a year of training does for every hourly series.
func BenchmarkFitHourlyYear(b *testing.B) {
	r := rand.New(rand.NewPCG(8, 8))
	pts := make([]Point, 365*24)
	for i := range pts {
		t := monday.Add(time.Duration(i) * time.Hour)
		mu := 0.3
		if weekday(t) && t.Hour() >= 9 && t.Hour() < 18 {
			mu = 3
		}
		pts[i] = Point{Start: t, Value: poisson(r, mu), Present: true}
	}
	b.ReportAllocs()
	for range b.N {
		Fit(Count, pts, Options{Step: time.Hour})
	}
}
