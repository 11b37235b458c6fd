package anomaly_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

func (h *history) incident(service, team string, at time.Time) {
	h.n++
	id := fmt.Sprintf("INC-%d", h.n)
	h.recs = append(h.recs, store.Record{Topic: "t", Offset: int64(h.n), Event: &event.Event{Kind: event.KindIncident,
		ID: "e-" + id, Time: at, Incident: &event.Incident{ID: id, Service: service, Team: team, Environment: "production",
			ImpactStartedAt: at, DetectedAt: at.Add(5 * time.Minute)}}})
}

// TestServiceAlertsThroughAnOutage runs the scheduled service against real
// servers. Today, still in progress, checkout has a storm of incidents: a
// count already far above its band fires before the day closes. Alertmanager
// is down when it fires; the alert is queued and arrives once it is back.
func TestServiceAlertsThroughAnOutage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := testenv.Store(t, testenv.Database(t))
	today := time.Now().UTC().Truncate(24 * time.Hour)
	h := &history{r: rand.New(rand.NewPCG(3, 3))}
	for d := today.Add(-60 * day); d.Before(today); d = d.Add(day) {
		h.ordinary(d)
		if d.YearDay()%9 == 0 {
			h.incident("checkout", "payments", d.Add(13*time.Hour))
		}
	}
	for i := range 12 {
		h.incident("checkout", "payments", today.Add(time.Duration(i)*time.Minute))
	}
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}

	am, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Stop() })
	if err := am.Stop(); err != nil { // down before anything fires
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL, ResendInterval: time.Second, MaxBackoff: time.Second}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	steps := []metrics.Step{metrics.StepDay}
	svc := &anomaly.Service{Conn: st.Conn(), Learn: baselines.Config{Steps: steps}, Detect: anomaly.Config{Steps: steps},
		EvaluationInterval: time.Second, RelearnInterval: time.Hour, Notifier: n, Log: log}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

	testenv.Eventually(t, 60*time.Second, "the incident storm to fire while Alertmanager is down", func() (bool, string) {
		for _, a := range n.Active() {
			if a.Labels["kpi"] == "incidents" && a.Labels["service"] == "checkout" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d active", len(n.Active()))
	})
	if err := am.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the queued alert to reach Alertmanager", func() (bool, string) {
		alerts, err := am.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["kpi"] == "incidents" && a.Labels["service"] == "checkout" && a.Labels["direction"] == "up" &&
				a.Labels["alertname"] == anomaly.AnomalyAlert {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d alerts", len(alerts))
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := testenv.Count(t, st, "SELECT uniqExact(series, interval_start) FROM anomalies WHERE kpi = 'incidents' AND service = 'checkout' AND interval_start = ?", today); n != 1 {
		t.Errorf("recorded %d series-intervals for today's open interval, want 1 (detection ran every second and replaced its row)", n)
	}
}

// TestServiceDeliversAtShutdown: an alert queued on the service's notifier
// when its context ends (serve's SIGTERM) reaches the real Alertmanager
// before Run returns, although Alertmanager answers slowly.
func TestServiceDeliversAtShutdown(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	am, err := alertmanager.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Stop() })
	target, _ := url.Parse(am.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			time.Sleep(time.Second)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer slow.Close()

	log := testenv.Logger(t)
	n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: slow.URL}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	steps := []metrics.Step{metrics.StepDay}
	svc := &anomaly.Service{Conn: st.Conn(), Learn: baselines.Config{Steps: steps}, Detect: anomaly.Config{Steps: steps},
		EvaluationInterval: time.Hour, RelearnInterval: time.Hour, Notifier: n, Log: log}
	reg := prometheus.NewRegistry()
	if err := svc.Register(reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	// Once the first detection has run (it resolves what no longer fires),
	// queue an alert and end the service at once.
	testenv.Eventually(t, time.Minute, "first detection", func() (bool, string) {
		return testenv.Counter(t, reg, "opsmetrics_scheduled_runs_total", map[string]string{"job": "detect"}) > 0, "no detection yet"
	})
	n.Fire(anomaly.Alert{Labels: map[string]string{"alertname": anomaly.AnomalyAlert, "kpi": "deployments", "service": "queued-at-sigterm"},
		StartsAt: time.Now()})
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	held, err := am.Alerts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range held {
		if a.Labels["service"] == "queued-at-sigterm" {
			return
		}
	}
	t.Errorf("Alertmanager holds %d alerts, not the one queued when the service stopped", len(held))
}
