package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestCheckSchema: a database that does not exist, one without the schema
// and one that lost a migration are each a *SchemaError telling the user to
// run `opsmetrics migrate`; a migrated one passes, and checking changed
// nothing.
func TestCheckSchema(t *testing.T) {
	srv := testenv.ClickHouse(t)
	ctx := context.Background()
	name := "t_" + testenv.RandomName()
	missing := srv.DSN(name)
	if _, err := store.OpenCurrent(ctx, missing); !isSchemaError(err, 0) {
		t.Errorf("a database that does not exist: %v, want a SchemaError", err)
	}
	if _, err := store.OpenCurrent(ctx, missing); err == nil || !strings.Contains(err.Error(), "run `opsmetrics migrate`") {
		t.Errorf("the error does not say what to do: %v", err)
	}
	if n := testenv.Count(t, testenv.Store(t, srv.DSN("default")), "SELECT count() FROM system.databases WHERE name = ?", name); n != 0 {
		t.Errorf("checking created the database")
	}

	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	if err := st.CheckSchema(ctx); err != nil {
		t.Fatalf("a migrated database: %v", err)
	}
	if s, err := store.OpenCurrent(ctx, dsn); err != nil {
		t.Fatalf("OpenCurrent of a migrated database: %v", err)
	} else {
		s.Close()
	}
	// A database migrated by an older build: every migration but the last.
	old := testenv.Store(t, srv.DSN("default"))
	oldDB := "t_" + testenv.RandomName()
	for _, q := range []string{
		"CREATE DATABASE " + oldDB,
		"CREATE TABLE " + oldDB + ".schema_migrations (version UInt32, description String, applied_at DateTime('UTC')) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version",
		fmt.Sprintf("INSERT INTO %s.schema_migrations (version, description, applied_at) SELECT toUInt32(number + 1), 'older', now() FROM numbers(%d)", oldDB, store.LatestVersion()-1),
	} {
		if err := old.Conn().Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_, err := store.OpenCurrent(ctx, srv.DSN(oldDB))
	var se *store.SchemaError
	if !errors.As(err, &se) || se.Have != store.LatestVersion()-1 || len(se.Missing) != 1 || se.Missing[0] != store.LatestVersion() ||
		!strings.Contains(err.Error(), "run `opsmetrics migrate`") {
		t.Errorf("a database one migration old: %v, want a SchemaError missing %d", err, store.LatestVersion())
	}

	empty := testenv.Store(t, srv.DSN("default"))
	if err := empty.CheckSchema(ctx); !isSchemaError(err, 0) {
		t.Errorf("a database without the schema: %v", err)
	}
}

func isSchemaError(err error, have uint32) bool {
	var se *store.SchemaError
	return errors.As(err, &se) && se.Have == have
}
