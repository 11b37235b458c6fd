package metrics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// The breakdowns below are the rows of one interval (or window) of a KPI
// series grouped by every dimension below it, which anomaly's
// ContributingFactors ranks: deployments (the deployment counts, change
// failure and rework rates) and incidents (the incident counts, MTTR and
// MTTD). They count as Summaries counts, over the same range, filters and
// production environments.

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
