package anomaly_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

const day = 24 * time.Hour

// start is a Monday; eight weeks of history run up to anomalyDay.
var (
	start      = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	anomalyDay = start.Add(56 * day) // a Monday
)

type history struct {
	r    *rand.Rand
	recs []store.Record
	n    int
}

func (h *history) deploy(service, team string, at time.Time, status event.DeploymentStatus) {
	h.n++
	id := fmt.Sprintf("%s-%d", service, h.n)
	h.recs = append(h.recs, store.Record{Topic: "t", Offset: int64(h.n), Event: &event.Event{Kind: event.KindDeployment,
		ID: "e-" + id, Time: at, Deployment: &event.Deployment{ID: id, Service: service, Team: team, Environment: "production",
			StartedAt: at.Add(-10 * time.Minute), FinishedAt: at, Status: status}}})
}

// day writes one ordinary day: checkout deploys 6–8 times on weekdays and
// never at weekends; search deploys 20 times a day and fails 1 in 20.
func (h *history) day(d time.Time, checkout, searchFailures int) {
	for i := range checkout {
		h.deploy("checkout", "payments", d.Add(time.Duration(9+i)*time.Hour), event.DeploymentSuccess)
	}
	for i := range 20 {
		status := event.DeploymentSuccess
		if i < searchFailures {
			status = event.DeploymentFailure
		}
		h.deploy("search", "discovery", d.Add(time.Duration(i)*time.Hour+30*time.Minute), status)
	}
}

func (h *history) ordinary(d time.Time) {
	wd := d.Weekday()
	checkout := 0
	if wd != time.Saturday && wd != time.Sunday {
		checkout = 6 + h.r.IntN(3)
	}
	failures := 0
	if h.r.IntN(2) == 0 {
		failures = 1
	}
	h.day(d, checkout, failures)
}

// learnDays writes h's records and learns daily baselines up to
// anomalyDay.
func learnDays(t *testing.T, h *history) (*store.Store, *slog.Logger) {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	if _, err := anomaly.Relearn(ctx, st.Conn(), baselines.Config{Steps: []metrics.Step{metrics.StepDay}}, anomalyDay, log); err != nil {
		t.Fatal(err)
	}
	return st, log
}

// deliver starts a real Alertmanager and posts alerts to it.
func deliver(t *testing.T, log *slog.Logger, alerts ...anomaly.Alert) *alertmanager.Server {
	t.Helper()
	ctx := context.Background()
	am, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Stop() })
	n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL, ResendInterval: time.Second}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		n.Fire(a)
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return am
}

// TestDetectAndAlert: baselines learnt over eight weeks; on a Monday
// checkout does not deploy at all and search fails 8 of 20 deployments.
// Both fire to the real Alertmanager with their labels and annotations;
// the next, ordinary day resolves them. The weekend before raised nothing.
func TestDetectAndAlert(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	h := &history{r: rand.New(rand.NewPCG(1, 1))}
	for d := start; d.Before(anomalyDay); d = d.Add(day) {
		h.ordinary(d)
	}
	h.day(anomalyDay, 0, 8)
	h.ordinary(anomalyDay.Add(day))
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	steps := []metrics.Step{metrics.StepDay}
	res, err := anomaly.Relearn(ctx, st.Conn(), baselines.Config{Steps: steps}, anomalyDay, log)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ready == 0 || res.Series < 10 {
		t.Fatalf("learnt %+v", res)
	}
	// The stored bands: a weekday expects several checkout deployments, a
	// weekend day almost none.
	bands := testenv.Rows(t, st, `SELECT toString(slot), toString(round(expected, 1)) FROM current_baselines
		WHERE kpi = 'deployments' AND service = 'checkout' AND step = 'day' ORDER BY slot`)
	if len(bands) != 7 || !strings.HasPrefix(bands[0], "0 | 6") && !strings.HasPrefix(bands[0], "0 | 7") || !strings.HasPrefix(bands[6], "6 | 0") {
		t.Errorf("checkout day-of-week bands: %q", bands)
	}

	cfg := anomaly.Config{Steps: steps}
	firing := func(evals []anomaly.Evaluation) map[string]string {
		out := map[string]string{}
		for _, e := range evals {
			if e.Firing {
				out[e.Series.KPI+" "+e.Series.Service] = e.Latest.Score.Direction
			}
		}
		return out
	}
	// The Sunday before: checkout's usual zero is no anomaly.
	evals, err := anomaly.Detect(ctx, st.Conn(), cfg, anomalyDay.Add(-time.Hour), log)
	if err != nil {
		t.Fatal(err)
	}
	if f := firing(evals); len(f) != 0 {
		t.Errorf("an ordinary Sunday fired %v", f)
	}

	am, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Stop() })
	n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL, ResendInterval: time.Second}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	acfg := anomaly.AlertConfig{Runbooks: map[string]string{"deployments": "https://runbooks.example/deploys"},
		DefaultRunbook: "https://runbooks.example/kpis", DashboardURL: "https://grafana.example/d/opsmetrics-anomalies"}

	evals, err = anomaly.Detect(ctx, st.Conn(), cfg, anomalyDay.Add(day+time.Hour), log)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"deployments checkout": "down", "change_failure_rate search": "up"}
	got := firing(evals)
	for k, dir := range want {
		if got[k] != dir {
			t.Errorf("%s: firing %q, want %q (all firing: %v)", k, got[k], dir, got)
		}
	}
	// Nothing else about checkout or search fires; organisation-wide and
	// team series may (they contain the same anomalies).
	for k := range got {
		if _, ok := want[k]; !ok && (strings.HasSuffix(k, " checkout") || strings.HasSuffix(k, " search")) {
			t.Errorf("unexpected firing series %q", k)
		}
	}
	t.Logf("firing: %v", got)
	if rows := testenv.Count(t, st, `SELECT count() FROM anomalies WHERE service = 'search' AND kpi = 'change_failure_rate'
		AND interval_start = ? AND firing = 1 AND direction = 'up' AND num = 8 AND den = 20`, anomalyDay); rows != 1 {
		t.Errorf("recorded CFR anomalies: %d, want 1", rows)
	}
	fire, _ := anomaly.Alerts(evals, acfg)
	for _, a := range fire {
		n.Fire(a)
	}
	if err := n.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var cfr alertmanager.Alert
	testenv.Eventually(t, 20*time.Second, "the CFR alert in Alertmanager", func() (bool, string) {
		alerts, err := am.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["kpi"] == "change_failure_rate" && a.Labels["service"] == "search" {
				cfr = a
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d alerts", len(alerts))
	})
	wantLabels := map[string]string{"alertname": "KPIAnomaly", "kpi": "change_failure_rate", "service": "search",
		"team": "discovery", "environment": "production", "direction": "up", "step": "day"}
	for k, v := range wantLabels {
		if cfr.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfr.Labels[k], v)
		}
	}
	if s := cfr.Labels["severity"]; s != "warning" && s != "critical" {
		t.Errorf("severity %q", s)
	}
	if !strings.Contains(cfr.Annotations["summary"], "40.0%") || !strings.Contains(cfr.Annotations["description"], "8 of 20") ||
		cfr.Annotations["runbook_url"] != "https://runbooks.example/kpis" ||
		!strings.Contains(cfr.Annotations["dashboard_url"], "var-service=search") {
		t.Errorf("annotations: %v", cfr.Annotations)
	}

	// The next day is ordinary: both resolve.
	evals, err = anomaly.Detect(ctx, st.Conn(), cfg, anomalyDay.Add(2*day+time.Hour), log)
	if err != nil {
		t.Fatal(err)
	}
	if f := firing(evals); f["change_failure_rate search"] != "" || f["deployments checkout"] != "" {
		t.Errorf("still firing after an ordinary day: %v", f)
	}
	_, resolve := anomaly.Alerts(evals, acfg)
	if len(resolve) < 2 {
		t.Fatalf("%d alerts to resolve, want at least 2", len(resolve))
	}
	// A fresh notifier, as a one-shot run would have: it resolves from the
	// stored history.
	n2, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resolve {
		n2.ResolveFromHistory(a)
	}
	if err := n2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the alerts resolved in Alertmanager", func() (bool, string) {
		alerts, err := am.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["service"] == "search" || a.Labels["service"] == "checkout" {
				if a.EndsAt.After(time.Now()) {
					return false, "still active: " + a.Labels["kpi"] + " " + a.Labels["service"]
				}
			}
		}
		return true, ""
	})
}

// TestRelearnIsAtomic: readers see one whole generation, the newest
// committed one, and never rows of an uncommitted one.
func TestRelearnIsAtomic(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	h := &history{r: rand.New(rand.NewPCG(2, 2))}
	for d := start; d.Before(anomalyDay); d = d.Add(day) {
		h.ordinary(d)
	}
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	cfg := baselines.Config{Steps: []metrics.Step{metrics.StepDay}}
	first, err := anomaly.Relearn(ctx, st.Conn(), cfg, anomalyDay, log)
	if err != nil {
		t.Fatal(err)
	}
	// Rows of a generation that never committed (a learn that died).
	if err := st.Conn().Exec(ctx, `INSERT INTO baselines (generation, series, kpi, step, slot, expected)
		SELECT toUInt64(?) + 1, 'x', 'deployments', 'day', 0, 99`, first.Generation); err != nil {
		t.Fatal(err)
	}
	cur, err := baselines.Current(ctx, st.Conn(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) != first.Series {
		t.Errorf("current baselines: %d series, want the %d of the committed generation", len(cur), first.Series)
	}
	for _, c := range cur {
		if c.Generation != first.Generation {
			t.Fatalf("series %s from generation %d, want %d", c.Series.Key(), c.Generation, first.Generation)
		}
	}
	second, err := anomaly.Relearn(ctx, st.Conn(), cfg, anomalyDay.Add(day), log)
	if err != nil {
		t.Fatal(err)
	}
	if n := testenv.Count(t, st, "SELECT uniqExact(generation) FROM current_baselines"); n != 1 {
		t.Errorf("current_baselines mixes %d generations", n)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM current_baselines WHERE generation = ?", second.Generation); n == 0 {
		t.Error("the second learn is not current")
	}
}
