package dashboards

import (
	"fmt"
	"strings"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/histogram"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// Dashboard UIDs of the operations dashboards.
const (
	IncidentsUID = "opsmetrics-incidents"
	PatchesUID   = "opsmetrics-patches"
)

// kpiSQL is the statement of kpi with po, over the dashboard's range and
// slice variables, with o's definitions.
func (o Options) kpiSQL(kpi string, po metrics.PanelOptions) string {
	po.From, po.To, po.Filter = "$__fromTime", "$__toTime", sliceFilter
	sql, err := metrics.PanelSQL(kpi, o.panel(po))
	if err != nil {
		panic(err) // the KPIs are constants of this package
	}
	return sql
}

// tableSQL is the statement of the panel table name over the dashboard's
// range and slice variables, with o's definitions (of the rollup's whole
// days for the tables that read it).
func (o Options) tableSQL(name string) string {
	sql, err := metrics.PanelTableSQL(name, o.panel(metrics.PanelOptions{From: "$__fromTime", To: "$__toTime", Filter: sliceFilter}))
	if err != nil {
		panic(err)
	}
	return sql
}

func kpiDashboard(title, uid, about string) *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder(title).Uid(uid).Tags([]string{"opsmetrics"}).Description(about).
		Time("now-30d", "now").Timezone(common.TimeZoneUtc).Links(links())
	for _, v := range multiSliceVariables() {
		b.WithVariable(v)
	}
	return b
}

func statPanel(title, unit, sql, about string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(about).Datasource(clickhouse()).Unit(unit).Height(4).Span(6).
		WithTarget(SQL(sql, true).RefId("A"))
}

// Incidents is the incidents and recovery dashboard for operations: MTTD,
// MTTA and MTTR by severity and service, incident counts, and the
// incident→deployment attribution.
func Incidents(o Options) *dashboard.DashboardBuilder {
	b := kpiDashboard("opsmetrics: incidents and recovery", IncidentsUID,
		"Incident response times, counts and the incident→deployment attribution (docs/kpis.md).")
	b = rollupAge(b, o)
	b.WithRow(dashboard.NewRowBuilder("Over the range"))
	for _, p := range []struct{ kpi, title, unit, about string }{
		{metrics.PanelIncidents, metrics.Title(metrics.PanelIncidents), "none", "Production incidents whose impact (or detection) started in the range."},
		{metrics.PanelMTTD, metrics.Title(metrics.PanelMTTD), "s", "Impact start → detected."},
		{metrics.PanelMTTA, metrics.Title(metrics.PanelMTTA), "s", "Detected → acknowledged."},
		{metrics.PanelMTTR, metrics.Title(metrics.PanelMTTR), "s", "Detected → resolved, over resolved incidents."},
	} {
		b.WithPanel(statPanel(p.title, p.unit, o.kpiSQL(p.kpi, metrics.PanelOptions{}), p.about))
	}
	for _, group := range []string{"severity", "service"} {
		b.WithRow(dashboard.NewRowBuilder("By " + group))
		for _, p := range []struct{ kpi, title, unit, about string }{
			{metrics.PanelIncidents, metrics.Title(metrics.PanelIncidents), "none", "Production incidents whose impact (or detection) started in the range"},
			{metrics.PanelMTTD, metrics.Title(metrics.PanelMTTD), "s", "Median time from impact start to detection"},
			{metrics.PanelMTTA, metrics.Title(metrics.PanelMTTA), "s", "Median time from detection to acknowledgement"},
			{metrics.PanelMTTR, metrics.Title(metrics.PanelMTTR), "s", "Median time from detection to resolution, over resolved incidents"},
		} {
			b.WithPanel(bargauge.NewPanelBuilder().Title(p.title + " by " + group).Description(p.about + ", by " + group + ".").
				Datasource(clickhouse()).Unit(p.unit).
				Height(7).Span(6).WithTarget(SQL(o.kpiSQL(p.kpi, metrics.PanelOptions{GroupBy: group}), true).RefId("A")))
		}
	}
	b.WithRow(dashboard.NewRowBuilder("Trend"))
	b.WithPanel(bucketPanel("MTTR (median) by week", "Median time from detection to resolution of the incidents whose impact started in the week.",
		"week", "s", o.kpiSQL(metrics.PanelMTTR, metrics.PanelOptions{Bucket: "week"})).Height(7).Span(12))
	b.WithPanel(bucketPanel("Incidents by week", "Production incidents whose impact (or detection) started in the week.",
		"week", "none", o.kpiSQL(metrics.PanelIncidents, metrics.PanelOptions{Bucket: "week"})).Height(7).Span(12))
	b.WithRow(dashboard.NewRowBuilder("Attribution"))
	return b.WithPanel(table.NewPanelBuilder().Title("Incidents and the deployments that caused them").
		Description("Explicit: the incident names its cause. Inferred: the latest successful deployment of the same service and environment within the gap before impact. Unattributed: neither.").
		Datasource(clickhouse()).Height(10).Span(24).WithTarget(SQL(o.tableSQL(metrics.TableAttributions), true).RefId("A")))
}

// Patches is the patch management dashboard: the latency distribution,
// compliance per severity against its deadline (o's, the defaults
// without), and overdue patches.
func Patches(o Options) *dashboard.DashboardBuilder {
	var q metrics.Query
	if d := o.definitions(); d != nil {
		q = *d
	}
	var deadlines []string
	for _, sev := range metrics.Severities[:4] {
		deadlines = append(deadlines, fmt.Sprintf("%s %s", sev, days(q.Deadline(sev))))
	}
	b := kpiDashboard("opsmetrics: patch management", PatchesUID,
		"Patch latency, compliance with the deadline per severity ("+strings.Join(deadlines, ", ")+") and overdue patches (docs/kpis.md).")
	b = rollupAge(b, o)
	b.WithPanel(statPanel(metrics.Title(metrics.PanelPatchCompliance), "percentunit", o.kpiSQL(metrics.PanelPatchCompliance, metrics.PanelOptions{}),
		"Applied within the severity's deadline ÷ due (deadline passed, or an outcome).").Span(8))
	b.WithPanel(statPanel(metrics.Title(metrics.PanelPatchLatency), "s", o.kpiSQL(metrics.PanelPatchLatency, metrics.PanelOptions{}),
		"Median time from a patch's release to its application on a target.").Span(8))
	b.WithPanel(statPanel(metrics.Title(metrics.PanelPatchesOverdue), "none", o.kpiSQL(metrics.PanelPatchesOverdue, metrics.PanelOptions{}),
		"Not applied and past their deadline at the end of the range.").Span(8))
	b.WithPanel(bargauge.NewPanelBuilder().Title("Compliance by severity").
		Description("Applied within the deadline ÷ due, per severity. Deadlines: " + strings.Join(deadlines, ", ") + ".").
		Datasource(clickhouse()).Unit("percentunit").Min(0).Max(1).
		Height(7).Span(12).WithTarget(SQL(o.kpiSQL(metrics.PanelPatchCompliance, metrics.PanelOptions{GroupBy: "severity"}), true).RefId("A")))
	b.WithPanel(histogram.NewPanelBuilder().Title("Patch latency distribution").
		Description("How many patch targets took how long from release to application, in hours.").
		Datasource(clickhouse()).Unit("h").
		Height(7).Span(12).WithTarget(SQL(o.tableSQL(metrics.TablePatchLatencies), true).RefId("A")))
	b.WithPanel(bucketPanel("Compliance by month", "Applied within the severity's deadline ÷ due, of the patches released in the month.",
		"month", "percentunit", o.kpiSQL(metrics.PanelPatchCompliance, metrics.PanelOptions{Bucket: "month"})).Height(7).Span(24))
	return b.WithPanel(table.NewPanelBuilder().Title("Overdue patches").
		Description("Patch targets not applied by their deadline at the end of the range, the longest overdue first.").
		Datasource(clickhouse()).Height(10).Span(24).
		WithTarget(SQL(o.tableSQL(metrics.TableOverduePatches), true).RefId("A")))
}

func days(d time.Duration) string { return fmt.Sprintf("%.0f days", d.Hours()/24) }
