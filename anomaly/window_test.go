package anomaly_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestWindowAlerts: a payments deployment on Friday at 18:00 Paris time,
// in a team whose window is Tuesday and Thursday 10:00–16:00, alerts the
// real Alertmanager once, with its deployment, actor, pipeline, the
// window it missed in the window's zone, and owner and tier from the
// catalog, however often evaluations and replicas send it; an unplanned
// fix for an open incident that evening and a deployment in the window
// raise nothing; a tier-1 service's deployment in the year-end freeze
// names the freeze and is critical; a day later the Friday alert is over.
func TestWindowAlerts(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	log := slog.New(slog.DiscardHandler)
	paris, _ := time.LoadLocation("Europe/Paris")
	local := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	deploy := func(id, service, team string, start time.Time, f func(*event.Deployment)) store.Record {
		d := &event.Deployment{ID: id, Service: service, Team: team, Environment: "production", Status: event.DeploymentSuccess,
			StartedAt: start, FinishedAt: start.Add(12 * time.Minute)}
		if f != nil {
			f(d)
		}
		return store.Record{Event: &event.Event{Kind: event.KindDeployment, ID: "e-" + id, Time: d.FinishedAt, Deployment: d}, Topic: "t"}
	}
	recs := []store.Record{
		deploy("pay-fri18", "checkout", "payments", local("2026-11-20 18:00"), func(d *event.Deployment) {
			d.Actor, d.Pipeline, d.Version = "new-hire", "checkout-cd", "v2.4.1"
		}),
		deploy("pay-thu", "checkout", "payments", local("2026-11-19 11:00"), nil),
		deploy("pay-fix", "checkout", "payments", local("2026-11-20 21:00"), func(d *event.Deployment) { d.Unplanned = true }),
		deploy("ledger-freeze", "ledger", "growth", local("2026-12-22 10:00"), func(d *event.Deployment) { d.Actor = "release-bot" }),
		{Event: &event.Event{Kind: event.KindIncident, ID: "e-inc", Time: local("2026-11-20 20:00"), Incident: &event.Incident{
			ID: "INC-77", Service: "checkout", Environment: "production", DetectedAt: local("2026-11-20 20:00")}}, Topic: "t"},
	}
	for i := range recs {
		recs[i].Offset = int64(i)
	}
	if err := st.Write(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	prod := []string{"production"}
	cal, err := calendar.New(calendar.Config{TimeZone: "Europe/Paris",
		Windows: []calendar.WindowConfig{
			{Name: "payments-tue-thu", Scope: calendar.Scope{Environments: prod, Teams: []string{"payments"}},
				Days: []string{"tue", "thu"}, From: "10:00", To: "16:00"},
			{Name: "production-weekdays", Scope: calendar.Scope{Environments: prod}, Days: []string{"mon-fri"}, From: "09:00", To: "17:00"},
		},
		Freezes: []calendar.FreezeConfig{{Name: "year-end", Reason: "year-end trading peak",
			Scope: calendar.Scope{Environments: prod}, From: "2026-12-19", To: "2027-01-04"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "services.yaml"), []byte(
		"- {name: checkout, owner: payments-squad, tier: tier-2}\n- {name: ledger, owner: ledger-team, tier: tier-1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := catalog.NewWatcher(catalog.Config{Path: dir}, log)
	if err != nil {
		t.Fatal(err)
	}
	acfg := anomaly.DefaultAlertingConfig().AlertConfig
	acfg.Catalog, acfg.Calendar = w, cal
	acfg.DefaultRunbook = "https://runbooks.example/change-windows"

	// Two evaluations five minutes apart, each a separate one-shot run
	// with its own notifier (as `anomaly detect` on a schedule, or two
	// replicas), send the same alert.
	am, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Stop() })
	friday := local("2026-11-20 23:30")
	for _, now := range []time.Time{friday, friday.Add(5 * time.Minute)} {
		fire, err := anomaly.WindowAlerts(ctx, st.Conn(), acfg, prod, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(fire) != 1 || fire[0].Labels["deployment_id"] != "pay-fri18" {
			t.Fatalf("alerts at %s: %v, want pay-fri18's alone (not the fix, not the Thursday one)", now, fire)
		}
		n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL}, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		n.Fire(fire[0])
		if err := n.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var held []alertmanager.Alert
	testenv.Eventually(t, 20*time.Second, "the alert in Alertmanager", func() (bool, string) {
		held, err = am.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(held) > 0, "no alert"
	})
	if len(held) != 1 {
		t.Fatalf("%d alerts in Alertmanager, want one for the one deployment: %v", len(held), held)
	}
	a := held[0]
	for k, v := range map[string]string{"alertname": anomaly.WindowAlert, "deployment_id": "pay-fri18", "service": "checkout",
		"team": "payments", "environment": "production", "window": "payments-tue-thu", "owner": "payments-squad", "tier": "tier-2",
		"severity": "warning"} {
		if a.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, a.Labels[k], v, a.Labels)
		}
	}
	for k, v := range map[string]string{"actor": "new-hire", "pipeline": "checkout-cd", "version": "v2.4.1",
		"deployed_at": "2026-11-20T18:00:00+01:00", "next_allowed": "2026-11-24T10:00:00+01:00",
		"window":      "payments-tue-thu: tue, thu 10:00–16:00 (Europe/Paris)",
		"runbook_url": "https://runbooks.example/change-windows"} {
		if a.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, a.Annotations[k], v)
		}
	}
	if s := a.Annotations["summary"]; !strings.Contains(s, "Fri 2026-11-20 18:00 CET") || !strings.Contains(s, "by new-hire") {
		t.Errorf("summary %q", s)
	}
	if !a.StartsAt.Equal(local("2026-11-20 18:00")) {
		t.Errorf("starts at %s, want the deployment's start", a.StartsAt)
	}

	// Evaluate, which serve and `anomaly detect` run, fires it too.
	ev, err := anomaly.Evaluate(ctx, st.Conn(), anomaly.Config{Production: prod}, nil, acfg, friday, log)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ev.Fire); n != 1 || ev.Fire[0].Labels["alertname"] != anomaly.WindowAlert {
		t.Errorf("Evaluate fires %d alerts, want the change-window one: %v", n, ev.Fire)
	}

	// A day after its finish the deployment no longer alerts.
	if fire, err := anomaly.WindowAlerts(ctx, st.Conn(), acfg, prod, local("2026-11-21 18:30")); err != nil || len(fire) != 0 {
		t.Errorf("a day later: %v (%v), want no alert", fire, err)
	}
	// In the freeze: the freeze is named; ledger is tier-1, so critical.
	fire, err := anomaly.WindowAlerts(ctx, st.Conn(), acfg, prod, local("2026-12-22 11:00"))
	if err != nil || len(fire) != 1 {
		t.Fatalf("in the freeze: %v (%v), want ledger-freeze's alert", fire, err)
	}
	l, ann := fire[0].Labels, fire[0].Annotations
	if l["deployment_id"] != "ledger-freeze" || l["window"] != "year-end" || l["tier"] != "tier-1" || l["severity"] != "critical" ||
		l["owner"] != "ledger-team" {
		t.Errorf("freeze alert labels %v", l)
	}
	if want := "year-end: frozen 2026-12-19 00:00 to 2027-01-04 00:00 (Europe/Paris): year-end trading peak"; ann["window"] != want ||
		ann["next_allowed"] != "2027-01-04T09:00:00+01:00" || ann["actor"] != "release-bot" {
		t.Errorf("freeze alert annotations %v", ann)
	}

	// No calendar, no change-window alerts.
	acfg.Calendar = nil
	if fire, err := anomaly.WindowAlerts(ctx, st.Conn(), acfg, prod, friday); err != nil || fire != nil {
		t.Errorf("without a calendar: %v (%v)", fire, err)
	}
}

// TestLateDeploymentAlertsOnce: a deployment in a freeze that finished
// three days ago and is stored only now alerts the real Alertmanager once,
// saying it was stored late, on every evaluation within window_alert_for
// of its storage and not after; storing its messages again (a replay,
// merged so that it looks stored anew) does not raise it again, which
// only the record of its first firing prevents; one that finished beyond
// window_alert_late before raises none.
func TestLateDeploymentAlertsOnce(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	log := slog.New(slog.DiscardHandler)
	now := time.Now().UTC().Truncate(time.Second)
	deploy := func(id string, finished time.Time, offset int64) store.Record {
		d := &event.Deployment{ID: id, Service: "ledger", Team: "growth", Environment: "production", Status: event.DeploymentSuccess,
			StartedAt: finished.Add(-10 * time.Minute), FinishedAt: finished, Actor: "release-bot"}
		return store.Record{Event: &event.Event{Kind: event.KindDeployment, ID: "e-" + id, Time: finished, Deployment: d}, Topic: "t", Offset: offset}
	}
	recs := []store.Record{deploy("late-3d", now.Add(-72*time.Hour), 0), deploy("late-10d", now.Add(-240*time.Hour), 1)}
	if err := st.Write(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	first, err := metrics.FirstStored(ctx, st.Conn(), []string{"late-3d"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := first["late-3d"]
	prod := []string{"production"}
	cal, err := calendar.New(calendar.Config{Freezes: []calendar.FreezeConfig{{Name: "migration", Scope: calendar.Scope{Environments: prod},
		From: now.AddDate(0, 0, -30).Format(time.RFC3339), To: now.AddDate(0, 0, 30).Format(time.RFC3339)}}})
	if err != nil {
		t.Fatal(err)
	}
	acfg := anomaly.DefaultAlertingConfig().AlertConfig
	acfg.Calendar = cal
	ids := func(as []anomaly.Alert) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Labels["deployment_id"])
		}
		return out
	}
	am, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Stop() })
	for _, at := range []time.Time{t0, t0.Add(5 * time.Minute)} {
		fire, err := anomaly.WindowAlerts(ctx, st.Conn(), acfg, prod, at)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(fire); len(got) != 1 || got[0] != "late-3d" {
			t.Fatalf("alerts at %s: %v, want late-3d's alone (late-10d is beyond window_alert_late)", at, got)
		}
		if d := fire[0].Annotations["description"]; !strings.Contains(d, "It was stored late, 3.0 days after it finished.") ||
			fire[0].Annotations["stored_at"] != t0.Format(time.RFC3339) || !fire[0].StartsAt.Equal(now.Add(-72*time.Hour-10*time.Minute)) {
			t.Errorf("late alert %v starting %s: want it stored late at %s, starting at the deployment's start", fire[0].Annotations,
				fire[0].StartsAt, t0)
		}
		n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL}, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		n.Fire(fire[0])
		if err := n.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var held []alertmanager.Alert
	testenv.Eventually(t, 20*time.Second, "the late alert in Alertmanager", func() (bool, string) {
		held, err = am.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(held) > 0, "no alert"
	})
	if len(held) != 1 || held[0].Labels["deployment_id"] != "late-3d" || held[0].Labels["window"] != "migration" {
		t.Errorf("Alertmanager holds %v, want late-3d's one alert", held)
	}

	// A day after it was stored, it is over.
	later := t0.Add(24*time.Hour + time.Second)
	if fire, err := anomaly.WindowAlerts(ctx, st.Conn(), acfg, prod, later); err != nil || len(fire) != 0 {
		t.Errorf("a day after storage: %v (%v), want none", ids(fire), err)
	}
	// A replay stores its messages again, and the merge keeps the new
	// copy: it looks stored a few seconds after t0, within a day of
	// later, yet it fired already.
	time.Sleep(3 * time.Second)
	if err := st.Write(ctx, recs[:1], nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Conn().Exec(ctx, "OPTIMIZE TABLE deployment_events FINAL"); err != nil {
		t.Fatal(err)
	}
	if stored, err := metrics.FirstStored(ctx, st.Conn(), []string{"late-3d"}); err != nil || !stored["late-3d"].After(t0.Add(time.Second)) {
		t.Fatalf("after the replay and merge, first stored %v (%v), want after %s", stored, err, t0.Add(time.Second))
	}
	if fire, err := anomaly.WindowAlerts(ctx, st.Conn(), acfg, prod, later); err != nil || len(fire) != 0 {
		t.Errorf("after the replay: %v (%v), want none", ids(fire), err)
	}
	// Without the record of its first firing, the replay would alert.
	if err := st.Conn().Exec(ctx, "DROP TABLE window_alerts"); err != nil {
		t.Fatal(err)
	}
	if err := st.Conn().Exec(ctx, "CREATE TABLE window_alerts (deployment_id String, fired_at DateTime('UTC')) ENGINE = MergeTree ORDER BY deployment_id"); err != nil {
		t.Fatal(err)
	}
	if fire, err := anomaly.WindowAlerts(ctx, st.Conn(), acfg, prod, later); err != nil || len(fire) != 1 {
		t.Errorf("the replay without the record: %v (%v), want late-3d's alert: the test shows nothing", ids(fire), err)
	}
}
