package baselines

import (
	"math"
	"time"
)

// The tests of a Score.
const (
	TestInterval = "interval"
	TestWindow   = "window"
	TestSilence  = "silence"
)

// WindowIntervals is how many consecutive intervals the window test of
// ScoreRecent takes together.
const WindowIntervals = 3

// History is how many intervals up to and including the one judged
// ScoreRecent needs for a series of this step: a week, so that a silence
// that began before a weekend is still seen after it.
func History(step time.Duration) int {
	n := int(7 * 24 * time.Hour / step)
	return max(WindowIntervals, min(n, 7*24))
}

// ScoreRecent judges the last of points, consecutive intervals of the
// series (History of them is enough), by three tests:
//
//   - the interval alone (Score);
//   - the last WindowIntervals together (their summed counts and trials,
//     or their mean log duration), which finds a level shift or a trend
//     too small to stand out in one interval. It only counts when the last
//     interval itself stands out the same way (its own tail below 0.05)
//     and at least three quarters as far as the window's average, so a
//     shift that has ended stops firing instead of spilling over;
//   - for counts, the silence: the run of intervals without events that
//     ends with this one, judged together. A count series that stops is
//     flagged from the interval whose expected counts, with those before
//     it in the run, make the silence improbable, and stays flagged
//     through the quiet nights and weekends after it, as long as nothing
//     happens.
//
// The first test that fires decides, the silence first, then the
// interval, then the window.
func (m *Model) ScoreRecent(points []Point) Score {
	last := points[len(points)-1]
	s := m.Score(last)
	if m.Status != Ready {
		return s
	}
	// A silence of several intervals is the larger picture of an empty
	// interval, and never less rare.
	if m.Kind == Count && last.Present && last.Value == 0 {
		if sil, ok := m.silence(points); ok {
			return sil
		}
	}
	if s.Anomaly {
		return s
	}
	if !s.Judged || s.Tail > 0.05 || len(points) < WindowIntervals {
		return s
	}
	if w, ok := m.window(points[len(points)-WindowIntervals:]); ok && w.Direction == s.Direction {
		return w
	}
	return s
}

// decide marks s anomalous when its tail is below alpha/2.
func (m *Model) decide(s Score) Score {
	if s.Judged && s.Tail < m.Alpha/2 {
		s.Anomaly = true
		s.Severity = "warning"
		if s.Tail < m.Alpha/200 {
			s.Severity = "critical"
		}
	}
	return s
}

// silence judges the run of empty intervals that ends points.
func (m *Model) silence(points []Point) (Score, bool) {
	if m.Family == SeasonalMedian {
		return Score{}, false
	}
	mu, n := 0.0, 0
	for i := len(points) - 1; i >= 0 && points[i].Present && points[i].Value == 0; i-- {
		mu += m.Expected[m.Slot(points[i].Start)]
		n++
	}
	if n < 2 {
		return Score{}, false // one interval is the single test's
	}
	d := m.sumDist(mu)
	lower, _ := d.tails(0)
	s := Score{Test: TestSilence, Intervals: n, Expected: mu, Lower: float64(d.quantile(m.Alpha / 2)),
		Upper: float64(d.quantile(1 - m.Alpha/2)), Direction: "down", Tail: lower, Judged: true}
	s = m.decide(s)
	return s, s.Anomaly
}

// sumDist is the distribution of a sum of intervals of total mean mu: a
// sum of negative binomials of one dispersion is negative binomial.
func (m *Model) sumDist(mu float64) discrete {
	mean, phi := math.Max(mu, 1e-3), m.Dispersion
	if m.Family == NegBinomial {
		return discrete{func(k int) float64 { return negbinPMF(k, mean, phi) }, -1}
	}
	return discrete{func(k int) float64 { return poissonPMF(k, mean) }, -1}
}

// window judges the intervals of w together. It is not ok when w has
// too little data, or when its last interval stands out less than the
// window's average (the window would be judging the intervals before it).
func (m *Model) window(w []Point) (Score, bool) {
	last := w[len(w)-1]
	s := Score{Test: TestWindow, Intervals: len(w), Judged: true}
	var lower, upper float64
	switch m.Kind {
	case Count:
		y, mu, v := 0.0, 0.0, 0.0
		for _, p := range w {
			if !p.Present {
				return s, false
			}
			slot := m.Slot(p.Start)
			y += p.Value
			mu += m.Expected[slot]
			if m.Family == SeasonalMedian {
				v += m.Scale[slot] * m.Scale[slot]
			}
		}
		s.Direction = direction(y, mu)
		if s.Direction == "up" && y < m.MinCount {
			return s, false
		}
		if !atLeastAverage(last.Value-m.Expected[m.Slot(last.Start)], (y-mu)/float64(len(w)), s.Direction) {
			return s, false
		}
		s.Observed, s.Expected = y, mu
		if m.Family == SeasonalMedian {
			z, q := (y-mu)/math.Sqrt(v), normalQuantile(1-m.Alpha/2)
			lower, upper = normalUpper(-z), normalUpper(z)
			s.Lower, s.Upper = math.Max(0, mu-q*math.Sqrt(v)), mu+q*math.Sqrt(v)
		} else {
			d := m.sumDist(mu)
			lower, upper = d.tails(int(math.Round(y)))
			s.Lower, s.Upper = float64(d.quantile(m.Alpha/2)), float64(d.quantile(1-m.Alpha/2))
		}
	case Rate:
		k, n := 0.0, 0.0
		for _, p := range w {
			k += p.Num
			n += p.Den
		}
		if n < 3 || last.Den <= 0 {
			return s, false
		}
		s.Direction = direction(k/n, m.Expected[0])
		if !atLeastAverage(last.Num/last.Den-m.Expected[0], k/n-m.Expected[0], s.Direction) {
			return s, false
		}
		nn := int(math.Round(n))
		d := m.rateDist(nn)
		lower, upper = d.tails(int(math.Round(k)))
		s.Observed, s.Num, s.Den, s.Expected = k/n, k, n, m.Expected[0]
		s.Lower, s.Upper = float64(d.quantile(m.Alpha/2))/float64(nn), float64(d.quantile(1-m.Alpha/2))/float64(nn)
	case Duration:
		// The mean of the intervals' t-distributed log residuals,
		// approximated by a t with the sum of their degrees of freedom.
		// Each interval weighs by the inverse of its variance: a median
		// of forty changes counts for more than one of three.
		sum, logE, wsum, nu, c, lastRes := 0.0, 0.0, 0.0, 0.0, 0, math.NaN()
		var res []float64
		for _, p := range w {
			if p.Present && p.Value > 0 && (p.Den <= 0 || p.Den >= MinDurations) {
				e := math.Log(m.Expected[m.Slot(p.Start)])
				wt := 1 / (m.durationScale(p.Den) * m.durationScale(p.Den))
				sum += wt * (math.Log(p.Value) - e)
				logE += wt * e
				wsum += wt
				nu += dof(p.Den)
				c++
				lastRes = math.Log(p.Value) - e
				res = append(res, lastRes)
			}
		}
		if c < 2 || math.IsNaN(lastRes) || !(last.Present && last.Value > 0) {
			return s, false
		}
		z := sum / math.Sqrt(wsum)
		s.Direction = direction(z, 0)
		if !atLeastAverage(lastRes, sum/wsum, s.Direction) {
			return s, false
		}
		// Nor when an earlier interval stands out far more than the last:
		// the window would be repeating, an interval or two later, a spike
		// that the interval test has judged.
		for _, r := range res[:len(res)-1] {
			if !atLeastAverage(lastRes, r, s.Direction) {
				return s, false
			}
		}
		lower, upper = studentUpper(-z, nu), studentUpper(z, nu)
		// The band of the weighted geometric mean of the c medians.
		q, sd := studentQuantile(1-m.Alpha/2, nu), 1/math.Sqrt(wsum)
		mean, e := math.Exp((sum+logE)/wsum), math.Exp(logE/wsum)
		s.Observed, s.Expected, s.Lower, s.Upper = mean, e, e*math.Exp(-q*sd), e*math.Exp(q*sd)
	}
	s.Tail = upper
	if s.Direction == "down" {
		s.Tail = lower
	}
	s = m.decide(s)
	return s, s.Anomaly
}

// atLeastAverage reports whether the last interval's excess is at least
// three quarters of the window's average excess in direction dir: it
// takes part in the window's shift, which an ordinary interval after the
// shift does not. (All of the average missed windows whose intervals
// expect a little more on one weekday than the next.)
func atLeastAverage(last, average float64, dir string) bool {
	if dir == "down" {
		return last <= average*0.75
	}
	return last >= average*0.75
}
