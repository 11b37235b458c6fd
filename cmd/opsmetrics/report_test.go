package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestReportCommand: the report of a generated stream is written to a
// file and to stdout as one HTML page; bad or missing flags fail.
func TestReportCommand(t *testing.T) {
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	end := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	testenv.StoreGenerated(t, st, generator.Config{Services: 3, Teams: 2, Days: 21, Seed: 3, End: end}, 1<<20)
	file := filepath.Join(t.TempDir(), "report.html")
	if _, code := stdout(t, "report", "--clickhouse", dsn, "--from", "2026-02-18", "--to", "2026-03-04", "--out", file); code != 0 {
		t.Fatalf("report --out FILE: exit %d", code)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if page := string(b); !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.Contains(page, "<td>team ") ||
		!strings.Contains(page, "2026-02-18 to 2026-03-04") {
		t.Errorf("report file (%d bytes) is no report of teams from 2026-02-18 to 2026-03-04:\n%.600s", len(b), page)
	}
	// The file's threshold rules are the targets the report reviews.
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("alerting:\n  thresholds:\n    - {name: org-cfr, kpi: change_failure_rate, above: \"99%\"}\n"), 0o644)
	out, code := stdout(t, "report", "--config", cfg, "--clickhouse", dsn, "--from", "2026-02-18", "--to", "2026-03-04", "--by", "service",
		"--tz", "Europe/Berlin", "--out", "-")
	if code != 0 || !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, "<td>service ") ||
		!strings.Contains(out, "Europe/Berlin") || !strings.Contains(out, `<tr class="target"><td>org-cfr</td>`) {
		t.Errorf("report --out - (exit %d):\n%.600s", code, out)
	}
	for _, bad := range []struct {
		args []string
		code int
	}{
		{nil, exitUsage}, // no --out
		{[]string{"--out", file, "--by", "region"}, exitUsage},
		{[]string{"--out", file, "--tz", "Mars/Olympus"}, exitUsage},
		{[]string{"--out", file, "--from", "2026-03-04", "--to", "2026-02-18"}, exitUsage},
		{[]string{"--out", filepath.Join(t.TempDir(), "missing", "report.html")}, exitFailure},
	} {
		if _, code := stdout(t, append([]string{"report", "--clickhouse", dsn}, bad.args...)...); code != bad.code {
			t.Errorf("report %v: exit %d, want %d", bad.args, code, bad.code)
		}
	}
}
