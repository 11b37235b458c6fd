package store_test

import (
	"context"
	"testing"

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
