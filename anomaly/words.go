package anomaly

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// The words of an alert: what was judged (one interval, several together,
// or a silence), against which band, how rare that is, and what the series
// normally does at that time. Every figure is the decision's own: the band
// quoted is the band the test used, so a value is never called unusual
// inside the band beside it.

// judged describes what the decision judged: "0 on Tue 2026-11-24 (UTC)",
// "3 days (Sun 2026-11-22 to Tue 2026-11-24) together: 2 deployments" or
// "no deployments for 2 days (Thu 2026-11-19 to Fri 2026-11-20)".
func judged(k baselines.KPI, s baselines.Series, iv *Interval, open bool) string {
	sc := iv.Score
	step := s.Step
	switch sc.Test {
	case baselines.TestWindow, baselines.TestSilence:
		first := iv.Start.Add(-time.Duration(sc.Intervals-1) * step.Duration())
		span := fmt.Sprintf("%s (%s to %s)", count(sc.Intervals, step), periodShort(step, first), periodShort(step, iv.Start))
		if sc.Test == baselines.TestSilence {
			return fmt.Sprintf("no %s for %s", unitNoun(k, 2), span)
		}
		return fmt.Sprintf("%s together: %s", span, observedWith(k, sc.Observed))
	}
	p := periodName(step, iv.Start)
	if open {
		p += ", so far"
	}
	return k.Format(sc.Observed) + " " + p
}

// observedWith is a value with its unit noun for counts ("2
// deployments"), as the windows quote it.
func observedWith(k baselines.KPI, v float64) string {
	if k.Kind == baselines.Count {
		return k.Format(v) + " " + unitNoun(k, v)
	}
	return k.Format(v)
}

// unitNoun names what a count counts.
func unitNoun(k baselines.KPI, v float64) string {
	n := map[string]string{"deployments": "deployment", "incidents": "incident", "patches": "patch advisory"}[k.Name]
	if n == "" {
		n = lower(k.Title)
	}
	if v == 1 {
		return n
	}
	if strings.HasSuffix(n, "y") {
		return strings.TrimSuffix(n, "y") + "ies"
	}
	return n + "s"
}

// count is "3 days" or "5 hours".
func count(n int, step metrics.Step) string {
	u := "day"
	if step == metrics.StepHour {
		u = "hour"
	}
	if n != 1 {
		u += "s"
	}
	return fmt.Sprintf("%d %s", n, u)
}

func periodShort(step metrics.Step, t time.Time) string {
	if step == metrics.StepHour {
		return t.UTC().Format("Mon 15:04")
	}
	return t.UTC().Format("Mon 2006-01-02")
}

// band is the decision's expected value and band: "expected 16 (band
// 9–24)".
func band(k baselines.KPI, sc baselines.Score) string {
	return fmt.Sprintf("expected %s (band %s–%s)", k.Format(sc.Expected), k.Format(sc.Lower), k.Format(sc.Upper))
}

// rarity says how unusual a tail probability is, in intervals of the
// step: "about once in 830 days", "about once in 2,700 days (7 years)",
// "less than once in a thousand years".
func rarity(tail float64, step metrics.Step) string {
	unit, perYear := "days", 365.25
	if step == metrics.StepHour {
		unit, perYear = "hours", 365.25*24
	}
	n := 1 / math.Max(tail, 1e-300)
	years := n / perYear
	switch {
	case years > 1000:
		return "less than once in a thousand years"
	case years >= 2:
		return fmt.Sprintf("about once in %s %s (%s years)", roundCount(n), unit, roundCount(years))
	case step == metrics.StepHour && n >= 24*14:
		return fmt.Sprintf("about once in %s hours (%s weeks)", roundCount(n), roundCount(n/24/7))
	}
	return fmt.Sprintf("about once in %s %s", roundCount(n), unit)
}

// roundCount rounds to two significant digits with thousands separators.
func roundCount(n float64) string {
	if n < 10 {
		return fmt.Sprintf("%.0f", math.Max(n, 1))
	}
	mag := math.Pow(10, math.Floor(math.Log10(n))-1)
	v := int64(math.Round(n/mag) * mag)
	s := fmt.Sprint(v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// usual says what the series normally does at the interval's time: its
// slot's expected value and band, "On Tuesdays it usually has 7.2
// deployments (band 1–17).", "On Tuesdays 14:00–15:00 UTC …", or for a
// rate, which has no season, "It usually runs at 4.5% (band 0.0%–33.3%
// for 9 deployments)."
func usual(k baselines.KPI, s baselines.Series, m *baselines.Model, start time.Time) string {
	e, lo, hi := m.Band(m.Slot(start))
	b := fmt.Sprintf("(band %s–%s)", k.Format(lo), k.Format(hi))
	var what string
	switch k.Kind {
	case baselines.Count:
		what = fmt.Sprintf("usually has %s %s", k.Format(e), unitNoun(k, e))
		if m.Slots == 1 {
			what += map[metrics.Step]string{metrics.StepDay: " a day", metrics.StepHour: " an hour"}[s.Step]
		}
		what += " " + b
	case baselines.Rate:
		trials := "deployments"
		if k.Name == "patch_compliance" {
			trials = "patches due"
		}
		what = fmt.Sprintf("usually runs at %s %s for %g %s", k.Format(e), strings.TrimSuffix(b, ")"), math.Max(1, math.Round(m.TypicalDen)), trials) + ")"
	default:
		what = fmt.Sprintf("usually has a median of %s %s", k.Format(e), b)
	}
	switch m.Slots {
	case 7:
		return fmt.Sprintf("On %ss it %s.", start.UTC().Weekday(), what)
	case 168:
		return fmt.Sprintf("On %ss %s–%s UTC it %s.", start.UTC().Weekday(), start.UTC().Format("15:04"),
			start.UTC().Add(time.Hour).Format("15:04"), what)
	}
	return "It " + what + "."
}
