package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestTargetsReview: a quarter in which checkout deploys ten times a day
// and fails one; of the file's rules on it, one is stale, one never met,
// one holds (TestReviewRules in package anomaly has every finding).
func TestTargetsReview(t *testing.T) {
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	end := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.Record
	for d := end.Add(-92 * 24 * time.Hour); d.Before(end); d = d.Add(24 * time.Hour) {
		for i := range 10 {
			at, s := d.Add(time.Duration(8+i)*time.Hour), event.DeploymentSuccess
			if i == 0 {
				s = event.DeploymentFailure
			}
			id := fmt.Sprintf("d%d", len(recs))
			recs = append(recs, store.Record{Topic: "t", Offset: int64(len(recs)), Event: &event.Event{Kind: event.KindDeployment, ID: "e-" + id,
				Time: at, Deployment: &event.Deployment{ID: id, Service: "checkout", Team: "payments", Environment: "production",
					StartedAt: at.Add(-5 * time.Minute), FinishedAt: at, Status: s}}})
		}
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte(`
alerting:
  thresholds:
    - {name: cfr-stale, kpi: change_failure_rate, above: "60%", services: [checkout], set_at: 2026-08-01}
    - {name: cfr-never-met, kpi: change_failure_rate, above: "2%", by: [service]}
    - {name: cfr-holds, kpi: change_failure_rate, above: "15%", services: [checkout]}
`), 0o644)
	out, errOut, code := opsmetrics(t, "targets", "review", "--config", file, "--clickhouse", dsn, "--at", "2026-10-01T08:00:00Z")
	if code != 0 || !strings.HasPrefix(out, "targets review: 2026-07-02 00:00 to 2026-10-01 00:00 (end exclusive), time zone UTC\n") ||
		!hasLine(out, "cfr-stale", "service checkout", "above 60.0%", "13 of 13", "10.0%", "stale", "above 1") ||
		!hasLine(out, "cfr-never-met", "service checkout", "0 of 13", "never_met") ||
		!hasLine(out, "cfr-holds", "13 of 13", "holds", "-") ||
		!strings.Contains(out, "3 targets reviewed over 2026-07-02 to 2026-10-01: 1 stale, 1 never met, 0 shifted") {
		t.Errorf("targets review (exit %d, %s):\n%s", code, errOut, out)
	}
	out, errOut, code = opsmetrics(t, "targets", "review", "--clickhouse", dsn)
	if code != 0 || !strings.Contains(out, "no targets: configure alerting.thresholds") {
		t.Errorf("targets review without rules (exit %d, %s):\n%s", code, errOut, out)
	}
	if _, errOut, code := opsmetrics(t, "targets", "revue"); code != exitUsage || !strings.Contains(errOut, `unknown subcommand "revue"`) {
		t.Errorf("targets revue: exit %d, %s", code, errOut)
	}
}
