package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// Exporter exposes rolling KPI values as Prometheus gauges, one series per
// (window, service, team, environment). It recomputes them on Refresh, so a
// scrape never runs SQL. Counts can be summed across labels; ratios and
// durations are per combination.
type Exporter struct {
	conn    driver.Conn
	base    Query
	windows map[string]time.Duration
	log     *slog.Logger

	mu        sync.Mutex
	snapshot  map[string][]*Summary // by window label
	refreshed time.Time
	errors    prometheus.Counter
}

// DefaultWindows are the rolling windows the exporter computes.
var DefaultWindows = map[string]time.Duration{"7d": 7 * day, "30d": 30 * day, "90d": 90 * day}

// NewExporter returns an exporter over base (its range is ignored) for the
// given windows, DefaultWindows when nil.
func NewExporter(conn driver.Conn, base Query, windows map[string]time.Duration, log *slog.Logger) *Exporter {
	if windows == nil {
		windows = DefaultWindows
	}
	base.By = []Dimension{Service, Team, Environment}
	return &Exporter{conn: conn, base: base, windows: windows, log: log,
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opsmetrics_kpi_refresh_errors_total",
			Help: "KPI refreshes that failed; the previous values stay exported.",
		})}
}

// Refresh recomputes every window ending now.
func (x *Exporter) Refresh(ctx context.Context) error {
	now := time.Now().UTC()
	snap := map[string][]*Summary{}
	for label, w := range x.windows {
		q := x.base
		q.From, q.To = now.Add(-w), now
		sums, err := Summaries(ctx, x.conn, q)
		if err != nil {
			x.errors.Inc()
			return err
		}
		snap[label] = sums
	}
	x.mu.Lock()
	x.snapshot, x.refreshed = snap, now
	x.mu.Unlock()
	return nil
}

// Run refreshes every interval until ctx is done. Failures are logged and
// counted; the last good values stay exported.
func (x *Exporter) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := x.Refresh(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("KPI refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type gauge struct {
	desc  *prometheus.Desc
	value func(*Summary) (float64, bool)
}

var labels = []string{"window", "service", "team", "environment"}

func count(f func(*Summary) uint64) func(*Summary) (float64, bool) {
	return func(s *Summary) (float64, bool) { return float64(f(s)), true }
}

func opt(f func(*Summary) *float64) func(*Summary) (float64, bool) {
	return func(s *Summary) (float64, bool) {
		if v := f(s); v != nil {
			return *v, true
		}
		return 0, false
	}
}

var gauges = []gauge{
	{prometheus.NewDesc("opsmetrics_kpi_deployments", "Production deployments in the window, any status.", labels, nil), count(func(s *Summary) uint64 { return s.Deployments })},
	{prometheus.NewDesc("opsmetrics_kpi_deployments_per_day", "Successful production deployments per day over the window.", labels, nil), func(s *Summary) (float64, bool) { return s.DeploymentsPerDay, true }},
	{prometheus.NewDesc("opsmetrics_kpi_failed_deployments", "Failed production deployments, by status or attributed incident.", labels, nil), count(func(s *Summary) uint64 { return s.FailedDeployments })},
	{prometheus.NewDesc("opsmetrics_kpi_change_failure_ratio", "Failed deployments divided by deployments.", labels, nil), opt(func(s *Summary) *float64 { return s.ChangeFailureRate })},
	{prometheus.NewDesc("opsmetrics_kpi_rework_ratio", "Unplanned deployments divided by deployments.", labels, nil), opt(func(s *Summary) *float64 { return s.ReworkRate })},
	{prometheus.NewDesc("opsmetrics_kpi_lead_time_median_seconds", "Median change lead time.", labels, nil), opt(func(s *Summary) *float64 { return s.LeadTimeMedianSeconds })},
	{prometheus.NewDesc("opsmetrics_kpi_recovery_time_median_seconds", "Median failed-deployment recovery time.", labels, nil), opt(func(s *Summary) *float64 { return s.RecoveryMedianSeconds })},
	{prometheus.NewDesc("opsmetrics_kpi_incidents", "Production incidents whose impact started in the window.", labels, nil), count(func(s *Summary) uint64 { return s.Incidents })},
	{prometheus.NewDesc("opsmetrics_kpi_mttd_median_seconds", "Median time from impact start to detection.", labels, nil), opt(func(s *Summary) *float64 { return s.MTTDMedianSeconds })},
	{prometheus.NewDesc("opsmetrics_kpi_mtta_median_seconds", "Median time from detection to acknowledgement.", labels, nil), opt(func(s *Summary) *float64 { return s.MTTAMedianSeconds })},
	{prometheus.NewDesc("opsmetrics_kpi_mttr_median_seconds", "Median time from detection to resolution.", labels, nil), opt(func(s *Summary) *float64 { return s.MTTRMedianSeconds })},
	{prometheus.NewDesc("opsmetrics_kpi_patch_compliance_ratio", "Patches applied within their deadline divided by patches due.", labels, nil), opt(func(s *Summary) *float64 { return s.PatchCompliance })},
	{prometheus.NewDesc("opsmetrics_kpi_patches_overdue", "Patches not applied and past their deadline.", labels, nil), count(func(s *Summary) uint64 { return s.PatchesOverdue })},
}

var refreshDesc = prometheus.NewDesc("opsmetrics_kpi_last_refresh_timestamp_seconds", "When the KPI gauges were last computed.", nil, nil)

// Describe implements prometheus.Collector.
func (x *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range gauges {
		ch <- g.desc
	}
	ch <- refreshDesc
	x.errors.Describe(ch)
}

// Collect implements prometheus.Collector from the last refresh.
func (x *Exporter) Collect(ch chan<- prometheus.Metric) {
	x.mu.Lock()
	snap, at := x.snapshot, x.refreshed
	x.mu.Unlock()
	x.errors.Collect(ch)
	if at.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(refreshDesc, prometheus.GaugeValue, float64(at.Unix()))
	for window, sums := range snap {
		for _, s := range sums {
			lv := []string{window, s.Slice[Service], s.Slice[Team], s.Slice[Environment]}
			for _, g := range gauges {
				if v, ok := g.value(s); ok {
					ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, lv...)
				}
			}
		}
	}
}
