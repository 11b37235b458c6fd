package anomaly

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// Alert names.
const (
	AnomalyAlert   = "KPIAnomaly"
	ThresholdAlert = "KPIThresholdAtRisk"
)

// AlertConfig is what alerts link to.
type AlertConfig struct {
	// Runbooks maps a KPI name to its runbook; DefaultRunbook serves the
	// rest. Every alert needs a process and an owner.
	Runbooks       map[string]string `yaml:"runbooks"`
	DefaultRunbook string            `yaml:"default_runbook"`
	// DashboardURL is the anomalies dashboard; alerts link to it filtered
	// to their series and interval.
	DashboardURL string `yaml:"dashboard_url"`
}

func (c AlertConfig) runbook(kpi string) string {
	if u, ok := c.Runbooks[kpi]; ok {
		return u
	}
	return c.DefaultRunbook
}

func (c AlertConfig) dashboard(s baselines.Series, from, to time.Time) string {
	if c.DashboardURL == "" {
		return ""
	}
	q := url.Values{}
	q.Set("var-kpi", s.KPI)
	q.Set("var-step", string(s.Step))
	// Empty values too: the dashboard's empty slice value is "all".
	for k, v := range map[string]string{"service": s.Service, "team": s.Team, "environment": s.Environment} {
		q.Set("var-"+k, v)
	}
	q.Set("from", fmt.Sprint(from.UnixMilli()))
	q.Set("to", fmt.Sprint(to.UnixMilli()))
	sep := "?"
	if strings.Contains(c.DashboardURL, "?") {
		sep = "&"
	}
	return c.DashboardURL + sep + q.Encode()
}

// seriesLabels are the labels that identify a series' alert.
func seriesLabels(alertname string, s baselines.Series) map[string]string {
	l := map[string]string{"alertname": alertname, "kpi": s.KPI, "step": string(s.Step)}
	for k, v := range map[string]string{"service": s.Service, "team": s.Team, "environment": s.Environment} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

func anomalyLabels(s baselines.Series, iv *Interval) map[string]string {
	l := seriesLabels(AnomalyAlert, s)
	l["severity"], l["direction"] = iv.Score.Severity, iv.Score.Direction
	return l
}

// Alerts turns evaluations into the alerts to fire and those to resolve
// (Notifier.ResolveFromHistory: they fired at the previous interval, by the
// stored data, whoever sent them). A firing series is labelled by its most
// recent anomalous interval; when its direction or severity changes, the
// old alert is resolved and a new one fired.
func Alerts(evals []Evaluation, cfg AlertConfig) (fire, resolve []Alert) {
	for _, e := range evals {
		var now map[string]string
		if e.Firing {
			now = anomalyLabels(e.Series, e.Latest)
			fire = append(fire, Alert{Labels: now, Annotations: annotations(e, cfg), StartsAt: e.Latest.Start})
		}
		if e.WasFiring && e.Previous != nil {
			before := anomalyLabels(e.Series, e.Previous)
			if now == nil || labelsKey(before) != labelsKey(now) {
				resolve = append(resolve, Alert{Labels: before, StartsAt: e.Previous.Start})
			}
		}
	}
	return fire, resolve
}

// annotations word an alert after the decision of its latest anomalous
// interval (docs/alerting.md): what was judged, with the band the test
// used; how rare that is; what the series normally does at that time; and
// a link to the anomalies dashboard around the interval.
func annotations(e Evaluation, cfg AlertConfig) map[string]string {
	k, _ := baselines.LookupKPI(e.Series.KPI)
	iv := e.Latest
	sc := iv.Score
	step := e.Series.Step.Duration()
	what, side := "unusually high", "above"
	if sc.Direction == "down" {
		what, side = "unusually low", "below"
	}
	open := e.Open != nil && iv.Start.Equal(e.Open.Start)
	observed := judged(k, e.Series, iv, open)
	summary := fmt.Sprintf("%s: %s %s, %s; %s", e.Series.Slice(), lower(k.Title), what, observed, band(k, sc))
	if k.Kind == baselines.Rate && sc.Den > 0 {
		lo, hi := wilson(sc.Num, sc.Den, 1.96)
		observed += fmt.Sprintf(" (%g of %g; 95%% interval %s–%s)", sc.Num, sc.Den, k.Format(lo), k.Format(hi))
	}
	expects := "expects " + k.Format(sc.Expected)
	if sc.Intervals > 1 {
		expects += " for those " + count(sc.Intervals, e.Series.Step)
	}
	desc := fmt.Sprintf("Observed %s. The %s baseline (%s, trained up to %s) %s, with a band of %s–%s; a value this far %s it comes %s: "+
		"tail probability %.2g. %s", observed, map[metrics.Step]string{metrics.StepDay: "daily", metrics.StepHour: "hourly"}[e.Series.Step],
		e.Model.Family, e.TrainedAt.UTC().Format("2006-01-02 15:04 MST"), expects,
		k.Format(sc.Lower), k.Format(sc.Upper), side, rarity(sc.Tail, e.Series.Step), sc.Tail, usual(k, e.Series, e.Model, iv.Start))
	to := e.End
	if iv.End.After(to) {
		to = iv.End
	}
	return map[string]string{
		"summary":       summary,
		"description":   desc,
		"runbook_url":   cfg.runbook(e.Series.KPI),
		"dashboard_url": cfg.dashboard(e.Series, iv.Start.Add(-14*step), to.Add(step)),
		"observed":      fmt.Sprint(sc.Observed),
		"expected":      fmt.Sprint(sc.Expected),
		"test":          sc.Test,
	}
}

func periodName(step metrics.Step, start time.Time) string {
	if step == metrics.StepHour {
		return "in the hour from " + start.UTC().Format("2006-01-02 15:04 UTC")
	}
	return "on " + start.UTC().Format("Mon 2006-01-02") + " (UTC)"
}

func lower(s string) string {
	if strings.HasPrefix(s, "MTT") {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// wilson is the Wilson score interval of k successes in n trials.
func wilson(k, n, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	p := k / n
	den := 1 + z*z/n
	c := (p + z*z/(2*n)) / den
	h := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / den
	return math.Max(0, c-h), math.Min(1, c+h)
}
