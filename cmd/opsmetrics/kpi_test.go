package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stdout runs the command and returns what it printed and its exit code.
func stdout(t *testing.T, args ...string) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	code := run(args)
	os.Stdout = old
	w.Close()
	b, _ := io.ReadAll(r)
	return string(b), code
}

func TestKPICommand(t *testing.T) {
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	var recs []store.Record
	for i, d := range []struct {
		id, service string
		status      event.DeploymentStatus
	}{{"d1", "checkout", event.DeploymentSuccess}, {"d2", "checkout", event.DeploymentFailure}, {"d3", "search", event.DeploymentSuccess}} {
		recs = append(recs, store.Record{Offset: int64(i), Event: &event.Event{Kind: event.KindDeployment, ID: d.id, Time: t0,
			Deployment: &event.Deployment{ID: d.id, Service: d.service, Environment: "production", Status: d.status, FinishedAt: t0}}})
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	out, code := stdout(t, "kpi", "--clickhouse", dsn, "--from", "2026-03-01", "--to", "2026-03-03", "--by", "service", "--format", "json")
	if code != 0 {
		t.Fatalf("kpi: exit %d", code)
	}
	var doc struct {
		Summaries []struct {
			Slice map[string]string `json:"slice"`
			CFR   *float64          `json:"change_failure_rate"`
		} `json:"summaries"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(doc.Summaries) != 2 || doc.Summaries[0].Slice["service"] != "checkout" || *doc.Summaries[0].CFR != 0.5 {
		t.Errorf("kpi json:\n%s", out)
	}
	table, code := stdout(t, "kpi", "--clickhouse", dsn, "--from", "2026-03-01", "--to", "2026-03-03")
	if code != 0 || !bytes.Contains([]byte(table), []byte("33.3%")) {
		t.Errorf("kpi table (exit %d):\n%s", code, table)
	}
	weekly, code := stdout(t, "kpi", "--clickhouse", dsn, "--from", "2026-02-23", "--to", "2026-03-09", "--bucket", "week", "--compare", "--tz", "Europe/Berlin")
	if code != 0 || !bytes.Contains([]byte(weekly), []byte("2026-03-02")) || !bytes.Contains([]byte(weekly), []byte("+3")) {
		t.Errorf("weekly comparison (exit %d):\n%s", code, weekly)
	}
	explained, code := stdout(t, "kpi", "explain", "change_failure_rate", "--clickhouse", dsn, "--service", "checkout", "--from", "2026-03-01", "--to", "2026-03-03")
	if code != 0 || !bytes.Contains([]byte(explained), []byte("d2")) || bytes.Contains([]byte(explained), []byte("d3")) {
		t.Errorf("kpi explain (exit %d):\n%s", code, explained)
	}
	if _, code := stdout(t, "kpi", "explain", "vibes", "--clickhouse", dsn); code != exitUsage {
		t.Errorf("kpi explain of an unknown KPI: exit %d, want 2", code)
	}
	// The configuration's kpi section: search's environment is production
	// only in the file, and its own level table rates one deployment in
	// two days (0.5/day) elite.
	file := t.TempDir() + "/c.yaml"
	os.WriteFile(file, []byte(`
kpi:
  production: [production]
  dora_report: relaxed
  dora_levels:
    relaxed:
      deploys_per_day: [0.5, 0.1, 0.01]
      lead_time: [720h, 1440h, 2160h]
      recovery_time: [24h, 48h, 72h]
      change_failure_rate: [0.1, 0.5, 0.7, 0.9]
`), 0o644)
	out, code = stdout(t, "kpi", "--config", file, "--clickhouse", dsn, "--from", "2026-03-01", "--to", "2026-03-03", "--by", "service", "--format", "json")
	var levels struct {
		Table     string `json:"dora_level_table"`
		Summaries []struct {
			Levels map[string]string `json:"dora_levels"`
		} `json:"summaries"`
	}
	if err := json.Unmarshal([]byte(out), &levels); code != 0 || err != nil || levels.Table != "relaxed" || len(levels.Summaries) != 2 ||
		levels.Summaries[1].Levels["deployment_frequency"] != "elite" || levels.Summaries[0].Levels["change_failure_rate"] != "high" {
		t.Errorf("kpi with a configured level table (exit %d, %v):\n%s", code, err, out)
	}
	if _, code := stdout(t, "kpi", "--config", file, "--clickhouse", dsn, "--dora-report", "2023"); code != 0 {
		t.Errorf("--dora-report 2023 over a configured table: exit %d", code)
	}
	// The change calendar of the file, with the tiers of its catalog:
	// Monday noon is outside the weekday afternoons, but inside the
	// tier-1 window that decides for search.
	dir := t.TempDir()
	os.WriteFile(dir+"/services.yaml", []byte("- {name: search, owner: discovery, tier: tier-1}\n"), 0o644)
	os.WriteFile(dir+"/cal.yaml", []byte(`
catalog:
  path: `+dir+`/services.yaml
change_calendar:
  windows:
    - {name: afternoons, environments: [production], days: [mon-fri], from: "13:00", to: "17:00"}
    - {name: tier-1-noon, environments: [production], tiers: [tier-1], days: [mon], from: "11:00", to: "13:00"}
`), 0o644)
	out, code = stdout(t, "kpi", "--config", dir+"/cal.yaml", "--clickhouse", dsn, "--from", "2026-03-01", "--to", "2026-03-03", "--by", "service", "--format", "json")
	var windows struct {
		Summaries []struct {
			Slice   map[string]string `json:"slice"`
			Outside uint64            `json:"deployments_outside_window"`
			Share   *float64          `json:"deployments_outside_window_share"`
		} `json:"summaries"`
	}
	if err := json.Unmarshal([]byte(out), &windows); code != 0 || err != nil || len(windows.Summaries) != 2 ||
		windows.Summaries[0].Outside != 2 || *windows.Summaries[0].Share != 1 || windows.Summaries[1].Outside != 0 || *windows.Summaries[1].Share != 0 {
		t.Errorf("kpi with a change calendar (exit %d, %v):\n%s", code, err, out)
	}
	if table, code := stdout(t, "kpi", "--config", dir+"/cal.yaml", "--clickhouse", dsn, "--from", "2026-03-01", "--to", "2026-03-03"); code != 0 ||
		!regexp.MustCompile(`(?m)^all +2 +66\.7% +0 +0$`).MatchString(table) {
		t.Errorf("kpi table with a change calendar (exit %d):\n%s", code, table)
	}
	for _, bad := range [][]string{
		{"--bucket", "hour"}, {"--dora-report", "relaxed"}, {"--tz", "Mars/Olympus"},
		{"--by", "region"}, {"--format", "xml"}, {"--from", "yesterday"}, {"--from", "2026-03-03", "--to", "2026-03-01"},
	} {
		if _, code := stdout(t, append([]string{"kpi", "--clickhouse", dsn}, bad...)...); code != exitUsage {
			t.Errorf("kpi %v: exit %d, want 2", bad, code)
		}
	}
}
