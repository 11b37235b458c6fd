package anomaly_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// The benchmark's data: one year of daily KPI series from the generator
// that `opsmetrics generate` uses, and labelled anomalies injected only
// after the first ten weeks, so that every detector has eight weeks of
// history before the first one.
const (
	qualityDays     = 365
	qualityWarmup   = 70 // intervals; flags before it are not counted
	qualityCleanGap = 21 // least clean intervals between two injected events
)

// qualitySeeds are the seeds of the injection (the generator has its
// own): each base series is injected once with each, so that a figure
// rests on three times as many events. A single seed's figures moved by
// ±0.02 from one seed to the next (docs/benchmarks.md).
var qualitySeeds = []uint64{7, 8, 9}

// BenchmarkAnomalyQuality measures how well anomaly.ScoreSeries finds
// labelled anomalies, against two reference detectors measured in the same
// run on the same series: a global z-score over all previous values, and a
// weekly-seasonal median ± 3 MAD. It generates a year of events for 40
// services into a private ClickHouse, loads the daily KPI series with
// baselines.Load, keeps those with enough signal, injects spikes, drops,
// level shifts and trends into copies of them, and prints precision, recall
// and detection delay per anomaly kind and per series kind. Every detector
// judges interval i from the intervals before it only. Run it with
// `make bench-anomaly`; the figures are printed, never asserted.
func BenchmarkAnomalyQuality(b *testing.B) {
	data := qualityData(b)
	cfg, stats, all, loadTook, kinds := data.cfg, data.stats, data.series, data.took, data.kinds
	// The environment slice "production" repeats the organisation's series
	// when production is the only production environment: keep the first of
	// identical series so that none counts twice.
	var series []*qualitySeries
	loaded, dup, weak, noInjection := map[baselines.Kind]int{}, map[baselines.Kind]int{}, map[baselines.Kind]int{}, map[baselines.Kind]int{}
	seen := map[string]bool{}
	for i, key := range baselines.SortedSeries(all) {
		kind := kinds[key.KPI]
		loaded[kind]++
		if !qualityHasSignal(kind, all[key]) {
			weak[kind]++
			continue
		}
		sig := qualitySignature(key.KPI, all[key])
		if seen[sig] {
			dup[kind]++
			continue
		}
		seen[sig] = true
		injected := false
		for _, seed := range qualitySeeds {
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			if s := qualityInject(key, kind, all[key], r); len(s.events) > 0 {
				s.seed, injected = seed, true
				series = append(series, s)
			}
		}
		if !injected {
			noInjection[kind]++
		}
	}

	detectors := []qualityDetector{
		{"ours", qualityOurs},
		{"global z-score > 3 sd", qualityZScore},
		{"weekday median ± 3 MAD", qualitySeasonalMAD},
	}
	results := make([]qualityResult, len(detectors))
	var oursFlags [][]bool
	b.ResetTimer()
	for range b.N {
		for d, det := range detectors {
			s := time.Now()
			flags, err := qualityRun(series, det.flag)
			if err != nil {
				b.Fatalf("%s: %v", det.name, err)
			}
			if d == 0 {
				oursFlags = flags
			}
			results[d] = qualityResult{took: time.Since(s), groups: qualityEvaluate(series, flags)}
		}
	}
	b.StopTimer()
	defer qualityFalsePositives(series, oursFlags)
	defer qualityDense(series)

	ours := results[0].groups["overall"]
	b.ReportMetric(ours.precision(), "precision")
	b.ReportMetric(ours.recall(), "recall")

	fmt.Printf("\n%-44s %12s\n", "measure", "value")
	fmt.Printf("%-44s %12d\n", fmt.Sprintf("events (%d services, %d teams, %d days)", cfg.Services, cfg.Teams, cfg.Days), stats.Events)
	fmt.Printf("%-44s %12s\n", "generating, loading, reading series took", loadTook.Round(time.Millisecond))
	fmt.Printf("\n%-10s %8s %8s %10s %14s %8s\n", "series", "loaded", "weak", "duplicate", "not injected", "used")
	for _, k := range []baselines.Kind{baselines.Count, baselines.Rate, baselines.Duration} {
		used := loaded[k] - dup[k] - weak[k] - noInjection[k]
		fmt.Printf("%-10s %8d %8d %10d %14d %8d\n", k, loaded[k], weak[k], dup[k], noInjection[k], used)
	}

	groups := qualityGroupNames(series)
	fmt.Printf("\n%-26s %6s %6s %6s", "", "", "", "")
	for _, det := range detectors {
		fmt.Printf(" | %-21s", det.name)
	}
	fmt.Printf("\n%-26s %6s %6s %6s", "kind", "series", "events", "labels")
	for range detectors {
		fmt.Printf(" | %6s %6s %7s", "prec", "recall", "delay")
	}
	fmt.Println()
	for _, g := range groups {
		c := results[0].groups[g]
		fmt.Printf("%-26s %6d %6d %6d", g, c.series, c.events, c.labels)
		for _, r := range results {
			c := r.groups[g]
			fmt.Printf(" | %6s %6s %7s", qualityFmt(c.precision(), "%.3f"), qualityFmt(c.recall(), "%.3f"), qualityFmt(c.delay(), "%.2f"))
		}
		fmt.Println()
	}
	fmt.Printf("\n%-26s %10s %10s %12s %10s\n", "detector", "flagged", "false pos", "fp/100 days", "took")
	for d, det := range detectors {
		c := results[d].groups["overall"]
		fmt.Printf("%-26s %10d %10d %12.2f %10s\n", det.name, c.flagged, c.flagged-c.hits,
			100*float64(c.flagged-c.hits)/float64(c.judgedDays), results[d].took.Round(time.Millisecond))
	}
	fmt.Printf("\nours by injection seed: precision / recall\n%-8s", "seed")
	for _, k := range []baselines.Kind{baselines.Count, baselines.Rate, baselines.Duration} {
		fmt.Printf(" %15s", k)
	}
	fmt.Println()
	for _, seed := range qualitySeeds {
		var sub []*qualitySeries
		var subFlags [][]bool
		for i, s := range series {
			if s.seed == seed {
				sub, subFlags = append(sub, s), append(subFlags, oursFlags[i])
			}
		}
		g := qualityEvaluate(sub, subFlags)
		fmt.Printf("%-8d", seed)
		for _, k := range []baselines.Kind{baselines.Count, baselines.Rate, baselines.Duration} {
			fmt.Printf("   %.3f / %.3f", g[string(k)].precision(), g[string(k)].recall())
		}
		fmt.Println()
	}
	fmt.Println("\nprec: flagged intervals that are labelled (false positives count against the series' kind);")
	fmt.Println("recall: injected events with a flag inside them; delay: intervals from an event's start to its first flag.")
}

// qualityDataset is the benchmarks' year of daily KPI series: generated
// events, stored in a private ClickHouse and read back with
// baselines.Load.
type qualityDataset struct {
	cfg    generator.Config
	stats  generator.Stats
	series map[baselines.Series][]baselines.Point
	kinds  map[string]baselines.Kind // by KPI
	took   time.Duration             // generating, loading and reading
}

var qualityCache struct {
	sync.Mutex
	data *qualityDataset
}

// qualityData generates the dataset once per test binary: the anomaly
// quality and forecast coverage benchmarks read the same series.
func qualityData(b *testing.B) *qualityDataset {
	qualityCache.Lock()
	defer qualityCache.Unlock()
	if qualityCache.data != nil {
		return qualityCache.data
	}
	ctx := context.Background()
	srv, err := clickhouse.Start(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	dsn := srv.DSN("bench")
	if _, err := store.Migrate(ctx, dsn, testenv.Logger(b)); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	end := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	d := &qualityDataset{cfg: generator.Config{Services: 40, Teams: 8, Days: qualityDays, Seed: 11, End: end}, kinds: map[string]baselines.Kind{}}
	load := time.Now()
	d.stats = testenv.StoreGenerated(b, st, d.cfg, 100_000)
	d.series, err = baselines.Load(ctx, st.Conn(), baselines.LoadOptions{From: end.AddDate(0, 0, -qualityDays), To: end, Step: metrics.StepDay})
	if err != nil {
		b.Fatal(err)
	}
	d.took = time.Since(load)
	for _, k := range baselines.KPIs {
		d.kinds[k.Name] = k.Kind
	}
	qualityCache.data = d
	return d
}

// qualitySeries is one base series with labelled anomalies injected.
type qualitySeries struct {
	key    baselines.Series
	seed   uint64 // of the injection
	kind   baselines.Kind
	points []baselines.Point
	events []qualityEvent
	labels map[int]bool // the intervals the injection changed
}

// qualityEvent is one injected anomaly, over intervals first to last.
type qualityEvent struct {
	kind        string // series kind / injection, such as count/spike
	first, last int
}

// qualityInjection is one type of anomaly: how long it lasts, how it
// changes the interval i (the j-th of its stretch) of base, and,
// optionally, which base intervals it may start on.
type qualityInjection struct {
	name     string
	length   int
	apply    func(base []baselines.Point, i, j int) baselines.Point
	eligible func(base []baselines.Point, i int) bool
}

// Injected anomalies are sized in each series' own noise, measured on the
// eight weeks before them, so that every one is clearly abnormal for its
// series: a spike of five standard deviations means as much on a service
// deploying once a week as on the whole organisation. qualityNoise returns
// that noise: for counts the same weekday's mean and the standard deviation
// sqrt(dispersion × mean); for rates the pooled rate; for durations the
// robust standard deviation of the log values.
func qualityNoise(base []baselines.Point, i int) (mean, sd, rate, logSD float64) {
	from := max(0, i-56)
	var n, sum, sumsq, wsum, wn, num, den float64
	var logs []float64
	for k := from; k < i; k++ {
		p := base[k]
		num, den = num+p.Num, den+p.Den
		if !p.Present {
			continue
		}
		n, sum, sumsq = n+1, sum+p.Value, sumsq+p.Value*p.Value
		if (i-k)%7 == 0 {
			wsum, wn = wsum+p.Value, wn+1
		}
		if p.Value > 0 {
			logs = append(logs, math.Log(p.Value))
		}
	}
	if wn > 0 {
		mean = wsum / wn
	}
	if n > 1 {
		m := sum / n
		phi := 1.0
		if m > 0 {
			phi = math.Max(1, (sumsq/n-m*m)/m)
		}
		sd = math.Sqrt(phi * math.Max(mean, 1))
	}
	if den > 0 {
		rate = num / den
	}
	if len(logs) > 2 {
		_, mad := qualityMedianMAD(logs)
		logSD = 1.4826 * mad
	}
	return mean, sd, rate, logSD
}

// qualityInjections are the anomaly types of each kind of series.
var qualityInjections = map[baselines.Kind][]qualityInjection{
	baselines.Count: {
		{name: "spike", length: 1, apply: func(base []baselines.Point, i, _ int) baselines.Point {
			_, sd, _, _ := qualityNoise(base, i)
			p := base[i]
			p.Value += math.Ceil(5*sd) + 2
			return p
		}},
		{name: "level_shift", length: 5, apply: func(base []baselines.Point, i, _ int) baselines.Point {
			_, sd, _, _ := qualityNoise(base, i)
			p := base[i]
			p.Value += math.Ceil(3 * sd)
			return p
		}},
		{name: "drop_to_zero", length: 1, apply: func(base []baselines.Point, i, _ int) baselines.Point {
			p := base[i]
			p.Value = 0
			return p
		}, eligible: func(base []baselines.Point, i int) bool {
			// A drop is only abnormal where the day is busy: the same
			// weekday's mean over the previous eight weeks is at least 8.
			mean, _, _, _ := qualityNoise(base, i)
			return mean >= 8
		}},
		{name: "trend_change", length: 5, apply: func(base []baselines.Point, i, j int) baselines.Point {
			_, sd, _, _ := qualityNoise(base, i-j)
			p := base[i]
			p.Value += math.Ceil(1.2 * float64(j+1) * sd)
			return p
		}},
	},
	baselines.Rate: {
		{name: "rate_spike", length: 1, apply: func(base []baselines.Point, i, _ int) baselines.Point {
			_, _, rate, _ := qualityNoise(base, i)
			p := base[i]
			p.Den = math.Max(p.Den, 10)
			p.Num = math.Min(p.Den, math.Ceil(p.Den*(rate+5*math.Sqrt(rate*(1-rate)/p.Den)+0.1)))
			p.Value, p.Present = p.Num/p.Den, true
			return p
		}},
	},
	baselines.Duration: {
		{name: "duration_shift", length: 4, apply: func(base []baselines.Point, i, j int) baselines.Point {
			_, _, _, logSD := qualityNoise(base, i-j)
			p := base[i]
			p.Value *= math.Max(2, math.Exp(3*logSD))
			return p
		}, eligible: qualityJudgedDuration},
		{name: "spike", length: 1, apply: func(base []baselines.Point, i, _ int) baselines.Point {
			_, _, _, logSD := qualityNoise(base, i)
			p := base[i]
			p.Value *= math.Max(3, math.Exp(5*logSD))
			return p
		}, eligible: qualityJudgedDuration},
	},
}

// qualityJudgedDuration: a duration anomaly starts on an interval whose
// median is of at least baselines.MinDurations durations, the least a
// median is judged on, and of at least the typical number of the eight
// weeks before (their median), whose noise the injection is sized in.
func qualityJudgedDuration(base []baselines.Point, i int) bool {
	var ns []float64
	for k := max(0, i-56); k < i; k++ {
		if base[k].Present {
			ns = append(ns, base[k].Den)
		}
	}
	if len(ns) == 0 {
		return false
	}
	typical, _ := qualityMedianMAD(ns)
	return base[i].Den >= math.Max(baselines.MinDurations, typical)
}

// qualityHasSignal keeps the series a detector can say something about:
// counts with a mean of at least 0.5 a day, rates with a median
// denominator (over all days) of at least 3, durations present on at least
// half the days.
func qualityHasSignal(kind baselines.Kind, pts []baselines.Point) bool {
	switch kind {
	case baselines.Count:
		sum := 0.0
		for _, p := range pts {
			sum += p.Value
		}
		return sum/float64(len(pts)) >= 0.5
	case baselines.Rate:
		dens := make([]float64, len(pts))
		for i, p := range pts {
			dens[i] = p.Den
		}
		med, _ := qualityMedianMAD(dens)
		return med >= 3
	default:
		n := 0
		for _, p := range pts {
			if p.Present {
				n++
			}
		}
		return 2*n >= len(pts)
	}
}

// qualityInject copies base and injects the anomaly types of its kind in
// turn (in an order drawn from r), each starting within two weeks of where
// the last one's clean gap ends, on an interval it changes. A type that
// finds no such interval is skipped there. Rate spikes go only into series
// whose pooled rate is below 0.2.
func qualityInject(key baselines.Series, kind baselines.Kind, base []baselines.Point, r *rand.Rand) *qualitySeries {
	s := &qualitySeries{key: key, kind: kind, points: append([]baselines.Point(nil), base...), labels: map[int]bool{}}
	if kind == baselines.Rate {
		num, den := 0.0, 0.0
		for _, p := range base {
			num += p.Num
			den += p.Den
		}
		if den == 0 || num/den >= 0.2 {
			return s
		}
	}
	types := qualityInjections[kind]
	var order []int
	pos := qualityWarmup + r.IntN(7)
	for fails := 0; pos < len(base); {
		if len(order) == 0 {
			order = r.Perm(len(types))
		}
		t := types[order[0]]
		order = order[1:]
		e, ok := qualityPlace(s, base, t, pos)
		if !ok {
			if fails++; fails >= len(types) {
				pos, fails = pos+7, 0
			}
			continue
		}
		fails = 0
		e.kind = string(kind) + "/" + t.name
		s.events = append(s.events, e)
		pos = e.last + 1 + qualityCleanGap + r.IntN(15)
	}
	return s
}

// qualityPlace injects t at the first interval from pos (within 14) that
// it may start on and changes, and labels the intervals it changes.
func qualityPlace(s *qualitySeries, base []baselines.Point, t qualityInjection, pos int) (qualityEvent, bool) {
	for first := pos; first < pos+14 && first+t.length <= len(base); first++ {
		if t.eligible != nil && !t.eligible(base, first) {
			continue
		}
		if !qualityChanged(base[first], t.apply(base, first, 0)) {
			continue
		}
		for j := range t.length {
			p := t.apply(base, first+j, j)
			if qualityChanged(base[first+j], p) {
				s.points[first+j] = p
				s.labels[first+j] = true
			}
		}
		return qualityEvent{first: first, last: first + t.length - 1}, true
	}
	return qualityEvent{}, false
}

// qualitySignature identifies a series by its KPI and values.
func qualitySignature(kpi string, pts []baselines.Point) string {
	var sb strings.Builder
	sb.WriteString(kpi)
	for _, p := range pts {
		fmt.Fprintf(&sb, "|%g,%g,%g,%t", p.Value, p.Num, p.Den, p.Present)
	}
	return sb.String()
}

func qualityChanged(a, b baselines.Point) bool {
	return a.Value != b.Value || a.Num != b.Num || a.Den != b.Den || a.Present != b.Present
}

// qualityDetector flags the intervals of one series, each judged from the
// intervals before it only.
type qualityDetector struct {
	name string
	flag func(s *qualitySeries) ([]bool, error)
}

// qualityOurs is anomaly.ScoreSeries with the series' kind and default
// options: each interval scored by a model fitted on up to eight weeks
// before it.
func qualityOurs(s *qualitySeries) ([]bool, error) {
	scored, _, err := anomaly.ScoreSeries(s.points, s.kind == baselines.Rate, anomaly.ScoreOptions{Kind: string(s.kind)})
	if err != nil {
		return nil, fmt.Errorf("score %s: %w", s.key.Key(), err)
	}
	flags := make([]bool, len(scored))
	for i, sc := range scored {
		flags[i] = sc.Anomaly
	}
	return flags, nil
}

// qualityZScore flags a value more than three standard deviations from
// the mean of all previous values, from the 15th interval on. Intervals
// without a value are neither judged nor learnt from.
func qualityZScore(s *qualitySeries) ([]bool, error) {
	flags := make([]bool, len(s.points))
	var n, sum, sumSq float64
	for i, p := range s.points {
		if !p.Present {
			continue
		}
		if i >= 14 && n >= 2 {
			mean := sum / n
			sd := math.Sqrt(math.Max(0, (sumSq-n*mean*mean)/(n-1)))
			flags[i] = sd > 0 && math.Abs(p.Value-mean) > 3*sd
		}
		n++
		sum += p.Value
		sumSq += p.Value * p.Value
	}
	return flags, nil
}

// qualitySeasonalMAD flags a value further than 3 × 1.4826 × MAD from the
// median of the same weekday's values over the previous eight weeks (at
// least two of them), from the 15th interval on. A MAD of 0 is floored at
// 1e-9, so that on sparse data any difference from the median flags.
func qualitySeasonalMAD(s *qualitySeries) ([]bool, error) {
	flags := make([]bool, len(s.points))
	var same []float64
	for i, p := range s.points {
		if i < 14 || !p.Present {
			continue
		}
		same = same[:0]
		for k := 1; k <= 8 && i-7*k >= 0; k++ {
			if q := s.points[i-7*k]; q.Present {
				same = append(same, q.Value)
			}
		}
		if len(same) < 2 {
			continue
		}
		med, mad := qualityMedianMAD(same)
		flags[i] = math.Abs(p.Value-med) > 3*1.4826*math.Max(mad, 1e-9)
	}
	return flags, nil
}

func qualityMedianMAD(xs []float64) (median, mad float64) {
	s := append([]float64(nil), xs...)
	mid := func() float64 {
		sort.Float64s(s)
		n := len(s)
		if n%2 == 1 {
			return s[n/2]
		}
		return (s[n/2-1] + s[n/2]) / 2
	}
	median = mid()
	for i, x := range s {
		s[i] = math.Abs(x - median)
	}
	return median, mid()
}

// qualityRun runs flag on every series, on all cores.
func qualityRun(series []*qualitySeries, flag func(*qualitySeries) ([]bool, error)) ([][]bool, error) {
	out := make([][]bool, len(series))
	errs := make([]error, len(series))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = flag(series[i])
			}
		})
	}
	for i := range series {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// qualityCounts are one detector's tallies for one group of series or
// events.
type qualityCounts struct {
	series, events, labels int
	judgedDays             int // intervals after the warm-up
	flagged, hits          int // flagged intervals after the warm-up, and those labelled
	detected               int // events with a flag inside them
	delaySum               int // over detected events, in intervals
}

func (c qualityCounts) precision() float64 { return qualityRatio(c.hits, c.flagged) }
func (c qualityCounts) recall() float64    { return qualityRatio(c.detected, c.events) }
func (c qualityCounts) delay() float64     { return qualityRatio(c.delaySum, c.detected) }

// qualityRatio is a/b, or NaN when b is 0.
func qualityRatio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

type qualityResult struct {
	took   time.Duration
	groups map[string]qualityCounts
}

// qualityEvaluate tallies flags per series kind (where false positives
// count), per anomaly kind (recall and delay only) and overall.
func qualityEvaluate(series []*qualitySeries, flags [][]bool) map[string]qualityCounts {
	out := map[string]qualityCounts{}
	add := func(group string, f func(c *qualityCounts)) {
		c := out[group]
		f(&c)
		out[group] = c
	}
	for si, s := range series {
		for _, g := range []string{string(s.kind), "overall"} {
			add(g, func(c *qualityCounts) {
				c.series++
				c.labels += len(s.labels)
				c.judgedDays += len(s.points) - qualityWarmup
				for i := qualityWarmup; i < len(s.points); i++ {
					if flags[si][i] {
						c.flagged++
						if s.labels[i] {
							c.hits++
						}
					}
				}
			})
		}
		kinds := map[string]bool{}
		for _, e := range s.events {
			if !kinds[e.kind] {
				kinds[e.kind] = true
				add(e.kind, func(c *qualityCounts) { c.series++ })
			}
			first := -1
			for i := e.first; i <= e.last; i++ {
				if flags[si][i] {
					first = i
					break
				}
			}
			labels := 0
			for i := e.first; i <= e.last; i++ {
				if s.labels[i] {
					labels++
				}
			}
			for _, g := range []string{e.kind, string(s.kind), "overall"} {
				add(g, func(c *qualityCounts) {
					c.events++
					if g == e.kind {
						c.labels += labels
					}
					if first >= 0 {
						c.detected++
						c.delaySum += first - e.first
					}
				})
			}
		}
	}
	return out
}

// qualityGroupNames orders the rows: each anomaly kind, then each series
// kind, then overall.
func qualityGroupNames(series []*qualitySeries) []string {
	seen := map[string]bool{}
	var events []string
	for _, s := range series {
		for _, e := range s.events {
			if !seen[e.kind] {
				seen[e.kind] = true
				events = append(events, e.kind)
			}
		}
	}
	order := map[string]int{string(baselines.Count): 0, string(baselines.Rate): 1, string(baselines.Duration): 2}
	sort.Slice(events, func(i, j int) bool { return events[i] < events[j] })
	sort.SliceStable(events, func(i, j int) bool {
		return order[qualityKindOf(events[i])] < order[qualityKindOf(events[j])]
	})
	return append(events, string(baselines.Count), string(baselines.Rate), string(baselines.Duration), "overall")
}

func qualityKindOf(eventKind string) string {
	kind, _, _ := strings.Cut(eventKind, "/")
	return kind
}

func qualityFmt(v float64, format string) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// qualityFalsePositives prints where our false positives and missed
// events are: by KPI and slice level, and how many false positives fall
// just after an injected event (spill-over).
func qualityFalsePositives(series []*qualitySeries, flags [][]bool) {
	type key struct{ kpi, level string }
	fp, days, events, missed, spill := map[key]int{}, map[key]int{}, map[key]int{}, map[key]int{}, 0
	for si, s := range series {
		level := "org"
		switch {
		case s.key.Service != "":
			level = "service"
		case s.key.Team != "":
			level = "team"
		case s.key.Environment != "":
			level = "environment"
		}
		k := key{s.key.KPI, level}
		for _, e := range s.events {
			events[k]++
			if !slices.Contains(flags[si][e.first:e.last+1], true) {
				missed[k]++
			}
		}
		for i, f := range flags[si] {
			if i < qualityWarmup {
				continue
			}
			days[k]++
			if !f || s.labels[i] {
				continue
			}
			fp[k]++
			for _, e := range s.events {
				if i > e.last && i <= e.last+3 {
					spill++
					break
				}
			}
		}
	}
	keys := make([]key, 0, len(days))
	for k := range days {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fp[keys[i]]*1000/days[keys[i]] > fp[keys[j]]*1000/days[keys[j]] })
	fmt.Printf("\nfalse positives and missed events of ours by KPI and slice (%d false positives within 3 intervals after an injected event)\n", spill)
	fmt.Printf("%-22s %-12s %6s %8s %12s %8s %8s\n", "kpi", "slice", "fp", "days", "fp/100 days", "events", "missed")
	for _, k := range keys {
		fmt.Printf("%-22s %-12s %6d %8d %12.2f %8d %8d\n", k.kpi, k.level, fp[k], days[k], 100*float64(fp[k])/float64(days[k]), events[k], missed[k])
	}
}

// qualityDense compares, on the busy count series (mean at least
// qualityBusy a day), the two models a dense count could have: the
// negative binomial (or Poisson) and the seasonal median and MAD.
const qualityBusy = 10

func qualityDense(series []*qualitySeries) {
	var dense []*qualitySeries
	for _, s := range series {
		sum, n := 0.0, 0.0
		for _, p := range s.points[:qualityWarmup] {
			sum, n = sum+p.Value, n+1
		}
		if s.kind == baselines.Count && sum/n >= qualityBusy {
			dense = append(dense, s)
		}
	}
	fmt.Printf("\nbusy count series (mean >= %d a day during warm-up): %d\n", qualityBusy, len(dense))
	if len(dense) == 0 {
		return
	}
	fmt.Printf("%-34s %8s %8s %8s\n", "model", "prec", "recall", "delay")
	for _, v := range []struct {
		name string
		opts baselines.Options
	}{{"negative binomial / Poisson", baselines.Options{}}, {"seasonal median ± MAD", baselines.Options{Dense: true}}} {
		flags, err := qualityRun(dense, func(s *qualitySeries) ([]bool, error) {
			rows, _, err := anomaly.ScoreSeries(s.points, false, anomaly.ScoreOptions{Kind: "count", Options: v.opts})
			out := make([]bool, len(rows))
			for i, r := range rows {
				out[i] = r.Anomaly
			}
			return out, err
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		c := qualityEvaluate(dense, flags)["overall"]
		fmt.Printf("%-34s %8.3f %8.3f %8.2f\n", v.name, c.precision(), c.recall(), c.delay())
	}
}
