package testenv

import (
	"bytes"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Exposition registers cs and returns what /metrics serves for them.
func Exposition(tb testing.TB, cs ...prometheus.Collector) string {
	tb.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(cs...)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		tb.Fatalf("/metrics: %d %s", rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}

// CheckMetrics runs `promtool check metrics` (Debian's prometheus
// package) on an exposition and fails tb on any complaint; without
// promtool it skips, or fails under CI.
func CheckMetrics(tb testing.TB, text string) {
	tb.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("promtool not installed (apt-get install prometheus)")
		}
		tb.Skip("promtool not installed (apt-get install prometheus)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		tb.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
