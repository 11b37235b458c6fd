package metrics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/chsql"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// The breakdowns below are the rows of one interval (or window) of a KPI
// series grouped by every dimension below it, which anomaly's
// ContributingFactors ranks: deployments (the deployment counts, change
// failure and rework rates), incidents (the incident counts, MTTR and
// MTTD), changes (lead time) and patch targets (the patch counts, latency
// and compliance). They count as Summaries counts, over the same range,
// filters and production environments.

// DeploymentDimensions are the dimensions of a deployment breakdown, in
// the order of its rows' values.
var DeploymentDimensions = []string{"service", "team", "version", "actor", "pipeline"}

// DeploymentRow is the deployments of one combination of values.
type DeploymentRow struct {
	Values      []string // by DeploymentDimensions
	Deployments uint64
	// Failed are those whose status is not success or that an incident
	// is attributed to (change failure rate); Unplanned those marked
	// unplanned (rework rate).
	Failed, Unplanned uint64
}

// DeploymentBreakdown reads the deployments that finished in [q.From,
// q.To), filtered as q filters (q.By and q.Step are not used), grouped by
// DeploymentDimensions. Failures include the deployments blamed for an
// incident, attributed as Summaries attributes them. It reads the actor
// and pipeline columns of deployment_events (migration 7).
func DeploymentBreakdown(ctx context.Context, conn driver.Conn, q Query) ([]DeploymentRow, error) {
	gap := q.gap()
	attrs, err := Attributions(ctx, conn, q.From.Add(-gap), q.To.Add(gap), gap)
	if err != nil {
		return nil, err
	}
	blamed := []string{""} // keeps the array typed when nothing is blamed
	for _, a := range attrs {
		if a.DeploymentID != "" {
			blamed = append(blamed, a.DeploymentID)
		}
	}
	return deploymentRows(ctx, conn, q, blamed)
}

// DeploymentCounts is DeploymentBreakdown without the attribution of
// incidents, which it spares: its Failed counts only the deployments
// whose status is not success. What explains a deployment count needs no
// more.
func DeploymentCounts(ctx context.Context, conn driver.Conn, q Query) ([]DeploymentRow, error) {
	return deploymentRows(ctx, conn, q, []string{""})
}

func deploymentRows(ctx context.Context, conn driver.Conn, q Query, blamed []string) ([]DeploymentRow, error) {
	var out []DeploymentRow
	err := query(ctx, conn, deploymentBreakdown(q, blamed), func(r *deploymentBreakdownRow) {
		out = append(out, DeploymentRow{Values: []string{r.Service, r.Team, r.Version, r.Actor, r.Pipeline}, Deployments: r.Deployments, Failed: r.Failed, Unplanned: r.Unplanned})
	})
	if err != nil {
		return nil, fmt.Errorf("deployment breakdown: %w", err)
	}
	return out, nil
}

// deploymentBreakdownRow is a row of DeploymentBreakdownSQL.
type deploymentBreakdownRow struct {
	Service     string `ch:"service"`
	Team        string `ch:"team"`
	Version     string `ch:"version"`
	Actor       string `ch:"actor"`
	Pipeline    string `ch:"pipeline"`
	Deployments uint64 `ch:"deployments"`
	Failed      uint64 `ch:"failed"`
	Unplanned   uint64 `ch:"unplanned_count"`
}

// DeploymentBreakdownSQL is DeploymentBreakdown's query, for ClickHouse
// 18.16 and later, and its arguments: blamed are the ids of the
// deployments incidents are attributed to. The deployments are folded
// from their raw messages as the public view folds them (the latest
// message wins), here with actor and pipeline.
func DeploymentBreakdownSQL(q Query, blamed []string) (string, []any, error) {
	return chsql.Bind(deploymentBreakdown(q, blamed))
}

func deploymentBreakdown(q Query, blamed []string) chsql.Expr {
	dims := strings.Join(DeploymentDimensions, ", ")
	return chsql.SQL(`SELECT `+dims+`, count() AS deployments, countIf(status != 'success' OR ?) AS failed, countIf(unplanned = 1) AS unplanned_count
FROM (
	SELECT deployment_id,
		argMax(service, v) AS service, argMax(team, v) AS team, argMax(environment, v) AS environment,
		argMax(finished_at, v) AS finished_at, argMax(status, v) AS status, argMax(version, v) AS version,
		argMax(actor, v) AS actor, argMax(pipeline, v) AS pipeline, argMax(unplanned, v) AS unplanned
	FROM (SELECT *, tuple(event_time, event_id) AS v FROM deployment_events WHERE finished_at >= ? AND finished_at < ?)
	GROUP BY deployment_id
)
WHERE ?
GROUP BY `+dims+`
ORDER BY `+dims, inSet("deployment_id", blamed), at(q.From), at(q.To), q.where("finished_at"))
}

// IncidentDimensions are the dimensions of an incident breakdown, in the
// order of its rows' values. An incident without a severity is of
// severity unknown, as Summaries counts it.
var IncidentDimensions = []string{"service", "team", "severity", "detection_source"}

// IncidentRow is the incidents of one combination of values.
type IncidentRow struct {
	Values    []string // by IncidentDimensions
	Incidents uint64
	// Samples are the incidents with the duration of IncidentDuration,
	// Beyond those whose duration is beyond its threshold.
	Samples, Beyond uint64
}

// IncidentDuration chooses the durations an incident breakdown counts
// beyond a threshold: KPI mttr (detection to resolution) or mttd (impact
// start to detection), above Threshold, or below it when Below. An empty
// KPI counts none.
type IncidentDuration struct {
	KPI       string
	Threshold time.Duration
	Below     bool
}

// IncidentBreakdown reads the incidents whose impact started (or, without
// an impact start, that were detected) in [q.From, q.To), filtered as q
// filters, grouped by IncidentDimensions.
func IncidentBreakdown(ctx context.Context, conn driver.Conn, q Query, d IncidentDuration) ([]IncidentRow, error) {
	e, err := incidentBreakdown(q, d)
	if err != nil {
		return nil, err
	}
	var out []IncidentRow
	err = query(ctx, conn, e, func(r *incidentBreakdownRow) {
		out = append(out, IncidentRow{Values: []string{r.Service, r.Team, r.Severity, r.DetectionSource}, Incidents: r.Incidents, Samples: r.Samples, Beyond: r.Beyond})
	})
	if err != nil {
		return nil, fmt.Errorf("incident breakdown: %w", err)
	}
	return out, nil
}

// incidentBreakdownRow is a row of IncidentBreakdownSQL.
type incidentBreakdownRow struct {
	Service         string `ch:"service"`
	Team            string `ch:"team"`
	Severity        string `ch:"severity"`
	DetectionSource string `ch:"detection_source"`
	Incidents       uint64 `ch:"incidents"`
	Samples         uint64 `ch:"samples"`
	Beyond          uint64 `ch:"beyond"`
}

// IncidentBreakdownSQL is IncidentBreakdown's query, for ClickHouse 18.16
// and later, and its arguments.
func IncidentBreakdownSQL(q Query, d IncidentDuration) (string, []any, error) {
	e, err := incidentBreakdown(q, d)
	if err != nil {
		return "", nil, err
	}
	return chsql.Bind(e)
}

func incidentBreakdown(q Query, d IncidentDuration) (chsql.Expr, error) {
	var dur string
	switch d.KPI {
	case "mttr":
		dur = "if(isNotNull(detected_at) AND isNotNull(resolved_at), toInt64(dateDiff('second', assumeNotNull(detected_at), assumeNotNull(resolved_at))), NULL)"
	case "mttd":
		dur = "if(isNotNull(impact_started_at) AND isNotNull(detected_at), toInt64(dateDiff('second', assumeNotNull(impact_started_at), assumeNotNull(detected_at))), NULL)"
	case "":
		dur = "CAST(NULL AS Nullable(Int64))"
	default:
		return chsql.Expr{}, fmt.Errorf("incident breakdown: unknown duration %q: want mttr or mttd", d.KPI)
	}
	beyond := "ifNull(d > ?, 0) = 1"
	if d.Below {
		beyond = "ifNull(d < ?, 0) = 1"
	}
	start := "assumeNotNull(ifNull(impact_started_at, detected_at))"
	src := incidentsStarted(at(q.From), at(q.To), dimsAnd("severity", "detection_source", "impact_started_at", "detected_at", "resolved_at")...)
	dims := strings.Join(IncidentDimensions, ", ")
	return chsql.SQL(`SELECT service, team, sev AS severity, detection_source, count() AS incidents, countIf(isNotNull(d)) AS samples, countIf(`+beyond+`) AS beyond
FROM (
	SELECT service, team, if(severity = '', 'unknown', severity) AS sev, detection_source, `+dur+` AS d
	FROM ?
	WHERE isNotNull(ifNull(impact_started_at, detected_at)) AND ?
)
GROUP BY `+dims+`
ORDER BY `+dims, int64(d.Threshold/time.Second), src, q.where(start)), nil
}

// LeadTimeDimensions are the dimensions of a lead-time breakdown, in the
// order of its rows' values: the change's service and team, and the actor
// and pipeline of the deployment that first shipped it to production.
var LeadTimeDimensions = []string{"service", "team", "actor", "pipeline"}

// DurationRow is the samples of a duration KPI that share one combination
// of values: Samples of them, Beyond those beyond the threshold.
type DurationRow struct {
	Values          []string
	Samples, Beyond uint64
}

// LeadTimeBreakdown reads the changes whose first successful production
// deployment finished in [q.From, q.To), as Summaries counts their lead
// time (from the commit, or from the merge with q.LeadTimeFromMerge,
// looking back q.LeadTimeLookback), filtered as q filters, grouped by
// LeadTimeDimensions; Beyond counts the lead times above threshold, or
// below it when below.
func LeadTimeBreakdown(ctx context.Context, conn driver.Conn, q Query, threshold time.Duration, below bool) ([]DurationRow, error) {
	var out []DurationRow
	err := query(ctx, conn, leadTimeBreakdown(q, threshold, below), func(r *leadTimeBreakdownRow) {
		out = append(out, DurationRow{Values: []string{r.Service, r.Team, r.Actor, r.Pipeline}, Samples: r.Changes, Beyond: r.Beyond})
	})
	if err != nil {
		return nil, fmt.Errorf("lead time breakdown: %w", err)
	}
	return out, nil
}

type leadTimeBreakdownRow struct {
	Service  string `ch:"service"`
	Team     string `ch:"team"`
	Actor    string `ch:"actor"`
	Pipeline string `ch:"pipeline"`
	Changes  uint64 `ch:"changes"`
	Beyond   uint64 `ch:"beyond"`
}

// LeadTimeBreakdownSQL is LeadTimeBreakdown's query, for ClickHouse 18.16
// and later, and its arguments.
func LeadTimeBreakdownSQL(q Query, threshold time.Duration, below bool) (string, []any, error) {
	return chsql.Bind(leadTimeBreakdown(q, threshold, below))
}

// leadTimeBreakdown is leadTimeSource's changes and lead times (the same
// start, lookback and first production deployment), with the actor and
// pipeline of that deployment.
func leadTimeBreakdown(q Query, threshold time.Duration, below bool) chsql.Expr {
	lookback := q.lookback()
	since := at(q.From.Add(-lookback))
	start := "ifNull(least(authored_at, merged_at), ifNull(authored_at, merged_at))"
	if q.LeadTimeFromMerge {
		start = "merged_at"
	}
	changes := chsql.SQL("("+store.Changes("change_id IN (SELECT change_id FROM change_events WHERE authored_at >= ? OR merged_at >= ?)",
		"service", "team", "authored_at", "merged_at")+")", since, since)
	deploys := deploymentsFinished(since, chsql.Time{}, []string{"environment", "status", "finished_at", "changes", "actor", "pipeline"},
		chsql.SQL("has(?, environment)", q.production()))
	beyond := "lead > ?"
	if below {
		beyond = "lead < ?"
	}
	first := "tuple(finished_at, deployment_id)"
	return chsql.SQL(`SELECT service, team, actor, pipeline, count() AS changes, countIf(`+beyond+`) AS beyond
FROM (
	SELECT service, team, environment, actor, pipeline, first_deploy, `+leadSeconds+` AS lead
	FROM (
		SELECT change_id, service, team, assumeNotNull(`+start+`) AS start
		FROM ? WHERE isNotNull(`+start+`) AND `+start+` >= ? AND `+start+` < ?
	)
	ANY LEFT JOIN (
		SELECT change_id, min(finished_at) AS first_deploy, argMin(environment, `+first+`) AS environment,
			argMin(actor, `+first+`) AS actor, argMin(pipeline, `+first+`) AS pipeline
		FROM (
			SELECT deployment_id, environment, finished_at, actor, pipeline, arrayJoin(changes) AS change_id
			FROM ? WHERE status = 'success' AND has(?, environment)
		)
		GROUP BY change_id
	) USING (change_id)
)
WHERE ?
GROUP BY service, team, actor, pipeline
ORDER BY service, team, actor, pipeline`, int64(threshold/time.Second), changes, since, at(q.To), deploys, q.production(), q.where("first_deploy"))
}

// PatchDimensions are the dimensions of a patch breakdown, in the order of
// its rows' values. A patch without a severity is of severity unknown, as
// the patch KPIs count it.
var PatchDimensions = []string{"service", "team", "environment", "target", "severity"}

// PatchRow is the patch targets of one combination of values, judged as
// the patch KPIs judge them (the deadlines of q.PatchDeadlines): Released
// of them; Due those whose deadline passed before the range end or whose
// outcome is known, Compliant those applied by their deadline; Applied
// those with a latency (release to application), Beyond those whose
// latency is beyond the threshold.
type PatchRow struct {
	Values                   []string
	Released, Due, Compliant uint64
	Applied, Beyond          uint64
}

// PatchBreakdown reads the patch targets released in [q.From, q.To),
// filtered as q filters, grouped by PatchDimensions, each judged by the
// rules of the patch KPIs (Query.tally, patchTally.figures). Beyond counts the patch
// latencies above threshold, or below it when below.
func PatchBreakdown(ctx context.Context, conn driver.Conn, q Query, threshold time.Duration, below bool) ([]PatchRow, error) {
	src := patchesReleased(at(q.From), at(q.To), dimsAnd("target", "severity", "released_at", "applied_at", "outcome")...)
	pq := chsql.SQL(`SELECT service, team, environment, target, patch_id, if(severity = '', 'unknown', severity) AS severity,
		assumeNotNull(released_at) AS released, ifNull(applied_at, toDateTime(0, 'UTC')) AS applied, outcome
		FROM ? WHERE isNotNull(released_at) AND ?
		ORDER BY service, team, environment, target, patch_id`, src, q.where("assumeNotNull(released_at)"))
	at := map[string]int{}
	var out []PatchRow
	err := query(ctx, conn, pq, func(r *patchBreakdownRow) {
		vals := []string{r.Service, r.Team, r.Environment, r.Target, r.Severity}
		key := strings.Join(vals, "\x00")
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, PatchRow{Values: vals})
		}
		// One target at a time through the KPIs' own rules.
		var s Summary
		q.tally(&patchTuples{IDs: []string{r.ID}, Severities: []string{r.Severity}, Released: []time.Time{r.Released},
			Applied: []time.Time{r.Applied}, Outcomes: []string{r.Outcome}}).figures(&s, true)
		p := &out[i]
		p.Released++
		p.Due += s.PatchesDue
		p.Compliant += s.PatchesCompliant
		if s.PatchLatencyMedianSeconds != nil {
			p.Applied++
			d := time.Duration(*s.PatchLatencyMedianSeconds * float64(time.Second))
			if (!below && d > threshold) || (below && d < threshold) {
				p.Beyond++
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("patch breakdown: %w", err)
	}
	return out, nil
}

type patchBreakdownRow struct {
	Service     string    `ch:"service"`
	Team        string    `ch:"team"`
	Environment string    `ch:"environment"`
	Target      string    `ch:"target"`
	ID          string    `ch:"patch_id"`
	Severity    string    `ch:"severity"`
	Released    time.Time `ch:"released"`
	Applied     time.Time `ch:"applied"`
	Outcome     string    `ch:"outcome"`
}
