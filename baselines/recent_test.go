package baselines

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// stopSeries is a count series of step from a Monday: rate(t) events an
// interval on average (Poisson), none from stop on.
func stopSeries(n int, step time.Duration, seed uint64, rate func(t time.Time) float64, stop time.Time) []Point {
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]Point, n)
	for i := range out {
		t := monday.Add(time.Duration(i) * step)
		v := poisson(r, rate(t))
		if !t.Before(stop) {
			v = 0
		}
		out[i] = Point{Start: t, Value: v, Present: true}
	}
	return out
}

func weekday(t time.Time) bool { return t.Weekday() != time.Saturday && t.Weekday() != time.Sunday }

// judge fits on the training window before i and scores interval i with
// the History before it, as Detect does.
func judge(pts []Point, i int, step time.Duration) Score {
	m := Fit(Count, pts[max(0, i-int(8*7*24*time.Hour/step)):i], Options{Step: step})
	return m.ScoreRecent(pts[max(0, i-History(step)+1) : i+1])
}

// TestStoppedCounts: a count series that stops is flagged within two intervals
// whose expected counts make the silence improbable, and stays flagged
// through the weekend, the nights and whatever quiet follows, as long as
// nothing happens; an ordinary weekend or night is not flagged.
func TestStoppedCounts(t *testing.T) {
	const day, hour = 24 * time.Hour, time.Hour
	sparseDaily := func(t time.Time) float64 {
		if weekday(t) {
			return 6
		}
		return 0
	}
	busyDaily := func(t time.Time) float64 {
		if weekday(t) {
			return 60
		}
		return 8
	}
	sparseHourly := func(t time.Time) float64 {
		if weekday(t) && t.Hour() >= 9 && t.Hour() < 17 {
			return 1.2
		}
		return 0
	}
	busyHourly := func(t time.Time) float64 {
		if weekday(t) && t.Hour() >= 8 && t.Hour() < 18 {
			return 12
		}
		return 1
	}
	thursday := monday.Add(10*7*day + 3*day)
	cases := []struct {
		name string
		step time.Duration
		rate func(time.Time) float64
		stop time.Time
		// by is the latest interval that must be flagged; through, the
		// last one checked (all between must be flagged too).
		by, through time.Time
	}{
		{"sparse daily, stop on Thursday", day, sparseDaily, thursday, thursday.Add(day), thursday.Add(4 * day)},
		{"busy daily, stop on Thursday", day, busyDaily, thursday, thursday, thursday.Add(4 * day)},
		// About one an hour in working hours: seven silent working
		// hours make e^-7, Thursday 11:00 to 17:00 and Friday's first.
		{"sparse hourly, stop Thursday 11:00", hour, sparseHourly, thursday.Add(11 * hour), thursday.Add(day + 10*hour),
			thursday.Add(4*day + 10*hour)},
		{"busy hourly, stop Thursday 11:00", hour, busyHourly, thursday.Add(11 * hour), thursday.Add(12 * hour),
			thursday.Add(4*day + 10*hour)},
	}
	for _, c := range cases {
		n := int(c.through.Sub(monday)/c.step) + 1
		pts := stopSeries(n, c.step, 7, c.rate, c.stop)
		first := -1
		for i := int(c.stop.Sub(monday) / c.step); i < n; i++ {
			s := judge(pts, i, c.step)
			if s.Anomaly && s.Direction == "down" {
				if first < 0 {
					first = i
				}
				continue
			}
			if first >= 0 || !pts[i].Start.Before(c.by) {
				t.Errorf("%s: %s not flagged (first flag %v): %+v", c.name, pts[i].Start.Format("Mon 2006-01-02 15:04"),
					first >= 0, s)
				break
			}
		}
		if first >= 0 {
			s := judge(pts, first, c.step)
			if s.Test == TestSilence && (s.Observed != 0 || s.Lower <= 0 || s.Intervals < 2) {
				t.Errorf("%s: a silence decision quotes %v in a band of %v–%v over %d intervals", c.name, s.Observed, s.Lower, s.Upper, s.Intervals)
			}
		}
		// The same series without the stop: the week before is quiet at
		// night and at weekends, and raises no more than chance does:
		// each interval is flagged down with a probability of about α/2
		// (0.001), 0.17 expected in a week of hours; at most 3 here.
		quiet := stopSeries(n, c.step, 7, c.rate, c.through.Add(c.step))
		var quietFlags []string
		for i := int(c.stop.Add(-7*day).Sub(monday) / c.step); i < int(c.stop.Sub(monday)/c.step); i++ {
			if s := judge(quiet, i, c.step); s.Anomaly && s.Direction == "down" {
				quietFlags = append(quietFlags, quiet[i].Start.Format("Mon 15:04")+" "+s.Test)
			}
		}
		if len(quietFlags) > 3 || (c.step == day && len(quietFlags) > 0) {
			t.Errorf("%s: ordinary intervals flagged: %v", c.name, quietFlags)
		}
	}
}

// TestWindowStopsAtTheEnd: the window test finds a shift no interval
// shows alone, and stops when the shift ends instead of spilling over.
func TestWindowStopsAtTheEnd(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	pts := days(80, func(i, wd int) Point { return count(poisson(r, 20)) })
	for i := 70; i < 74; i++ {
		pts[i].Value = 29 // each 2 sd up: ordinary alone, not four together
	}
	pts[74].Value, pts[75].Value = 23, 21
	m := Fit(Count, pts[:70], Options{Step: day, NoSeason: true})
	fired := false
	for i := 70; i < 74; i++ {
		if s := m.ScoreRecent(pts[i-2 : i+1]); s.Anomaly {
			fired = true
			if s.Test != TestWindow || s.Observed != pts[i].Value+pts[i-1].Value+pts[i-2].Value || s.Observed <= s.Upper {
				t.Errorf("day %d: %+v, want the window's total above its band", i, s)
			}
		}
	}
	if !fired {
		t.Error("the shift is never flagged")
	}
	for i := 74; i < 76; i++ {
		if s := m.ScoreRecent(pts[i-2 : i+1]); s.Anomaly {
			t.Errorf("day %d after the shift flagged: %+v", i, s)
		}
	}
}

// TestDurationWindowAfterASpike: after a spike of lead time that the
// interval test flags, the next days' window, which holds the spike, does
// not fire for a day that stands out far less than it; a shift of three
// days together, none of which stands out as far alone, does.
func TestDurationWindowAfterASpike(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	pts := days(66, func(i, wd int) Point {
		return Point{Value: 12 * 3600 * math.Exp(0.2*r.NormFloat64()), Den: 20, Present: true}
	})
	m := Fit(Duration, pts[:56], Options{Step: day, NoSeason: true})
	typical := m.Expected[0]
	// In units of the band's half-width: a spike beyond the band, then a
	// day of half of it and one of 0.72, which stands out alone at the 5%
	// level and takes part in the window's average, but not in the spike.
	half := math.Log(m.Score(Point{Start: pts[56].Start, Value: typical, Den: 20, Present: true}).Upper / typical)
	for k, f := range []float64{1.6, 0.5, 0.72} {
		pts[56+k].Value = typical * math.Exp(f*half)
	}
	if s := m.ScoreRecent(pts[50:57]); !s.Anomaly || s.Test != TestInterval {
		t.Fatalf("the spike: %+v, want flagged by the interval test", s)
	}
	if s := m.Score(pts[58]); s.Tail > 0.05 {
		t.Fatalf("the second day after the spike: tail %.3g, want below 0.05 (else the window is not tried)", s.Tail)
	}
	for i := 57; i < 59; i++ {
		if s := m.ScoreRecent(pts[i-6 : i+1]); s.Anomaly {
			t.Errorf("day %d after the spike (%.2f× typical): %+v, want no window repeating the spike", i, pts[i].Value/typical, s)
		}
	}
	for k := range 3 {
		pts[60+k].Value = typical * 1.5
	}
	if s := m.ScoreRecent(pts[56:63]); !s.Anomaly || s.Test != TestWindow {
		t.Errorf("three days at 1.5× typical: %+v, want the window to fire", s)
	}
}
