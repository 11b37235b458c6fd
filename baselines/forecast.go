package baselines

import (
	"math"
	"time"
)

// DefaultForecastLevel is the nominal coverage of a forecast's bands when
// none is asked: nine intervals in ten, a planning figure. (The band of
// detection, at 1 − Alpha, is an alarm's: far wider.)
const DefaultForecastLevel = 0.9

// ForecastOptions tune a forecast.
type ForecastOptions struct {
	// Level is the nominal two-sided coverage of each band, in (0, 1)
	// (default DefaultForecastLevel).
	Level float64
	// Den, when set, is the denominator of a rate (the trials), or the
	// number of durations a median is of, assumed for the interval
	// starting at start; nil, or a value below 1, takes the model's
	// typical one (TypicalDen, the median of its training intervals).
	Den func(start time.Time) float64
}

// ForecastInterval is the forecast of one interval: its expected value
// and the band that holds the value with probability Coverage under the
// model, in the series' units (a rate as a ratio at Den trials).
type ForecastInterval struct {
	Start    time.Time `json:"start"`
	Slot     int       `json:"slot"`
	Expected float64   `json:"expected"`
	Lower    float64   `json:"lower"`
	Upper    float64   `json:"upper"`
	Den      float64   `json:"den,omitempty"`
	// Coverage is the model's probability of the band: the level asked
	// for durations and dense counts, at least it for counts and rates,
	// whose bands end on whole counts.
	Coverage float64 `json:"coverage"`
}

// Forecast is a model's forecast of consecutive future intervals.
type Forecast struct {
	Kind   Kind          `json:"kind"`
	Family string        `json:"family"`
	Status Status        `json:"status"` // a learning model's forecast is a guess
	Step   time.Duration `json:"-"`      // the document around it names the step
	Level  float64       `json:"level"`  // the nominal coverage asked
	// Intervals are the forecast intervals, from the first asked.
	Intervals []ForecastInterval `json:"intervals"`
	// Total is, for counts, the forecast of the sum over all Intervals:
	// "how many incidents over the weekend". Start is the first
	// interval's.
	Total *ForecastInterval `json:"total,omitempty"`
}

// Forecast forecasts the intervals from from (the start of an interval)
// for horizon, rounded up to whole steps, each by its seasonal slot:
//
//   - counts: the quantiles of the slot's count distribution (Poisson or
//     negative binomial) at (1−Level)/2 and (1+Level)/2; dense counts the
//     slot's median ± the normal quantile times its robust sd, clamped at
//     zero;
//   - rates: the quantiles of the binomial (or beta-binomial) count of
//     successes at the assumed denominator, divided by it;
//   - durations: the slot's median times exp(±q·sd), sd the log-scale
//     spread of a median of the assumed number of durations and q the
//     quantile of its Student t tail.
//
// The band is what the model expects when the future is like its
// training window; a past anomaly it learnt around, or a change since,
// is not in it.
func (m *Model) Forecast(from time.Time, horizon time.Duration, o ForecastOptions) Forecast {
	level := o.Level
	if level <= 0 || level >= 1 {
		level = DefaultForecastLevel
	}
	f := Forecast{Kind: m.Kind, Family: m.Family, Status: m.Status, Step: m.Step, Level: level}
	n := int((horizon + m.Step - 1) / m.Step)
	var mu, variance float64
	for i := range n {
		start := from.Add(time.Duration(i) * m.Step)
		den := 0.0
		if o.Den != nil {
			den = o.Den(start)
		}
		fi := m.forecastSlot(m.Slot(start), level, den)
		fi.Start = start
		f.Intervals = append(f.Intervals, fi)
		if m.Kind == Count {
			mu += m.Expected[fi.Slot]
			if m.Family == SeasonalMedian {
				variance += m.Scale[fi.Slot] * m.Scale[fi.Slot]
			}
		}
	}
	if m.Kind == Count && n > 0 {
		t := ForecastInterval{Start: from, Expected: mu}
		if m.Family == SeasonalMedian {
			t.Lower, t.Upper, t.Coverage = normalBand(mu, math.Sqrt(variance), level)
		} else {
			t.Lower, t.Upper, t.Coverage = discreteBand(m.sumDist(mu), level)
		}
		f.Total = &t
	}
	return f
}

func (m *Model) forecastSlot(slot int, level, den float64) ForecastInterval {
	fi := ForecastInterval{Slot: slot}
	switch m.Kind {
	case Count:
		fi.Expected = m.Expected[slot]
		if m.Family == SeasonalMedian {
			fi.Lower, fi.Upper, fi.Coverage = normalBand(fi.Expected, m.Scale[slot], level)
		} else {
			fi.Lower, fi.Upper, fi.Coverage = discreteBand(m.countDist(slot), level)
		}
	case Rate:
		if den < 1 {
			den = m.TypicalDen
		}
		n := int(math.Max(1, math.Round(den)))
		lo, hi, cov := discreteBand(m.rateDist(n), level)
		fi.Expected, fi.Lower, fi.Upper, fi.Coverage, fi.Den = m.Expected[0], lo/float64(n), hi/float64(n), cov, float64(n)
	case Duration:
		if den < 1 {
			den = math.Max(m.TypicalDen, 1)
		}
		sd, q := m.durationScale(den), studentQuantile((1+level)/2, dof(den))
		e := m.Expected[slot]
		fi.Expected, fi.Lower, fi.Upper, fi.Coverage, fi.Den = e, e*math.Exp(-q*sd), e*math.Exp(q*sd), level, den
	}
	return fi
}

// discreteBand is the band [q((1−level)/2), q((1+level)/2)] of d and its
// probability.
func discreteBand(d discrete, level float64) (lo, hi, coverage float64) {
	a, b := d.quantile((1-level)/2), d.quantile((1+level)/2)
	below := 0.0
	if a > 0 {
		below, _ = d.tails(a - 1)
	}
	upTo, _ := d.tails(b)
	return float64(a), float64(b), math.Max(0, upTo-below)
}

// normalBand is mean ± z·sd at level, clamped at zero, and its
// probability under the normal.
func normalBand(mean, sd, level float64) (lo, hi, coverage float64) {
	z := normalQuantile((1 + level) / 2)
	lo, hi = math.Max(0, mean-z*sd), mean+z*sd
	if sd <= 0 {
		return lo, hi, 1
	}
	return lo, hi, 1 - normalUpper((hi-mean)/sd) - normalUpper((mean-lo)/sd)
}
