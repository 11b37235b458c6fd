package anomaly_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// searchComponent is a Backstage descriptor of search, owned by a group
// other than the team its events send, at the given tier.
func searchComponent(tier string) string {
	return `apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: search
  annotations:
    opsmetrics.dev/tier: "` + tier + `"
spec:
  type: service
  lifecycle: production
  owner: group:default/search-squad
`
}

// TestAlertsOwnerAndTier: the anomalies of TestDetectAndAlert's Monday,
// labelled from a Backstage catalog that the watcher reloads. Search's
// change failure rate goes from tier-3 (warning, whatever the detector
// said) to tier 1 when the catalog changes, and arrives in the real
// Alertmanager as critical with its catalog owner and tier, ahead of every
// other alert; checkout, which the catalog does not know, keeps its team as
// owner, tier none and the detector's severity, or takes
// alerting.tiers.default's level when one is set.
func TestAlertsOwnerAndTier(t *testing.T) {
	ctx := context.Background()
	h := &history{r: rand.New(rand.NewPCG(1, 1))}
	for d := start; d.Before(anomalyDay); d = d.Add(day) {
		h.ordinary(d)
	}
	h.day(anomalyDay, 0, 8)
	st, log := learnDays(t, h)
	evals, err := anomaly.Detect(ctx, st.Conn(), anomaly.Config{Steps: []metrics.Step{metrics.StepDay}}, anomalyDay.Add(day+time.Hour), log)
	if err != nil {
		t.Fatal(err)
	}
	detected := map[string]string{} // kpi service → the detector's severity
	for _, e := range evals {
		if e.Firing {
			detected[e.Series.KPI+" "+e.Series.Service] = e.Latest.Score.Severity
		}
	}
	if detected["change_failure_rate search"] == "" || detected["deployments checkout"] == "" {
		t.Fatalf("the Monday's anomalies did not fire: %v", detected)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "catalog-info.yaml")
	if err := os.WriteFile(file, []byte(searchComponent("tier-3")), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := catalog.NewWatcher(catalog.Config{Path: dir, ReloadInterval: time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go w.Run(runCtx)

	acfg := anomaly.DefaultAlertingConfig().AlertConfig
	acfg.Catalog = w
	alertOf := func(fire []anomaly.Alert, kpi, service string) anomaly.Alert {
		t.Helper()
		for _, a := range fire {
			if a.Labels["kpi"] == kpi && a.Labels["service"] == service {
				return a
			}
		}
		t.Fatalf("no %s alert for %s among %d", kpi, service, len(fire))
		return anomaly.Alert{}
	}
	wantLabels := func(what string, got anomaly.Alert, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q (labels %v)", what, k, got.Labels[k], v, got.Labels)
			}
		}
	}
	fire, _ := anomaly.Alerts(evals, acfg)
	wantLabels("tier 3", alertOf(fire, "change_failure_rate", "search"),
		map[string]string{"owner": "search-squad", "tier": "tier-3", "severity": "warning"})

	// The catalog changes: search is tier 1 (an alias of tier-1). The
	// watcher reloads it, and the next alerts follow.
	if err := os.WriteFile(file, []byte(searchComponent("1")), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the watcher reloads the catalog", func() (bool, string) {
		e, _ := w.Catalog().Lookup("search")
		return e.Tier == "1", "tier " + e.Tier
	})
	fire, _ = anomaly.Alerts(evals, acfg)
	if l := fire[0].Labels; l["service"] != "search" || l["tier"] != "tier-1" {
		t.Errorf("the tier-1 alert does not come first: %v", l)
	}
	checkout := alertOf(fire, "deployments", "checkout")
	wantLabels("not in the catalog", checkout, map[string]string{"owner": "payments", "tier": anomaly.NoTier,
		"severity": detected["deployments checkout"]})
	for _, a := range fire {
		if a.Labels["owner"] == "" || a.Labels["tier"] == "" {
			t.Errorf("alert without owner or tier: %v", a.Labels)
		}
	}
	if org := alertOf(fire, "change_failure_rate", ""); org.Labels["team"] == "" && org.Labels["owner"] != anomaly.NoOwner {
		t.Errorf("an organisation-wide alert's owner: %v", org.Labels)
	}

	am := deliver(t, log, fire...)
	held := map[string]alertmanager.Alert{}
	testenv.Eventually(t, 20*time.Second, "both alerts in Alertmanager", func() (bool, string) {
		alerts, err := am.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			held[a.Labels["kpi"]+" "+a.Labels["service"]] = a
		}
		_, cfr := held["change_failure_rate search"]
		_, deploys := held["deployments checkout"]
		return cfr && deploys, fmt.Sprintf("%d alerts", len(alerts))
	})
	cfr := held["change_failure_rate search"]
	for k, v := range map[string]string{"owner": "search-squad", "tier": "tier-1", "severity": "critical", "team": "discovery"} {
		if cfr.Labels[k] != v {
			t.Errorf("search's alert in Alertmanager: label %s = %q, want %q", k, cfr.Labels[k], v)
		}
	}
	if l := held["deployments checkout"].Labels; l["owner"] != "payments" || l["tier"] != anomaly.NoTier {
		t.Errorf("checkout's alert in Alertmanager: %v", l)
	}

	// With a default tier, services the catalog does not know take it.
	acfg.Tiers.Default = "tier-3"
	fire, _ = anomaly.Alerts(evals, acfg)
	wantLabels("default tier", alertOf(fire, "deployments", "checkout"),
		map[string]string{"owner": "payments", "tier": "tier-3", "severity": "warning"})
}
