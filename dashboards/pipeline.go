package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// PipelineExprs are the pipeline health panels' PromQL, by panel title,
// with the unit of each.
var PipelineExprs = []struct {
	Title, Unit, Legend, Expr string
}{
	{"Consumer lag", "short", "{{topic}}", `sum by (topic) (opsmetrics_ingest_consumer_lag_messages{job=~"$job"})`},
	{"Throughput: events stored", "ops", "{{kind}}", `sum by (kind) (rate(opsmetrics_ingest_events_stored_total{job=~"$job"}[$__rate_interval]))`},
	{"Dead letters", "ops", "{{reason}}", `sum by (reason) (rate(opsmetrics_ingest_dead_letters_total{job=~"$job"}[$__rate_interval]))`},
	{"Batch latency, p50 and p99", "s", "p{{quantile}}", `label_replace(histogram_quantile(0.5, sum by (le) (rate(opsmetrics_ingest_batch_duration_seconds_bucket{job=~"$job"}[$__rate_interval]))), "quantile", "50", "", "") or label_replace(histogram_quantile(0.99, sum by (le) (rate(opsmetrics_ingest_batch_duration_seconds_bucket{job=~"$job"}[$__rate_interval]))), "quantile", "99", "", "")`},
	{"Errors and retries", "ops", "{{op}}", `sum by (op) (rate(opsmetrics_ingest_errors_total{job=~"$job"}[$__rate_interval]))`},
	{"Alerts waiting for Alertmanager", "short", "queued", `sum(opsmetrics_alerts_queued{job=~"$job"})`},
}

// Pipeline is the pipeline health dashboard, from Prometheus scraping
// opsmetrics' /metrics.
func Pipeline() *dashboard.DashboardBuilder {
	job := dashboard.NewQueryVariableBuilder("job").Label("job").Datasource(promSource()).
		Query(dashboard.StringOrMap{String: strPtr("label_values(opsmetrics_ingest_messages_consumed_total, job)")}).
		IncludeAll(true).AllValue(".*").Refresh(dashboard.VariableRefreshOnTimeRangeChanged)
	b := dashboard.NewDashboardBuilder("opsmetrics: pipeline health").
		Uid(PipelineUID).
		Tags([]string{"opsmetrics"}).
		Description("Ingestion and alert delivery, from opsmetrics' Prometheus metrics (docs/ingestion.md, docs/alerting.md).").
		Time("now-6h", "now").
		Timezone(common.TimeZoneUtc).
		Links(links()).
		WithVariable(job)
	for _, p := range PipelineExprs {
		b.WithPanel(timeseries.NewPanelBuilder().Title(p.Title).Datasource(promSource()).Unit(p.Unit).Height(8).Span(12).
			WithTarget(prometheus.NewDataqueryBuilder().Expr(p.Expr).LegendFormat(p.Legend).RefId("A")))
	}
	return b
}

func strPtr(s string) *string { return &s }
