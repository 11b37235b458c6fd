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

// WindowAlerts returns an alert for each production deployment that broke
// cfg.Calendar (outside its windows, or in a freeze) and finished in the
// WindowAlertFor before now; unplanned fixes for an open incident, which
// are expected outside windows, raise none. Its labels name the deployment
// (deployment_id, service, team, environment, and window: the windows it
// missed or the freeze it hit) with owner, tier and severity from the
// catalog, as every alert; its annotations the actor, the pipeline, its
// start and the window in the window's time zone, and when it would have
// been allowed. Each deployment is one alert: every evaluation while it is
// that recent sends the same labels and start, which the Notifier and
// Alertmanager merge; later it no longer fires, and the service resolves
// it. The alerts come in the tiers' order. Without a calendar there are
// none.
func WindowAlerts(ctx context.Context, conn driver.Conn, cfg AlertConfig, production []string, now time.Time) ([]Alert, error) {
	if cfg.Calendar == nil {
		return nil, nil
	}
	hold := cfg.WindowAlertFor
	if hold <= 0 {
		hold = DefaultWindowAlertFor
	}
	cat := cfg.services()
	ds, err := metrics.OutsideWindow(ctx, conn, metrics.Query{From: now.Add(-hold), To: now, Production: production,
		Calendar: cfg.Calendar, ServiceTiers: cat.Tiers()})
	if err != nil {
		return nil, err
	}
	var fire []Alert
	var ranks []Ranked
	for _, d := range ds {
		if d.Class == string(calendar.UnplannedFix) {
			continue
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
		fire = append(fire, Alert{Labels: labels, Annotations: windowAnnotations(cfg, d, v), StartsAt: d.Time})
		ranks = append(ranks, Ranked{Tier: labels["tier"], Severity: labels["severity"], Tail: 1})
	}
	return cfg.order(fire, ranks), nil
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
