// Package metrics computes opsmetrics' operations KPIs in ClickHouse SQL
// over the raw event tables (docs/schema.md), folded as the public views
// fold them. This first part is the
// incident→deployment attribution that the DORA change failure rate and
// recovery time build on; docs/kpis.md states the rule.
package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// Attribution says which deployment, if any, caused an incident.
type Attribution struct {
	IncidentID   string
	Service      string
	Environment  string
	ImpactStart  time.Time // impact_started_at, or detected_at when absent
	Resolved     time.Time // zero while unresolved
	DeploymentID string    // empty when unattributed
	Method       Method
}

// Method says how an attribution was made.
type Method string

// Attribution methods, in order of precedence.
const (
	MethodExplicit     Method = "explicit"     // the incident names its cause
	MethodInferred     Method = "inferred"     // latest earlier deployment within the gap
	MethodUnattributed Method = "unattributed" // neither
)

// DefaultMaxGap is how long before an incident's impact start a deployment
// may have finished and still be blamed for it. Unbounded lifts the bound.
const DefaultMaxGap = 24 * time.Hour

// attributionSQL attributes every incident whose impact started in a
// range. It runs on ClickHouse 18.16: no ASOF JOIN, no window functions.
// Candidates are the successful deployments of the same service and
// environment that finished in [impact start - gap, impact start]; the
// latest wins, ties broken by deployment id, so the same data always gives
// the same answer. An explicit cause_deployment_id (or a cause_commit that a
// deployment shipped) takes precedence. Its arguments are the incidents in
// range (a source, sources.go) and the range, the deployments that shipped
// a named commit, the incidents and the range again, the deployments within
// the gap, and the gap in seconds.
const attributionSQL = `
SELECT
	incident_id, service, environment, impact, resolved,
	multiIf(explicit != '', explicit, by_commit != '', by_commit, inferred) AS deployment_id,
	multiIf(explicit != '' OR by_commit != '', 'explicit', inferred != '', 'inferred', 'unattributed') AS method
FROM (
	SELECT incident_id, service, environment, impact, resolved, explicit, by_commit, inferred
	FROM (
		SELECT incident_id, service, environment, impact, resolved, explicit, by_commit
		FROM (
			SELECT incident_id, service, environment,
				assumeNotNull(ifNull(impact_started_at, detected_at)) AS impact,
				ifNull(resolved_at, toDateTime(0, 'UTC')) AS resolved,
				cause_deployment_id AS explicit, cause_commit
			FROM ?
			WHERE isNotNull(ifNull(impact_started_at, detected_at))
				AND ifNull(impact_started_at, detected_at) >= ? AND ifNull(impact_started_at, detected_at) < ?
		)
		ANY LEFT JOIN (
			SELECT arrayJoin(changes) AS cause_commit, environment,
				argMin(deployment_id, tuple(finished_at, deployment_id)) AS by_commit
			FROM ? WHERE status = 'success'
			GROUP BY cause_commit, environment
		) USING (cause_commit, environment)
	)
	ANY LEFT JOIN (
		SELECT incident_id, argMax(deployment_id, tuple(finished_at, deployment_id)) AS inferred
		FROM (
			SELECT incident_id, service, environment, assumeNotNull(ifNull(impact_started_at, detected_at)) AS impact
			FROM ?
			WHERE isNotNull(ifNull(impact_started_at, detected_at))
				AND ifNull(impact_started_at, detected_at) >= ? AND ifNull(impact_started_at, detected_at) < ?
		)
		ALL INNER JOIN (
			SELECT deployment_id, service, environment, finished_at
			FROM ? WHERE status = 'success'
		) USING (service, environment)
		WHERE finished_at <= impact AND dateDiff('second', finished_at, impact) <= ?
		GROUP BY incident_id
	) USING (incident_id)
)
ORDER BY impact, incident_id`

// namedCommits keeps the raw deployment rows that shipped a commit named
// as the cause of an incident in range: the only ones the commit rule can
// pick, whenever they finished.
const namedCommits = `arrayExists(c -> c IN (SELECT cause_commit FROM incident_events
	WHERE cause_commit != '' AND incident_id IN (SELECT incident_id FROM incident_events
		WHERE (impact_started_at >= ? AND impact_started_at < ?) OR (detected_at >= ? AND detected_at < ?))), changes)`

// Attributions attributes the incidents whose impact started in [from, to).
func Attributions(ctx context.Context, conn driver.Conn, from, to time.Time, maxGap time.Duration) ([]Attribution, error) {
	if maxGap <= 0 {
		maxGap = DefaultMaxGap
	}
	var out []Attribution
	err := query(ctx, conn, attributionQuery(at(from), at(to), maxGap), func(r *attributionRow) {
		out = append(out, r.attribution())
	})
	if err != nil {
		return nil, fmt.Errorf("attribute incidents: %w", err)
	}
	return out, nil
}

// AttributionsOf attributes the incidents whose impact started in
// [q.From, q.To) with q's attribution gap, from the KPI rollup when
// Summaries would read it for q (its build attributed every incident),
// else from the raw rows (Attributions). Both give the same list but for
// the rollup's edge: a cause named by commit is the first deployment of
// that commit whenever it finished (docs/kpis.md, Freshness).
func AttributionsOf(ctx context.Context, conn driver.Conn, q Query) ([]Attribution, error) {
	r, ok, err := rollupFor(ctx, conn, q)
	if err != nil {
		return nil, err
	}
	if !ok {
		return Attributions(ctx, conn, q.From, q.To, q.gap())
	}
	var out []Attribution
	err = query(ctx, conn, chsql.SQL(`SELECT incident_id, service, environment, impact, resolved, deployment_id, method
		FROM kpi_attributions WHERE generation = ? AND impact >= ? AND impact < ?
		ORDER BY impact, incident_id`, r.Generation, at(q.From), at(q.To)), func(r *attributionRow) {
		out = append(out, r.attribution())
	})
	if err != nil {
		return nil, fmt.Errorf("read the KPI rollup's attributions: %w", err)
	}
	return out, nil
}

// attributionRow is a row of attributionSQL.
type attributionRow struct {
	IncidentID   string    `ch:"incident_id"`
	Service      string    `ch:"service"`
	Environment  string    `ch:"environment"`
	Impact       time.Time `ch:"impact"`
	Resolved     time.Time `ch:"resolved"`
	DeploymentID string    `ch:"deployment_id"`
	Method       string    `ch:"method"`
}

// attributionQuery is the attribution of the incidents whose impact started
// in [from, to). Only deployments that finished within one gap before the
// range (or in it) can be inferred causes: the join never touches the rest.
func attributionQuery(from, to chsql.Time, maxGap time.Duration) chsql.Expr {
	incidents := incidentsStarted(from, to, "service", "environment", "impact_started_at", "detected_at", "resolved_at",
		"cause_deployment_id", "cause_commit")
	byCommit := deploymentsFinished(at(time.Unix(0, 0)), to, []string{"environment", "status", "finished_at", "changes"},
		chsql.SQL(namedCommits, from, to, from, to))
	inGap := deploymentsFinished(from.Add(-maxGap), to, []string{"service", "environment", "status", "finished_at"}, chsql.Expr{})
	return chsql.SQL(attributionSQL, incidents, from, to, byCommit, incidents, from, to, inGap, seconds(maxGap))
}

func (r *attributionRow) attribution() Attribution {
	a := Attribution{IncidentID: r.IncidentID, Service: r.Service, Environment: r.Environment, ImpactStart: r.Impact,
		Resolved: r.Resolved, DeploymentID: r.DeploymentID, Method: Method(r.Method)}
	if a.Resolved.Unix() <= 0 {
		a.Resolved = time.Time{}
	}
	return a
}
