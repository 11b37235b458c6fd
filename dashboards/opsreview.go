package dashboards

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// OpsReviewUID is the ops-review dashboard.
const OpsReviewUID = "opsmetrics-ops-review"

// reviewRanges are the ranges an ops review compares: the dashboard's,
// the one before it of the same length, and the same range a quarter (91
// days) earlier.
func (o Options) reviewRanges() []struct{ name, from, to string } {
	from, to := o.previous()
	return []struct{ name, from, to string }{
		{"this_period", "$__fromTime", "$__toTime"},
		{"previous_period", from, to},
		{"quarter_ago", metrics.ShiftSQL("$__fromTime", "-7862400"), metrics.ShiftSQL("$__toTime", "-7862400")},
	}
}

// previousFrom is the start of the range before the dashboard's, of the
// same length, computed so that it never wraps below 1970.
var previousFrom = metrics.ShiftSQL("$__fromTime", "-(toInt64($__toTime) - toInt64($__fromTime))")

// previous is the range before the dashboard's, of the same length, for
// o's KPI panels: of the whole days before those of the range when they
// read the rollup, so that the two do not share the day the range starts
// in.
func (o Options) previous() (from, to string) {
	if o.KPI == nil {
		return previousFrom, "$__fromTime"
	}
	f, t := metrics.WholeDaysSQL("$__fromTime", "$__toTime")
	return metrics.ShiftSQL(f, "-(toInt64("+t+") - toInt64("+f+"))"), f
}

// reviewKPIs are the KPIs of the review table, with the unit of the row
// and the SQL that turns the base value into it.
var reviewKPIs = []struct{ kpi, name, unit, scale string }{
	{metrics.PanelDeploymentFrequency, "Deployment frequency", "per day", "1"},
	{metrics.PanelLeadTime, metrics.Title(metrics.PanelLeadTime), "hours", "1 / 3600"},
	{metrics.PanelChangeFailureRate, metrics.Title(metrics.PanelChangeFailureRate), "%", "100"},
	{metrics.PanelRecoveryTime, "Failed-deployment recovery (median)", "hours", "1 / 3600"},
	{metrics.PanelReworkRate, metrics.Title(metrics.PanelReworkRate), "%", "100"},
	{metrics.PanelIncidents, metrics.Title(metrics.PanelIncidents), "count", "1"},
	{metrics.PanelMTTR, metrics.Title(metrics.PanelMTTR), "hours", "1 / 3600"},
	{metrics.PanelPatchCompliance, metrics.Title(metrics.PanelPatchCompliance), "%", "100"},
}

func (o Options) rangeSQL(kpi, from, to, group string) string {
	sql, err := metrics.PanelSQL(kpi, o.panel(metrics.PanelOptions{From: from, To: to, Filter: sliceFilter, GroupBy: group}))
	if err != nil {
		panic(err) // the KPIs are constants of this package
	}
	return sql
}

// ReviewSQL is the review table: each KPI over the three ranges, in human
// units, and its change against the previous period. Over the rollup all
// come from one pass (reviewRollupSQL); over the raw rows each is a scalar
// subquery, which ClickHouse runs one after the other: as the rows of one
// UNION ALL, pivoted, the 24 raw-row statements ran at once and took more
// than the 9.3 GiB a query may at 10M events.
func ReviewSQL(o Options) string {
	if o.KPI != nil {
		return o.reviewRollupSQL()
	}
	var rows []string
	for _, k := range reviewKPIs {
		cols := []string{"'" + k.name + "' AS kpi", "'" + k.unit + "' AS unit"}
		for _, r := range o.reviewRanges() {
			cols = append(cols, "(SELECT value * "+k.scale+" FROM ("+o.rangeSQL(k.kpi, r.from, r.to, "")+")) AS "+r.name)
		}
		rows = append(rows, "SELECT "+strings.Join(cols, ", "))
	}
	return "SELECT kpi, unit, this_period, previous_period, quarter_ago, this_period - previous_period AS change\nFROM (\n" +
		strings.Join(rows, "\nUNION ALL\n") + "\n)"
}

// reviewRollupSQL is ReviewSQL of the rollup: every KPI of every range
// from one pass over it (metrics.PanelPeriodsSQL), a row per KPI.
func (o Options) reviewRollupSQL() string {
	var kpis []string
	var periods [][2]string
	for _, k := range reviewKPIs {
		kpis = append(kpis, k.kpi)
	}
	for _, r := range o.reviewRanges() {
		periods = append(periods, [2]string{r.from, r.to})
	}
	sql, err := metrics.PanelPeriodsSQL(kpis, periods, o.panel(metrics.PanelOptions{Filter: sliceFilter}))
	if err != nil {
		panic(err) // the KPIs are constants of this package
	}
	var rows []string
	for i, k := range reviewKPIs {
		var vals []string
		for j := range periods {
			vals = append(vals, fmt.Sprintf("%s_%d * %s", k.kpi, j, k.scale))
		}
		rows = append(rows, fmt.Sprintf("(%d, '%s', '%s', %s)", i, k.name, k.unit, strings.Join(vals, ", ")))
	}
	return "SELECT tupleElement(r, 2) AS kpi, tupleElement(r, 3) AS unit, tupleElement(r, 4) AS this_period, tupleElement(r, 5) AS previous_period,\n" +
		"\ttupleElement(r, 6) AS quarter_ago, this_period - previous_period AS change\n" +
		"FROM (SELECT arrayJoin([" + strings.Join(rows, ",\n\t") + "]) AS r FROM (\n" + sql + "\n))\nORDER BY tupleElement(r, 1)"
}

// MoversSQL is the ten services whose KPI moved most against the previous
// period, in the KPI's human unit.
func MoversSQL(o Options, kpi, scale string) string {
	cur, prev := o.reviewRanges()[0], o.reviewRanges()[1]
	return `SELECT key AS service, now_value * ` + scale + ` AS this_period, before * ` + scale + ` AS previous_period,
	(now_value - before) * ` + scale + ` AS change
FROM (SELECT key, value AS now_value FROM (` + o.rangeSQL(kpi, cur.from, cur.to, "service") + `))
ALL INNER JOIN (SELECT key, value AS before FROM (` + o.rangeSQL(kpi, prev.from, prev.to, "service") + `)) USING (key)
WHERE isNotNull(now_value) AND isNotNull(before)
ORDER BY abs(change) DESC, key
LIMIT 10`
}

// OpsReview is the ops-review dashboard: the period against the previous
// one and the same period a quarter ago, and the top movers.
func OpsReview(o Options) *dashboard.DashboardBuilder {
	b := kpiDashboard("opsmetrics: ops review", OpsReviewUID,
		"The period against the one before it and the same period a quarter ago, and the services that moved most (docs/kpis.md).")
	b = rollupAge(b, o)
	b.WithPanel(table.NewPanelBuilder().Title("This period, the previous one, and a quarter ago").
		Description("Durations in hours, rates in percent; change is against the previous period of the same length.").
		Datasource(clickhouse()).Height(10).Span(24).WithTarget(SQL(ReviewSQL(o), true).RefId("A")))
	for _, m := range []struct{ kpi, title, scale, unit, about string }{
		{metrics.PanelChangeFailureRate, "Top movers: change failure rate", "100", "percent",
			"The ten services whose change failure rate moved most against the previous period; the change is in percentage points."},
		{metrics.PanelMTTR, "Top movers: MTTR", "1 / 3600", "h",
			"The ten services whose median time to resolve moved most against the previous period, in hours."},
		{metrics.PanelDeploymentFrequency, "Top movers: deployment frequency", "1", "none",
			"The ten services whose successful production deployments per day moved most against the previous period."},
	} {
		b.WithPanel(table.NewPanelBuilder().Title(m.title).Description(m.about).Datasource(clickhouse()).Unit(m.unit).Height(8).Span(8).
			WithTarget(SQL(MoversSQL(o, m.kpi, m.scale), true).RefId("A")))
	}
	return b
}
