package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestCatalogCheckAndTier: catalog check lists a team stored against the
// catalog's owner and exits 1; kpi --by tier slices by the catalog's tier.
func TestCatalogCheckAndTier(t *testing.T) {
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	var recs []store.Record
	for i, d := range []struct{ service, team string }{{"checkout", "payments"}, {"checkout", "web"}, {"search", ""}} {
		id := string(rune('a' + i))
		recs = append(recs, store.Record{Event: &event.Event{Kind: event.KindDeployment, ID: id, Time: t0,
			Deployment: &event.Deployment{ID: id, Service: d.service, Team: d.team, Environment: "production",
				Status: event.DeploymentSuccess, FinishedAt: t0}}})
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cat, conf := filepath.Join(dir, "catalog.yaml"), filepath.Join(dir, "opsmetrics.yaml")
	if err := os.WriteFile(cat, []byte("- {name: checkout, owner: payments, tier: tier-1}\n- {name: search, owner: discovery, tier: tier-2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("catalog:\n  path: "+cat+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := []string{"--config", conf, "--clickhouse", dsn, "--from", "2026-03-01", "--to", "2026-03-03"}
	out, errOut, code := opsmetrics(t, append([]string{"catalog", "check"}, rng...)...)
	if code != exitFailure || !strings.Contains(out, "2 services from 1 files") || !strings.Contains(errOut, "1 teams differ") ||
		len(strings.Fields(lineWith(out, "checkout"))) != 6 || !strings.Contains(lineWith(out, "checkout"), "deployment  web") {
		t.Errorf("catalog check: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	// catalog store: written once, then already stored.
	store := []string{"catalog", "store", "--config", conf, "--clickhouse", dsn}
	out, errOut, code = opsmetrics(t, store...)
	if code != 0 || !strings.Contains(out, "stored the service catalog "+cat+" for the dashboards: 2 services") {
		t.Errorf("catalog store: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	if got := testenv.Rows(t, st, "SELECT service, tier, owner FROM current_service_catalog ORDER BY service"); strings.Join(got, "; ") != "checkout | tier-1 | payments; search | tier-2 | discovery" {
		t.Errorf("stored catalog: %v", got)
	}
	out, errOut, code = opsmetrics(t, store...)
	if code != 0 || !strings.Contains(out, "already") {
		t.Errorf("catalog store again: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	out, errOut, code = opsmetrics(t, append([]string{"kpi", "--by", "tier", "--format", "csv"}, rng...)...)
	if code != 0 || !strings.Contains(out, "\ntier-1,") || !strings.Contains(out, "\ntier-2,") {
		t.Errorf("kpi --by tier: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
