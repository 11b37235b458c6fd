package baselines

// The SQL of the Grafana panels that read the tables this package owns
// (kpi_series, baselines, current_baselines), for package dashboards and
// the panels of package anomaly. The
// ${kpi}, ${step}, ${service}, ${team} and ${environment} are the
// dashboard's variables, $__timeFilter the ClickHouse data source's macro.

// KPIsSQL lists the KPIs with a current baseline, for the dashboard's KPI
// variable; Slices is the table its service, team and environment
// variables list the values of.
const (
	KPIsSQL = "SELECT DISTINCT kpi FROM current_baselines ORDER BY kpi"
	Slices  = "current_baselines"
)

// SeriesFilterSQL selects the one series the dashboard's variables name, in
// a table with the series columns.
const SeriesFilterSQL = `kpi = '${kpi}' AND step = '${step}' AND service = '${service}' AND team = '${team}'
	AND environment = '${environment}'`

// HumanSQL converts a KPI value of a table with a kind column to human
// units in SQL: durations in hours, rates in percent, counts as they are.
func HumanSQL(col string) string {
	return "multiIf(kind = 'duration', " + col + " / 3600, kind = 'rate', " + col + " * 100, " + col + ")"
}

// KindsSQL is a FROM item of every current series (series) with its kind
// (kind).
const KindsSQL = `(SELECT series, any(kind) AS kind FROM current_baselines GROUP BY series)`

// PointsSQL is a FROM item of the observed intervals (series, kind,
// interval_start, value) of the series the variables name in the
// dashboard's range, which anomaly.JudgedSeriesSQL draws against the
// bands they were judged by.
var PointsSQL = `(
	SELECT series, kind, interval_start, value
	FROM kpi_series FINAL
	WHERE ` + SeriesFilterSQL + ` AND present = 1 AND $__timeFilter(interval_start)
)`

// StatusSQL lists the current baselines of the KPI: which series are ready
// and which still learning.
const StatusSQL = `SELECT kpi, step, service, team, environment, status, family, train_from, train_to, trained_at
FROM current_baselines
WHERE slot = 0 AND kpi = '${kpi}'
ORDER BY status, service, team, environment`
