package anomaly

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// The anomalies table is this package's: Detect writes it (record), and
// everything else reads it here: Records for the report, Flagged for
// learning, and the panels' SQL for the dashboards.

// Record is one anomalous interval recorded by detection.
type Record struct {
	Series                           baselines.Series
	Start                            time.Time
	Observed, Expected, Lower, Upper float64
	Direction                        string // up or down
	Tail                             float64
	Severity                         string // critical or warning
	Firing                           bool
	// Factors is what explains a firing anomaly, in words (Factors.Summary;
	// migration 8), empty when its KPI names none or it did not fire.
	Factors string
	// FactorList is the same factors, one by one in the order they were
	// found (Factors.Factors, without their tails; migration 12): none
	// where Factors says none stands out, and none in rows written
	// before.
	FactorList []Factor
}

// factorColumns are the anomalies table's columns of the factors
// (migration 12), one array element per factor.
type factorColumns struct {
	dims, values                                   []string
	observed, trials, expected, excess, shares, of []float64
}

// columnsOf lays fs out as the table's columns: empty arrays, never nil
// (the driver types them by their elements).
func columnsOf(fs []Factor) factorColumns {
	c := factorColumns{dims: []string{}, values: []string{}, observed: []float64{}, trials: []float64{}, expected: []float64{},
		excess: []float64{}, shares: []float64{}, of: []float64{}}
	for _, f := range fs {
		c.dims, c.values = append(c.dims, f.Dimension), append(c.values, f.Value)
		c.observed, c.trials, c.expected = append(c.observed, f.Observed), append(c.trials, f.Trials), append(c.expected, f.Expected)
		c.excess, c.shares, c.of = append(c.excess, f.Excess), append(c.shares, f.Share), append(c.of, f.Of)
	}
	return c
}

// factors reads the columns back; columns of unequal lengths (which
// record never writes) give none.
func (c factorColumns) factors() []Factor {
	n := len(c.dims)
	for _, l := range []int{len(c.values), len(c.observed), len(c.trials), len(c.expected), len(c.excess), len(c.shares), len(c.of)} {
		if l != n {
			return nil
		}
	}
	var out []Factor
	for i := range n {
		out = append(out, Factor{Dimension: c.dims[i], Value: c.values[i], Observed: c.observed[i], Trials: c.trials[i],
			Expected: c.expected[i], Excess: c.excess[i], Share: c.shares[i], Of: c.of[i]})
	}
	return out
}

// recordsSQL reads the anomalous intervals of a range. The table is a
// ReplacingMergeTree that detection rewrites: FINAL keeps the latest row of
// each interval.
const recordsSQL = `SELECT kpi, step, service, team, environment, interval_start, observed, expected, lower, upper,
	direction, tail, severity, firing, factors, factor_dimensions, factor_values, factor_observed, factor_trials,
	factor_expected, factor_excess, factor_shares, factor_of
	FROM anomalies FINAL
	WHERE interval_start >= ? AND interval_start < ?
	ORDER BY interval_start, series`

// Records reads the anomalous intervals that start in [from, to), in order.
func Records(ctx context.Context, conn driver.Conn, from, to time.Time) ([]Record, error) {
	rows, err := conn.Query(ctx, recordsSQL, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read anomalies: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var a Record
		var step string
		var firing uint8
		var fc factorColumns
		if err := rows.Scan(&a.Series.KPI, &step, &a.Series.Service, &a.Series.Team, &a.Series.Environment, &a.Start,
			&a.Observed, &a.Expected, &a.Lower, &a.Upper, &a.Direction, &a.Tail, &a.Severity, &firing, &a.Factors,
			&fc.dims, &fc.values, &fc.observed, &fc.trials, &fc.expected, &fc.excess, &fc.shares, &fc.of); err != nil {
			return nil, fmt.Errorf("read anomalies: %w", err)
		}
		a.Series.Step, a.Firing, a.FactorList = metrics.Step(step), firing == 1, fc.factors()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read anomalies: %w", err)
	}
	return out, nil
}

// Flagged are the intervals recorded as anomalies that start in [from,
// to), by series key: what learning leaves out (baselines.Config.Flagged).
func Flagged(ctx context.Context, conn driver.Conn, from, to time.Time) (baselines.Flagged, error) {
	rows, err := conn.Query(ctx, `SELECT series, interval_start FROM anomalies
		WHERE interval_start >= ? AND interval_start < ?`, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read flagged intervals: %w", err)
	}
	defer rows.Close()
	out := baselines.Flagged{}
	for rows.Next() {
		var key string
		var t time.Time
		if err := rows.Scan(&key, &t); err != nil {
			return nil, err
		}
		if out[key] == nil {
			out[key] = map[time.Time]bool{}
		}
		out[key][t.UTC()] = true
	}
	return out, rows.Err()
}

// Relearn learns baselines as of now (baselines.Learn) leaving out of their
// training the intervals already recorded as anomalies.
func Relearn(ctx context.Context, conn driver.Conn, cfg baselines.Config, now time.Time, log *slog.Logger) (baselines.Result, error) {
	from, to := cfg.TrainingSpan(now)
	flagged, err := Flagged(ctx, conn, from, to)
	if err != nil {
		return baselines.Result{}, err
	}
	cfg.Flagged = flagged
	return baselines.Learn(ctx, conn, cfg, now, log)
}

// AnomaliesSQL lists the series' anomalies in the range, for the anomalies
// dashboard (its variables and $__timeFilter: baselines.SeriesFilterSQL),
// each with the owner and tier labels its alert carries under the tiers t
// (Tiers.Owner), from the service catalog opsmetrics last stored
// (metrics.StoreCatalog).
func AnomaliesSQL(t Tiers) string {
	return `SELECT interval_start AS time, ` + baselines.HumanSQL("o") + ` AS observed, ` + baselines.HumanSQL("e") + ` AS expected,
	` + baselines.HumanSQL("lo") + ` AS lower, ` + baselines.HumanSQL("hi") + ` AS upper, direction, severity, tail,
	if(firing = 1, 'yes', 'no') AS alerted, if(c_owner != '', c_owner, if(team != '', team, '` + NoOwner + `')) AS owner,
	` + t.NameSQL("c_tier") + ` AS tier, factors
FROM (
	SELECT *
	FROM (
		SELECT series, interval_start, team, ` + metrics.ServiceKey("service") + ` AS key, observed AS o, expected AS e, lower AS lo, upper AS hi,
			direction, severity, tail, firing, factors
		FROM anomalies FINAL
		WHERE ` + baselines.SeriesFilterSQL + ` AND $__timeFilter(interval_start)
	)
	ANY LEFT JOIN (SELECT key, owner AS c_owner, tier AS c_tier FROM ` + metrics.CurrentServiceCatalog + `) USING (key)
)
ANY LEFT JOIN ` + baselines.KindsSQL + ` USING (series)
ORDER BY time DESC`
}

// FactorsSQL lists the contributing factors of the series' anomalies in
// the range, one row per factor in the order detection found them
// (Factor): the dimension and value, its harmful events, trials, events
// expected at the baseline, excess over them, share of its dimension's
// excess in percent, and the events it was counted among.
const FactorsSQL = `SELECT time, f_dimension AS dimension, f_value AS value, f_observed AS events, f_trials AS trials,
	round(f_expected, 2) AS expected, round(f_excess, 2) AS excess, round(100 * f_share, 1) AS share, f_of AS among
FROM (
	SELECT interval_start AS time, factor_dimensions, factor_values, factor_observed, factor_trials, factor_expected,
		factor_excess, factor_shares, factor_of
	FROM anomalies FINAL
	WHERE ` + baselines.SeriesFilterSQL + ` AND $__timeFilter(interval_start) AND notEmpty(factor_dimensions)
		AND length(factor_values) = length(factor_dimensions) AND length(factor_observed) = length(factor_dimensions)
		AND length(factor_trials) = length(factor_dimensions) AND length(factor_expected) = length(factor_dimensions)
		AND length(factor_excess) = length(factor_dimensions) AND length(factor_shares) = length(factor_dimensions)
		AND length(factor_of) = length(factor_dimensions)
)
ARRAY JOIN factor_dimensions AS f_dimension, factor_values AS f_value, factor_observed AS f_observed, factor_trials AS f_trials,
	factor_expected AS f_expected, factor_excess AS f_excess, factor_shares AS f_share, factor_of AS f_of
ORDER BY time DESC, f_share DESC`

// AnnotationSQL marks the series' anomalies on the dashboard's time axis.
var AnnotationSQL = `SELECT interval_start AS time, concat(severity, ' ', direction, ' anomaly: observed ', toString(round(observed, 3)),
	', expected ', toString(round(expected, 3)), if(firing = 1, ' (alerted)', ''), if(factors = '', '', concat('. ', factors))) AS text
FROM anomalies FINAL
WHERE ` + baselines.SeriesFilterSQL + ` AND $__timeFilter(interval_start)
ORDER BY time`

// JudgedSeriesSQL draws the series the dashboard's variables name
// (baselines.PointsSQL) against the band of the baseline that judged each interval
// at its time (judged_intervals), not today's: an interval never judged
// has no band (NULL, a gap). Flagged is the value of the intervals
// detection flagged, NULL elsewhere, for points drawn over the line.
var JudgedSeriesSQL = `SELECT interval_start AS time, ` + baselines.HumanSQL("value") + ` AS observed,
	if(judged = 1, ` + baselines.HumanSQL("e") + `, NULL) AS expected, if(judged = 1, ` + baselines.HumanSQL("lo") + `, NULL) AS lower,
	if(judged = 1, ` + baselines.HumanSQL("hi") + `, NULL) AS upper, if(flagged = 1, ` + baselines.HumanSQL("value") + `, NULL) AS flagged
FROM ` + baselines.PointsSQL + `
ANY LEFT JOIN (
	SELECT series, interval_start, toUInt8(status = 'ready') AS judged, expected AS e, lower AS lo, upper AS hi, anomaly AS flagged
	FROM judged_intervals FINAL
	WHERE ` + baselines.SeriesFilterSQL + ` AND $__timeFilter(interval_start)
) USING (series, interval_start)
ORDER BY time`

// JudgementSQL says in one line (judgement) how much of the chosen series'
// range detection judged, or, where it judged none, the command that
// judges the range, so the band panel is never left without a note.
var JudgementSQL = `SELECT if(judged = 0,
	concat('no judged intervals for this series in range; run opsmetrics anomaly detect --from ', toString(toDate($__fromTime)),
		' --to ', toString(toDate($__toTime))),
	concat(toString(judged), ' intervals judged, ', toString(flagged), ' flagged')) AS judgement
FROM (
	SELECT countIf(status = 'ready') AS judged, countIf(status = 'ready' AND anomaly = 1) AS flagged
	FROM judged_intervals FINAL
	WHERE ` + baselines.SeriesFilterSQL + ` AND $__timeFilter(interval_start)
)`
