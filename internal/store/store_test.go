package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigrateIsIdempotent(t *testing.T) {
	srv := testenv.ClickHouse(t)
	dsn := srv.DSN("t_" + testenv.RandomName())
	ctx := context.Background()
	log := testenv.Logger(t)

	applied, err := store.Migrate(ctx, dsn, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || applied[len(applied)-1] != store.LatestVersion() {
		t.Fatalf("first migrate applied %v, want up to version %d", applied, store.LatestVersion())
	}
	again, err := store.Migrate(ctx, dsn, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second migrate applied %v, want nothing", again)
	}
	st := testenv.Store(t, dsn)
	v, err := st.SchemaVersion(ctx)
	if err != nil || v != store.LatestVersion() {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, store.LatestVersion())
	}
	for _, view := range []string{"deployments", "incidents", "patches", "changes", "dead_letters"} {
		if n := testenv.Count(t, st, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", view); n != 1 {
			t.Errorf("view %s missing", view)
		}
	}
}

// TestMigrateAddsColumnsOnce: migration 7 adds deployment_events.actor
// and .pipeline, and a run interrupted after its ALTER (the column there,
// the version not recorded) completes on the next run instead of failing
// on the column. A deployment's actor and pipeline are stored.
func TestMigrateAddsColumnsOnce(t *testing.T) {
	srv := testenv.ClickHouse(t)
	dsn := srv.DSN("t_" + testenv.RandomName())
	ctx := context.Background()
	log := testenv.Logger(t)
	if _, err := store.Migrate(ctx, dsn, log); err != nil {
		t.Fatal(err)
	}
	st := testenv.Store(t, dsn)
	if err := st.Conn().Exec(ctx, "ALTER TABLE schema_migrations DELETE WHERE version = 7"); err != nil {
		t.Fatal(err)
	}
	if err := st.Conn().Exec(ctx, "ALTER TABLE deployment_events DROP COLUMN pipeline"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the version forgotten", func() (bool, string) {
		n := testenv.Count(t, st, "SELECT count() FROM schema_migrations WHERE version = 7")
		return n == 0, fmt.Sprintf("%d rows", n)
	})
	applied, err := store.Migrate(ctx, dsn, log)
	if err != nil || len(applied) != 1 || applied[0] != 7 {
		t.Fatalf("migrating again after an interrupted migration 7: applied %v, %v", applied, err)
	}
	cols := testenv.Rows(t, st, `SELECT name, type, default_expression FROM system.columns
		WHERE database = currentDatabase() AND table = 'deployment_events' AND name IN ('actor', 'pipeline') ORDER BY name`)
	if got := strings.Join(cols, ", "); got != "actor | String | '', pipeline | String | ''" {
		t.Errorf("columns: %s", got)
	}
	at := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	recs := []store.Record{{Topic: "t", Event: &event.Event{Kind: event.KindDeployment, ID: "e-1", Time: at,
		Deployment: &event.Deployment{ID: "d-1", Service: "checkout", Environment: "production", Status: event.DeploymentSuccess,
			FinishedAt: at, Actor: "new-hire", Pipeline: "deploy-prod"}}}}
	if err := st.Write(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	if got := testenv.Rows(t, st, "SELECT actor, pipeline FROM deployment_events"); len(got) != 1 || got[0] != "new-hire | deploy-prod" {
		t.Errorf("stored actor and pipeline: %q", got)
	}
}

func TestSchemaVersionOfEmptyDatabase(t *testing.T) {
	srv := testenv.ClickHouse(t)
	st := testenv.Store(t, srv.DSN("default"))
	v, err := st.SchemaVersion(context.Background())
	if err != nil || v != 0 {
		t.Errorf("SchemaVersion of an unmigrated database = %d, %v; want 0", v, err)
	}
}

func TestOptionsRejectsBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "http://h:9000/db", "clickhouse:///db", "clickhouse://u:secret@:bad/db"} {
		_, err := store.Options(dsn)
		if err == nil {
			t.Errorf("Options(%q): no error", dsn)
			continue
		}
		if contains(err.Error(), "secret") {
			t.Errorf("Options(%q) error shows the password: %v", dsn, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
