package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// seriesFilter selects the one series the variables name, in a table with
// the series columns.
const seriesFilter = `kpi = '${kpi}' AND step = '${step}' AND service = '${service}' AND team = '${team}'
	AND environment = '${environment}'`

// human converts a KPI value to human units in SQL: durations in hours,
// rates in percent, counts as they are.
func human(col string) string {
	return "multiIf(kind = 'duration', " + col + " / 3600, kind = 'rate', " + col + " * 100, " + col + ")"
}

// SeriesSQL draws the observed series against its learnt band. The band
// of an interval is its seasonal slot's: day of week for daily counts and
// durations, hour of week for hourly ones, one slot for rates.
var SeriesSQL = `SELECT interval_start AS time, ` + human("value") + ` AS observed,
	` + human("e") + ` AS expected, ` + human("lo") + ` AS lower, ` + human("hi") + ` AS upper
FROM (
	SELECT series, kind, interval_start, value,
		toUInt16(multiIf(kind = 'rate', 0, step = 'day', toDayOfWeek(interval_start) - 1,
			(toDayOfWeek(interval_start) - 1) * 24 + toHour(interval_start))) AS slot
	FROM kpi_series FINAL
	WHERE ` + seriesFilter + ` AND present = 1 AND $__timeFilter(interval_start)
)
ANY LEFT JOIN (SELECT series, slot, expected AS e, lower AS lo, upper AS hi FROM current_baselines) USING (series, slot)
ORDER BY time`

// AnomaliesSQL lists the series' anomalies in the range.
var AnomaliesSQL = `SELECT interval_start AS time, ` + human("o") + ` AS observed, ` + human("e") + ` AS expected,
	` + human("lo") + ` AS lower, ` + human("hi") + ` AS upper, direction, severity, tail,
	if(firing = 1, 'yes', 'no') AS alerted
FROM (
	SELECT series, interval_start, observed AS o, expected AS e, lower AS lo, upper AS hi, direction, severity, tail, firing
	FROM anomalies FINAL
	WHERE ` + seriesFilter + ` AND $__timeFilter(interval_start)
)
ANY LEFT JOIN (SELECT series, any(kind) AS kind FROM current_baselines GROUP BY series) USING (series)
ORDER BY time DESC`

// AnnotationSQL marks the series' anomalies on the time axis.
var AnnotationSQL = `SELECT interval_start AS time, concat(severity, ' ', direction, ' anomaly: observed ', toString(round(observed, 3)),
	', expected ', toString(round(expected, 3)), if(firing = 1, ' (alerted)', '')) AS text
FROM anomalies FINAL
WHERE ` + seriesFilter + ` AND $__timeFilter(interval_start)
ORDER BY time`

// StatusSQL lists the current baselines of the KPI: which series are ready
// and which still learning.
const StatusSQL = `SELECT kpi, step, service, team, environment, status, family, train_from, train_to, trained_at
FROM current_baselines
WHERE slot = 0 AND kpi = '${kpi}'
ORDER BY status, service, team, environment`

// Anomalies is the anomalies and baselines dashboard: one KPI series, chosen
// by the variables, drawn with its learnt band and its anomalies. Alerts
// link here with the variables set to their series.
func Anomalies() *dashboard.DashboardBuilder {
	kpi := dashboard.NewQueryVariableBuilder("kpi").Label("KPI").Datasource(clickhouse()).
		Query(dashboard.StringOrMap{String: cog.ToPtr("SELECT DISTINCT kpi FROM current_baselines ORDER BY kpi")}).
		Refresh(dashboard.VariableRefreshOnDashboardLoad)
	step := dashboard.NewCustomVariableBuilder("step").Label("step").Values(dashboard.StringOrMap{String: cog.ToPtr("day,hour")})
	b := dashboard.NewDashboardBuilder("opsmetrics: anomalies and baselines").
		Uid(AnomaliesUID).
		Tags([]string{"opsmetrics"}).
		Description("Each KPI series with the band its baseline learnt, and the anomalies found (docs/baselines.md).").
		Time("now-30d", "now").
		Timezone(common.TimeZoneUtc).
		Links(links()).
		WithVariable(kpi).
		WithVariable(step).
		Annotation(dashboard.NewAnnotationQueryBuilder().Name("anomalies").Datasource(clickhouse()).Enable(true).
			IconColor("red").Target(SQL(AnnotationSQL, true).RefId("anomalies")))
	for _, v := range sliceVariables("current_baselines") {
		b.WithVariable(v)
	}
	return b.
		WithPanel(timeseries.NewPanelBuilder().Title("${kpi} (${step}): observed and expected band").
			Description("Durations in hours, rates in percent, counts as counted. The band is the baseline's central interval for each interval's seasonal slot.").
			Datasource(clickhouse()).Unit("short").Height(10).Span(24).
			WithTarget(SQL(SeriesSQL, false).RefId("A"))).
		WithPanel(table.NewPanelBuilder().Title("Anomalies of this series").Datasource(clickhouse()).Height(8).Span(24).
			WithTarget(SQL(AnomaliesSQL, true).RefId("A"))).
		WithPanel(table.NewPanelBuilder().Title("Baselines of ${kpi}: ready or learning").Datasource(clickhouse()).Height(8).Span(24).
			WithTarget(SQL(StatusSQL, true).RefId("A")))
}
