package baselines

import (
	"math"
	"slices"
	"time"
)

// Dense is a streaming model of a dense real-valued series: workload
// metrics such as CPU, latency, error and request rates at steps of a
// minute to an hour. Each row is judged from the rows before it only
// (Score), then learnt (Learn), in time order; both cost a few hundred
// nanoseconds.
//
// The forecast of a row is level + season + local deviation:
//
//   - the level is a slow exponentially weighted mean (half-life
//     DenseLevelHalfLife) of the deseasonalised values;
//   - the season is a profile over a day or a week, of hourly bins
//     interpolated between their centres; each bin averages its last
//     three periods. The candidates run side by side, with no season too,
//     and the one whose recent errors are smallest (a season: by 5% at
//     least, and once it has seen a whole period) forecasts, so the season
//     is found from the data. (Bins of one step, for sharp edges, were
//     tried: they never won on make bench-anomaly's series.);
//   - the local deviation is the last deviation from level and season
//     times its lag-one autocorrelation, which the model estimates: a busy
//     hour stays busy for a while, and a burst's second row is no surprise.
//
// Robustness: level and season learn from the row clipped to three scales
// of its forecast (Huber's ψ), so an outlier in the training rows moves
// them little, and the scale is a mean absolute error with clipped
// updates. Re-learning: when the last DenseChangeTime of rows (4 to 60)
// all lie beyond two scales on the same side, the level jumps to them, so
// a lasting change alarms for about an hour, not for days; when they lie
// beyond two scales on both sides, the scale is reset to their spread.
//
// Scores are calibrated on the series itself, so that one threshold holds
// across series. Three tests: the row's standardized error (up and down
// apart: a request count's spikes up may be common where its drops are
// not); the mean of the last DenseWindow errors (a shift or drift too small
// for one row); the mean absolute error of the last DenseSpreadWindow (the
// series turns erratic). The window tests count only when the row takes
// part (its own error at least the window's average, the same way), so an
// episode's end does not keep firing. The window test's calibration
// learns each value DenseChangeTime late, so that a drift in progress is
// judged against the rows before it, not against itself (without the
// delay, a drift of three scales an hour calibrated itself away and was
// never flagged). Each test gets a tail probability
// from its own past values: counts over a grid of levels, an exponential
// (peaks-over-threshold) tail above the highest level with ten values over
// it, blended with a Student t₃ prior worth ten rows while the history is
// short. The row's tail is the smallest, doubled.
type Dense struct {
	o     DenseOptions
	cands []*denseCand
	best  int
	rows  int // rows learnt
	first time.Time
}

// DenseOptions configure a Dense model.
type DenseOptions struct {
	// Step is the series' usual interval; the model's time constants are
	// converted to rows with it.
	Step time.Duration
	// Alpha is the two-sided tail probability below which a row is
	// anomalous (default DefaultDenseAlpha).
	Alpha float64
	// Warmup is how many rows are learnt before scoring starts (default a
	// day of rows, at least 30 and at most 300).
	Warmup int
	// Periods are the candidate seasons (default a day and a week);
	// NoSeason leaves only the model without season.
	Periods  []time.Duration
	NoSeason bool
}

// DefaultDenseAlpha is the default two-sided tail probability of dense
// series: rows come every few minutes, so it is four times smaller than
// the operations series' (a false alarm every 2,000 rows, a week at five
// minutes); make bench-anomaly's best single threshold on NAB lies near it.
const DefaultDenseAlpha = 5e-4

// Time constants of the dense model.
const (
	DenseLevelHalfLife = 6 * time.Hour
	DenseScaleHalfLife = 12 * time.Hour
	DenseChangeTime    = time.Hour // rows beyond two scales that make a change
	DenseWindow        = 6         // rows in the window test of the mean error
	DenseSpreadWindow  = 24        // rows in the window test of the mean absolute error
)

// NewDense returns an empty model.
func NewDense(o DenseOptions) *Dense {
	if o.Step <= 0 {
		o.Step = 5 * time.Minute
	}
	if o.Alpha <= 0 {
		o.Alpha = DefaultDenseAlpha
	}
	if o.Warmup <= 0 {
		o.Warmup = min(max(int(24*time.Hour/o.Step), 30), 300)
	}
	if o.Periods == nil {
		o.Periods = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
	}
	d := &Dense{o: o, cands: []*denseCand{newDenseCand(o, 0, 0)}}
	if !o.NoSeason {
		for _, p := range o.Periods {
			if p < 4*o.Step {
				continue
			}
			d.cands = append(d.cands, newDenseCand(o, p, max(time.Hour, o.Step)))
		}
	}
	return d
}

// DenseScore is the verdict on one row.
type DenseScore struct {
	Ready                  bool // false while warming up: no band, no verdict
	Judged                 bool // Ready and the value is a number
	Expected, Lower, Upper float64
	// Tail is the probability of a row at least this unusual: the
	// smallest of the tests' tails, doubled.
	Tail      float64
	Test      string // interval or window: the smaller tail's
	Anomaly   bool
	Direction string
	Season    time.Duration // of the forecasting candidate; 0 for none
}

// Score judges a value at t from the rows learnt so far.
func (d *Dense) Score(t time.Time, y float64) DenseScore {
	c := d.cands[d.best]
	f := c.forecast(t)
	s := DenseScore{Expected: f, Season: c.period}
	if d.rows < d.o.Warmup {
		return s
	}
	s.Ready = true
	sd := c.scale()
	s.Lower, s.Upper = f-c.down.quantile(d.o.Alpha/4)*sd, f+c.up.quantile(d.o.Alpha/4)*sd
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return s
	}
	s.Judged = true
	u := (y - f) / sd
	pPoint := 2 * c.up.tail(u)
	if u < 0 {
		pPoint = 2 * c.down.tail(-u)
	}
	// The window tests count only when the row itself takes part: its
	// error at least the window's average, the same way, so that the end
	// of an episode does not keep firing.
	pWin := 1.0
	if w := c.windowStat(u); u*w > 0 && math.Abs(u) >= math.Abs(w)/math.Sqrt(DenseWindow) {
		pWin = c.window.tail(math.Abs(w))
	}
	if sp := c.spreadStat(u); math.Abs(u) >= sp {
		if p := c.spread.tail(sp); p < pWin {
			pWin = p
		}
	}
	s.Direction = direction(y, f)
	s.Test, s.Tail = TestInterval, pPoint
	if pWin < pPoint {
		s.Test, s.Tail = TestWindow, pWin
		if c.windowStat(u) < 0 {
			s.Direction = "down"
		} else {
			s.Direction = "up"
		}
	}
	s.Anomaly = s.Tail < d.o.Alpha/2
	s.Tail = math.Min(1, 2*s.Tail)
	return s
}

// Learn adds a row at t (not before the last learnt one).
func (d *Dense) Learn(t time.Time, y float64) {
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return
	}
	if d.rows == 0 {
		d.first = t
	}
	calibrate := d.rows >= d.o.Warmup
	for _, c := range d.cands {
		c.learn(t, y, calibrate)
	}
	d.rows++
	// The forecasting candidate: the smallest recent error, a season only
	// once it has seen a whole period and if it is 5% better.
	best, bestErr := 0, d.cands[0].err
	for i, c := range d.cands[1:] {
		if t.Sub(d.first) >= c.period && c.err < 0.95*bestErr {
			best, bestErr = i+1, c.err
		}
	}
	d.best = best
}

// denseCand is one candidate forecaster: a season (or none) with its
// level, local deviation, scale and calibrations.
type denseCand struct {
	period time.Duration
	binW   time.Duration
	season []float64
	seen   []float64
	keep   float64 // bin updates a bin averages over: three periods'

	level, dev       float64
	num, den         float64 // of the lag-one autocorrelation of dev
	mad, err         float64
	aLevel, aScale   float64
	aErr             float64
	started          bool
	recentU, recentE []float64 // the last changeRows standardized and raw errors
	changeRows       int
	win              []float64 // the last DenseWindow-1 clipped standardized errors
	up, down, window tailCal
	pending          []float64 // window statistics waiting to be calibrated
	spread           tailCal
	abs              []float64 // the last DenseSpreadWindow-1 clipped absolute errors
}

func halfLifeRate(h, step time.Duration, lo, hi float64) float64 {
	rows := math.Min(math.Max(float64(h)/float64(step), lo), hi)
	return 1 - math.Pow(2, -1/rows)
}

func newDenseCand(o DenseOptions, period, bin time.Duration) *denseCand {
	c := &denseCand{period: period,
		aLevel:     halfLifeRate(DenseLevelHalfLife, o.Step, 3, 5000),
		aScale:     halfLifeRate(DenseScaleHalfLife, o.Step, 20, 5000),
		aErr:       halfLifeRate(24*time.Hour, o.Step, 20, 5000),
		changeRows: int(math.Min(math.Max(float64(DenseChangeTime/o.Step), 4), 60)),
		up:         tailCal{prior: t3Upper},
		down:       tailCal{prior: t3Upper},
		window:     tailCal{prior: t3TwoSided},
		spread:     tailCal{prior: func(x float64) float64 { return math.Min(1, t3TwoSided((x-0.8)/0.15)) }},
	}
	if period > 0 {
		c.binW = bin
		bins := max(int(period/c.binW), 1)
		c.season, c.seen = make([]float64, bins), make([]float64, bins)
		c.keep = 3 * math.Max(1, float64(c.binW)/float64(o.Step))
	}
	return c
}

// bins returns the two seasonal bins around t and their weights.
func (c *denseCand) bins(t time.Time) (b0, b1 int, w0, w1 float64) {
	n := len(c.season)
	pos := float64(t.UnixNano()%int64(c.period)) / float64(c.binW) // in bins from the period's start
	pos -= 0.5                                                     // bin centres
	f := math.Floor(pos)
	b0 = ((int(f) % n) + n) % n
	b1 = (b0 + 1) % n
	w1 = pos - f
	return b0, b1, 1 - w1, w1
}

func (c *denseCand) seasonAt(t time.Time) float64 {
	if c.period == 0 {
		return 0
	}
	b0, b1, w0, w1 := c.bins(t)
	switch {
	case c.seen[b0] == 0 && c.seen[b1] == 0:
		return 0
	case c.seen[b0] == 0:
		return c.season[b1]
	case c.seen[b1] == 0:
		return c.season[b0]
	}
	return w0*c.season[b0] + w1*c.season[b1]
}

func (c *denseCand) phi() float64 {
	if c.den <= 0 {
		return 0
	}
	return math.Min(math.Max(c.num/c.den, 0), 0.98)
}

func (c *denseCand) forecast(t time.Time) float64 {
	return c.level + c.seasonAt(t) + c.phi()*c.dev
}

func (c *denseCand) scale() float64 {
	return math.Max(1.2533*c.mad, 1e-9*(1+math.Abs(c.level)))
}

// windowStat is the window test's statistic with u as its last error:
// the mean of the last DenseWindow clipped standardized errors, in units
// of its standard error.
func (c *denseCand) windowStat(u float64) float64 {
	sum, n := clip(u, 4), 1.0
	for _, v := range c.win {
		sum += v
		n++
	}
	return sum / math.Sqrt(n)
}

// spreadStat is the mean of the last DenseSpreadWindow absolute
// standardized errors, clipped at 6, with u as the last: it rises when
// the series turns erratic without shifting.
func (c *denseCand) spreadStat(u float64) float64 {
	sum := math.Min(math.Abs(u), 6)
	for _, v := range c.abs {
		sum += v
	}
	return sum / float64(len(c.abs)+1)
}

func clip(x, c float64) float64 { return math.Max(-c, math.Min(c, x)) }

func (c *denseCand) learn(t time.Time, y float64, calibrate bool) {
	if !c.started {
		c.level, c.started = y, true
		return
	}
	f := c.forecast(t)
	e := y - f
	if c.mad == 0 {
		c.mad = math.Abs(e)
	}
	sd := c.scale()
	u := e / sd
	if calibrate {
		c.up.add(math.Max(u, 0))
		c.down.add(math.Max(-u, 0))
		c.spread.add(c.spreadStat(u))
		c.pending = append(c.pending, math.Abs(c.windowStat(u)))
		if len(c.pending) > c.changeRows {
			c.window.add(c.pending[0])
			c.pending = c.pending[1:]
		}
	}
	c.err += c.aErr * (math.Abs(e) - c.err)
	// Learn from the row clipped to three scales of its forecast.
	yc := f + clip(u, 3)*sd
	s := c.seasonAt(t)
	c.level += c.aLevel * (yc - s - c.level)
	if c.period > 0 {
		b0, b1, w0, w1 := c.bins(t)
		for _, bw := range [2]struct {
			b int
			w float64
		}{{b0, w0}, {b1, w1}} {
			if bw.w <= 0 {
				continue
			}
			c.seen[bw.b] += bw.w
			c.season[bw.b] += bw.w * (yc - c.level - c.season[bw.b]) / math.Min(c.seen[bw.b], c.keep)
		}
	}
	dev := f + clip(u, 10)*sd - c.level - c.seasonAt(t)
	c.num += c.aErr * (dev*c.dev - c.num)
	c.den += c.aErr * (c.dev*c.dev - c.den)
	c.dev = dev
	c.mad += c.aScale * (math.Min(math.Abs(e), 4*c.mad) - c.mad)

	c.win = append(c.win, clip(u, 4))
	if len(c.win) > DenseWindow-1 {
		c.win = c.win[1:]
	}
	c.abs = append(c.abs, math.Min(math.Abs(u), 6))
	if len(c.abs) > DenseSpreadWindow-1 {
		c.abs = c.abs[1:]
	}
	c.recentU, c.recentE = append(c.recentU, u), append(c.recentE, e)
	if len(c.recentU) > c.changeRows {
		c.recentU, c.recentE = c.recentU[1:], c.recentE[1:]
	}
	if len(c.recentU) == c.changeRows {
		c.relearn()
	}
}

// relearn adopts a lasting change: a shift of the level when the last
// rows all lie beyond two scales on one side, a new scale when they lie
// beyond it on both sides.
func (c *denseCand) relearn() {
	up, down := 0, 0
	for _, u := range c.recentU {
		switch {
		case u > 2:
			up++
		case u < -2:
			down++
		}
	}
	n := len(c.recentU)
	switch {
	case up == n || down == n:
		c.level += median(c.recentE)
		c.dev = 0
	case up+down == n:
		abs := make([]float64, n)
		for i, e := range c.recentE {
			abs[i] = math.Abs(e)
		}
		c.mad = median(abs)
	default:
		return
	}
	c.recentU, c.recentE, c.win = c.recentU[:0], c.recentE[:0], c.win[:0]
}

// t3Upper is P(T >= x) for Student's t with 3 degrees of freedom.
func t3Upper(x float64) float64 { return t3TwoSided(x) / 2 }

// t3TwoSided is P(|T| >= x) for Student's t with 3 degrees of freedom,
// in closed form.
func t3TwoSided(x float64) float64 {
	x = math.Abs(x)
	r := x / math.Sqrt(3)
	return math.Max(0, 1-2/math.Pi*(r/(1+r*r)+math.Atan(r)))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return mid(s)
}

// tailCal estimates P(X >= x) of a non-negative statistic from its past
// values: counts and mean excesses over a fixed grid of levels, an
// exponential tail above the highest level with tailMinExceed values over
// it, blended with a prior tail worth tailPrior observations.
type tailCal struct {
	n        float64
	cnt, exc [len(tailGrid)]float64 // per level: the values over it and their summed excess
	prior    func(float64) float64
	// The last quantile asked, and n and p it was computed for.
	qN, qP, q float64
}

var tailGrid = [...]float64{0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50, 70, 100, 150, 200, 300, 500, 1000, 3000, 10000}

const (
	tailMinExceed = 10
	tailPrior     = 10
)

func (c *tailCal) add(x float64) {
	c.n++
	for g, thr := range tailGrid {
		if x <= thr {
			break
		}
		c.cnt[g]++
		c.exc[g] += x - thr
	}
}

func (c *tailCal) tail(x float64) float64 {
	p0 := c.prior(x)
	if c.n == 0 {
		return p0
	}
	emp := math.NaN()
	for g := len(tailGrid) - 1; g >= 0; g-- {
		if tailGrid[g] <= x && c.cnt[g] >= tailMinExceed {
			beta := c.exc[g] / c.cnt[g]
			emp = c.cnt[g] / c.n * math.Exp(-(x-tailGrid[g])/beta)
			break
		}
	}
	switch {
	case !math.IsNaN(emp):
	case x < tailGrid[0]:
		emp = 1 - (1-c.cnt[0]/c.n)*x/tailGrid[0]
	default:
		return p0 // too few values this far out yet
	}
	return (c.n*emp + tailPrior*p0) / (c.n + tailPrior)
}

// quantile is the x with tail(x) = p, by bisection, recomputed every 64
// values added.
func (c *tailCal) quantile(p float64) float64 {
	if p == c.qP && c.n < c.qN+64 && c.qN > 0 {
		return c.q
	}
	c.qN, c.qP, c.q = math.Max(c.n, 1), p, c.bisect(p)
	return c.q
}

func (c *tailCal) bisect(p float64) float64 {
	lo, hi := 0.0, 1.0
	for c.tail(hi) > p && hi < 1e12 {
		lo, hi = hi, hi*2
	}
	for range 60 {
		m := (lo + hi) / 2
		if c.tail(m) > p {
			lo = m
		} else {
			hi = m
		}
	}
	return hi
}
