package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// SchemaError says that a database lacks migrations this build of
// opsmetrics needs: no schema at all (Have 0), or an older one. Only
// `opsmetrics migrate` (and serve and ingest at start-up, behind their
// --migrate flag) changes the schema; every other command stops with this
// error, which tells the user to run it.
type SchemaError struct {
	Database string
	Have     uint32   // highest applied migration; 0: none
	Missing  []uint32 // migrations of this build not applied, in order
}

func (e *SchemaError) Error() string {
	if e.Have == 0 {
		return fmt.Sprintf("database %q holds no opsmetrics schema: run `opsmetrics migrate` with the same --clickhouse first", e.Database)
	}
	missing := make([]string, len(e.Missing))
	for i, v := range e.Missing {
		missing[i] = fmt.Sprint(v)
	}
	return fmt.Sprintf("database %q is at schema version %d and lacks migration %s of version %d: run `opsmetrics migrate` with the same --clickhouse first",
		e.Database, e.Have, strings.Join(missing, ", "), LatestVersion())
}

// CheckSchema returns a *SchemaError when the store's database does not
// exist or lacks a migration of this build, nil when it has them all (a
// newer build's migrations beyond them are allowed: they only add), or the
// error of reading the schema_migrations table. It changes nothing.
func (s *Store) CheckSchema(ctx context.Context) error {
	se := &SchemaError{Database: s.database}
	var exists uint8
	err := s.conn.QueryRow(ctx, "SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'").Scan(&exists)
	var ex *clickhouse.Exception
	switch {
	case errors.As(err, &ex) && ex.Code == 81: // UNKNOWN_DATABASE
		exists = 0
	case err != nil:
		return fmt.Errorf("check schema: %w", err)
	}
	if exists == 0 {
		se.Missing = versions()
		return se
	}
	done, err := s.appliedVersions(ctx)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	for v := range done {
		se.Have = max(se.Have, v)
	}
	for _, v := range versions() {
		if !done[v] {
			se.Missing = append(se.Missing, v)
		}
	}
	if len(se.Missing) == 0 {
		return nil
	}
	return se
}

// OpenCurrent opens the database of dsn and checks its schema
// (CheckSchema): a database that does not exist is a *SchemaError too.
func OpenCurrent(ctx context.Context, dsn string) (*Store, error) {
	s, err := Connect(dsn, 0)
	if err != nil {
		return nil, err
	}
	if err := s.CheckSchema(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// versions are the versions of this build's migrations, in order.
func versions() []uint32 {
	vs := make([]uint32, len(migrations))
	for i, m := range migrations {
		vs[i] = m.version
	}
	return vs
}
