package anomaly

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// ThresholdRule fires when a KPI over a trailing window crosses a target:
// "change failure rate above 15% over 7 days for service checkout", "MTTR
// p90 above 4h". Rules are separate from anomaly detection and alert as
// KPIThresholdAtRisk.
type ThresholdRule struct {
	Name string
	KPI  string // a name of ThresholdKPIs
	// Above or Below (or both) in the KPI's base unit: a ratio, seconds, or
	// a count.
	Above, Below *float64
	Window       time.Duration // default 7 days
	// By evaluates the rule per slice; the filters restrict it.
	By                            []metrics.Dimension
	Services, Teams, Environments []string
	Severity                      string // default warning
	Runbook                       string
	// SetAt is when the target was set (set_at), for the review to split
	// the values there; zero when unknown.
	SetAt time.Time
}

type thresholdKPI struct {
	unit string // ratio, seconds or count
	get  func(s *metrics.Summary) *float64
}

func u64(f func(s *metrics.Summary) uint64) func(*metrics.Summary) *float64 {
	return func(s *metrics.Summary) *float64 { v := float64(f(s)); return &v }
}

// ThresholdKPIs are the figures a rule can watch: the KPIs of the
// catalogue (metrics.KPI.Value) and other figures of a summary.
var ThresholdKPIs = map[string]thresholdKPI{
	"change_failure_rate":        {"ratio", metrics.PointerOf(metrics.PanelChangeFailureRate)},
	"rework_rate":                {"ratio", metrics.PointerOf(metrics.PanelReworkRate)},
	"patch_compliance":           {"ratio", metrics.PointerOf(metrics.PanelPatchCompliance)},
	"patch_failure_rate":         {"ratio", func(s *metrics.Summary) *float64 { return s.PatchFailureRate }},
	"mttr_median":                {"seconds", metrics.PointerOf(metrics.PanelMTTR)},
	"mttr_p90":                   {"seconds", func(s *metrics.Summary) *float64 { return s.MTTRP90Seconds }},
	"mttr_mean":                  {"seconds", func(s *metrics.Summary) *float64 { return s.MTTRMeanSeconds }},
	"mttd_median":                {"seconds", metrics.PointerOf(metrics.PanelMTTD)},
	"mtta_median":                {"seconds", metrics.PointerOf(metrics.PanelMTTA)},
	"lead_time_median":           {"seconds", metrics.PointerOf(metrics.PanelLeadTime)},
	"lead_time_p90":              {"seconds", func(s *metrics.Summary) *float64 { return s.LeadTimeP90Seconds }},
	"recovery_median":            {"seconds", metrics.PointerOf(metrics.PanelRecoveryTime)},
	"recovery_p90":               {"seconds", func(s *metrics.Summary) *float64 { return s.RecoveryP90Seconds }},
	"patch_latency_median":       {"seconds", metrics.PointerOf(metrics.PanelPatchLatency)},
	"patch_latency_p90":          {"seconds", func(s *metrics.Summary) *float64 { return s.PatchLatencyP90Seconds }},
	"deployment_duration_median": {"seconds", func(s *metrics.Summary) *float64 { return s.DeployDurationMedianSeconds }},
	"deployments_per_day":        {"count", metrics.PointerOf(metrics.PanelDeploymentFrequency)},
	"incidents":                  {"count", metrics.PointerOf(metrics.PanelIncidents)},
	"unresolved_incidents":       {"count", u64(func(s *metrics.Summary) uint64 { return s.UnresolvedIncidents })},
	"patches_overdue":            {"count", metrics.PointerOf(metrics.PanelPatchesOverdue)},
}

// ParseTarget reads a target in the KPI's unit: "15%" or "0.15" for a
// ratio, "4h" or "90m" for a duration, a number for a count.
func ParseTarget(kpi, s string) (float64, error) {
	k, ok := ThresholdKPIs[kpi]
	if !ok {
		names := make([]string, 0, len(ThresholdKPIs))
		for n := range ThresholdKPIs {
			names = append(names, n)
		}
		sort.Strings(names)
		return 0, fmt.Errorf("unknown KPI %q: want one of %s", kpi, strings.Join(names, ", "))
	}
	s = strings.TrimSpace(s)
	switch k.unit {
	case "ratio":
		if p, ok := strings.CutSuffix(s, "%"); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || v < 0 || v > 100 {
				return 0, fmt.Errorf("want a percentage like 15%%, got %q", s)
			}
			return v / 100, nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 1 {
			return 0, fmt.Errorf("want a ratio in [0, 1] or a percentage like 15%%, got %q", s)
		}
		return v, nil
	case "seconds":
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("want a duration like 4h, got %q", s)
		}
		return d.Seconds(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a non-negative number, got %q", s)
	}
	return v, nil
}

// Validate checks a rule.
func (r ThresholdRule) Validate() error {
	if r.Name == "" {
		return fmt.Errorf("threshold rule: name is required")
	}
	if _, ok := ThresholdKPIs[r.KPI]; !ok {
		_, err := ParseTarget(r.KPI, "0")
		return fmt.Errorf("threshold rule %s: %w", r.Name, err)
	}
	if r.Above == nil && r.Below == nil {
		return fmt.Errorf("threshold rule %s: give above, below or both", r.Name)
	}
	switch r.Severity {
	case "", "info", "warning", "critical":
	default:
		return fmt.Errorf("threshold rule %s: severity: want info, warning or critical, got %q", r.Name, r.Severity)
	}
	return nil
}

// ThresholdResult is one rule's verdict on one slice.
type ThresholdResult struct {
	Rule     ThresholdRule
	Slice    map[metrics.Dimension]string
	Value    *float64 // absent: no data, which never fires
	Firing   bool
	Dir      string // up (above) or down (below)
	From, To time.Time
}

// EvaluateThresholds evaluates every rule over its window ending now.
func EvaluateThresholds(ctx context.Context, conn driver.Conn, rules []ThresholdRule, production []string, now time.Time) ([]ThresholdResult, error) {
	var out []ThresholdResult
	for _, r := range rules {
		w := r.Window
		if w <= 0 {
			w = 7 * 24 * time.Hour
		}
		q := metrics.Query{From: now.Add(-w), To: now, By: r.By, Services: r.Services, Teams: r.Teams,
			Environments: r.Environments, Production: production}
		sums, err := metrics.Summaries(ctx, conn, q)
		if err != nil {
			return nil, fmt.Errorf("threshold rule %s: %w", r.Name, err)
		}
		for _, s := range sums {
			res := ThresholdResult{Rule: r, Slice: s.Slice, Value: ThresholdKPIs[r.KPI].get(s), From: q.From, To: q.To}
			if v := res.Value; v != nil {
				switch {
				case r.Above != nil && *v > *r.Above:
					res.Firing, res.Dir = true, "up"
				case r.Below != nil && *v < *r.Below:
					res.Firing, res.Dir = true, "down"
				}
			}
			out = append(out, res)
		}
	}
	return out, nil
}

func (r ThresholdResult) labels() map[string]string {
	sev := r.Rule.Severity
	if sev == "" {
		sev = "warning"
	}
	l := map[string]string{"alertname": ThresholdAlert, "rule": r.Rule.Name, "kpi": r.Rule.KPI, "severity": sev}
	for d, v := range r.Slice {
		if v != "" {
			l[string(d)] = v
		}
	}
	for _, f := range []struct {
		name string
		vals []string
	}{{"service", r.Rule.Services}, {"team", r.Rule.Teams}, {"environment", r.Rule.Environments}} {
		if _, ok := l[f.name]; !ok && len(f.vals) > 0 {
			l[f.name] = strings.Join(f.vals, ",")
		}
	}
	return l
}

// ThresholdAlerts turns results into alerts to fire, with direction, and
// label sets to resolve (every slice that is not firing, in both
// directions; resolving an alert that never fired is harmless).
//
// Each alert carries its owner and tier from the catalog; a rule without a
// severity of its own takes the tier's. Alerts to fire come in the tiers'
// order (Tiers.Compare).
func ThresholdAlerts(results []ThresholdResult, cfg AlertConfig) (fire []Alert, resolve []map[string]string) {
	cat := cfg.services()
	labels := func(r ThresholdResult, dir string) map[string]string {
		l := r.labels()
		l["direction"] = dir
		cfg.route(cat, l, l["severity"])
		if r.Rule.Severity != "" {
			l["severity"] = r.Rule.Severity
		}
		return l
	}
	for _, r := range results {
		unit := ThresholdKPIs[r.Rule.KPI].unit
		if !r.Firing {
			for _, dir := range []string{"up", "down"} {
				resolve = append(resolve, labels(r, dir))
			}
			continue
		}
		l := labels(r, r.Dir)
		target, word := r.Rule.Above, "above"
		if r.Dir == "down" {
			target, word = r.Rule.Below, "below"
		}
		where := "all"
		if len(r.Slice) > 0 || len(r.Rule.Services)+len(r.Rule.Teams)+len(r.Rule.Environments) > 0 {
			var parts []string
			for _, k := range []string{"service", "team", "environment"} {
				if v, ok := l[k]; ok {
					parts = append(parts, k+" "+v)
				}
			}
			where = strings.Join(parts, ", ")
		}
		runbook := r.Rule.Runbook
		if runbook == "" {
			runbook = cfg.runbook(r.Rule.KPI)
		}
		days := r.To.Sub(r.From).Hours() / 24
		fire = append(fire, Alert{Labels: l, StartsAt: r.To, Annotations: map[string]string{
			"summary": fmt.Sprintf("%s target at risk for %s: %s over the last %.0f days, %s the target of %s",
				r.Rule.KPI, where, format(unit, *r.Value), days, word, format(unit, *target)),
			"description": fmt.Sprintf("Rule %s: %s over [%s, %s) is %s, %s its target of %s.", r.Rule.Name, r.Rule.KPI,
				r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339), format(unit, *r.Value), word, format(unit, *target)),
			"runbook_url":   runbook,
			"dashboard_url": cfg.DashboardURL,
		}})
	}
	return cfg.order(fire, labelRanks(fire)), resolve
}

// format writes a threshold value: a ratio or duration as the catalogue
// does, a count with all its digits.
func format(unit string, v float64) string {
	if unit == "ratio" || unit == "seconds" {
		return metrics.FormatValue(unit, v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
