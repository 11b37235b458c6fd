package baselines

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// Kind is the statistical family of a KPI series, which decides its model.
type Kind = metrics.Kind

// The kinds.
const (
	Count    = metrics.KindCount
	Rate     = metrics.KindRate
	Duration = metrics.KindDuration
)

// ParseKind accepts count, rate or duration.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Count, Rate, Duration:
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q: want count, rate or duration", s)
}

// Point is one interval of a series. A count is Value; a rate is Num of
// Den (Value is their ratio); a duration is Value in seconds. Present is
// false for an interval with no observation (a rate with no trials, a
// duration with no sample); a count interval without events is present
// with Value 0.
type Point struct {
	Start    time.Time
	Value    float64
	Num, Den float64
	Present  bool
}

// Options tune learning and scoring.
type Options struct {
	// Step is the interval length; it decides the season (day-of-week
	// slots for days, hour-of-week slots for hours, none otherwise).
	Step time.Duration `yaml:"-"`
	// Alpha is the two-sided tail probability below which an interval is
	// anomalous (default DefaultAlpha).
	Alpha float64 `yaml:"alpha"`
	// MinHistory is the least number of intervals (counts), observed
	// intervals (rates, durations) a series needs before it leaves
	// warm-up (default 14).
	MinHistory int `yaml:"min_history"`
	// MinCount is the least observed count that can be an upward count
	// anomaly (default 3): one incident where none is usual is no alert.
	MinCount float64 `yaml:"min_count"`
	// MinTrials is the least denominator a rate must have, in training
	// (summed) and in an interval, to be judged (default 20 in training, 3
	// per interval).
	MinTrials float64 `yaml:"-"`
	// Seasonal turns seasonal slots off when false for counts; rates and
	// durations are never seasonal.
	NoSeason bool `yaml:"-"`
	// Exclude reports intervals that must not train the model: maintenance
	// windows and intervals already flagged as anomalies.
	Exclude func(time.Time) bool `yaml:"-"`
	// Period, when set, replaces the weekly slots by Period slots counted
	// in steps from Origin: a season found in an arbitrary series.
	Period int       `yaml:"-"`
	Origin time.Time `yaml:"-"`
	// Dense models a count (or any real series) by seasonal median and
	// MAD whatever its level.
	Dense bool `yaml:"-"`
	// DenseMean, when positive, is the mean count per interval from which
	// a count is modelled as dense. By default counts never are: on busy
	// series the negative binomial measured better (make bench-anomaly).
	DenseMean float64 `yaml:"-"`
}

func (o Options) withDefaults() Options {
	if o.Alpha <= 0 {
		o.Alpha = DefaultAlpha
	}
	if o.MinHistory <= 0 {
		o.MinHistory = 14
	}
	if o.MinCount <= 0 {
		o.MinCount = 3
	}
	if o.MinTrials <= 0 {
		o.MinTrials = 20
	}
	if o.Step <= 0 {
		o.Step = 24 * time.Hour
	}
	return o
}

// pastAnomaly is the upper tail probability below which a training
// interval of a rate is taken for a past anomaly and left out.
const pastAnomaly = 0.001

// DefaultAlpha is the two-sided tail probability below which an interval
// is anomalous. Hundreds of series are judged every day, so it is small:
// make bench-anomaly measures the trade-off.
const DefaultAlpha = 0.002

// Status says whether a model may alert.
type Status string

// The statuses.
const (
	Ready    Status = "ready"
	Learning Status = "learning" // too little history: no alerts
)

// Families of model.
const (
	Poisson        = "poisson"
	NegBinomial    = "negative_binomial"
	SeasonalMedian = "seasonal_median" // dense counts: median ± MAD per slot
	Binomial       = "binomial"
	BetaBinomial   = "beta_binomial"
	LogNormal      = "log_robust" // median and MAD of log durations
)

// Model is a learned baseline of one series.
type Model struct {
	Kind   Kind          `json:"kind"`
	Family string        `json:"family"`
	Status Status        `json:"status"`
	Step   time.Duration `json:"step"`
	Slots  int           `json:"slots"` // 1, 7 (day of week), 168 (hour of week) or Period
	// Period and Origin, when set, count slots in steps from Origin.
	Period int       `json:"period,omitempty"`
	Origin time.Time `json:"origin,omitzero"`
	// Expected is per slot: the mean count, the rate, or the median
	// duration in seconds.
	Expected []float64 `json:"expected"`
	// Scale is per slot for seasonal medians (the robust sd). For
	// durations it is [tau, sqrt(b)]: a median of n durations has log-scale
	// variance tau² + b/n.
	Scale []float64 `json:"scale,omitempty"`
	// Dispersion is the variance-to-mean ratio of counts (negative
	// binomial), or the intra-interval correlation of rates (beta-binomial).
	Dispersion float64 `json:"dispersion"`
	// TypicalDen is the median denominator of a rate, or number of
	// durations per interval, used to draw its band.
	TypicalDen float64 `json:"typical_den,omitempty"`
	Alpha      float64 `json:"alpha"`
	MinCount   float64 `json:"min_count"`
	MinTrials  float64 `json:"min_trials"`
	// Samples is how many intervals trained it, after exclusions.
	Samples int `json:"samples"`
}

func slots(step time.Duration, kind Kind, noSeason bool, period int) int {
	if kind == Rate || noSeason {
		return 1
	}
	if period > 0 {
		return period
	}
	switch step {
	case 24 * time.Hour:
		return 7
	case time.Hour:
		return 168
	}
	return 1
}

// Slot is the seasonal slot of an interval start: its day or hour of the
// week in UTC (Monday first), or 0.
func (m *Model) Slot(t time.Time) int {
	if m.Period > 0 {
		i := int(t.Sub(m.Origin) / m.Step)
		return ((i % m.Period) + m.Period) % m.Period
	}
	t = t.UTC()
	wd := (int(t.Weekday()) + 6) % 7
	switch m.Slots {
	case 7:
		return wd
	case 168:
		return wd*24 + t.Hour()
	}
	return 0
}

// Fit fits the model of kind to the training points, which must be the
// consecutive intervals of one series (counts with zeros filled in).
func Fit(kind Kind, points []Point, opts Options) *Model {
	o := opts.withDefaults()
	m := &Model{Kind: kind, Step: o.Step, Slots: slots(o.Step, kind, o.NoSeason, o.Period), Alpha: o.Alpha,
		MinCount: o.MinCount, MinTrials: o.MinTrials, Status: Learning}
	if o.Period > 0 && m.Slots == o.Period {
		m.Period, m.Origin = o.Period, o.Origin
	}
	var train []Point
	started := false
	for _, p := range points {
		if kind == Count && !opts.Dense && !started && p.Value == 0 {
			continue // the series had not started
		}
		started = true
		if !p.Present || (o.Exclude != nil && o.Exclude(p.Start)) {
			continue
		}
		train = append(train, p)
	}
	m.Samples = len(train)
	switch kind {
	case Count:
		m.learnCount(train, o)
	case Rate:
		m.learnRate(train, o)
	case Duration:
		m.learnDuration(train, o)
	}
	return m
}

func (m *Model) learnCount(train []Point, o Options) {
	m.Expected = make([]float64, m.Slots)
	m.Family = Poisson
	if len(train) == 0 {
		return
	}
	if len(train) >= o.MinHistory {
		m.Status = Ready
	}
	total := 0.0
	for _, p := range train {
		total += p.Value
	}
	global := total / float64(len(train))
	if (o.DenseMean > 0 && global >= o.DenseMean) || o.Dense {
		m.learnSeasonalMedian(train)
		return
	}
	// Weighted slot means, shrunk towards the global mean by one pseudo
	// interval so that a slot never seen busy is not certain to be zero.
	// Two passes: the second down-weights intervals the first finds far
	// out (Farrington's reweighting), so past outbreaks do not inflate it.
	w := make([]float64, len(train))
	slot := make([]int, len(train))
	for i, p := range train {
		w[i], slot[i] = 1, m.Slot(p.Start)
	}
	r2, top := make([]float64, len(train)), make([]float64, len(train))
	sum, wt := make([]float64, m.Slots), make([]float64, m.Slots)
	phi := 1.0
	for pass := 0; pass < 3; pass++ {
		clear(sum)
		clear(wt)
		for i, p := range train {
			sum[slot[i]] += w[i] * p.Value
			wt[slot[i]] += w[i]
		}
		gsum, gwt := 0.0, 0.0
		for s := range sum {
			gsum += sum[s]
			gwt += wt[s]
		}
		g := gsum / math.Max(gwt, 1e-9)
		for s := range m.Expected {
			m.Expected[s] = (sum[s] + g) / (wt[s] + 1)
		}
		// Dispersion from the Pearson residuals, leaving out the
		// down-weighted intervals (an outbreak must not widen the band) but
		// no more than one in ten (those among the tenth largest
		// residuals): a series that is bursty by nature (one advisory
		// patching many hosts) keeps its real dispersion.
		for i, p := range train {
			mu := math.Max(m.Expected[slot[i]], 1e-3)
			r2[i] = (p.Value - mu) * (p.Value - mu) / mu
		}
		thr := math.Inf(1)
		if k := len(train) / 10; k > 0 {
			copy(top, r2)
			thr = kthLargest(top, k)
		}
		chi, dof := 0.0, 0.0
		for i := range train {
			if !(w[i] < 1 && r2[i] >= thr) {
				chi += r2[i]
				dof++
			}
		}
		phi = 1.0
		if dof > float64(m.Slots)+1 {
			phi = math.Max(1, chi/(dof-float64(m.Slots)))
		}
		for i, p := range train {
			mu := math.Max(m.Expected[slot[i]], 1e-3)
			r := (p.Value - mu) / math.Sqrt(phi*mu)
			w[i] = 1
			if a := math.Abs(r); a > 2.58 {
				w[i] = (2.58 / a) * (2.58 / a)
			}
		}
	}
	if phi > 1.25 {
		m.Family, m.Dispersion = NegBinomial, phi
	} else {
		m.Dispersion = 1
	}
}

func (m *Model) learnSeasonalMedian(train []Point) {
	m.Family = SeasonalMedian
	m.Scale = make([]float64, m.Slots)
	by := make([][]float64, m.Slots)
	all := make([]float64, 0, len(train))
	for _, p := range train {
		s := m.Slot(p.Start)
		by[s] = append(by[s], p.Value)
		all = append(all, p.Value)
	}
	gmed, gmad := medianMAD(all)
	for s := range by {
		med, mad := gmed, gmad
		if len(by[s]) >= 3 {
			med, mad = medianMAD(by[s])
		}
		m.Expected[s] = med
		// A count's spread is at least Poisson's.
		m.Scale[s] = math.Max(1.4826*mad, math.Sqrt(math.Max(med, 1)))
	}
}

func (m *Model) learnRate(train []Point, o Options) {
	m.Slots, m.Expected = 1, []float64{0}
	m.Family = Binomial
	var obs []Point
	dens := []float64{}
	for _, p := range train {
		if p.Den > 0 {
			obs = append(obs, p)
			dens = append(dens, p.Den)
		}
	}
	m.Samples = len(obs)
	if len(obs) == 0 {
		return
	}
	m.TypicalDen, _ = medianMAD(dens)
	keep := make([]bool, len(obs))
	for i := range keep {
		keep[i] = true
	}
	var p0, rho float64
	for pass := 0; pass < 3; pass++ {
		k, n := 0.0, 0.0
		for i, p := range obs {
			if keep[i] {
				k += p.Num
				n += p.Den
			}
		}
		// A half success and one trial of prior keeps p0 off 0 and 1.
		p0 = (k + 0.5) / (n + 1)
		// Overdispersion, only when the data show it: the Pearson
		// statistic must exceed its binomial 99th percentile (about
		// dof + 2.33·sqrt(2·dof)); then rho by moments. Estimated from
		// noise alone, rho would fatten every tail of a small denominator.
		num, den, chi, dof := 0.0, 0.0, 0.0, -1.0
		for i, p := range obs {
			if keep[i] {
				d := p.Num - p.Den*p0
				v := p.Den * p0 * (1 - p0)
				num += d*d - v
				den += p.Den * (p.Den - 1) * p0 * (1 - p0)
				chi += d * d / v
				dof++
			}
		}
		rho = 0
		if den > 0 && dof > 0 && chi > dof+2.33*math.Sqrt(2*dof) {
			rho = math.Min(math.Max(0, num/den), 0.5)
		}
		m.Expected[0], m.Dispersion = p0, rho
		if rho > 0.001 {
			m.Family = BetaBinomial
		} else {
			m.Family, m.Dispersion = Binomial, 0
		}
		// Intervals far above the fit are past anomalies: drop them. The
		// first pass judges them by the plain binomial, because a spike in
		// training would inflate the fit's own dispersion and hide itself.
		for i, p := range obs {
			d := m.rateDist(int(p.Den))
			if pass == 0 {
				d = discrete{func(k int) float64 { return betabinPMF(k, int(p.Den), p0, 0) }, int(p.Den)}
			}
			_, up := d.tails(int(math.Round(p.Num)))
			keep[i] = up >= pastAnomaly
		}
	}
	n := 0.0
	for _, p := range obs {
		n += p.Den
	}
	if len(obs) >= min(o.MinHistory, 7) && n >= o.MinTrials {
		m.Status = Ready
	}
}

func (m *Model) rateDist(n int) discrete {
	p, rho := m.Expected[0], m.Dispersion
	if m.Family != BetaBinomial || rho <= 0 {
		return discrete{func(k int) float64 { return betabinPMF(k, n, p, 0) }, n}
	}
	a, b := p*(1-rho)/rho, (1-p)*(1-rho)/rho
	return discrete{func(k int) float64 { return betabinPMF(k, n, a, b) }, n}
}

func (m *Model) learnDuration(train []Point, o Options) {
	m.Expected, m.Scale = make([]float64, m.Slots), []float64{0, 0}
	m.Family = LogNormal
	var logs, ns, dens []float64
	var slotOf []int
	for _, p := range train {
		if p.Value > 0 {
			logs, ns, dens, slotOf = append(logs, math.Log(p.Value)), append(ns, math.Max(p.Den, 1)), append(dens, p.Den), append(slotOf, m.Slot(p.Start))
		}
	}
	m.Samples = len(logs)
	if len(logs) == 0 {
		return
	}
	m.TypicalDen, _ = medianMAD(ns)
	loc, tau2, b := fitDurations(logs, dens, slotOf, m.Slots)
	for s := range loc {
		m.Expected[s] = math.Exp(loc[s])
	}
	m.Scale[0], m.Scale[1] = math.Sqrt(tau2), math.Sqrt(b)
	if len(logs) >= min(o.MinHistory, 7) {
		m.Status = Ready
	}
}

// Score is the verdict on one interval. When a test of several intervals
// together decided (Test is window or silence), Observed, Expected and the
// band are those of the intervals together: their total count, their
// rate, or the geometric mean of their durations.
type Score struct {
	// Test is what decided: interval (the interval alone), window (the
	// last WindowIntervals together) or silence (a run of intervals
	// without events, ending with this one).
	Test      string  `json:"test"`
	Intervals int     `json:"intervals"` // how many intervals Test took together
	Observed  float64 `json:"observed"`
	Num       float64 `json:"num,omitempty"` // a rate's successes and trials
	Den       float64 `json:"den,omitempty"`
	Expected  float64 `json:"expected"`
	Lower     float64 `json:"lower"` // the band (a rate's for this interval's denominator)
	Upper     float64 `json:"upper"`
	// Tail is the one-sided tail probability of the observation in its
	// direction: P(Y >= y) above the expectation, P(Y <= y) below.
	Tail      float64 `json:"tail"`
	Direction string  `json:"direction"` // up or down
	Anomaly   bool    `json:"anomaly"`
	Severity  string  `json:"severity"` // critical or warning, when anomalous
	Judged    bool    `json:"judged"`   // false: learning, or too little data in the interval
}

// Band returns the expected value and band of a slot: counts and
// durations in their own units, rates as ratios at the typical
// denominator.
func (m *Model) Band(slot int) (expected, lower, upper float64) {
	switch m.Kind {
	case Count:
		if m.Family == SeasonalMedian {
			z := normalQuantile(1 - m.Alpha/2)
			e, s := m.Expected[slot], m.Scale[slot]
			return e, math.Max(0, e-z*s), e + z*s
		}
		d := m.countDist(slot)
		return m.Expected[slot], float64(d.quantile(m.Alpha / 2)), float64(d.quantile(1 - m.Alpha/2))
	case Rate:
		n := int(math.Max(1, math.Round(m.TypicalDen)))
		d := m.rateDist(n)
		return m.Expected[0], float64(d.quantile(m.Alpha/2)) / float64(n), float64(d.quantile(1-m.Alpha/2)) / float64(n)
	default:
		z := m.durationQuantile(m.TypicalDen)
		e, sd := m.Expected[slot], m.durationScale(0)
		return e, e * math.Exp(-z*sd), e * math.Exp(z*sd)
	}
}

func (m *Model) countDist(slot int) discrete {
	mu, phi := math.Max(m.Expected[slot], 1e-3), m.Dispersion
	if m.Family == NegBinomial {
		return discrete{func(k int) float64 { return negbinPMF(k, mu, phi) }, -1}
	}
	return discrete{func(k int) float64 { return poissonPMF(k, mu) }, -1}
}

// Score judges one interval against the model.
func (m *Model) Score(p Point) Score {
	slot := m.Slot(p.Start)
	s := Score{Test: TestInterval, Intervals: 1, Observed: p.Value, Num: p.Num, Den: p.Den}
	s.Expected, s.Lower, s.Upper = m.Band(slot)
	if m.Status != Ready || !p.Present {
		return s
	}
	var lower, upper float64
	switch m.Kind {
	case Count:
		y := p.Value
		if m.Family == SeasonalMedian {
			z := (y - m.Expected[slot]) / m.Scale[slot]
			lower, upper = normalUpper(-z), normalUpper(z)
		} else {
			lower, upper = m.countDist(slot).tails(int(math.Round(y)))
		}
		s.Direction = direction(y, s.Expected)
		s.Judged = true
		if s.Direction == "up" && y < m.MinCount {
			s.Judged = false
		}
	case Rate:
		if p.Den < 3 {
			return s
		}
		n := int(math.Round(p.Den))
		d := m.rateDist(n)
		lower, upper = d.tails(int(math.Round(p.Num)))
		s.Lower, s.Upper = float64(d.quantile(m.Alpha/2))/float64(n), float64(d.quantile(1-m.Alpha/2))/float64(n)
		s.Direction = direction(p.Num/p.Den, s.Expected)
		s.Judged = true
	case Duration:
		if p.Value <= 0 || (p.Den > 0 && p.Den < MinDurations) {
			return s
		}
		sd, q := m.durationScale(p.Den), m.durationQuantile(p.Den)
		s.Lower, s.Upper = s.Expected*math.Exp(-q*sd), s.Expected*math.Exp(q*sd)
		z := (math.Log(p.Value) - math.Log(s.Expected)) / sd
		lower, upper = durationTails(z, p.Den)
		s.Direction = direction(p.Value, s.Expected)
		s.Judged = true
	}
	s.Tail = upper
	if s.Direction == "down" {
		s.Tail = lower
	}
	return m.decide(s)
}

// kthLargest is the k-th largest of xs (1 ≤ k ≤ len(xs)), by
// quickselect; it reorders xs.
func kthLargest(xs []float64, k int) float64 {
	lo, hi, want := 0, len(xs)-1, k-1
	for lo < hi {
		pivot := xs[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for xs[i] > pivot {
				i++
			}
			for xs[j] < pivot {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		switch {
		case want <= j:
			hi = j
		case want >= i:
			lo = i
		default:
			return xs[want]
		}
	}
	return xs[want]
}

func direction(observed, expected float64) string {
	if observed >= expected {
		return "up"
	}
	return "down"
}

func medianMAD(xs []float64) (median, mad float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	median = mid(s)
	for i, x := range s {
		s[i] = math.Abs(x - median)
	}
	sort.Float64s(s)
	return median, mid(s)
}

func mid(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// durationScale is the log-scale spread of a median of n durations.
func (m *Model) durationScale(n float64) float64 {
	if n <= 0 {
		n = math.Max(m.TypicalDen, 1)
	}
	b := 0.0
	if len(m.Scale) > 1 {
		b = m.Scale[1] * m.Scale[1]
	}
	return math.Sqrt(m.Scale[0]*m.Scale[0] + b/n)
}
