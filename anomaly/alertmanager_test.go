package anomaly_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// pollTimeout is how long tests poll for an outcome: generous, for slow machines.
const pollTimeout = 20 * time.Second

func kpiAlert() anomaly.Alert {
	return anomaly.Alert{
		Labels: map[string]string{
			"alertname":   "KPIAnomaly",
			"kpi":         "change_failure_rate",
			"service":     "checkout",
			"team":        "payments",
			"environment": "production",
			"severity":    "warning",
			"direction":   "up",
		},
		Annotations: map[string]string{
			"summary":       "checkout change failure rate is unusually high",
			"description":   "change_failure_rate was 0.42 over the last 7 days; expected at most 0.15",
			"runbook_url":   "https://runbooks.example.com/kpi-anomaly",
			"dashboard_url": "https://grafana.example.com/d/dora?var-service=checkout",
		},
	}
}

// startAlertmanager starts a private Alertmanager for the test.
func startAlertmanager(t *testing.T) *alertmanager.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("start alertmanager: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// runNotifier builds a Notifier on cfg and runs it until the test ends.
func runNotifier(t *testing.T, cfg anomaly.NotifierConfig, reg prometheus.Registerer, log *slog.Logger) *anomaly.Notifier {
	t.Helper()
	if log == nil {
		log = testenv.Logger(t)
	}
	n, err := anomaly.NewNotifier(cfg, reg, log)
	if err != nil {
		t.Fatalf("NewNotifier(%+v): %v", cfg, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

// findAlert returns the alert on s with exactly these labels.
func findAlert(t *testing.T, s *alertmanager.Server, labels map[string]string) (alertmanager.Alert, bool, error) {
	t.Helper()
	alerts, err := s.Alerts(context.Background())
	if err != nil {
		return alertmanager.Alert{}, false, err
	}
	for _, a := range alerts {
		if maps.Equal(a.Labels, labels) {
			return a, true, nil
		}
	}
	return alertmanager.Alert{}, false, nil
}

// waitActive waits until s lists the alert with these labels as active.
func waitActive(t *testing.T, s *alertmanager.Server, labels map[string]string) alertmanager.Alert {
	t.Helper()
	var got alertmanager.Alert
	testenv.Eventually(t, pollTimeout, "alert active on alertmanager", func() (bool, string) {
		a, ok, err := findAlert(t, s, labels)
		if err != nil {
			return false, err.Error()
		}
		got = a
		return ok && a.State == "active", fmt.Sprintf("found=%v state=%q", ok, a.State)
	})
	return got
}

// gathered returns the value of the series of the named metric whose labels
// include the given name=value pairs, summed.
func gathered(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func TestNotifierFireAndResolve(t *testing.T) {
	am := startAlertmanager(t)
	reg := prometheus.NewRegistry()
	n := runNotifier(t, anomaly.NotifierConfig{URL: am.URL}, reg, nil)

	want := kpiAlert()
	n.Fire(want)
	got := waitActive(t, am, want.Labels)
	if !maps.Equal(got.Annotations, want.Annotations) {
		t.Errorf("annotations on alertmanager = %v, want %v", got.Annotations, want.Annotations)
	}
	if !got.EndsAt.After(time.Now()) {
		t.Errorf("endsAt of the firing alert = %v, want in the future", got.EndsAt)
	}
	if v := gathered(t, reg, "opsmetrics_alerts_active"); v != 1 {
		t.Errorf("opsmetrics_alerts_active = %v, want 1", v)
	}
	testenv.Eventually(t, pollTimeout, "firing alert counted as sent", func() (bool, string) {
		v := gathered(t, reg, "opsmetrics_alerts_sent_total", "state", "firing")
		return v >= 1, fmt.Sprintf("sent firing = %v", v)
	})

	n.Resolve(want.Labels)
	// GET /api/v2/alerts lists active alerts only, by default.
	testenv.Eventually(t, pollTimeout, "alert no longer active on alertmanager", func() (bool, string) {
		a, ok, err := findAlert(t, am, want.Labels)
		if err != nil {
			return false, err.Error()
		}
		return !ok || !a.EndsAt.After(time.Now()), fmt.Sprintf("still listed: %+v", a)
	})
	testenv.Eventually(t, pollTimeout, "resolved alert counted as sent", func() (bool, string) {
		v := gathered(t, reg, "opsmetrics_alerts_sent_total", "state", "resolved")
		return v >= 1, fmt.Sprintf("sent resolved = %v", v)
	})
	if got := n.Active(); len(got) != 0 {
		t.Errorf("Active() after Resolve = %+v, want none", got)
	}
	for _, name := range []string{"opsmetrics_alerts_active", "opsmetrics_alerts_queued", "opsmetrics_alert_send_failures_total"} {
		if v := gathered(t, reg, name); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	if v := gathered(t, reg, "opsmetrics_alertmanager_last_success_timestamp_seconds"); v == 0 {
		t.Errorf("opsmetrics_alertmanager_last_success_timestamp_seconds = 0, want set")
	}
}

func TestNotifierAlertmanagerDown(t *testing.T) {
	am := startAlertmanager(t)
	reg := prometheus.NewRegistry()
	n := runNotifier(t, anomaly.NotifierConfig{URL: am.URL, MaxBackoff: 2 * time.Second}, reg, nil)
	if err := am.Stop(); err != nil {
		t.Fatalf("stop alertmanager: %v", err)
	}

	a := kpiAlert()
	n.Fire(a)
	testenv.Eventually(t, pollTimeout, "failed sends counted", func() (bool, string) {
		v := gathered(t, reg, "opsmetrics_alert_send_failures_total")
		return v > 0, fmt.Sprintf("opsmetrics_alert_send_failures_total = %v", v)
	})
	if v := gathered(t, reg, "opsmetrics_alerts_queued"); v != 1 {
		t.Errorf("opsmetrics_alerts_queued while alertmanager is down = %v, want 1", v)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := am.Restart(ctx); err != nil {
		t.Fatalf("restart alertmanager: %v", err)
	}
	waitActive(t, am, a.Labels) // delivered by a retry, without firing again
	testenv.Eventually(t, pollTimeout, "queue empty", func() (bool, string) {
		v := gathered(t, reg, "opsmetrics_alerts_queued")
		return v == 0, fmt.Sprintf("opsmetrics_alerts_queued = %v", v)
	})
}

func TestNotifierResendsAfterAlertmanagerLosesState(t *testing.T) {
	am := startAlertmanager(t)
	n := runNotifier(t, anomaly.NotifierConfig{URL: am.URL, ResendInterval: time.Second, MaxBackoff: time.Second}, nil, nil)
	a := kpiAlert()
	n.Fire(a)
	waitActive(t, am, a.Labels)

	if err := am.Stop(); err != nil {
		t.Fatalf("stop alertmanager: %v", err)
	}
	entries, err := os.ReadDir(am.StorageDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(am.StorageDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := am.Restart(ctx); err != nil {
		t.Fatalf("restart alertmanager: %v", err)
	}
	waitActive(t, am, a.Labels) // the alert was delivered before, so only a re-send brings it back
}

// TestNotifierFlush uses Flush alone, as a one-shot command does, without Run.
func TestNotifierFlush(t *testing.T) {
	am := startAlertmanager(t)
	reg := prometheus.NewRegistry()
	n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL, Timeout: 5 * time.Second}, reg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := kpiAlert()
	n.Fire(a)

	steps := []struct {
		name       string
		server     string // "stop", "restart" or "" to leave it as it is
		wantErr    bool
		wantQueued float64
	}{
		{"alertmanager down", "stop", true, 1},
		{"alertmanager up", "restart", false, 0},
		{"nothing pending", "", false, 0},
	}
	for _, st := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		switch st.server {
		case "stop":
			if err := am.Stop(); err != nil {
				t.Fatalf("%s: stop alertmanager: %v", st.name, err)
			}
		case "restart":
			if err := am.Restart(ctx); err != nil {
				t.Fatalf("%s: restart alertmanager: %v", st.name, err)
			}
		}
		err := n.Flush(ctx)
		cancel()
		if (err != nil) != st.wantErr {
			t.Errorf("%s: Flush() = %v, want error: %v", st.name, err, st.wantErr)
		}
		if v := gathered(t, reg, "opsmetrics_alerts_queued"); v != st.wantQueued {
			t.Errorf("%s: opsmetrics_alerts_queued = %v, want %v", st.name, v, st.wantQueued)
		}
	}
	got := waitActive(t, am, a.Labels)
	if !maps.Equal(got.Annotations, a.Annotations) {
		t.Errorf("annotations on alertmanager = %v, want %v", got.Annotations, a.Annotations)
	}

	// Firing an unchanged alert queues nothing; changing it queues it again.
	n.Fire(a)
	if v := gathered(t, reg, "opsmetrics_alerts_queued"); v != 0 {
		t.Errorf("after firing an unchanged alert: opsmetrics_alerts_queued = %v, want 0", v)
	}
	a.Annotations = maps.Clone(a.Annotations)
	a.Annotations["summary"] = "changed"
	n.Fire(a)
	if v := gathered(t, reg, "opsmetrics_alerts_queued"); v != 1 {
		t.Errorf("after changing the summary: opsmetrics_alerts_queued = %v, want 1", v)
	}
	if err := n.Flush(context.Background()); err != nil {
		t.Fatalf("Flush() after changing the summary: %v", err)
	}
	got = waitActive(t, am, a.Labels)
	if got.Annotations["summary"] != "changed" {
		t.Errorf("summary on alertmanager = %q, want %q", got.Annotations["summary"], "changed")
	}
}

// TestNotifierRejectedBatch posts an alert Alertmanager refuses alongside a
// valid one: the refusal is logged at error level with Alertmanager's reason,
// counted, and it stays queued, while the valid alert still arrives.
func TestNotifierRejectedBatch(t *testing.T) {
	am := startAlertmanager(t)
	reg := prometheus.NewRegistry()
	logs := &logRecorder{}
	n := runNotifier(t, anomaly.NotifierConfig{URL: am.URL, MaxBackoff: time.Second}, reg, slog.New(logs))

	good := kpiAlert()
	bad := kpiAlert()
	bad.Labels = maps.Clone(bad.Labels)
	bad.Labels["bad-label"] = "x" // not a valid Prometheus label name
	n.Fire(good)
	n.Fire(bad)

	testenv.Eventually(t, pollTimeout, "rejection logged at error level", func() (bool, string) {
		msgs := logs.errors()
		for _, m := range msgs {
			if strings.Contains(m, "invalid label set") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("error logs: %q", msgs)
	})
	if v := gathered(t, reg, "opsmetrics_alert_send_failures_total"); v < 1 {
		t.Errorf("opsmetrics_alert_send_failures_total = %v, want >= 1", v)
	}
	// The bad alert stays queued; the good one too when both went in the
	// same batch (Run may have sent the good one alone before bad was fired).
	if v := gathered(t, reg, "opsmetrics_alerts_queued"); v < 1 || v > 2 {
		t.Errorf("opsmetrics_alerts_queued = %v, want 1 or 2", v)
	}
	waitActive(t, am, good.Labels)
}

// logRecorder is a slog.Handler that keeps the error-level records.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level < slog.LevelError {
		return nil
	}
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// TestNotifierConcurrentUse fires and resolves from several goroutines while
// Run sends, for the race detector, and checks what ends up on Alertmanager.
func TestNotifierConcurrentUse(t *testing.T) {
	am := startAlertmanager(t)
	n := runNotifier(t, anomaly.NotifierConfig{URL: am.URL}, nil, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				a := kpiAlert()
				a.Labels = maps.Clone(a.Labels)
				a.Labels["service"] = fmt.Sprintf("svc-%d-%d", g, i)
				n.Fire(a)
				if i%2 == 1 {
					n.Resolve(a.Labels)
				}
				_ = n.Active()
			}
		}()
	}
	wg.Wait()
	if got := len(n.Active()); got != 4*13 {
		t.Fatalf("len(Active()) = %d, want %d", got, 4*13)
	}
	testenv.Eventually(t, pollTimeout, "firing alerts on alertmanager", func() (bool, string) {
		alerts, err := am.Alerts(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return len(alerts) == 4*13, fmt.Sprintf("%d alerts listed", len(alerts))
	})
}

func TestNotifierFire(t *testing.T) {
	first := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	base := kpiAlert()
	base.StartsAt = first
	later := base
	later.StartsAt = first.Add(time.Hour)
	later.Annotations = map[string]string{"summary": "updated"}

	tests := []struct {
		name            string
		do              func(n *anomaly.Notifier)
		wantActive      int
		wantStartsAt    time.Time
		wantAnnotations map[string]string
	}{
		{
			name:            "fire",
			do:              func(n *anomaly.Notifier) { n.Fire(base) },
			wantActive:      1,
			wantStartsAt:    first,
			wantAnnotations: base.Annotations,
		},
		{
			name:            "fire again keeps first StartsAt and takes new annotations",
			do:              func(n *anomaly.Notifier) { n.Fire(base); n.Fire(later) },
			wantActive:      1,
			wantStartsAt:    first,
			wantAnnotations: later.Annotations,
		},
		{
			name:       "resolve",
			do:         func(n *anomaly.Notifier) { n.Fire(base); n.Resolve(base.Labels) },
			wantActive: 0,
		},
		{
			name:       "resolve unknown alert does nothing",
			do:         func(n *anomaly.Notifier) { n.Resolve(base.Labels) },
			wantActive: 0,
		},
		{
			name:            "fire after resolve starts anew",
			do:              func(n *anomaly.Notifier) { n.Fire(base); n.Resolve(base.Labels); n.Fire(later) },
			wantActive:      1,
			wantStartsAt:    later.StartsAt,
			wantAnnotations: later.Annotations,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Nothing listens there; without Run or Flush nothing is sent.
			n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: "http://127.0.0.1:1"}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.do(n)
			got := n.Active()
			if len(got) != tt.wantActive {
				t.Fatalf("Active() = %+v, want %d alerts", got, tt.wantActive)
			}
			if tt.wantActive == 0 {
				return
			}
			if !got[0].StartsAt.Equal(tt.wantStartsAt) {
				t.Errorf("StartsAt = %v, want %v", got[0].StartsAt, tt.wantStartsAt)
			}
			if !maps.Equal(got[0].Annotations, tt.wantAnnotations) {
				t.Errorf("Annotations = %v, want %v", got[0].Annotations, tt.wantAnnotations)
			}
			if !maps.Equal(got[0].Labels, base.Labels) {
				t.Errorf("Labels = %v, want %v", got[0].Labels, base.Labels)
			}
		})
	}
}

func TestNewNotifierValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     anomaly.NotifierConfig
		wantErr string // substring; empty for no error
	}{
		{"empty URL", anomaly.NotifierConfig{}, "URL: must be set"},
		{"ftp URL", anomaly.NotifierConfig{URL: "ftp://127.0.0.1:9093"}, "must be an http:// or https:// URL"},
		{"no scheme", anomaly.NotifierConfig{URL: "localhost:9093"}, "must be an http:// or https:// URL"},
		{"no host", anomaly.NotifierConfig{URL: "http://"}, "must be an http:// or https:// URL"},
		{"password not echoed", anomaly.NotifierConfig{URL: "ftp://u:secret@am:9093"}, "u:xxxxx@am"},
		{"negative resend interval", anomaly.NotifierConfig{URL: "http://am:9093", ResendInterval: -time.Second}, "ResendInterval: must not be negative, got -1s"},
		{"http", anomaly.NotifierConfig{URL: "http://127.0.0.1:9093"}, ""},
		{"https with path prefix", anomaly.NotifierConfig{URL: "https://am.example.com/alertmanager/"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := anomaly.NewNotifier(tt.cfg, prometheus.NewRegistry(), nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("NewNotifier(%+v) = %v, want no error", tt.cfg, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("NewNotifier(%+v) = %v, want error containing %q", tt.cfg, err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Errorf("NewNotifier(%+v) error shows the password: %v", tt.cfg, err)
			}
		})
	}
}
