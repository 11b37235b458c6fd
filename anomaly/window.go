package anomaly

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// WindowAlert is the alert of a production deployment outside its change
// windows or in a freeze (docs/alerting.md, docs/change-windows.md).
const WindowAlert = "DeploymentOutsideWindow"

// DefaultWindowAlertFor is how long a deployment's WindowAlert fires when
// alerting.window_alert_for is not set.
const DefaultWindowAlertFor = 24 * time.Hour

// DefaultWindowAlertLate is how long after its finish a deployment stored
// late still alerts when alerting.window_alert_late is not set.
const DefaultWindowAlertLate = 7 * 24 * time.Hour

// WindowAlerts returns an alert for each production deployment that broke
// cfg.Calendar (outside its windows, or in a freeze) and finished in the
// WindowAlertFor before now, or that finished earlier, within
// WindowAlertLate, but was first stored in the WindowAlertFor before now
// (it arrived late); unplanned fixes for an open incident, which are
// expected outside windows, raise none. Its labels name the deployment
// (deployment_id, service, team, environment, and window: the windows it
// missed or the freeze it hit) with owner, tier and severity from the
// catalog, as every alert; its annotations the actor, the pipeline, its
// start and the window in the window's time zone, when it would have been
// allowed, and for a late one when it was stored. Each deployment is one
// alert: every evaluation while it is that recent sends the same labels
// and start, which the Notifier and Alertmanager merge; later it no
// longer fires, and the service resolves it. It fires for WindowAlertFor
// from the first evaluation that fired it, which the window_alerts table
// remembers: a replay that stores a late deployment's messages again does
// not raise it again. The alerts come in the tiers' order. Without a
// calendar there are none.
func WindowAlerts(ctx context.Context, conn driver.Conn, cfg AlertConfig, production []string, now time.Time) ([]Alert, error) {
	if cfg.Calendar == nil {
		return nil, nil
	}
	hold, late := cfg.WindowAlertFor, cfg.WindowAlertLate
	if hold <= 0 {
		hold = DefaultWindowAlertFor
	}
	if late <= 0 {
		late = DefaultWindowAlertLate
	}
	cat := cfg.services()
	q := metrics.Query{From: now.Add(-hold), To: now, Production: production, Calendar: cfg.Calendar, ServiceTiers: cat.Tiers()}
	ds, err := metrics.OutsideWindow(ctx, conn, q)
	if err != nil {
		return nil, err
	}
	stored := map[string]time.Time{}
	if late > hold {
		lq := q
		lq.From, lq.To = now.Add(-late), now.Add(-hold)
		older, err := metrics.OutsideWindow(ctx, conn, lq)
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, d := range older {
			ids = append(ids, d.ID)
		}
		if stored, err = metrics.FirstStored(ctx, conn, ids); err != nil {
			return nil, err
		}
		for _, d := range older {
			if at, ok := stored[d.ID]; ok && !at.Before(now.Add(-hold)) && !at.After(now) {
				ds = append(ds, d)
			}
		}
	}
	var fire []Alert
	var ranks []Ranked
	var ids []string
	for _, d := range ds {
		if d.Class != string(calendar.UnplannedFix) {
			ids = append(ids, d.ID)
		}
	}
	fired, err := windowAlertsFired(ctx, conn, ids)
	if err != nil {
		return nil, err
	}
	var first []string
	for _, d := range ds {
		if d.Class == string(calendar.UnplannedFix) {
			continue
		}
		switch at, ok := fired[d.ID]; {
		case !ok:
			first = append(first, d.ID)
		case at.Before(now.Add(-hold)) && d.Finished.Before(now.Add(-hold)):
			continue // fired once already, and no longer recent: a replay
		}
		v := d.Verdict(cfg.Calendar)
		missed := v.Freeze
		if missed == "" {
			missed = strings.Join(v.Windows, ",")
		}
		labels := map[string]string{"alertname": WindowAlert, "kpi": metrics.KPIDeploymentsOutsideWindow,
			"deployment_id": d.ID, "service": d.Service, "environment": d.Environment, "window": missed}
		if d.Team != "" {
			labels["team"] = d.Team
		}
		cfg.route(cat, labels, SeverityWarning)
		ann := windowAnnotations(cfg, d, v)
		if at, ok := stored[d.ID]; ok && d.Finished.Before(now.Add(-hold)) {
			ann["stored_at"] = at.UTC().Format(time.RFC3339)
			ann["description"] += fmt.Sprintf(" It was stored late, %s after it finished.", metrics.FormatValue("seconds", at.Sub(d.Finished).Seconds()))
		}
		fire = append(fire, Alert{Labels: labels, Annotations: ann, StartsAt: d.Time})
		ranks = append(ranks, Ranked{Tier: labels["tier"], Severity: labels["severity"], Tail: 1})
	}
	if err := recordWindowAlerts(ctx, conn, first, now); err != nil {
		return nil, err
	}
	return cfg.order(fire, ranks), nil
}

// The window_alerts table (migration 13) is this package's: when each
// deployment's WindowAlert first fired.

// windowAlertsFired is when the WindowAlert of each of ids first fired.
func windowAlertsFired(ctx context.Context, conn driver.Conn, ids []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := conn.Query(ctx, `SELECT deployment_id, min(fired_at) FROM window_alerts
		WHERE deployment_id IN (SELECT arrayJoin(?)) GROUP BY deployment_id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read change-window alerts fired: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("read change-window alerts fired: %w", err)
		}
		out[id] = at
	}
	return out, rows.Err()
}

// recordWindowAlerts remembers that the WindowAlerts of ids first fired at
// now.
func recordWindowAlerts(ctx context.Context, conn driver.Conn, ids []string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO window_alerts (deployment_id, fired_at)")
	if err != nil {
		return fmt.Errorf("record change-window alerts fired: %w", err)
	}
	defer batch.Abort()
	for _, id := range ids {
		if err := batch.Append(id, now.UTC()); err != nil {
			return fmt.Errorf("record change-window alerts fired: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record %d change-window alerts fired: %w", len(ids), err)
	}
	return nil
}

// windowAnnotations word a WindowAlert: what was deployed, when in the
// missed window's zone (or the freeze's), by whom and through which
// pipeline, the windows or the freeze with their hours, and when it would
// have been allowed.
func windowAnnotations(cfg AlertConfig, d metrics.WindowDeployment, v calendar.Verdict) map[string]string {
	var missed []string
	loc := time.UTC
	names := v.Windows
	if v.Freeze != "" {
		names = []string{v.Freeze}
	}
	for i, name := range names {
		text, l := cfg.Calendar.Describe(name)
		if i == 0 {
			loc = l
		}
		missed = append(missed, name+": "+text)
	}
	when := d.Time.In(loc).Format("Mon 2006-01-02 15:04 MST")
	what, verb := "outside its change windows", "it missed "
	if v.Freeze != "" {
		what, verb = "in the freeze "+v.Freeze, "it hit "
	}
	by := ""
	if d.Actor != "" {
		by = " by " + d.Actor
	}
	summary := fmt.Sprintf("%s deployed to %s %s, %s%s", d.Service, d.Environment, what, when, by)
	desc := fmt.Sprintf("Deployment %s of %s", d.ID, d.Service)
	if d.Version != "" {
		desc += " " + d.Version
	}
	if d.Team != "" {
		desc += " (team " + d.Team + ")"
	}
	desc += fmt.Sprintf(" to %s started %s (%s UTC)%s", d.Environment, when, d.Time.UTC().Format("15:04"), by)
	if d.Pipeline != "" {
		desc += " through pipeline " + d.Pipeline
	}
	desc += "; " + verb + strings.Join(missed, "; ") + "."
	ann := map[string]string{
		"summary":     summary,
		"description": desc,
		"deployed_at": d.Time.In(loc).Format(time.RFC3339),
		"window":      strings.Join(missed, "; "),
		"runbook_url": cfg.runbook(metrics.KPIDeploymentsOutsideWindow),
	}
	if !v.NextAllowed.IsZero() {
		next := v.NextAllowed.In(loc)
		ann["next_allowed"] = next.Format(time.RFC3339)
		ann["description"] += " It would have been allowed from " + next.Format("Mon 2006-01-02 15:04 MST") + "."
	}
	for k, val := range map[string]string{"actor": d.Actor, "pipeline": d.Pipeline, "version": d.Version} {
		if val != "" {
			ann[k] = val
		}
	}
	return ann
}
