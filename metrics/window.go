package metrics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/chsql"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// The change calendar's KPI, deployments_outside_window (docs/kpis.md,
// docs/change-windows.md): production deployments judged by
// Query.Calendar at their start, counted in the range (and bucket) their
// finish falls in, as every deployment KPI. Deployments outside their
// windows or in a freeze break the calendar; unplanned fixes for an
// incident of their service open at the time are counted apart.

// KPIDeploymentsOutsideWindow is the KPI's name in the catalogue, panels
// and alerts.
const KPIDeploymentsOutsideWindow = "deployments_outside_window"

// windowClass is the column of windowSource that holds a deployment's
// calendar.Class.
const windowClass = "window_class"

// breaksCalendar is the condition on windowClass of the deployments the
// KPI counts.
var breaksCalendar = fmt.Sprintf("%s IN ('%s', '%s')", windowClass, calendar.OutsideWindow, calendar.InFreeze)

// calendarColumns are the columns of windowSource the calendar judges.
var calendarColumns = calendar.Columns{Time: "t", Environment: "environment", Team: "team", Tier: "tier", UnplannedFix: "fix"}

// windowSource is the production deployments whose messages report a
// finish in r's range, with the columns the calendar reads and cols: t
// (the start, or the finish when the start is unknown), tier (from
// r.ServiceTiers, or the stored service catalog for panels that ask for
// it: PanelOptions.StoredTiers), fix (an unplanned deployment while an incident of its
// service is open: impact start, or detection, at or before t, and not
// resolved by t) and window_class, the calendar's class (no_window for
// all when r has no calendar). Callers filter on finished_at.
func windowSource(r queryRange, cols ...string) chsql.Expr {
	deploys := deploymentsFinished(r.from, r.to, dimsAnd(append([]string{"started_at", "finished_at", "unplanned"}, cols...)...), chsql.Expr{})
	var tier chsql.Expr
	if r.storedTiers {
		tier = chsql.SQL(`SELECT * FROM (SELECT *, `+ServiceKey("service")+` AS catalog_key FROM ? WHERE has(?, environment))
			ANY LEFT JOIN (SELECT key AS catalog_key, tier FROM `+CurrentServiceCatalog+`) USING (catalog_key)`, deploys, r.production())
	} else {
		// In the services' order, so that a panel's SQL is the same at
		// every build; the empty name keeps the arrays typed Array(String).
		names, tiers := []string{""}, []string{""}
		for _, svc := range slices.Sorted(maps.Keys(r.ServiceTiers)) {
			names = append(names, catalog.Key(strings.TrimSpace(svc))) // as lower(service) folds
			tiers = append(tiers, strings.ToLower(strings.TrimSpace(r.ServiceTiers[svc])))
		}
		tier = chsql.SQL("SELECT *, transform(lower(service), ?, ?, '') AS tier FROM ? WHERE has(?, environment)", names, tiers, deploys, r.production())
	}
	class := "'" + string(calendar.NoWindow) + "'"
	if r.Calendar != nil {
		class = r.Calendar.SQL(calendarColumns)
	}
	incidents := "(" + store.Incidents("", "service", "impact_started_at", "detected_at", "resolved_at") + ")"
	return chsql.SQL(`(
			SELECT *, `+class+` AS `+windowClass+`
			FROM (
				SELECT *, unplanned = 1 AND arrayExists((o, c) -> o <= t AND (c = toDateTime(0) OR c > t), inc_open, inc_closed) AS fix
				FROM (
					SELECT *, assumeNotNull(ifNull(started_at, finished_at)) AS t FROM (?)
				)
				ANY LEFT JOIN (
					SELECT service, groupArray(opened) AS inc_open, groupArray(closed) AS inc_closed
					FROM (
						SELECT service, assumeNotNull(ifNull(impact_started_at, detected_at)) AS opened,
							ifNull(resolved_at, toDateTime(0)) AS closed
						FROM `+incidents+`
						WHERE service != '' AND isNotNull(ifNull(impact_started_at, detected_at)) AND opened < ?
					)
					GROUP BY service
				) USING (service)
			)
		)`, tier, r.to)
}

// windowRow is a row of the KPI's query.
type windowRow struct {
	dims
	Deployments uint64 `ch:"v_deployments"`
	Outside     uint64 `ch:"v_outside"`
	InFreeze    uint64 `ch:"v_in_freeze"`
	Fixes       uint64 `ch:"v_fixes"`
}

// set sets the calendar's figures of s from r.
func (r *windowRow) set(s *Summary) {
	s.DeploymentsOutsideWindow, s.DeploymentsInFreeze, s.UnplannedFixesOutsideWindow = r.Outside, r.InFreeze, r.Fixes
	if r.Deployments > 0 {
		s.OutsideWindowShare = ptr(float64(r.Outside) / float64(r.Deployments))
	}
}

// windowKey names the change calendar and service tiers of q, which decide
// every deployment's class: a rollup built with the same key holds q's
// calendar counts (kpi_window_daily). Empty without a calendar.
//
// It is the SHA-256 of the calendar's classification SQL, a colon and
// that of the tiers (windowCalendarKey): panels that read the tiers from
// the stored catalog match the calendar alone.
func (q Query) windowKey() string {
	if q.Calendar == nil {
		return ""
	}
	h := sha256.New()
	for _, svc := range slices.Sorted(maps.Keys(q.ServiceTiers)) {
		fmt.Fprintf(h, "\x00%s=%s", strings.ToLower(strings.TrimSpace(svc)), strings.ToLower(strings.TrimSpace(q.ServiceTiers[svc])))
	}
	return q.windowCalendarKey() + hex.EncodeToString(h.Sum(nil))
}

// windowCalendarKey is the start of windowKey that names q's calendar.
func (q Query) windowCalendarKey() string {
	h := sha256.Sum256([]byte(q.Calendar.SQL(calendarColumns)))
	return hex.EncodeToString(h[:]) + ":"
}

// windowCounts are the columns of kpi_window_daily's counts, over
// windowSource's rows.
var windowCounts = `count() AS v_deployments, countIf(` + breaksCalendar + `) AS v_outside,
		countIf(` + windowClass + ` = '` + string(calendar.InFreeze) + `') AS v_in_freeze,
		countIf(` + windowClass + ` = '` + string(calendar.UnplannedFix) + `') AS v_fixes`

// writeWindows writes generation gen of kpi_window_daily: the calendar
// counts of every UTC day in [lo, hi) and slice, by q's calendar and tiers.
// A deployment's class depends on it alone (its times, scope and the
// incidents open at its start), never on the range asked, so the counts of
// days add up to those of their range.
func writeWindows(ctx context.Context, conn driver.Conn, q Query, gen uint64, lo, hi time.Time) error {
	r := queryRange{Query: q, from: at(lo), to: at(hi)}
	text, args, err := chsql.Bind(chsql.SQL(`INSERT INTO kpi_window_daily (generation, day, service, team, environment, deployments, outside, in_freeze, fixes)
		SELECT toUInt64(?), day, service, team, environment, v_deployments, v_outside, v_in_freeze, v_fixes
		FROM (
			SELECT toDate(finished_at) AS day, service, team, environment, `+windowCounts+`
			FROM ? WHERE finished_at >= ? AND finished_at < ?
			GROUP BY day, service, team, environment
		)`, gen, windowSource(r), r.from, r.to))
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, text, args...); err != nil {
		return fmt.Errorf("write the KPI rollup's calendar counts: %w", err)
	}
	// And the deployments that broke the calendar, for the panels' list.
	text, args, err = chsql.Bind(chsql.SQL(`INSERT INTO kpi_window_deployments (generation, t, finished_at, deployment_id, service, team, environment,
			actor, pipeline, version, window_class)
		SELECT toUInt64(?), t, finished_at, deployment_id, service, team, environment, actor, pipeline, version, `+windowClass+`
		FROM ? WHERE finished_at >= ? AND finished_at < ? AND `+breaksCalendar, gen, windowSource(r, "actor", "pipeline", "version"), r.from, r.to))
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, text, args...); err != nil {
		return fmt.Errorf("write the KPI rollup's deployments outside windows: %w", err)
	}
	return nil
}

// windowsFromRollup sets the calendar's figures of each slice of q from
// rollup r, grouped as the rollup read groups (cols, group), through q's
// cache as the rollup read is.
func windowsFromRollup(ctx context.Context, conn driver.Conn, q Query, r Rollup, cols, group chsql.Expr, get func([]string) *Summary) error {
	wq := chsql.SQL(`SELECT ?sum(deployments) AS w_deployments, sum(outside) AS w_outside, sum(in_freeze) AS w_in_freeze, sum(fixes) AS w_fixes
		FROM ???`, cols, q.rollupSource("kpi_window_daily", r, ""), andAll(q.filters()), group)
	rows, err := readRollup(ctx, conn, q.Cache, wq)
	if err != nil {
		return fmt.Errorf("deployments outside window, from the rollup: %w", err)
	}
	n := q.dims()
	for i := range rows {
		row := &rows[i]
		w := windowRow{Deployments: row.WindowDeployments, Outside: row.Outside, InFreeze: row.InFreeze, Fixes: row.Fixes}
		w.set(get(row.values(n)))
	}
	return nil
}

// outsideWindow sets the calendar's figures of each slice of q. Without a
// calendar it does nothing: the counts stay 0 and the share absent.
func outsideWindow(ctx context.Context, conn driver.Conn, q Query, get func([]string) *Summary) error {
	if q.Calendar == nil {
		return nil
	}
	cols, group := q.groupBy("finished_at")
	wq := chsql.SQL(`SELECT ?`+windowCounts+`
		FROM ? WHERE ??`, cols, windowSource(q.rangeOf()), q.where("finished_at"), group)
	n := q.dims()
	err := query(ctx, conn, wq, func(r *windowRow) { r.set(get(r.values(n))) })
	if err != nil {
		return fmt.Errorf("deployments outside window: %w", err)
	}
	return nil
}

// WindowDeployment is one production deployment that broke the change
// calendar, or an unplanned fix outside it, with what the alert about it
// says.
type WindowDeployment struct {
	ID          string    `ch:"deployment_id"`
	Service     string    `ch:"service"`
	Team        string    `ch:"team"`
	Environment string    `ch:"environment"`
	Tier        string    `ch:"tier"`
	Actor       string    `ch:"actor"`
	Pipeline    string    `ch:"pipeline"`
	Version     string    `ch:"version"`
	Time        time.Time `ch:"t"` // its start, or its finish when the start is unknown
	Finished    time.Time `ch:"finished_at"`
	Unplanned   uint8     `ch:"unplanned"`
	Fix         uint8     `ch:"fix"` // 1: unplanned, while an incident of its service was open
	Class       string    `ch:"window_class"`
}

// OutsideWindow lists the production deployments of q (by their finish,
// filtered by q's services, teams and environments) that the calendar
// classes outside_window, in_freeze or unplanned_fix, oldest first: what
// the change-window alerts are about. calendar.Calendar.Classify on each
// gives the window it missed. Without a calendar there are none.
func OutsideWindow(ctx context.Context, conn driver.Conn, q Query) ([]WindowDeployment, error) {
	if q.Calendar == nil {
		return nil, nil
	}
	wq := chsql.SQL(`SELECT deployment_id, service, team, environment, tier, actor, pipeline, version, t, finished_at,
			unplanned, fix, `+windowClass+`
		FROM ? WHERE ? AND (`+breaksCalendar+` OR `+windowClass+` = '`+string(calendar.UnplannedFix)+`')
		ORDER BY t, deployment_id`, windowSource(q.rangeOf(), "actor", "pipeline", "version"), q.where("finished_at"))
	var out []WindowDeployment
	if err := query(ctx, conn, wq, func(d *WindowDeployment) { out = append(out, *d) }); err != nil {
		return nil, fmt.Errorf("deployments outside window: %w", err)
	}
	return out, nil
}

// Verdict is the calendar's judgement of d, with the window it missed or
// the freeze it hit, under cal (the calendar d was found by).
func (d WindowDeployment) Verdict(cal *calendar.Calendar) calendar.Verdict {
	return cal.Classify(calendar.Deployment{Time: d.Time, Environment: d.Environment, Team: d.Team, Tier: d.Tier,
		UnplannedFix: d.Fix == 1})
}

// FirstStored is when each of the deployments ids was first stored: the
// earliest ingestion among its messages held now. A replayed message is
// stored again, so once merged it can make this later; callers that must
// not count a deployment twice remember what they did with it.
func FirstStored(ctx context.Context, conn driver.Conn, ids []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(ids) == 0 {
		return out, nil
	}
	err := query(ctx, conn, chsql.SQL(`SELECT deployment_id, min(ingested_at) AS stored_at FROM deployment_events
		WHERE ? GROUP BY deployment_id`, inSet("deployment_id", ids)), func(r *struct {
		ID     string    `ch:"deployment_id"`
		Stored time.Time `ch:"stored_at"`
	}) {
		out[r.ID] = r.Stored
	})
	if err != nil {
		return nil, fmt.Errorf("deployments first stored: %w", err)
	}
	return out, nil
}
