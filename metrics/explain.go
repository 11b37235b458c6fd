package metrics

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/chsql"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// Explanation lists the rows behind one KPI: "how is it calculated".
type Explanation struct {
	KPI     string
	Formula string
	Columns []string
	Rows    [][]string
	// Notes follow the rows: what the KPI's value is, from them.
	Notes []string
}

// ExplainableKPIs are the KPI names Explain accepts.
var ExplainableKPIs = []string{"deployment_frequency", "change_failure_rate", "rework_rate", "recovery_time", "mttr", "mttd", "mtta", "lead_time",
	KPIDeploymentsOutsideWindow}

// Explain lists the deployments, incidents (with their attributions) or
// changes that the KPI named kpi is computed from, for q's range and
// filters, with times in UTC.
func Explain(ctx context.Context, conn driver.Conn, kpi string, q Query) (*Explanation, error) {
	return ExplainIn(ctx, conn, kpi, q, time.UTC)
}

// ExplainIn is Explain with times in loc: the time zone the range was
// given in (--tz), which the table heading names.
func ExplainIn(ctx context.Context, conn driver.Conn, kpi string, q Query, loc *time.Location) (*Explanation, error) {
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
	ts := func(t time.Time) string { return explainTime(t, loc) }
	k, _ := LookupKPI(kpi)
	e := &Explanation{KPI: kpi, Formula: k.Formula}
	switch kpi {
	case "recovery_time":
		return e, explainRecovery(ctx, conn, q, attrs, e, ts)
	case KPIDeploymentsOutsideWindow:
		return e, explainWindows(ctx, conn, q, e, loc)
	case "deployment_frequency", "change_failure_rate", "rework_rate":
		e.Columns = []string{"deployment", "service", "environment", "finished", "status", "unplanned", "blamed for", "counts as failed"}
		src := deploymentsFinished(at(q.From), at(q.To), dimsAnd("finished_at", "status", "unplanned"), chsql.Expr{})
		err := query(ctx, conn, chsql.SQL(`SELECT deployment_id, service, environment, finished_at, status, unplanned
			FROM ? WHERE ? ORDER BY finished_at, deployment_id`, src, q.where("finished_at")), func(r *explainedDeployment) {
			failed := r.Status != "success" || len(causes[r.ID]) > 0
			e.Rows = append(e.Rows, []string{r.ID, r.Service, r.Environment, ts(r.Finished), r.Status, yes(r.Unplanned == 1),
				strings.Join(causes[r.ID], ", "), yes(failed)})
		})
		return e, err
	case "mttr", "mttd", "mtta":
		e.Columns = []string{"incident", "service", "severity", "impact", "detected", "acknowledged", "resolved", "cause", "how"}
		src := incidentsStarted(at(q.From), at(q.To), dimsAnd("severity", "impact_started_at", "detected_at", "acknowledged_at", "resolved_at")...)
		err := query(ctx, conn, chsql.SQL(`SELECT incident_id, service, severity,
				ifNull(impact_started_at, toDateTime(0, 'UTC')) AS v_impact, ifNull(detected_at, toDateTime(0, 'UTC')) AS v_detected,
				ifNull(acknowledged_at, toDateTime(0, 'UTC')) AS v_acknowledged, ifNull(resolved_at, toDateTime(0, 'UTC')) AS v_resolved
			FROM ? WHERE isNotNull(ifNull(impact_started_at, detected_at)) AND ? ORDER BY detected_at, incident_id`,
			src, q.where("assumeNotNull(ifNull(impact_started_at, detected_at))")), func(r *explainedIncident) {
			a := byIncident[r.ID]
			e.Rows = append(e.Rows, []string{r.ID, r.Service, r.Severity, ts(r.Impact), ts(r.Detected), ts(r.Acknowledged), ts(r.Resolved),
				a.DeploymentID, string(a.Method)})
		})
		return e, err
	case "lead_time":
		e.Columns = []string{"change", "service", "authored", "merged", "first production deployment", "deployed"}
		lookback := q.lookback()
		since := at(q.From.Add(-lookback))
		changes := chsql.SQL("("+store.Changes("authored_at >= ? OR merged_at >= ?", "service", "authored_at", "merged_at")+")", since, since)
		deploys := deploymentsFinished(since, chsql.Time{}, []string{"environment", "status", "finished_at", "changes"}, chsql.Expr{})
		where := chsql.SQL("first_deploy >= ? AND first_deploy < ?", at(q.From), at(q.To))
		if len(q.Services) > 0 {
			where = chsql.SQL("? AND has(?, service)", where, q.Services)
		}
		err := query(ctx, conn, chsql.SQL(`SELECT change_id, service, ifNull(authored_at, toDateTime(0, 'UTC')) AS v_authored,
				ifNull(merged_at, toDateTime(0, 'UTC')) AS v_merged, deployment, first_deploy
			FROM ?
			ANY LEFT JOIN (
				SELECT arrayJoin(changes) AS change_id, min(finished_at) AS first_deploy,
					argMin(deployment_id, tuple(finished_at, deployment_id)) AS deployment
				FROM ? WHERE status = 'success' AND has(?, environment) GROUP BY change_id
			) USING (change_id)
			WHERE ? ORDER BY first_deploy, change_id`, changes, deploys, q.production(), where), func(r *explainedChange) {
			e.Rows = append(e.Rows, []string{r.ID, r.Service, ts(r.Authored), ts(r.Merged), r.Deployment, ts(r.FirstDeploy)})
		})
		return e, err
	}
	return nil, fmt.Errorf("cannot explain %q: want one of %s", kpi, strings.Join(ExplainableKPIs, ", "))
}

// explainRecovery lists the failed deployments with their recovery
// times, shortest first (the order the median ranks them in), those not
// recovered last, and notes the median and its DORA level.
func explainRecovery(ctx context.Context, conn driver.Conn, q Query, attrs []Attribution, e *Explanation, ts func(time.Time) string) error {
	levels, err := q.levelTable()
	if err != nil {
		return err
	}
	blamed := []string{""}
	for _, a := range attrs {
		if a.DeploymentID != "" {
			blamed = append(blamed, a.DeploymentID)
		}
	}
	type row struct {
		cells []string
		secs  float64 // -1: not recovered
	}
	var rows []row
	var xs []float64
	q.By, q.Step = []Dimension{Service, Environment}, ""
	err = recoveries(ctx, conn, q, attrs, blamed, func(r *recoveryRow, from, to time.Time, by string) {
		v := r.values(2)
		cells := []string{r.ID, v[0], v[1], ts(r.Finished)}
		if to.IsZero() {
			if by == "" {
				by = "no successful deployment since"
			}
			rows = append(rows, row{append(cells, ts(from), "-", by, "not recovered"), -1})
			return
		}
		d := max(to.Sub(from).Seconds(), 0)
		xs = append(xs, d)
		rows = append(rows, row{append(cells, ts(from), ts(to), by, human("seconds", &d)), d})
	})
	if err != nil {
		return fmt.Errorf("recovery time: %w", err)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if (a.secs < 0) != (b.secs < 0) {
			return b.secs < 0
		}
		return a.secs < b.secs
	})
	e.Columns = []string{"deployment", "service", "environment", "finished", "recovery from", "recovered", "how", "recovery time"}
	for _, r := range rows {
		e.Rows = append(e.Rows, r.cells)
	}
	median := quantile(xs, 0.5)
	s := &Summary{RecoveryMedianSeconds: median}
	level := LevelLabel(levels.Levels(s)["recovery_time"])
	if level == "" {
		level = "-"
	}
	e.Notes = append(e.Notes, fmt.Sprintf("median of the %d recovered: %s; DORA %s level: %s; %d not recovered yet, left out",
		len(xs), human("seconds", median), levels.Name, level, len(rows)-len(xs)))
	return nil
}

// explainWindows lists the production deployments of q's range with the
// change calendar's class of each (docs/change-windows.md), the windows
// it missed or the freeze it hit, and when it would have been allowed,
// and notes the KPI's figures from them.
func explainWindows(ctx context.Context, conn driver.Conn, q Query, e *Explanation, loc *time.Location) error {
	e.Columns = []string{"deployment", "service", "team", "environment", "tier", "started", "finished", "actor", "pipeline", "class",
		"window missed, or freeze hit", "allowed from"}
	if q.Calendar == nil {
		e.Notes = append(e.Notes, "no change calendar is configured (change_calendar, docs/change-windows.md): no deployment is judged")
		return nil
	}
	wq := chsql.SQL(`SELECT deployment_id, service, team, environment, tier, actor, pipeline, version, t, finished_at, unplanned, fix, `+windowClass+`
		FROM ? WHERE ? ORDER BY t, deployment_id`, windowSource(q.rangeOf(), "actor", "pipeline", "version"), q.where("finished_at"))
	counts := map[string]int{}
	err := query(ctx, conn, wq, func(d *WindowDeployment) {
		counts[d.Class]++
		missed, next := "-", "-"
		if d.Class != string(calendar.InWindow) && d.Class != string(calendar.NoWindow) {
			v := d.Verdict(q.Calendar)
			names := v.Windows
			if v.Freeze != "" {
				names = []string{v.Freeze}
			}
			var parts []string
			for _, n := range names {
				text, _ := q.Calendar.Describe(n)
				parts = append(parts, n+": "+text)
			}
			missed = strings.Join(parts, "; ")
			if !v.NextAllowed.IsZero() {
				next = explainTime(v.NextAllowed, loc)
			}
		}
		e.Rows = append(e.Rows, []string{d.ID, d.Service, d.Team, d.Environment, d.Tier, explainTime(d.Time, loc), explainTime(d.Finished, loc),
			d.Actor, d.Pipeline, d.Class, missed, next})
	})
	if err != nil {
		return fmt.Errorf("deployments outside window: %w", err)
	}
	broke := counts[string(calendar.OutsideWindow)] + counts[string(calendar.InFreeze)]
	share := "-"
	if n := len(e.Rows); n > 0 {
		share = FormatValue("ratio", float64(broke)/float64(n))
	}
	e.Notes = append(e.Notes, fmt.Sprintf("deployments_outside_window: %d (%d outside_window + %d in_freeze) of %d deployments, share %s; "+
		"%d unplanned_fix counted apart; %d in_window, %d no_window", broke, counts[string(calendar.OutsideWindow)], counts[string(calendar.InFreeze)],
		len(e.Rows), share, counts[string(calendar.UnplannedFix)], counts[string(calendar.InWindow)], counts[string(calendar.NoWindow)]))
	return nil
}

// The rows of the explanations.
type (
	explainedDeployment struct {
		ID          string    `ch:"deployment_id"`
		Service     string    `ch:"service"`
		Environment string    `ch:"environment"`
		Finished    time.Time `ch:"finished_at"`
		Status      string    `ch:"status"`
		Unplanned   uint8     `ch:"unplanned"`
	}
	explainedIncident struct {
		ID           string    `ch:"incident_id"`
		Service      string    `ch:"service"`
		Severity     string    `ch:"severity"`
		Impact       time.Time `ch:"v_impact"`
		Detected     time.Time `ch:"v_detected"`
		Acknowledged time.Time `ch:"v_acknowledged"`
		Resolved     time.Time `ch:"v_resolved"`
	}
	explainedChange struct {
		ID          string    `ch:"change_id"`
		Service     string    `ch:"service"`
		Authored    time.Time `ch:"v_authored"`
		Merged      time.Time `ch:"v_merged"`
		Deployment  string    `ch:"deployment"`
		FirstDeploy time.Time `ch:"first_deploy"`
	}
)

// explainTime is t in the explanations: in loc to the minute, "-" for
// none.
func explainTime(t time.Time, loc *time.Location) string {
	if t.Unix() <= 0 {
		return "-"
	}
	return t.In(loc).Format("2006-01-02 15:04")
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
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range e.Notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
	return nil
}
