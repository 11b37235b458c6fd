package metrics

import (
	"fmt"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// Panel queries are the KPI figures of the Grafana dashboards, as single
// SQL statements the ClickHouse data source runs. They are built from the
// same sources, folds, attribution and lead-time definitions as Summaries,
// with the range given as SQL expressions (the plugin's $__fromTime and
// $__toTime: chsql.TimeOf) where Summaries bind times, and rendered with
// every value inlined (chsql.Inline). Quantiles interpolate in SQL exactly
// as quantile does in Go. TestPanelsAgreeWithSummaries holds the two to the
// same numbers.

// Panel KPIs.
const (
	PanelDeploymentFrequency = "deployment_frequency" // successful production deployments per day
	PanelChangeFailureRate   = "change_failure_rate"
	PanelReworkRate          = "rework_rate"
	PanelLeadTime            = "lead_time"     // median, seconds
	PanelRecoveryTime        = "recovery_time" // median, seconds
	PanelDeployments         = "deployments"   // production deployments, any status
	PanelIncidents           = "incidents"     // production incidents by impact start
	PanelMTTR                = "mttr"          // median detected → resolved, seconds
	PanelMTTD                = "mttd"          // median impact start → detected, seconds
	PanelMTTA                = "mtta"          // median detected → acknowledged, seconds
	PanelPatchLatency        = "patch_latency" // median released → applied, seconds
	PanelPatchCompliance     = "patch_compliance"
	PanelPatchesOverdue      = "patches_overdue"
)

// PanelKPIs are the KPIs PanelSQL knows, in dashboard order.
var PanelKPIs = []string{PanelDeploymentFrequency, PanelLeadTime, PanelChangeFailureRate, PanelRecoveryTime, PanelReworkRate,
	PanelDeployments, PanelIncidents, PanelMTTR, PanelMTTD, PanelMTTA, PanelPatchLatency, PanelPatchCompliance, PanelPatchesOverdue,
	KPIDeploymentsOutsideWindow}

// PanelOptions say how a panel names its range and filters.
type PanelOptions struct {
	// From and To are SQL expressions of the range [From, To).
	From, To string
	// Filter returns an SQL condition on a dimension column (service, team
	// or environment), for the dashboard's variables; nil filters nothing.
	Filter func(col string) string
	// Bucket is "" for one value over the range, or "week" or "month" for
	// a time series with a row per bucket.
	Bucket string
	// GroupBy, instead, gives a row per "severity" (incidents and patches)
	// or "service", with the group as the first column, key.
	GroupBy string
	// Production, MaxGap, LeadTimeLookback, LeadTimeFromMerge and
	// PatchDeadlines are the KPI definitions, as Query's.
	Production        []string
	MaxGap            time.Duration
	LeadTimeLookback  time.Duration
	LeadTimeFromMerge bool
	PatchDeadlines    map[string]time.Duration
	// Calendar and ServiceTiers judge deployments_outside_window, as
	// Query's do (nil: no calendar, the KPI is 0).
	Calendar     *calendar.Calendar
	ServiceTiers map[string]string
	// StoredTiers, instead, reads each service's tier from the service
	// catalog opsmetrics last stored (StoreCatalog): dashboards follow the
	// catalog without being rebuilt.
	StoredTiers bool
	// Rollup reads the KPIs it can from the latest KPI rollup built for
	// these definitions, over whole UTC days (panelrollup.go); the others,
	// and every KPI without it, read the raw rows over [From, To).
	Rollup bool
	// JudgeAt is the SQL expression of the time patch deadlines are
	// judged at (due, overdue); To when empty. A patch panel reading the
	// rollup judges at its range's end before it widens to whole days.
	JudgeAt string
}

// wholeDays is o over the whole UTC days of its range, as a panel reading
// the rollup counts them, its patch deadlines still judged at its end.
func (o PanelOptions) wholeDays() PanelOptions {
	o.JudgeAt = o.judgeAt()
	o.From, o.To = floorDay(o.From), ceilDay(o.To)
	return o
}

// judgeAt is the time o's patch deadlines are judged at.
func (o PanelOptions) judgeAt() string {
	if o.JudgeAt != "" {
		return o.JudgeAt
	}
	return o.To
}

// panelRange is q over the panel's range, its expressions.
func (o PanelOptions) panelRange(q Query) queryRange {
	return queryRange{Query: q, from: chsql.TimeOf(chsql.Macro(o.From)), to: chsql.TimeOf(chsql.Macro(o.To))}
}

// panelWindow is the range of incidents the attribution of a panel reads
// and its gap: one gap either side of the panel's range, or everything for
// a gap too long to be an offset of the range (Unbounded).
func panelWindow(r queryRange, gap time.Duration) (from, to chsql.Time, _ time.Duration) {
	if gap >= MaxBoundedGap/2 {
		return at(chsql.MinTime), at(chsql.MaxTime), gap
	}
	return r.from.Add(-gap), r.to.Add(gap), gap
}

// PanelSQL returns the statement of one KPI (with o.Rollup, of the KPI
// rollup over the whole UTC days of o's range, for the KPIs it holds:
// WholeDaysSQL). Its columns are value (Nullable(Float64): absent is
// NULL), preceded by time (DateTime) when
// bucketed. A bucketed statement has a third column, partial: the value of
// a bucket the range's edges cut (value is NULL there), so that a panel
// draws it apart rather than as a full week or month; as in Summaries, a
// rate per day of a cut bucket is over the days the range covers of it.
func PanelSQL(kpi string, o PanelOptions) (string, error) {
	if o.readsRollup(kpi) {
		o = o.wholeDays()
	}
	sql, err := panelSQL(kpi, o)
	if err != nil || o.Bucket == "" {
		return sql, err
	}
	end := "addDays(time, 7)"
	if o.Bucket == "month" {
		end = "addMonths(time, 1)"
	}
	return "SELECT time, if(cut, NULL, v) AS value, if(cut, v, NULL) AS partial FROM (SELECT time, value AS v, time < " + o.From +
		" OR " + end + " > " + o.To + " AS cut FROM (" + sql + ")) ORDER BY time", nil
}

func panelSQL(kpi string, o PanelOptions) (string, error) {
	switch o.Bucket {
	case "", "week", "month":
	default:
		return "", fmt.Errorf("unknown bucket %q: want week or month", o.Bucket)
	}
	switch o.GroupBy {
	case "", "severity", "service":
	default:
		return "", fmt.Errorf("unknown grouping %q: want severity or service", o.GroupBy)
	}
	if o.GroupBy != "" && o.Bucket != "" {
		return "", fmt.Errorf("a panel query is bucketed or grouped, not both")
	}
	if o.readsRollup(kpi) {
		return panelRollupSQL(kpi, o)
	}
	r := o.panelRange(o.query())
	gap := r.gap()
	attr, err := chsql.Inline(attributionQuery(panelWindow(r, gap)))
	if err != nil {
		return "", err
	}
	blamed := "deployment_id IN (SELECT deployment_id FROM (" + attr + ") WHERE deployment_id != '')"
	prod, err := chsql.Literal(r.production())
	if err != nil {
		return "", err
	}
	switch kpi {
	case PanelDeploymentFrequency, PanelChangeFailureRate, PanelReworkRate, PanelDeployments:
		src, err := chsql.Inline(deploymentsFinished(r.from, r.to, dimsAnd("status", "unplanned", "finished_at"), chsql.Expr{}))
		if err != nil {
			return "", err
		}
		expr := map[string]string{
			PanelDeploymentFrequency: "countIf(status = 'success') / " + o.days(),
			PanelChangeFailureRate:   "countIf(status != 'success' OR " + blamed + ") / nullIf(count(), 0)",
			PanelReworkRate:          "countIf(unplanned = 1) / nullIf(count(), 0)",
			PanelDeployments:         "count()",
		}[kpi]
		return o.wrap("finished_at", "toNullable(toFloat64("+expr+")) AS value",
			src+" WHERE "+o.inRange("finished_at")+" AND has("+prod+", environment) AND "+o.filters()), nil
	case KPIDeploymentsOutsideWindow:
		src, err := chsql.Inline(windowSource(r))
		if err != nil {
			return "", err
		}
		return o.wrap("finished_at", "toNullable(toFloat64(countIf("+breaksCalendar+"))) AS value",
			src+" WHERE "+o.inRange("finished_at")+" AND "+o.filters()), nil
	case PanelLeadTime:
		src, err := chsql.Inline(leadTimeSource(r))
		if err != nil {
			return "", err
		}
		return o.median("first_deploy", leadSeconds, "1",
			src+" WHERE first_deploy != toDateTime(0) AND "+o.inRange("first_deploy")+" AND "+o.filters()), nil
	case PanelRecoveryTime:
		failed, err := chsql.Inline(deploymentsFinished(r.from, r.to, dimsAnd("status", "finished_at"), chsql.Expr{}))
		if err != nil {
			return "", err
		}
		succ, err := chsql.Inline(deploymentsFinished(r.from, chsql.Time{}, []string{"service", "environment", "status", "finished_at"}, chsql.Expr{}))
		if err != nil {
			return "", err
		}
		// As recovery does: a deployment blamed for an incident recovers
		// when the earliest such incident is resolved, counted from its
		// impact start; any other failed one at the next successful
		// deployment of its service and environment. -1: not recovered.
		from := `(
			SELECT finished_at, service,
				if(b_impact > toDateTime(0),
					if(b_resolved > toDateTime(0), toFloat64(greatest(dateDiff('second', b_impact, b_resolved), 0)), -1),
					if(nxt > toDateTime(0), toFloat64(dateDiff('second', finished_at, nxt)), -1)) AS rt
			FROM (
				SELECT deployment_id, service, finished_at, arrayFirst(x -> x > finished_at, succ) AS nxt
				FROM (
					SELECT deployment_id, service, environment, finished_at FROM ` + failed + `
					WHERE ` + o.inRange("finished_at") + ` AND has(` + prod + `, environment) AND ` + o.filters() + `
						AND (status != 'success' OR ` + blamed + `)
				)
				ANY LEFT JOIN (
					SELECT service, environment, arraySort(groupArray(finished_at)) AS succ
					FROM ` + succ + ` WHERE status = 'success' GROUP BY service, environment
				) USING (service, environment)
			)
			ANY LEFT JOIN (
				SELECT deployment_id, min(impact) AS b_impact, argMin(resolved, tuple(impact, incident_id)) AS b_resolved
				FROM (` + attr + `) WHERE deployment_id != '' GROUP BY deployment_id
			) USING (deployment_id)
		)`
		return o.median("finished_at", "rt", "rt >= 0", from), nil
	case PanelIncidents, PanelMTTR, PanelMTTD, PanelMTTA:
		src, err := chsql.Inline(incidentsStarted(r.from, r.to, dimsAnd("severity", "impact_started_at", "detected_at",
			"acknowledged_at", "resolved_at")...))
		if err != nil {
			return "", err
		}
		impact := "assumeNotNull(ifNull(impact_started_at, detected_at))"
		from := `(SELECT *, ` + impact + ` AS impact, if(severity = '', 'unknown', severity) AS sev FROM ` + src + `
			WHERE isNotNull(ifNull(impact_started_at, detected_at))) WHERE ` + o.inRange("impact") + ` AND has(` + prod + `, environment) AND ` + o.filters()
		switch kpi {
		case PanelIncidents:
			return o.wrap("impact", "toNullable(toFloat64(count())) AS value", from), nil
		case PanelMTTR:
			return o.median("impact", "toFloat64(dateDiff('second', assumeNotNull(detected_at), assumeNotNull(resolved_at)))",
				"isNotNull(resolved_at) AND isNotNull(detected_at)", from), nil
		case PanelMTTD:
			return o.median("impact", "toFloat64(dateDiff('second', assumeNotNull(impact_started_at), assumeNotNull(detected_at)))",
				"isNotNull(impact_started_at) AND isNotNull(detected_at)", from), nil
		default:
			return o.median("impact", "toFloat64(dateDiff('second', assumeNotNull(detected_at), assumeNotNull(acknowledged_at)))",
				"isNotNull(acknowledged_at) AND isNotNull(detected_at)", from), nil
		}
	case PanelPatchLatency, PanelPatchCompliance, PanelPatchesOverdue:
		src, err := chsql.Inline(patchSourceAt(r, chsql.TimeOf(chsql.Macro(o.judgeAt()))))
		if err != nil {
			return "", err
		}
		return o.patchPanel(kpi, src, prod), nil
	}
	return "", fmt.Errorf("no panel query for KPI %q: want one of %s", kpi, strings.Join(PanelKPIs, ", "))
}

// patchPanel is the statement of a patch KPI over the patch targets of
// src (patchSourceAt's columns), those released in the range in a
// production environment and the dashboard's slices.
func (o PanelOptions) patchPanel(kpi, src, prod string) string {
	from := src + ` WHERE ` + o.inRange("assumeNotNull(released_at)") + ` AND has(` + prod + `, environment) AND ` + o.filters()
	switch kpi {
	case PanelPatchLatency:
		return o.median("assumeNotNull(released_at)", "toFloat64(dateDiff('second', assumeNotNull(released_at), assumeNotNull(applied_at)))",
			"outcome = 'applied' AND isNotNull(applied_at)", from)
	case PanelPatchCompliance:
		return o.wrap("assumeNotNull(released_at)", "toNullable(toFloat64(countIf(due AND compliant) / nullIf(countIf(due), 0))) AS value", from)
	default:
		return o.wrap("assumeNotNull(released_at)", "toNullable(toFloat64(countIf(outcome != 'applied' AND due_at < "+o.judgeAt()+"))) AS value", from)
	}
}

// group is the grouping column of a panel query.
func (o PanelOptions) group() string {
	if o.GroupBy == "severity" {
		return "sev"
	}
	return "service"
}

// days is the length in days of the range, or of the part of a bucket
// inside it.
func (o PanelOptions) days() string {
	from, to := o.From, o.To
	switch o.Bucket {
	case "week":
		from, to = "greatest(time, "+o.From+")", "least(addDays(time, 7), "+o.To+")"
	case "month":
		from, to = "greatest(time, "+o.From+")", "least(addMonths(time, 1), "+o.To+")"
	}
	return "((toUInt32(" + to + ") - toUInt32(" + from + ")) / 86400)"
}

func (o PanelOptions) inRange(col string) string {
	return col + " >= " + o.From + " AND " + col + " < " + o.To
}

func (o PanelOptions) filters() string {
	if o.Filter == nil {
		return "1"
	}
	var conds []string
	for _, d := range []Dimension{Service, Team, Environment} {
		conds = append(conds, "("+o.Filter(string(d))+")")
	}
	return strings.Join(conds, " AND ")
}

func (o PanelOptions) bucket(col string) string {
	if o.Bucket == "week" {
		return "toDateTime(toMonday(" + col + "), 'UTC')"
	}
	return "toDateTime(toStartOfMonth(" + col + "), 'UTC')"
}

// wrap selects the columns from a FROM item and WHERE, per bucket if any.
func (o PanelOptions) wrap(timeCol, cols, from string) string {
	if o.GroupBy != "" {
		return "SELECT " + o.group() + " AS key, " + cols + " FROM " + from + " GROUP BY key ORDER BY key"
	}
	if o.Bucket == "" {
		return "SELECT " + cols + " FROM " + from
	}
	return "SELECT " + o.bucket(timeCol) + " AS time, " + cols + " FROM " + from + " GROUP BY time ORDER BY time"
}

// median is the interpolated median of x over the rows where cond holds:
// the same linear interpolation between closest ranks as quantile. The
// two closest ranks, (n-1)/2 rounded down and up, are selected rather than
// sorted for: quantileExact(0.5) is the element of rank n/2 rounded down
// (in 18.16 as in current releases), the upper one, and of the values
// negated it is the lower one. Sorting every value (arraySort) cost 5
// times as much at 10M events (docs/benchmarks.md).
func (o PanelOptions) median(timeCol, x, cond, from string) string {
	inner := o.wrap(timeCol, "countIf("+cond+") AS n, quantileExactIf(0.5)("+x+", "+cond+") AS hi, -quantileExactIf(0.5)(-("+x+"), "+cond+") AS lo", from)
	pos := "((n - 1) / 2)"
	value := "if(n = 0, NULL, toNullable(lo + (" + pos + " - floor(" + pos + ")) * (hi - lo)))"
	switch {
	case o.GroupBy != "":
		return "SELECT key, " + value + " AS value FROM (" + inner + ") ORDER BY key"
	case o.Bucket == "":
		return "SELECT " + value + " AS value FROM (" + inner + ")"
	}
	return "SELECT time, " + value + " AS value FROM (" + inner + ") ORDER BY time"
}

// Panel tables: rows rather than figures.
const (
	TableAttributions   = "attributions"    // incidents with the deployment blamed and how
	TablePatchLatencies = "patch_latencies" // one row per applied patch target: its latency in hours
	TableOverduePatches = "overdue_patches" // targets not applied by their deadline
	TableOutsideWindow  = "outside_window"  // deployments outside their change windows or in a freeze
)

// PanelTableSQL returns the statement of a panel table over the range.
func PanelTableSQL(name string, o PanelOptions) (string, error) {
	rollup := o.Rollup && rollupPanelTables[name]
	if rollup {
		o = o.wholeDays()
	}
	r := o.panelRange(o.query())
	gap := r.gap()
	prod, err := chsql.Literal(r.production())
	if err != nil {
		return "", err
	}
	filter := func(cols ...string) string {
		if o.Filter == nil {
			return "1"
		}
		var conds []string
		for _, c := range cols {
			conds = append(conds, "("+o.Filter(c)+")")
		}
		return strings.Join(conds, " AND ")
	}
	switch name {
	case TableAttributions:
		attr, err := chsql.Inline(attributionQuery(r.from, r.to, gap))
		if err != nil {
			return "", err
		}
		if rollup {
			gen, err := rollupGeneration(r.Query)
			if err != nil {
				return "", err
			}
			attr = `SELECT impact, incident_id, service, environment, resolved, deployment_id, method FROM kpi_attributions
			WHERE generation = ` + gen + ` AND impact >= ` + o.From + ` AND impact < ` + o.To
		}
		return `SELECT impact AS time, incident_id AS incident, service, environment,
			if(resolved > toDateTime(0), toString(resolved), 'open') AS resolved_at,
			if(resolved > toDateTime(0), toNullable(toFloat64(dateDiff('second', impact, resolved))), NULL) AS time_to_resolve,
			deployment_id AS caused_by, method
		FROM (` + attr + `)
		WHERE has(` + prod + `, environment) AND ` + filter("service", "environment") + `
		ORDER BY time DESC, incident`, nil
	case TableOutsideWindow:
		if rollup {
			// Those of the latest build of the calendar (none without one).
			gen := "0"
			if r.Calendar != nil {
				if gen, err = o.windowGeneration(r.Query); err != nil {
					return "", err
				}
			}
			return `SELECT t AS time, deployment_id AS deployment, service, team, environment, actor, pipeline, version, window_class AS class
		FROM kpi_window_deployments WHERE generation = ` + gen + ` AND ` + o.inRange("finished_at") + ` AND ` + o.filters() + `
		ORDER BY time DESC, deployment`, nil
		}
		src, err := chsql.Inline(windowSource(r, "actor", "pipeline", "version"))
		if err != nil {
			return "", err
		}
		return `SELECT t AS time, deployment_id AS deployment, service, team, environment, actor, pipeline, version,
			` + windowClass + ` AS class
		FROM ` + src + ` WHERE ` + o.inRange("finished_at") + ` AND ` + o.filters() + ` AND ` + breaksCalendar + `
		ORDER BY time DESC, deployment`, nil
	case TablePatchLatencies, TableOverduePatches:
		src, err := chsql.Inline(patchSourceAt(r, chsql.TimeOf(chsql.Macro(o.judgeAt()))))
		if err != nil {
			return "", err
		}
		if rollup {
			gen, err := rollupGeneration(r.Query)
			if err != nil {
				return "", err
			}
			if src, err = o.rollupTargets(r.Query, gen); err != nil {
				return "", err
			}
		}
		where := o.inRange("assumeNotNull(released_at)") + " AND has(" + prod + ", environment) AND " + o.filters()
		if name == TablePatchLatencies {
			return `SELECT toFloat64(dateDiff('second', assumeNotNull(released_at), assumeNotNull(applied_at))) / 3600 AS latency_hours
			FROM ` + src + ` WHERE ` + where + ` AND outcome = 'applied' AND isNotNull(applied_at)`, nil
		}
		return `SELECT patch_id AS patch, target, sev AS severity, service, environment, assumeNotNull(released_at) AS released,
			due_at AS due, outcome, toFloat64(dateDiff('second', due_at, ` + o.judgeAt() + `)) / 86400 AS days_overdue
		FROM ` + src + ` WHERE ` + where + ` AND outcome != 'applied' AND due_at < ` + o.judgeAt() + `
		ORDER BY days_overdue DESC, patch, target`, nil
	}
	return "", fmt.Errorf("no panel table %q", name)
}
