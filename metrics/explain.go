package metrics

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/store"
)

// Explanation lists the rows behind one KPI: "how is it calculated".
type Explanation struct {
	KPI     string
	Formula string
	Columns []string
	Rows    [][]string
}

// ExplainableKPIs are the KPI names Explain accepts.
var ExplainableKPIs = []string{"deployment_frequency", "change_failure_rate", "rework_rate", "recovery_time", "mttr", "mttd", "mtta", "lead_time"}

// Explain lists the deployments, incidents (with their attributions) or
// changes that the KPI named kpi is computed from, for q's range and filters.
func Explain(ctx context.Context, conn driver.Conn, kpi string, q Query) (*Explanation, error) {
	gap := q.gap()
	attrs, err := Attributions(ctx, conn, q.From.Add(-gap), q.To.Add(gap), gap)
	if err != nil {
		return nil, err
	}
	causes := map[string][]string{}
	byIncident := map[string]Attribution{}
	for _, a := range attrs {
		byIncident[a.IncidentID] = a
		if a.DeploymentID != "" {
			causes[a.DeploymentID] = append(causes[a.DeploymentID], a.IncidentID+" ("+string(a.Method)+")")
		}
	}
	ts := func(t time.Time) string {
		if t.Unix() <= 0 {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04")
	}
	e := &Explanation{KPI: kpi}
	switch kpi {
	case "deployment_frequency", "change_failure_rate", "rework_rate", "recovery_time":
		e.Formula = map[string]string{
			"deployment_frequency": "successful production deployments ÷ days in range",
			"change_failure_rate":  "deployments failed (status, or blamed for an incident) ÷ deployments",
			"rework_rate":          "unplanned deployments ÷ deployments",
			"recovery_time":        "failed deployment → its incident's resolution, or → the next successful deployment",
		}[kpi]
		e.Columns = []string{"deployment", "service", "environment", "finished", "status", "unplanned", "blamed for", "counts as failed"}
		where, args := q.where("finished_at")
		src, sargs := deploymentsFinished(q.From, q.To, dimsAnd("finished_at", "status", "unplanned"), "")
		rows, err := conn.Query(ctx, `SELECT deployment_id, service, environment, finished_at, status, unplanned
			FROM `+src+` WHERE `+where+` ORDER BY finished_at, deployment_id`, bind(concat(sargs, args))...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var id, service, env, status string
			var finished time.Time
			var unplanned uint8
			if err := rows.Scan(&id, &service, &env, &finished, &status, &unplanned); err != nil {
				return nil, err
			}
			failed := status != "success" || len(causes[id]) > 0
			e.Rows = append(e.Rows, []string{id, service, env, ts(finished), status, yes(unplanned == 1),
				strings.Join(causes[id], ", "), yes(failed)})
		}
		return e, rows.Err()
	case "mttr", "mttd", "mtta":
		e.Formula = map[string]string{
			"mttr": "detected → resolved, over resolved production incidents",
			"mttd": "impact start → detected",
			"mtta": "detected → acknowledged",
		}[kpi]
		e.Columns = []string{"incident", "service", "severity", "impact", "detected", "acknowledged", "resolved", "cause", "how"}
		where, args := q.where("assumeNotNull(ifNull(impact_started_at, detected_at))")
		src, sargs := incidentsStarted(q.From, q.To, dimsAnd("severity", "impact_started_at", "detected_at", "acknowledged_at", "resolved_at")...)
		rows, err := conn.Query(ctx, `SELECT incident_id, service, severity,
				ifNull(impact_started_at, toDateTime(0, 'UTC')), ifNull(detected_at, toDateTime(0, 'UTC')),
				ifNull(acknowledged_at, toDateTime(0, 'UTC')), ifNull(resolved_at, toDateTime(0, 'UTC'))
			FROM `+src+` WHERE isNotNull(ifNull(impact_started_at, detected_at)) AND `+where+` ORDER BY detected_at, incident_id`, bind(concat(sargs, args))...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var id, service, sev string
			var impact, detected, acked, resolved time.Time
			if err := rows.Scan(&id, &service, &sev, &impact, &detected, &acked, &resolved); err != nil {
				return nil, err
			}
			a := byIncident[id]
			e.Rows = append(e.Rows, []string{id, service, sev, ts(impact), ts(detected), ts(acked), ts(resolved),
				a.DeploymentID, string(a.Method)})
		}
		return e, rows.Err()
	case "lead_time":
		e.Formula = "change commit (or merge; the merge when the commit is later) → finish of the first successful production deployment shipping it, or 0 when that finished before"
		e.Columns = []string{"change", "service", "authored", "merged", "first production deployment", "deployed"}
		lookback := q.LeadTimeLookback
		if lookback <= 0 {
			lookback = DefaultLeadTimeLookback
		}
		since := q.From.Add(-lookback).UTC()
		changes := "(" + store.Changes("authored_at >= ? OR merged_at >= ?", "service", "authored_at", "merged_at") + ")"
		deploys, dargs := deploymentsFinished(since, time.Time{}, []string{"environment", "status", "finished_at", "changes"}, "")
		args := concat([]any{since, since}, dargs, []any{q.production(), q.From.UTC(), q.To.UTC()})
		filter := ""
		if len(q.Services) > 0 {
			filter = " AND has(?, service)"
			args = append(args, q.Services)
		}
		rows, err := conn.Query(ctx, `SELECT change_id, service, ifNull(authored_at, toDateTime(0, 'UTC')), ifNull(merged_at, toDateTime(0, 'UTC')), deployment, first_deploy
			FROM `+changes+`
			ANY LEFT JOIN (
				SELECT arrayJoin(changes) AS change_id, min(finished_at) AS first_deploy,
					argMin(deployment_id, tuple(finished_at, deployment_id)) AS deployment
				FROM `+deploys+` WHERE status = 'success' AND has(?, environment) GROUP BY change_id
			) USING (change_id)
			WHERE first_deploy >= ? AND first_deploy < ?`+filter+` ORDER BY first_deploy, change_id`, bind(args)...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var id, service, dep string
			var authored, merged, first time.Time
			if err := rows.Scan(&id, &service, &authored, &merged, &dep, &first); err != nil {
				return nil, err
			}
			e.Rows = append(e.Rows, []string{id, service, ts(authored), ts(merged), dep, ts(first)})
		}
		return e, rows.Err()
	}
	return nil, fmt.Errorf("cannot explain %q: want one of %s", kpi, strings.Join(ExplainableKPIs, ", "))
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// WriteTable writes the explanation as a table under its formula.
func (e *Explanation) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s = %s\n%d rows\n\n", e.KPI, e.Formula, len(e.Rows))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(e.Columns, "\t"))
	for _, r := range e.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
