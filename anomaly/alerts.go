package anomaly

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// Alert names.
const (
	AnomalyAlert   = "KPIAnomaly"
	ThresholdAlert = "KPIThresholdAtRisk"
)

// AlertConfig is what alerts link to, and who they go to.
type AlertConfig struct {
	// Runbooks maps a KPI name to its runbook; DefaultRunbook serves the
	// rest. Every alert needs a process and an owner.
	Runbooks       map[string]string `yaml:"runbooks"`
	DefaultRunbook string            `yaml:"default_runbook"`
	// DashboardURL is the anomalies dashboard; alerts link to it filtered
	// to their series and interval.
	DashboardURL string `yaml:"dashboard_url"`
	// Tiers maps a service's tier in the catalog to the severity and the
	// order of its alerts (alerting.tiers; DefaultAlertingConfig holds
	// DefaultTiers, the zero value maps no tier).
	Tiers Tiers `yaml:"tiers"`
	// Catalog is the service catalog the owner and tier labels come from,
	// set by the wiring (catalog.Config is the file's catalog section);
	// nil: no catalog, every service takes the defaults (route).
	Catalog *catalog.Watcher `yaml:"-"`
	// Calendar is the change calendar WindowAlerts judge deployments by,
	// set by the wiring (calendar.Config is the file's change_calendar
	// section); nil: no change-window alerts.
	Calendar *calendar.Calendar `yaml:"-"`
	// WindowAlertFor is how long after its finish a deployment outside its
	// change windows keeps its alert firing (and how far back each
	// evaluation looks for such deployments); 0 means
	// DefaultWindowAlertFor.
	WindowAlertFor time.Duration `yaml:"window_alert_for"`
	// WindowAlertLate is how long after its finish a deployment stored
	// late (after WindowAlertFor) still alerts, once, when it is stored;
	// 0 means DefaultWindowAlertLate, and a value at most WindowAlertFor
	// alerts on no late deployment.
	WindowAlertLate time.Duration `yaml:"window_alert_late"`
}

// Labels of the service catalog that every alert carries, and their values
// when the catalog does not say.
const (
	// NoOwner is the owner label of an alert whose service the catalog
	// does not know and whose slice names no team.
	NoOwner = "unowned"
	// NoTier is the tier label of an alert whose service has no tier in
	// the catalog, when alerting.tiers.default names none.
	NoTier = "none"
)

// services is the catalog snapshot one round of alerts is labelled from.
func (c AlertConfig) services() *catalog.Catalog {
	if c.Catalog == nil {
		return nil
	}
	return c.Catalog.Catalog()
}

// route adds the owner and tier labels to an alert's labels, from the
// catalog's entry of its service, and sets its severity from the tier,
// given the detector's (or the rule's). A service the catalog does not know
// (or an alert of no service) is owned by the slice's team, else NoOwner;
// one without a tier takes alerting.tiers.default's, else NoTier.
func (c AlertConfig) route(cat *catalog.Catalog, labels map[string]string, severity string) {
	owner, tier := c.Tiers.Owner(cat, labels["service"], labels["team"])
	e, _ := cat.Lookup(labels["service"])
	labels["owner"], labels["tier"], labels["severity"] = owner, tier, c.Tiers.Severity(e.Tier, severity)
}

// Owner is the owner and tier labels of an alert about service (empty:
// none) of team, from cat's entry of the service: its owner, else team,
// else NoOwner; its tier's level name, else NoTier. The report and the
// API show anomalies with them.
func (t Tiers) Owner(cat *catalog.Catalog, service, team string) (owner, tier string) {
	e, _ := cat.Lookup(service)
	owner, tier = e.Owner, t.Name(e.Tier)
	if owner == "" {
		owner = team
	}
	if owner == "" {
		owner = NoOwner
	}
	if tier == "" {
		tier = NoTier
	}
	return owner, tier
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
	q.Set("var-series", s.Key())
	// The parts too, for dashboards provisioned before the series variable.
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

func anomalyLabels(cfg AlertConfig, cat *catalog.Catalog, s baselines.Series, iv *Interval) map[string]string {
	l := seriesLabels(AnomalyAlert, s)
	l["direction"] = iv.Score.Direction
	cfg.route(cat, l, iv.Score.Severity)
	return l
}

// Alerts turns evaluations into the alerts to fire and those to resolve
// (Notifier.ResolveFromHistory: they fired at the previous interval, by the
// stored data, whoever sent them). A firing series is labelled by its most
// recent anomalous interval, with its owner and tier from the catalog and
// the severity its tier gives; when its direction or severity changes, the
// old alert is resolved and a new one fired. Alerts to fire come in the
// tiers' order (Tiers.Compare).
func Alerts(evals []Evaluation, cfg AlertConfig) (fire, resolve []Alert) {
	cat := cfg.services()
	var ranks []Ranked
	for _, e := range evals {
		var now map[string]string
		if e.Firing {
			now = anomalyLabels(cfg, cat, e.Series, e.Latest)
			fire = append(fire, Alert{Labels: now, Annotations: annotations(e, cfg), StartsAt: e.Latest.Start})
			ranks = append(ranks, Ranked{Tier: now["tier"], Severity: now["severity"], Tail: e.Latest.Score.Tail})
		}
		if e.WasFiring && e.Previous != nil {
			before := anomalyLabels(cfg, cat, e.Series, e.Previous)
			if now == nil || labelsKey(before) != labelsKey(now) {
				resolve = append(resolve, Alert{Labels: before, StartsAt: e.Previous.Start})
			}
		}
	}
	return cfg.order(fire, ranks), resolve
}

// labelRanks ranks alerts by their tier and severity labels alone, so that
// sorting by them stably keeps each tier's and severity's alerts in the
// order they came.
func labelRanks(alerts []Alert) []Ranked {
	ranks := make([]Ranked, len(alerts))
	for i, a := range alerts {
		ranks[i] = Ranked{Tier: a.Labels["tier"], Severity: a.Labels["severity"]}
	}
	return ranks
}

// order sorts alerts by their ranks (Tiers.Compare), stably.
func (c AlertConfig) order(alerts []Alert, ranks []Ranked) []Alert {
	idx := make([]int, len(alerts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return c.Tiers.Compare(ranks[a], ranks[b]) })
	out := make([]Alert, len(alerts))
	for i, j := range idx {
		out[i] = alerts[j]
	}
	return out
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
	ann := map[string]string{
		"summary":       summary,
		"description":   desc,
		"runbook_url":   cfg.runbook(e.Series.KPI),
		"dashboard_url": cfg.dashboard(e.Series, iv.Start.Add(-14*step), to.Add(step)),
		"observed":      fmt.Sprint(sc.Observed),
		"expected":      fmt.Sprint(sc.Expected),
		"test":          sc.Test,
	}
	if e.Factors != nil {
		ann["factors"] = e.Factors.Summary
		ann["description"] += " " + e.Factors.Summary
	}
	return ann
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
