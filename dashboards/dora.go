package dashboards

import (
	"fmt"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// DORAUID is the DORA overview dashboard.
const DORAUID = "opsmetrics-dora"

// allValue is what the slice variables send when "All" is selected.
const allValue = "__all"

// sliceFilter is the condition a multi-value slice variable puts on its
// column: everything when All is selected. The service column also
// carries the system and tier variables, which keep the services the
// stored service catalog puts in the systems and tiers chosen
// (catalogFilter).
func sliceFilter(col string) string {
	if col != "service" {
		return variableFilter(col, col)
	}
	return "(" + variableFilter(col, col) + ") AND (" + catalogFilter("system", col) + ") AND (" + catalogFilter("tier", col) + ")"
}

// variableFilter is variable v's condition on the expression x.
func variableFilter(v, x string) string {
	return "'" + allValue + "' IN (${" + v + ":singlequote}) OR " + x + " IN (${" + v + ":singlequote})"
}

// catalogFilter is the condition of the catalog variable dim (system or
// tier) on a service column: the service's entry in the stored catalog
// (metrics.StoreCatalog) is in one of the values chosen. A service the
// catalog does not know is in none.
func catalogFilter(dim, serviceCol string) string {
	return "'" + allValue + "' IN (${" + dim + ":singlequote}) OR " + metrics.ServiceKey(serviceCol) + " IN (SELECT key FROM " +
		metrics.CurrentServiceCatalog + " WHERE " + dim + " IN (${" + dim + ":singlequote}))"
}

// multiSliceVariables are the variables of the KPI dashboards, several
// values or All each: the system and tier of the service catalog, then the
// service (of the systems and tiers chosen), team and environment.
func multiSliceVariables() []cog.Builder[dashboard.VariableModel] {
	var out []cog.Builder[dashboard.VariableModel]
	all := func(b *dashboard.QueryVariableBuilder) *dashboard.QueryVariableBuilder {
		return b.Multi(true).IncludeAll(true).AllValue(allValue).
			Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("All")},
				Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")}})
	}
	for _, dim := range []string{"system", "tier"} {
		q := fmt.Sprintf("SELECT DISTINCT %s FROM %s WHERE %s != '' ORDER BY %s", dim, metrics.CurrentServiceCatalog, dim, dim)
		out = append(out, all(dashboard.NewQueryVariableBuilder(dim).Label(dim).Datasource(clickhouse()).
			Description("The "+dim+"s of the service catalog opsmetrics last stored (docs/catalog.md): panels keep the services in the ones chosen. Empty without a catalog.").
			Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).Definition(q).
			Refresh(dashboard.VariableRefreshOnDashboardLoad)))
	}
	for _, dim := range []string{"service", "team", "environment"} {
		q := fmt.Sprintf("SELECT DISTINCT %s FROM deployment_events WHERE %s != '' ORDER BY %s", dim, dim, dim)
		if dim == "service" {
			// GROUP BY: 18.16's DISTINCT repeats values beside an IN subquery.
			q = fmt.Sprintf("SELECT service FROM deployment_events WHERE service != '' AND (%s) AND (%s) GROUP BY service ORDER BY service",
				catalogFilter("system", "service"), catalogFilter("tier", "service"))
		}
		out = append(out, all(dashboard.NewQueryVariableBuilder(dim).Label(dim).Datasource(clickhouse()).
			Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).Definition(q).
			Refresh(dashboard.VariableRefreshOnDashboardLoad)))
	}
	return out
}

// doraPanel is one DORA figure: its KPI, title, Grafana unit and levels.
type doraPanel struct {
	kpi, title, unit string
	levels           []dashboard.Threshold
	// about describes the figure; levelsNote how the stat colours it.
	about, levelsNote string
}

func steps(values []float64, colors []string) []dashboard.Threshold {
	out := []dashboard.Threshold{{Color: colors[0]}}
	for i, v := range values {
		out = append(out, dashboard.Threshold{Value: cog.ToPtr(v), Color: colors[i+1]})
	}
	return out
}

// doraPanels colours each DORA metric by the performance level of the
// default DORA report's clusters (metrics.LevelTables).
func doraPanels() []doraPanel {
	t := metrics.LevelTables[metrics.DefaultLevelTable]
	secs := func(ds [3]time.Duration) []float64 {
		return []float64{ds[0].Seconds(), ds[1].Seconds(), ds[2].Seconds()}
	}
	cfr := t.ChangeFailureRateBounds()
	levels := "Colour is the DORA " + t.Name + " performance level, best to worst: green elite, yellow high, orange medium, red low (docs/kpis.md)."
	return []doraPanel{
		{metrics.PanelDeploymentFrequency, metrics.Title(metrics.PanelDeploymentFrequency), "none",
			steps([]float64{t.DeploysPerDay[2], t.DeploysPerDay[1], t.DeploysPerDay[0]}, []string{"red", "orange", "yellow", "green"}),
			"Successful production deployments per day.", levels},
		{metrics.PanelLeadTime, metrics.Title(metrics.PanelLeadTime), "s",
			steps(secs(t.LeadTime), []string{"green", "yellow", "orange", "red"}),
			"Commit to the first successful production deployment that ships it (median).", levels},
		{metrics.PanelChangeFailureRate, metrics.Title(metrics.PanelChangeFailureRate), "percentunit", steps(cfr[:], []string{"green", "yellow", "orange", "red"}),
			"Failed (failure, rolled back, or blamed for an incident) ÷ production deployments.", levels},
		{metrics.PanelRecoveryTime, metrics.Title(metrics.PanelRecoveryTime), "s",
			steps(secs(t.Recovery), []string{"green", "yellow", "orange", "red"}),
			"A failed deployment to its incident's resolution, or to the next successful deployment (median).", levels},
		{metrics.PanelReworkRate, "Deployment rework rate", "percentunit", []dashboard.Threshold{{Color: "blue"}},
			"Unplanned deployments made because of an incident ÷ production deployments.", "No DORA levels are published for it."},
	}
}

// panelSQL is the KPI statement for the dashboard's range (or the range
// before it, of the same length) and slice variables.
func (o Options) panelSQL(kpi, bucket string, previous bool) string {
	po := o.panel(metrics.PanelOptions{From: "$__fromTime", To: "$__toTime", Filter: sliceFilter, Bucket: bucket})
	if previous {
		po.From, po.To = o.previous()
	}
	sql, err := metrics.PanelSQL(kpi, po)
	if err != nil {
		panic(err) // the KPIs are constants of this package
	}
	return sql
}

// DORA is the DORA overview for engineering leadership: the five DORA
// metrics over the dashboard's range with their performance level and the
// previous period of the same length, their trends by week and month, and
// the deployments that broke the change calendar of o.
func DORA(o Options) *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder("opsmetrics: DORA overview").
		Uid(DORAUID).
		Tags([]string{"opsmetrics"}).
		Description("The DORA software delivery metrics, with their performance levels (docs/kpis.md).").
		Time("now-30d", "now").
		Timezone(common.TimeZoneUtc).
		Links(links())
	for _, v := range multiSliceVariables() {
		b.WithVariable(v)
	}
	b.WithRow(dashboard.NewRowBuilder("This period and the one before"))
	for i, p := range doraPanels() {
		b.WithPanel(stat.NewPanelBuilder().Title(p.title).Description(p.about + " " + p.levelsNote + " The second figure is the previous period of the same length.").Datasource(clickhouse()).
			// 5+5+5+5+4: the grid's 24 columns.
			Unit(p.unit).Height(5).Span(uint32(5 - i/4)).ColorMode(common.BigValueColorModeBackground).
			Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(p.levels)).
			WithTarget(SQL("SELECT value AS `this period` FROM ("+o.panelSQL(p.kpi, "", false)+")", true).RefId("A")).
			WithTarget(SQL("SELECT value AS `previous period` FROM ("+o.panelSQL(p.kpi, "", true)+")", true).RefId("B")))
	}
	for _, bucket := range []string{"week", "month"} {
		b.WithRow(dashboard.NewRowBuilder("By " + bucket))
		for _, p := range doraPanels() {
			b.WithPanel(bucketPanel(p.title+" by "+bucket, p.about, bucket, p.unit, o.panelSQL(p.kpi, bucket, false)).Height(7).Span(8))
		}
	}
	return windowPanels(rollupAge(b, o), o)
}

// rollupAge adds, when o's KPI panels read the KPI rollup, a panel that
// says when it was built: their figures are of the rows stored then.
func rollupAge(b *dashboard.DashboardBuilder, o Options) *dashboard.DashboardBuilder {
	if o.KPI == nil {
		return b
	}
	sql, err := metrics.PanelRollupAgeSQL(o.panel(metrics.PanelOptions{}))
	if err != nil {
		panic(err) // the definitions are the configuration's, checked when read
	}
	return b.WithPanel(stat.NewPanelBuilder().Title("KPI rollup built").
		Description("The KPI figures are of the whole UTC days of the range, read from the KPI rollup, and of the rows stored when it was built " +
			"(serve rebuilds it every kpi.rollup_interval when rows changed; docs/kpis.md, Freshness). Its age in seconds.").
		Datasource(clickhouse()).Unit("s").Height(3).Span(24).
		Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).
			Steps(steps([]float64{3600}, []string{"green", "orange"}))).
		WithTarget(SQL("SELECT age FROM ("+sql+")", true).RefId("A")))
}

// OutsideWindowTable is the title of the DORA overview's table of the
// deployments that broke the change calendar.
const OutsideWindowTable = "Deployments outside change windows, newest first"

// windowPanels add the change calendar's row: the deployments outside
// their windows or in a freeze over the range and the one before, by
// week, and one by one.
func windowPanels(b *dashboard.DashboardBuilder, o Options) *dashboard.DashboardBuilder {
	po := o.panel(metrics.PanelOptions{From: "$__fromTime", To: "$__toTime", Filter: sliceFilter, Calendar: o.Calendar, StoredTiers: true})
	sql := func(from, to, bucket string) string {
		p := po
		p.From, p.To, p.Bucket = from, to, bucket
		s, err := metrics.PanelSQL(metrics.KPIDeploymentsOutsideWindow, p)
		if err != nil {
			panic(err) // the KPI is a constant
		}
		return s
	}
	prevFrom, prevTo := o.previous()
	list, err := metrics.PanelTableSQL(metrics.TableOutsideWindow, po)
	if err != nil {
		panic(err)
	}
	about := "Production deployments started outside their change windows or in a freeze (the change calendar of the configuration, " +
		"docs/change-windows.md); unplanned fixes for an open incident are not counted."
	title := metrics.Title(metrics.KPIDeploymentsOutsideWindow)
	b.WithRow(dashboard.NewRowBuilder("Change calendar"))
	b.WithPanel(stat.NewPanelBuilder().Title(title).Description(about + " The second figure is the previous period of the same length.").
		Datasource(clickhouse()).Unit("none").Height(7).Span(6).
		Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).
			Steps(steps([]float64{1}, []string{"green", "orange"}))).
		WithTarget(SQL("SELECT value AS `this period` FROM ("+sql("$__fromTime", "$__toTime", "")+")", true).RefId("A")).
		WithTarget(SQL("SELECT value AS `previous period` FROM ("+sql(prevFrom, prevTo, "")+")", true).RefId("B")))
	b.WithPanel(bucketPanel(title+" by week", about, "week", "none", sql("$__fromTime", "$__toTime", "week")).Height(7).Span(6))
	return b.WithPanel(table.NewPanelBuilder().Title(OutsideWindowTable).
		Description(about + " Class in_freeze: in a freeze; outside_window: outside the windows that decide for the deployment's scope.").
		Datasource(clickhouse()).Height(7).Span(12).WithTarget(SQL(list, true).RefId("A")))
}

// bucketPanel is a time series of a bucketed panel statement, whose
// partial column (a bucket the range's edges cut) is drawn as points of a
// series of its own, and says so.
func bucketPanel(title, about, bucket, unit, sql string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title(title).
		Description(about+" By "+bucket+" (weeks start on Monday, UTC). A "+bucket+" the range's edges cut is drawn as a point of its own, "+
			"\"partial "+bucket+"\", not as a full "+bucket+"; a rate per day there is over the days the range covers.").
		Datasource(clickhouse()).Unit(unit).
		OverrideByName("partial", []dashboard.DynamicConfigValue{{Id: "displayName", Value: "partial " + bucket},
			{Id: "custom.drawStyle", Value: "points"}, {Id: "custom.pointSize", Value: 9}}).
		WithTarget(SQL(sql, false).RefId("A"))
}
