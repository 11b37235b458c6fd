package metrics_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestExporter refreshes the rolling gauges from real data and checks the
// exposition with promtool.
func TestExporter(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	now := time.Now().UTC().Truncate(time.Second)
	write(t, st,
		dep("x1", "checkout", "production", now.Add(-2*24*time.Hour), event.DeploymentSuccess),
		dep("x2", "checkout", "production", now.Add(-20*24*time.Hour), event.DeploymentFailure),
	)
	exp := metrics.NewExporter(st.Conn(), metrics.Query{}, nil, testenv.Logger(t))
	if err := exp.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`opsmetrics_kpi_deployments{environment="production",service="checkout",team="",window="7d"} 1`,
		`opsmetrics_kpi_deployments{environment="production",service="checkout",team="",window="30d"} 2`,
		`opsmetrics_kpi_change_failure_ratio{environment="production",service="checkout",team="",window="30d"} 0.5`,
		`opsmetrics_kpi_change_failure_ratio{environment="production",service="checkout",team="",window="7d"} 0`,
	} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	if bytes.Contains(text, []byte("opsmetrics_kpi_mttr_median_seconds{")) {
		t.Error("MTTR exported without incidents; absent values must have no sample")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed (apt-get install prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
