package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestBaselinesAndAnomalyCommands: learn on a generated stream before its
// injected anomalies, then detect at its end. The service whose deployments
// stopped fires a deployments-down alert that reaches the real
// Alertmanager, with a configured threshold rule alongside.
func TestBaselinesAndAnomalyCommands(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	end := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC) // a Wednesday: Tuesday is judged
	stats := testenv.StoreGenerated(t, st, generator.Config{Services: 6, Teams: 3, Days: 80, Seed: 7, End: end, Anomalies: true}, 1<<20)
	var stop generator.Anomaly
	for _, a := range stats.Anomalies {
		if a.Kind == generator.AnomalyDeploymentStop {
			stop = a
		}
	}
	if stop.Service == "" {
		t.Fatalf("no deployment stop among %v", stats.Anomalies)
	}
	out, code := stdout(t, "baselines", "learn", "--clickhouse", dsn, "--at", stop.Start.Format(time.RFC3339))
	if code != 0 || !strings.Contains(out, "ready") {
		t.Fatalf("baselines learn (exit %d): %s", code, out)
	}

	out, code = stdout(t, "baselines", "show", "--clickhouse", dsn, "--service", stop.Service, "--kpi", "deployments")
	if code != 0 || !strings.Contains(out, "deployments") || !strings.Contains(out, "ready") || !strings.Contains(out, "service "+stop.Service) {
		t.Errorf("baselines show (exit %d):\n%s", code, out)
	}
	out, code = stdout(t, "baselines", "show", "--clickhouse", dsn, "--status", "learning")
	if code != 0 || strings.Contains(out, " ready ") || !strings.Contains(out, " learning ") {
		t.Errorf("baselines show --status learning lists ready series (exit %d):\n%s", code, out)
	}

	am, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Stop() })
	file := filepath.Join(t.TempDir(), "c.yaml")
	// The stopped service is tier 1 in a plain catalog: its alert is
	// critical, with the catalog's owner.
	cat := filepath.Join(t.TempDir(), "catalog.yaml")
	os.WriteFile(cat, []byte("- {name: "+stop.Service+", owner: group:default/on-call, tier: \"1\"}\n"), 0o644)
	os.WriteFile(file, []byte(`
catalog:
  path: `+cat+`
baselines:
  steps: [day]
change_calendar:               # a minute a week: the last day's deployments are outside
  windows:
    - {name: sunday-minute, environments: [production], days: [sun], from: "03:00", to: "03:01"}
alerting:
  runbooks:
    deployments: https://runbooks.example/deployments
  thresholds:
    - name: org-cfr
      kpi: change_failure_rate
      above: "1%"
      window: 168h
`), 0o644)
	out, code = stdout(t, "anomaly", "detect", "--config", file, "--clickhouse", dsn, "--alertmanager", am.URL,
		"--at", end.Add(time.Hour).Format(time.RFC3339))
	if code != 0 || !strings.Contains(out, "KPIAnomaly") || !strings.Contains(out, "KPIThresholdAtRisk") || !strings.Contains(out, "DeploymentOutsideWindow") {
		t.Fatalf("anomaly detect (exit %d):\n%s", code, out)
	}
	alerts, err := am.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stopAlert, rule, window bool
	for _, a := range alerts {
		window = window || (a.Labels["alertname"] == "DeploymentOutsideWindow" && a.Labels["deployment_id"] != "" &&
			a.Labels["window"] == "sunday-minute" && strings.Contains(a.Annotations["window"], "sun 03:00–03:01 (UTC)"))
		if a.Labels["kpi"] == "deployments" && a.Labels["service"] == stop.Service && a.Labels["direction"] == "down" {
			stopAlert = a.Annotations["runbook_url"] == "https://runbooks.example/deployments" &&
				a.Labels["owner"] == "on-call" && a.Labels["tier"] == "tier-1" && a.Labels["severity"] == "critical"
		}
		rule = rule || a.Labels["rule"] == "org-cfr"
	}
	if !stopAlert || !rule || !window {
		t.Errorf("Alertmanager has %d alerts; deployment stop of %s with its runbook, owner, tier and severity: %v, threshold rule: %v, change window: %v\n%s",
			len(alerts), stop.Service, stopAlert, rule, window, out)
	}
	if _, code := stdout(t, "anomaly", "detect", "--config", file, "--clickhouse", dsn, "--alertmanager", "ftp://x"); code != exitUsage {
		t.Errorf("a bad Alertmanager URL: exit %d, want 2", code)
	}

	// The two weeks before, judged point-in-time: recorded, not alerted.
	from := end.AddDate(0, 0, -14)
	out, code = stdout(t, "anomaly", "detect", "--config", file, "--clickhouse", dsn, "--alertmanager", am.URL,
		"--from", from.Format(time.DateOnly), "--to", end.Format(time.DateOnly))
	days := testenv.Count(t, st, "SELECT uniqExact(interval_start) FROM judged_intervals WHERE interval_start >= ? AND interval_start < ? AND trained_to <= interval_start", from, end)
	if code != 0 || !strings.Contains(out, "no alert sent for past intervals") || days != 14 {
		t.Errorf("anomaly detect --from --to (exit %d) judged %d days, want 14:\n%s", code, days, out)
	}
	after, err := am.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(alerts) {
		t.Errorf("judging the past changed Alertmanager's alerts from %d to %d", len(alerts), len(after))
	}
	if _, code := stdout(t, "anomaly", "detect", "--clickhouse", dsn, "--from", from.Format(time.DateOnly), "--at", end.Format(time.DateOnly)); code != exitUsage {
		t.Errorf("--from with --at: exit %d, want 2", code)
	}
}

// TestAnomalyScore: a daily count with a weekly season and one spike; the
// spike is flagged, scores are in [0, 1], and each row is scored online.
func TestAnomalyScore(t *testing.T) {
	dir := t.TempDir()
	in, outFile := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.csv")
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	day0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for i := range 84 {
		v := []int{7, 8, 6, 7, 9, 0, 0}[i%7] + i%3 - 1
		if v < 0 {
			v = 0
		}
		if i == 80 {
			v = 40
		}
		fmt.Fprintf(&b, "%s,%d\n", day0.AddDate(0, 0, i).Format(time.DateOnly), v)
	}
	os.WriteFile(in, []byte(b.String()), 0o644)
	if _, code := stdout(t, "anomaly", "score", "--in", in, "--out", outFile); code != 0 {
		t.Fatalf("score: exit %d", code)
	}
	f, err := os.Open(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 85 || strings.Join(rows[0], ",") != "timestamp,value,expected,lower,upper,score,anomaly,test" {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	for i, r := range rows[1:] {
		var score float64
		fmt.Sscan(r[5], &score)
		if score < 0 || score > 1 || math.IsNaN(score) {
			t.Errorf("row %d: score %v", i, score)
		}
		if anomalous := r[6] == "true"; anomalous != (i == 80) {
			t.Errorf("row %d (value %s, expected %s, band %s–%s, score %s): anomaly %v", i, r[1], r[2], r[3], r[4], r[5], anomalous)
		}
	}
	for _, bad := range []struct {
		args []string
		code int
	}{
		{[]string{"--in", filepath.Join(dir, "missing.csv")}, exitFailure},
		{[]string{"--in", in, "--kind", "vibes"}, exitUsage},
		{[]string{"--in", in, "--season", "-3"}, exitUsage},
	} {
		if _, code := stdout(t, append([]string{"anomaly", "score"}, bad.args...)...); code != bad.code {
			t.Errorf("score %v: exit %d, want %d", bad.args, code, bad.code)
		}
	}
}

func TestDashboardsBuild(t *testing.T) {
	dir := t.TempDir()
	out, code := stdout(t, "dashboards", "build", "--out", dir, "--clickhouse", "clickhouse://grafana:secret@ch.example:9440/opsmetrics?secure=true",
		"--prometheus-url", "http://prometheus:9090")
	if code != 0 || !strings.Contains(out, "opsmetrics-dora.json") || !strings.Contains(out, "provisioning/datasources/opsmetrics.yaml") {
		t.Fatalf("dashboards build (exit %d):\n%s", code, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "provisioning/datasources/opsmetrics.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host: ch.example", "port: 9440", "defaultDatabase: opsmetrics", "username: grafana", "secure: true"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("datasources file lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "secret") {
		t.Errorf("the password was written:\n%s", b)
	}
	if _, code := stdout(t, "dashboards", "build"); code != exitUsage {
		t.Errorf("build without --out: exit %d, want 2", code)
	}
}
