package anomaly_test

import (
	"math"
	"sort"
	"testing"
	"time"
)

// The scoring of the Numenta Anomaly Benchmark (NAB v1.1, nab/sweeper.py
// and nab/runner.py), written out from its published description and
// source so that make bench-anomaly scores dense detectors the way
// streaming detectors are compared: every labelled window that a detection
// falls in earns a reward by a scaled sigmoid of how early in the window
// the first detection is, a window without detection costs the
// false-negative weight, and each detection outside every window costs the
// false-positive weight (less just after a window). One threshold on the
// anomaly score holds for the whole corpus and is the one that scores
// best. The raw score is normalised so that a detector that never fires
// scores 0 and a perfect one 100.

// nabProfile is a NAB cost matrix.
type nabProfile struct{ tp, fn, fp float64 }

// nabStandard is NAB's "standard" profile (config/profiles.json).
var nabStandard = nabProfile{tp: 1.0, fn: 1.0, fp: 0.11}

// nabFile is one labelled series with a detector's scores.
type nabFile struct {
	name    string
	times   []time.Time
	scores  []float64 // in [0, 1]; NaN counts as 0
	windows [][2]time.Time
}

// nabRow is one scorable row: its anomaly score, what a detection there
// would be worth, and the global index of its window (-1 outside any).
type nabRow struct {
	score, sweep float64
	window       int
}

func nabSigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// nabScaledSigmoid is sweeper.scaledSigmoid of a relative position: -1 is
// a window's left edge, 0 its right edge, positive values past it.
func nabScaledSigmoid(pos float64) float64 {
	if pos > 3 {
		return -1
	}
	return 2*nabSigmoid(-5*pos) - 1
}

// nabSweep is sweeper.calcSweepScore: the scorable rows of one file
// (after its probationary period), their windows numbered from base. It
// returns the rows and the windows that have a scorable row.
func nabSweep(f nabFile, p nabProfile, base int) ([]nabRow, map[int]bool) {
	n := len(f.times)
	probation := int(math.Min(math.Floor(0.15*float64(n)), 0.15*5000))
	index := make(map[time.Time]int, n)
	for i, t := range f.times {
		index[t] = i
	}
	maxTP := nabScaledSigmoid(-1)
	var rows []nabRow
	windows := map[int]bool{}
	w := 0    // next window
	cur := -1 // current window, or -1
	curLeft, curRight := 0, 0
	prevRight, prevWidth := -1, 0.0
	for i, t := range f.times {
		if cur < 0 && w < len(f.windows) && t.Equal(f.windows[w][0]) {
			cur = w
			curLeft, curRight = i, index[f.windows[w][1]]
			w++
		}
		var sweep float64
		if cur >= 0 {
			width := float64(curRight - curLeft + 1)
			sweep = nabScaledSigmoid(-float64(curRight-i+1)/width) * p.tp / maxTP
		} else if prevRight < 0 {
			sweep = -1 * p.fp
		} else {
			sweep = nabScaledSigmoid(math.Abs(float64(prevRight-i))/(prevWidth-1)) * p.fp
		}
		if i >= probation {
			s := f.scores[i]
			if math.IsNaN(s) {
				s = 0
			}
			win := -1
			if cur >= 0 {
				win = base + cur
				windows[win] = true
			}
			rows = append(rows, nabRow{score: s, sweep: sweep, window: win})
		}
		if cur >= 0 && t.Equal(f.windows[cur][1]) {
			prevRight, prevWidth = i, float64(curRight-curLeft+1)
			cur = -1
		}
	}
	return rows, windows
}

// nabResult is a detector's NAB score on a corpus.
type nabResult struct {
	score     float64 // normalised: null 0, perfect 100
	threshold float64
	detected  int // windows with a detection
	windows   int
	fp        int // detections outside every window
}

// nabScore scores a corpus at the best single threshold, as NAB's
// optimizer and scorer do (sweeper.calcScoreByThreshold).
func nabScore(files []nabFile, p nabProfile) nabResult {
	var rows []nabRow
	scorable := map[int]bool{}
	labels := 0
	for _, f := range files {
		r, w := nabSweep(f, p, labels)
		rows = append(rows, r...)
		for k := range w {
			scorable[k] = true
		}
		labels += len(f.windows)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].score > rows[j].score })
	best := make([]float64, labels)
	for k := range best {
		best[k] = math.Inf(-1)
	}
	// Every scorable window starts as a miss.
	sum := -p.fn * float64(len(scorable))
	res := nabResult{score: sum, threshold: 1.1, windows: labels}
	detected, fp := 0, 0
	for i := 0; i < len(rows); {
		// All rows of one score become detections together.
		j := i
		for ; j < len(rows) && rows[j].score == rows[i].score; j++ {
			r := rows[j]
			if r.window < 0 {
				sum += r.sweep
				fp++
				continue
			}
			if math.IsInf(best[r.window], -1) {
				best[r.window] = -p.fn
				detected++
			}
			if r.sweep > best[r.window] {
				sum += r.sweep - best[r.window]
				best[r.window] = r.sweep
			}
		}
		if sum > res.score {
			res.score, res.threshold, res.detected, res.fp = sum, rows[i].score, detected, fp
		}
		i = j
	}
	null, perfect := -p.fn*float64(labels), p.tp*float64(labels)
	res.score = 100 * (res.score - null) / (perfect - null)
	return res
}

// TestNABScore checks the scorer against cases worked out by hand from
// NAB's definitions: the null detector scores 0, a detection at the left
// edge of every window 100, and a detection in the middle of a window, or
// one false positive far from any, what the sigmoid and the weights say.
func TestNABScore(t *testing.T) {
	start := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	const n = 1000
	times := make([]time.Time, n)
	for i := range times {
		times[i] = start.Add(time.Duration(i) * 5 * time.Minute)
	}
	windows := [][2]time.Time{{times[300], times[399]}, {times[700], times[799]}}
	file := func(detect ...int) nabFile {
		s := make([]float64, n)
		for _, i := range detect {
			s[i] = 1
		}
		return nabFile{name: "f", times: times, scores: s, windows: windows}
	}
	// A detection in the middle of a window of width 100 at row 349 is at
	// relative position -(399-349+1)/100 = -0.51.
	middle := nabScaledSigmoid(-0.51) / nabScaledSigmoid(-1)
	cases := []struct {
		name string
		f    nabFile
		want float64
	}{
		{"null", file(), 0},
		{"perfect", file(300, 700), 100},
		{"detections all over the windows count once", file(300, 310, 700, 720, 799), 100},
		{"one window detected at its middle", file(349), 100 * (middle - 1 + 2) / 4},
		// Row 100 is before any window (a full false positive), row 100 is
		// also before the probationary end (150) and so not counted: the
		// best threshold then is the one that only takes the window.
		{"a false positive in probation is free", file(100, 300, 700), 100},
		{"one far false positive costs 0.11", file(300, 700, 600), 100 * (2 + 0.11*nabScaledSigmoid(float64(600-399)/99) + 2) / 4},
	}
	for _, c := range cases {
		if got := nabScore([]nabFile{c.f}, nabStandard); math.Abs(got.score-c.want) > 1e-9 {
			t.Errorf("%s: score %.6f, want %.6f (%+v)", c.name, got.score, c.want, got)
		}
	}
}
