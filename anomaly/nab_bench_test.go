package anomaly_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
)

// nabGitDir is the bare mirror of github.com/numenta/NAB read at benchmark
// time; OPSMETRICS_NAB_GIT_DIR overrides it. Nothing of NAB is committed
// here: its data and labels are read with git show.
const nabGitDir = "/work/.mirror/numenta+NAB/repo"

// denseSeries is one labelled dense series.
type denseSeries struct {
	name, category string
	points         []baselines.Point
	windows        [][2]time.Time
}

// denseDetector scores every row of a series in [0, 1], each from the rows
// before it only.
type denseDetector struct {
	name  string
	score func(s *denseSeries) ([]float64, error)
}

var denseDetectors = []denseDetector{
	{"ours (dense)", denseOurs},
	{"global z-score", denseZScore},
	{"time-of-day median ± MAD", denseSeasonalMAD},
}

// BenchmarkDenseQuality scores the dense model the way streaming anomaly
// detectors are compared, with NAB's scoring (nab_test.go, standard
// profile, one threshold for the corpus, null 0, perfect 100), on two
// corpora: labelled synthetic series of five shapes, and the Numenta
// Anomaly Benchmark's 58 real and artificial series when its mirror is
// there. Two references run in the same run on the same series: a global
// z-score over all previous values and a median ± MAD of the same time of
// day over the previous days. Figures are printed, never asserted.
func BenchmarkDenseQuality(b *testing.B) {
	corpora := []struct {
		name   string
		series []*denseSeries
	}{{"synthetic (ours: 5 shapes x 4 series)", denseSynthetic()}}
	dir := os.Getenv("OPSMETRICS_NAB_GIT_DIR")
	if dir == "" {
		dir = nabGitDir
	}
	if nab, err := nabCorpus(dir); err != nil {
		fmt.Printf("\nNAB corpus skipped: %v (set OPSMETRICS_NAB_GIT_DIR to a clone of github.com/numenta/NAB)\n", err)
	} else {
		corpora = append(corpora, struct {
			name   string
			series []*denseSeries
		}{"NAB v1.1 (numenta/NAB, " + dir + ")", nab})
	}
	type result struct {
		res  nabResult
		took time.Duration
		cats map[string]nabResult
	}
	results := make([][]result, len(corpora))
	b.ResetTimer()
	for range b.N {
		for c, corpus := range corpora {
			results[c] = make([]result, len(denseDetectors))
			for d, det := range denseDetectors {
				start := time.Now()
				files := make([]nabFile, len(corpus.series))
				for i, s := range corpus.series {
					sc, err := det.score(s)
					if err != nil {
						b.Fatalf("%s on %s: %v", det.name, s.name, err)
					}
					files[i] = denseNABFile(s, sc)
				}
				took := time.Since(start)
				res := nabScore(files, nabStandard)
				cats := map[string]nabResult{}
				byCat := map[string][]nabFile{}
				for i, s := range corpus.series {
					byCat[s.category] = append(byCat[s.category], files[i])
				}
				for cat, fs := range byCat {
					cats[cat] = nabScoreAt(fs, nabStandard, res.threshold)
				}
				results[c][d] = result{res, took, cats}
			}
		}
	}
	b.StopTimer()
	for c, corpus := range corpora {
		rows, windows := 0, 0
		for _, s := range corpus.series {
			rows += len(s.points)
			windows += len(s.windows)
		}
		fmt.Printf("\n%s: %d series, %d rows, %d labelled windows; NAB standard profile\n", corpus.name, len(corpus.series), rows, windows)
		fmt.Printf("%-28s %8s %10s %9s %6s %10s %12s\n", "detector", "score", "threshold", "detected", "fp", "took", "rows/s")
		for d, det := range denseDetectors {
			r := results[c][d]
			fmt.Printf("%-28s %8.1f %10.6f %5d/%-3d %6d %10s %12.0f\n", det.name, r.res.score, r.res.threshold, r.res.detected,
				r.res.windows, r.res.fp, r.took.Round(time.Millisecond), float64(rows)/r.took.Seconds())
		}
		var cats []string
		for cat := range results[c][0].cats {
			cats = append(cats, cat)
		}
		sort.Strings(cats)
		fmt.Printf("  by category, at each detector's corpus threshold (score, windows detected, false positives):\n")
		for _, cat := range cats {
			fmt.Printf("  %-26s", cat)
			for d := range denseDetectors {
				r := results[c][d].cats[cat]
				fmt.Printf(" | %6.1f %3d/%-3d %4d", r.score, r.detected, r.windows, r.fp)
			}
			fmt.Println()
		}
	}
	fmt.Println("\npublished NAB v1.1 standard-profile scores (results/final_results.json and README; not measured here):")
	fmt.Println("  ARTime 74.9, Numenta HTM 70.1, CAD OSE 69.9, earthgecko Skyline 58.2, KNN CAD 58.0, relative entropy 54.6,")
	fmt.Println("  Random Cut Forest 51.7, Twitter ADVec 47.1, windowed Gaussian 39.6, Etsy Skyline 35.7, Bayesian changepoint 17.7,")
	fmt.Println("  EXPoSE 16.4, random 11.0 (README, mean over seeds; 16.8 in final_results.json), null 0.")
}

func denseNABFile(s *denseSeries, scores []float64) nabFile {
	f := nabFile{name: s.name, windows: s.windows, scores: scores, times: make([]time.Time, len(s.points))}
	for i, p := range s.points {
		f.times[i] = p.Start
	}
	return f
}

// nabScoreAt is nabScore at a given threshold.
func nabScoreAt(files []nabFile, p nabProfile, threshold float64) nabResult {
	out := make([]nabFile, len(files))
	for i, f := range files {
		g := f
		g.scores = make([]float64, len(f.scores))
		for k, s := range f.scores {
			if s >= threshold {
				g.scores[k] = 1
			}
		}
		out[i] = g
	}
	r := nabScore(out, p)
	r.threshold = threshold
	return r
}

// nabCorpus reads NAB's data files and label windows from its git mirror.
func nabCorpus(dir string) ([]*denseSeries, error) {
	show := func(path string) ([]byte, error) {
		out, err := exec.Command("git", "--git-dir="+dir, "show", "HEAD:"+path).Output()
		if err != nil {
			return nil, fmt.Errorf("git show %s: %w", path, err)
		}
		return out, nil
	}
	raw, err := show("labels/combined_windows.json")
	if err != nil {
		return nil, err
	}
	var labels map[string][][2]string
	if err := json.Unmarshal(raw, &labels); err != nil {
		return nil, fmt.Errorf("labels/combined_windows.json: %w", err)
	}
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*denseSeries
	for _, name := range names {
		data, err := show("data/" + name)
		if err != nil {
			return nil, err
		}
		pts, _, err := anomaly.ReadSeries(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("data/%s: %w", name, err)
		}
		s := &denseSeries{name: name, category: strings.Split(name, "/")[0], points: pts}
		for _, w := range labels[name] {
			var win [2]time.Time
			for k := range w {
				if win[k], err = time.Parse("2006-01-02 15:04:05.000000", w[k]); err != nil {
					return nil, fmt.Errorf("window of %s: %w", name, err)
				}
			}
			s.windows = append(s.windows, win)
		}
		out = append(out, s)
	}
	return out, nil
}

// denseOurs is anomaly.ScoreSeries with the dense model and its defaults.
func denseOurs(s *denseSeries) ([]float64, error) {
	rows, _, err := anomaly.ScoreSeries(s.points, false, anomaly.ScoreOptions{Kind: "dense"})
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(rows))
	for i, r := range rows {
		if r.Judged {
			out[i] = rarity(math.Log10(math.Max(r.Tail, 1e-300)))
		}
	}
	return out, nil
}

// rarity maps the log10 of a tail probability to a score in [0, 1):
// 0 for a tail of 1, rising with rarity without rounding to 1, so that a
// threshold can tell a 1e-20 row from a 1e-40 one. Every detector's tails
// go through it; a monotone map changes no NAB score but ties.
func rarity(log10Tail float64) float64 {
	l := -log10Tail
	return l / (1 + l)
}

// normalTwoSidedLog10 is log10 P(|Z| >= z), by its asymptote where erfc
// underflows.
func normalTwoSidedLog10(z float64) float64 {
	x := math.Abs(z) / math.Sqrt2
	if p := math.Erfc(x); p > 1e-300 {
		return math.Log10(p)
	}
	return (-x*x - math.Log(x*math.Sqrt(math.Pi))) / math.Ln10
}

// denseZScore scores a row by the two-sided normal tail of its z-score
// against the mean and standard deviation of all previous rows, from the
// 15th row on.
func denseZScore(s *denseSeries) ([]float64, error) {
	out := make([]float64, len(s.points))
	var n, sum, sumSq float64
	for i, p := range s.points {
		if !p.Present {
			continue
		}
		if n >= 14 {
			mean := sum / n
			sd := math.Sqrt(math.Max(0, (sumSq-n*mean*mean)/(n-1)))
			if sd > 0 {
				out[i] = rarity(normalTwoSidedLog10((p.Value - mean) / sd))
			}
		}
		n++
		sum += p.Value
		sumSq += p.Value * p.Value
	}
	return out, nil
}

// denseSeasonalMAD scores a row by the two-sided normal tail of its
// distance from the median of the rows at the same time of day on the
// previous eight days (the nearest within half a step, at least two), in
// units of 1.4826 × their MAD (floored at a thousandth of the median, so
// that a flat stretch does not make every change infinitely rare).
func denseSeasonalMAD(s *denseSeries) ([]float64, error) {
	out := make([]float64, len(s.points))
	times := make([]time.Time, len(s.points))
	for i, p := range s.points {
		times[i] = p.Start
	}
	step := s.points[1].Start.Sub(s.points[0].Start)
	var same []float64
	for i, p := range s.points {
		if !p.Present {
			continue
		}
		same = same[:0]
		for k := 1; k <= 8; k++ {
			t := p.Start.Add(-time.Duration(k) * 24 * time.Hour)
			j := sort.Search(len(times), func(j int) bool { return !times[j].Before(t.Add(-step / 2)) })
			if j < i && times[j].Sub(t).Abs() <= step/2 && s.points[j].Present {
				same = append(same, s.points[j].Value)
			}
		}
		if len(same) < 2 {
			continue
		}
		med, mad := qualityMedianMAD(same)
		out[i] = rarity(normalTwoSidedLog10((p.Value - med) / (1.4826 * math.Max(mad, 1e-3*math.Abs(med)+1e-9))))
	}
	return out, nil
}

// denseSynthetic is four series of each of five shapes of workload metric,
// at five-minute steps over four weeks, each with three labelled anomalies
// after its first week, windows placed as NAB places them: a tenth of the
// series shared among its anomalies, centred on each start. Sizes are in
// the series' own noise sd.
func denseSynthetic() []*denseSeries {
	const (
		step = 5 * time.Minute
		rows = 4 * 7 * 288
	)
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday
	// daily is a working-day curve in [0, 1]: low at night, high from 9 to
	// 17 local (UTC here), lower at weekends.
	daily := func(t time.Time) float64 {
		h := float64(t.Hour()) + float64(t.Minute())/60
		v := 0.5 - 0.5*math.Cos(2*math.Pi*(h-3)/24)
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			v *= 0.4
		}
		return v
	}
	type anomalyKind struct {
		name  string
		apply func(y []float64, at int, sd float64)
	}
	spike := anomalyKind{"spike", func(y []float64, at int, sd float64) { y[at] += 8 * sd }}
	dip := anomalyKind{"dip", func(y []float64, at int, sd float64) {
		for k := at; k < at+3; k++ {
			y[k] -= 6 * sd
		}
	}}
	shift := anomalyKind{"level shift for 12 h", func(y []float64, at int, sd float64) {
		for k := at; k < at+144; k++ {
			y[k] += 4 * sd
		}
	}}
	drift := anomalyKind{"drift for 4 h", func(y []float64, at int, sd float64) {
		for k := 0; k < 48; k++ {
			y[at+k] += 0.15 * float64(k+1) * sd
		}
	}}
	lasting := anomalyKind{"lasting step", func(y []float64, at int, sd float64) {
		for k := at; k < len(y); k++ {
			y[k] += 6 * sd
		}
	}}
	lastingDown := anomalyKind{"lasting step down", func(y []float64, at int, sd float64) {
		for k := at; k < len(y); k++ {
			y[k] -= 5 * sd
		}
	}}
	burst := anomalyKind{"variance burst for 2 h", func(y []float64, at int, sd float64) {
		r := rand.New(rand.NewPCG(uint64(at), 9))
		for k := at; k < at+24; k++ {
			y[k] += 5 * sd * r.NormFloat64()
		}
	}}
	flatten := anomalyKind{"season stops for 6 h", func(y []float64, at int, sd float64) {
		for k := at; k < at+72; k++ {
			y[k] = y[at]
		}
	}}
	shapes := []struct {
		name      string
		sd        float64
		base      func(t time.Time, i int) float64
		noise     func(r *rand.Rand) float64 // in sd
		anomalies []anomalyKind
	}{
		{"seasonal", 2, func(t time.Time, _ int) float64 { return 50 + 30*daily(t) }, func(r *rand.Rand) float64 { return r.NormFloat64() },
			[]anomalyKind{spike, dip, shift, flatten}},
		{"trending", 2, func(t time.Time, i int) float64 { return 30 + 25*float64(i)/rows + 15*daily(t) },
			func(r *rand.Rand) float64 { return r.NormFloat64() }, []anomalyKind{spike, drift, shift}},
		{"noisy", 8, func(t time.Time, _ int) float64 { return 100 + 10*daily(t) },
			func(r *rand.Rand) float64 {
				// Student t with 4 degrees of freedom, scaled to sd 1.
				z, c := r.NormFloat64(), 0.0
				for range 4 {
					c += r.NormFloat64() * r.NormFloat64()
				}
				return z / math.Sqrt(c/4) / math.Sqrt2
			}, []anomalyKind{spike, burst, shift}},
		{"flat with spikes", 0.3, func(time.Time, int) float64 { return 10 }, func(r *rand.Rand) float64 { return r.NormFloat64() },
			[]anomalyKind{spike, spike, drift}},
		{"step changes", 1.5, func(t time.Time, _ int) float64 { return 40 + 10*daily(t) }, func(r *rand.Rand) float64 { return r.NormFloat64() },
			[]anomalyKind{lasting, lastingDown, spike}},
	}
	var out []*denseSeries
	for si, sh := range shapes {
		for seed := range 4 {
			r := rand.New(rand.NewPCG(uint64(si+1), uint64(seed+1)))
			y := make([]float64, rows)
			for i := range y {
				y[i] = sh.base(start.Add(time.Duration(i)*step), i) + sh.sd*sh.noise(r)
			}
			// Three anomalies, in turn from the shape's kinds, a few days
			// apart after the first week.
			const n = 3
			width := rows / 10 / n
			s := &denseSeries{name: fmt.Sprintf("%s/%d", sh.name, seed), category: sh.name}
			at := 7*288 + r.IntN(288)
			for k := range n {
				kind := sh.anomalies[(seed+k)%len(sh.anomalies)]
				kind.apply(y, at, sh.sd)
				s.windows = append(s.windows, [2]time.Time{start.Add(time.Duration(at-width/2) * step),
					start.Add(time.Duration(at+width/2-1) * step)})
				at += 4*288 + r.IntN(2*288)
			}
			s.points = make([]baselines.Point, rows)
			for i, v := range y {
				s.points[i] = baselines.Point{Start: start.Add(time.Duration(i) * step), Value: v, Present: true}
			}
			out = append(out, s)
		}
	}
	return out
}
