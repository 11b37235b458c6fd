// Package dashboards builds opsmetrics' Grafana dashboards as code with the
// Grafana Foundation SDK, and writes them as a Grafana file-provisioning
// tree. Panels query ClickHouse through the grafana-clickhouse-datasource
// plugin (a custom dataquery, ClickHouseQuery) over the tables opsmetrics
// fills: KPI series computed by package metrics, the bands package
// baselines learnt and the anomalies package anomaly found, so a panel
// shows the same numbers as the CLI and the alerts. Pipeline health comes
// from Prometheus.
package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// Data source and dashboard identities. Provisioning owns exactly these
// UIDs and never touches others.
const (
	ClickHouseUID = "opsmetrics-clickhouse"
	PrometheusUID = "opsmetrics-prometheus"
	FolderUID     = "opsmetrics"

	AnomaliesUID = "opsmetrics-anomalies"
	PipelineUID  = "opsmetrics-pipeline"
)

func init() {
	plugins.RegisterDefaultPlugins()
	cog.NewRuntime().RegisterDataqueryVariant(ClickHouseVariant())
}

// Options are what the dashboards take from the configuration: the change
// calendar the DORA overview's change-window panels judge deployments by
// (nil: none, they show 0), and the tiers of alerts (alerting.tiers; no
// levels: anomaly.DefaultTiers) whose names the anomalies table shows.
// The services' systems, tiers and owners are read from the service
// catalog opsmetrics last stored (metrics.StoreCatalog), so dashboards
// follow the catalog without being rebuilt.
//
// KPI, when set, is the KPI definitions of the configuration: the KPI
// panels then read the latest KPI rollup built for them (serve rebuilds it
// every kpi.rollup_interval, `opsmetrics kpi refresh` once), over whole
// UTC days, and a panel says when it was built; nil: they read the raw
// rows over the exact range.
//
// Definitions, when KPI is nil, is the KPI definitions the panels read the
// raw rows with (no rollup kept: kpi.rollup_interval 0, as on a cluster);
// nil: the defaults.
type Options struct {
	Calendar    *calendar.Calendar
	Tiers       anomaly.Tiers
	KPI         *metrics.Query
	Definitions *metrics.Query
}

// definitions are o's KPI definitions: the rollup's, else those of the
// raw-row panels, else nil (the defaults).
func (o Options) definitions() *metrics.Query {
	if o.KPI != nil {
		return o.KPI
	}
	return o.Definitions
}

// panel is po with o's KPI definitions, reading the rollup when o has
// one (KPI).
func (o Options) panel(po metrics.PanelOptions) metrics.PanelOptions {
	q := o.definitions()
	if q == nil {
		return po
	}
	po.Production, po.MaxGap, po.LeadTimeLookback, po.LeadTimeFromMerge, po.PatchDeadlines =
		q.Production, q.MaxGap, q.LeadTimeLookback, q.LeadTimeFromMerge, q.PatchDeadlines
	po.Rollup = o.KPI != nil
	return po
}

// tiers are the alert tiers o names, the defaults when it names none.
func (o Options) tiers() anomaly.Tiers {
	if len(o.Tiers.Levels) == 0 {
		return anomaly.DefaultTiers
	}
	return o.Tiers
}

// All builds every dashboard.
func All(o Options) ([]dashboard.Dashboard, error) {
	var out []dashboard.Dashboard
	dora := func() *dashboard.DashboardBuilder { return DORA(o) }
	incidents := func() *dashboard.DashboardBuilder { return Incidents(o) }
	review := func() *dashboard.DashboardBuilder { return OpsReview(o) }
	patches := func() *dashboard.DashboardBuilder { return Patches(o) }
	anomalies := func() *dashboard.DashboardBuilder { return Anomalies(o) }
	for _, b := range []func() *dashboard.DashboardBuilder{dora, incidents, patches, review, anomalies, Pipeline} {
		d, err := b().Build()
		if err != nil {
			return nil, fmt.Errorf("build dashboard: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func clickhouse() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr(PluginID), Uid: cog.ToPtr(ClickHouseUID)}
}

func promSource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr(PrometheusUID)}
}

// links are the links every dashboard carries to the others.
func links() []cog.Builder[dashboard.DashboardLink] {
	return []cog.Builder[dashboard.DashboardLink]{
		dashboard.NewDashboardLinkBuilder("opsmetrics").Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"opsmetrics"}).AsDropdown(true).IncludeVars(true).KeepTime(true),
	}
}
