package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/localserver/zookeeper"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestMigrateCluster runs the ON CLUSTER schema on ClickHouse 18.16 as the
// single node of a cluster with ZooKeeper: replicated local tables,
// Distributed tables and views are accepted, migrating again applies
// nothing, and events written through the Distributed tables read back
// through the views.
func TestMigrateCluster(t *testing.T) {
	ctx := context.Background()
	zk, err := zookeeper.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer zk.Stop()
	srv, err := clickhouse.StartCluster(ctx, t.TempDir(), "opsmetrics_test", zk.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	dsn := srv.DSN("clustered") + "?insert_distributed_sync=1"
	log := testenv.Logger(t)
	applied, err := store.MigrateCluster(ctx, dsn, "opsmetrics_test", log)
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(srv.Dir, "log", "error.log"))
		t.Fatalf("%v\nserver error log:\n%s", err, b)
	}
	if len(applied) == 0 || applied[len(applied)-1] != store.LatestVersion() {
		t.Fatalf("applied %v", applied)
	}
	if again, err := store.MigrateCluster(ctx, dsn, "opsmetrics_test", log); err != nil || len(again) != 0 {
		t.Errorf("second migrate: %v, %v", again, err)
	}
	st := testenv.Store(t, dsn)
	engines := testenv.Rows(t, st, "SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name LIKE 'deployment%' ORDER BY name")
	if strings.Join(engines, ", ") != "deployment_events | Distributed, deployment_events_local | ReplicatedReplacingMergeTree, deployments | View" {
		t.Errorf("deployment tables: %v", engines)
	}
	at := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	recs := []store.Record{{Topic: "t", Event: &event.Event{Kind: event.KindDeployment, ID: "e-1", Time: at,
		Deployment: &event.Deployment{ID: "d-1", Service: "checkout", Environment: "production", Status: event.DeploymentSuccess, FinishedAt: at,
			Actor: "new-hire", Pipeline: "deploy-prod"}}}}
	if err := st.Write(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(ctx, recs, nil); err != nil { // a replay
		t.Fatal(err)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM deployments"); n != 1 {
		t.Errorf("deployments view over the cluster: %d rows, want 1", n)
	}
	// Migration 7's columns, through the Distributed table created again.
	if got := testenv.Rows(t, st, "SELECT DISTINCT actor, pipeline FROM deployment_events"); len(got) != 1 || got[0] != "new-hire | deploy-prod" {
		t.Errorf("actor and pipeline over the cluster: %q", got)
	}
	// Claims through the Distributed event_ids, whose id_hash column
	// (migration 17) came with the Distributed table created again: a new
	// id is accepted, its replay too, other content is refused.
	claim := func(id, status string) (int, int) {
		t.Helper()
		r := []store.Record{{Topic: "t", Event: &event.Event{Kind: event.KindDeployment, ID: id, Time: at,
			Deployment: &event.Deployment{ID: "d-2", Service: "checkout", Environment: "production", Status: event.DeploymentStatus(status), FinishedAt: at}}}}
		ok, conflicts, err := st.Claim(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Write(ctx, ok, nil); err != nil {
			t.Fatal(err)
		}
		return len(ok), len(conflicts)
	}
	if ok, c := claim("e-2", "success"); ok != 1 || c != 0 {
		t.Errorf("new id over the cluster: %d accepted, %d conflicts", ok, c)
	}
	if ok, c := claim("e-2", "success"); ok != 1 || c != 0 {
		t.Errorf("replay over the cluster: %d accepted, %d conflicts", ok, c)
	}
	if ok, c := claim("e-2", "failure"); ok != 0 || c != 1 {
		t.Errorf("other content over the cluster: %d accepted, %d conflicts", ok, c)
	}
	if n := testenv.Count(t, st, "SELECT count() FROM event_ids WHERE id_hash = ?", store.IDHash("e-2")); n == 0 {
		t.Errorf("no claim of e-2 under its hash over the cluster")
	}
	if v, err := st.SchemaVersion(ctx); err != nil || v != store.LatestVersion() {
		t.Errorf("schema version %d, %v", v, err)
	}
}

func TestClusterDDL(t *testing.T) {
	ddl, err := store.ClusterDDL("prod", "opsmetrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ddl {
		// INSERT ... SELECT statements move data once, through the
		// Distributed tables; every other statement is DDL.
		if !strings.HasPrefix(s, "INSERT INTO `opsmetrics`.") && !strings.Contains(s, "ON CLUSTER `prod`") {
			t.Errorf("statement without ON CLUSTER: %.80s", s)
		}
	}
	joined := strings.Join(ddl, "\n")
	for _, want := range []string{
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/opsmetrics/deployment_events_local', '{replica}', ingested_at)",
		"ENGINE = Distributed(`prod`, `opsmetrics`, deployment_events_local, cityHash64(deployment_id))",
		"CREATE VIEW IF NOT EXISTS `opsmetrics`.deployments ON CLUSTER `prod` AS",
		"FROM `opsmetrics`.deployment_events",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q in the cluster DDL", want)
		}
	}
}
