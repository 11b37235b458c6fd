package baselines

// The SQL of the Grafana panels that read the tables this package owns
// (kpi_series, baselines, current_baselines), for package dashboards and
// the panels of package anomaly. ${series} is the dashboard's series
// variable (a Series.Key), $__timeFilter the ClickHouse data source's
// macro.

// SeriesOptionsSQL lists, for the dashboard's series variable, every
// series with a current baseline and an observed interval in the range:
// its key (the value, first column, as the ClickHouse data source reads a
// two-column variable query) and a readable name (the text), such as
// "change_failure_rate · day · team=payments". A link that names a
// series by its parts (${kpi}, ${step}, ${service}, ${team},
// ${environment}: hidden variables that alert links set) puts that
// series first, so Grafana selects it.
const SeriesOptionsSQL = `SELECT series, concat(kpi, ' · ', step, ' · ', multiIf(
		service != '', concat('service=', service, ' · team=', team, ' · environment=', environment),
		team != '', concat('team=', team),
		environment != '', concat('environment=', environment),
		'all')) AS text
FROM current_baselines
WHERE slot = 0 AND series IN (SELECT series FROM kpi_series FINAL WHERE present = 1 AND $__timeFilter(interval_start))
ORDER BY kpi = '${kpi}' AND step = '${step}' AND service = '${service}' AND team = '${team}' AND environment = '${environment}' DESC,
	kpi, step, service, team, environment`

// SeriesFilterSQL selects the one series the dashboard's series variable
// names, in a table with the series column.
const SeriesFilterSQL = `series = '${series}'`

// UnitSQL is the Grafana unit of the chosen series' values in HumanSQL's
// units (unit): hours for durations, percent for rates, plain numbers for
// counts; the band panel takes its unit from it.
const UnitSQL = `SELECT multiIf(kind = 'duration', 'h', kind = 'rate', 'percent', 'short') AS unit
FROM current_baselines
WHERE slot = 0 AND ` + SeriesFilterSQL

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

// StatusSQL lists the current baselines of the chosen series' KPI: which
// series are ready and which still learning.
const StatusSQL = `SELECT kpi, step, service, team, environment, status, family, train_from, train_to, trained_at
FROM current_baselines
WHERE slot = 0 AND kpi IN (SELECT kpi FROM current_baselines WHERE ` + SeriesFilterSQL + `)
ORDER BY status, service, team, environment`

// ForecastSQL draws the chosen series on one time axis with the current
// baseline's forecast: every interval of the range (at the series' step,
// at most 5,000) with the observed value where there is one, and, from
// the end of the training window on, the expected value and band of its
// seasonal slot in current_baselines, in HumanSQL's units. The band is
// the one the table holds, detection's at 1 − α (far wider than the 90%
// planning band of `opsmetrics forecast`, which the table does not hold);
// its rates are at the typical number of trials.
var ForecastSQL = `SELECT time, observed,
	if(time >= train_to, ` + HumanSQL("e") + `, NULL) AS expected,
	if(time >= train_to, ` + HumanSQL("lo") + `, NULL) AS lower,
	if(time >= train_to, ` + HumanSQL("hi") + `, NULL) AS upper
FROM (
	SELECT time, kind, train_to, observed,
		toUInt16(multiIf(slots = 7, toDayOfWeek(time) - 1, slots = 168, (toDayOfWeek(time) - 1) * 24 + toHour(time), 0)) AS slot
	FROM (
		SELECT toDateTime(toUInt32(toStartOfDay($__fromTime)) + i * s, 'UTC') AS time, kind, train_to, slots
		FROM (
			SELECT if(any(step) = 'hour', 3600, 86400) AS s, any(kind) AS kind, any(train_to) AS train_to, max(slot) + 1 AS slots,
				range(toUInt32(least(5000, intDiv(toUInt32($__toTime) - toUInt32(toStartOfDay($__fromTime)), s)))) AS steps
			FROM current_baselines
			WHERE ` + SeriesFilterSQL + `
			HAVING count() > 0
		)
		ARRAY JOIN steps AS i
	)
	ANY LEFT JOIN (
		SELECT interval_start AS time, toNullable(` + HumanSQL("value") + `) AS observed
		FROM kpi_series FINAL
		WHERE ` + SeriesFilterSQL + ` AND present = 1 AND $__timeFilter(interval_start)
	) USING (time)
)
ANY LEFT JOIN (
	SELECT slot, expected AS e, lower AS lo, upper AS hi
	FROM current_baselines
	WHERE ` + SeriesFilterSQL + `
) USING (slot)
ORDER BY time`
