// Package store is opsmetrics' ClickHouse storage: the versioned schema and
// its migration, and the idempotent batch writer that ingestion uses. It
// speaks ClickHouse's native protocol through clickhouse-go, which works on
// ClickHouse 18.16 as well as on current releases.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// Store is a connection pool to one ClickHouse database.
type Store struct {
	conn     driver.Conn
	database string
}

// Options converts a DSN of the form clickhouse://user:pass@host:port/db into
// clickhouse-go options. The database defaults to "default".
func Options(dsn string) (*clickhouse.Options, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "clickhouse" || u.Host == "" {
		return nil, fmt.Errorf("clickhouse DSN %q: want clickhouse://user:pass@host:port/db", redact(dsn))
	}
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("clickhouse DSN %q: %w", redact(dsn), err)
	}
	if opts.Auth.Database == "" {
		opts.Auth.Database = "default"
	}
	opts.Protocol = clickhouse.Native
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	return opts, nil
}

// redact hides the password of a DSN so that it can appear in errors.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "<unparseable DSN>"
	}
	return u.Redacted()
}

// Open connects to the database of dsn and checks that it answers.
func Open(ctx context.Context, dsn string) (*Store, error) {
	opts, err := Options(dsn)
	if err != nil {
		return nil, err
	}
	return open(ctx, opts)
}

// Connect returns a store for dsn without connecting: connections are made
// when first used, so that a server that is down now may come later. An
// error is a bad DSN. maxOpen bounds the pool (0: clickhouse-go's default
// of 10), so that one use of the server cannot take another's connections.
func Connect(dsn string, maxOpen int) (*Store, error) {
	opts, err := Options(dsn)
	if err != nil {
		return nil, err
	}
	if maxOpen > 0 {
		opts.MaxOpenConns, opts.MaxIdleConns = maxOpen, min(maxOpen, 5)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to clickhouse %s: %w", strings.Join(opts.Addr, ","), err)
	}
	return &Store{conn: conn, database: opts.Auth.Database}, nil
}

func open(ctx context.Context, opts *clickhouse.Options) (*Store, error) {
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to clickhouse %s: %w", strings.Join(opts.Addr, ","), err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", strings.Join(opts.Addr, ","), err)
	}
	return &Store{conn: conn, database: opts.Auth.Database}, nil
}

// Conn returns the underlying connection, for queries.
func (s *Store) Conn() driver.Conn { return s.conn }

// Database is the name of the database the store uses.
func (s *Store) Database() string { return s.database }

// Close closes the connection pool.
func (s *Store) Close() error { return s.conn.Close() }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// LatestVersion is the schema version this build of opsmetrics needs.
func LatestVersion() uint32 { return migrations[len(migrations)-1].version }

// Migrate creates the database of dsn if needed and applies every migration
// not yet recorded in its schema_migrations table, in order. It is safe to run
// on every start and from several processes at once: each statement is
// idempotent. It returns the versions it applied.
func Migrate(ctx context.Context, dsn string, log *slog.Logger) ([]uint32, error) {
	return MigrateCluster(ctx, dsn, "", log)
}

// MigrateCluster is Migrate on the ClickHouse cluster named cluster (from
// the server's remote_servers): replicated local tables, Distributed tables
// under the usual names, every statement ON CLUSTER (see cluster.go). An
// empty cluster is Migrate.
func MigrateCluster(ctx context.Context, dsn, cluster string, log *slog.Logger) ([]uint32, error) {
	opts, err := Options(dsn)
	if err != nil {
		return nil, err
	}
	db := opts.Auth.Database
	boot := *opts
	boot.Auth.Database = "default"
	s, err := open(ctx, &boot)
	if err != nil {
		return nil, err
	}
	on := ""
	if cluster != "" {
		on = " ON CLUSTER " + quoteIdent(cluster)
	}
	err = s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db)+on)
	s.Close()
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", db, err)
	}
	if s, err = open(ctx, opts); err != nil {
		return nil, err
	}
	defer s.Close()

	if err := s.conn.Exec(ctx, schemaMigrationsDDL(cluster, db)); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	done, err := s.appliedVersions(ctx)
	if err != nil {
		return nil, err
	}
	var applied []uint32
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		stmts := m.statements
		if cluster != "" {
			stmts = nil
			for _, stmt := range m.statements {
				cs, err := clusterStatements(stmt, cluster, db)
				if err != nil {
					return applied, fmt.Errorf("migration %d: %w", m.version, err)
				}
				stmts = append(stmts, cs...)
			}
		}
		for i, stmt := range stmts {
			if added, err := s.addedColumn(ctx, stmt); err != nil || added {
				if err != nil {
					return applied, fmt.Errorf("migration %d (%s), statement %d: %w", m.version, m.description, i+1, err)
				}
				continue
			}
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("migration %d (%s), statement %d: %w", m.version, m.description, i+1, err)
			}
		}
		// INSERT ... SELECT: an INSERT ... VALUES sent through Exec waits
		// forever for a data block on ClickHouse 18.16.
		if err := s.conn.Exec(ctx, "INSERT INTO schema_migrations (version, description, applied_at) SELECT toUInt32(?), ?, now()",
			m.version, m.description); err != nil {
			return applied, fmt.Errorf("record migration %d: %w", m.version, err)
		}
		log.Info("applied migration", "version", m.version, "description", m.description, "database", db)
		applied = append(applied, m.version)
	}
	return applied, nil
}

// MigrateRetrying migrates as Migrate does, retrying with capped backoff
// while it fails (ClickHouse down, or not accepting the schema yet). Each
// failure goes to failed. It returns nil once migrated, or ctx's error.
func MigrateRetrying(ctx context.Context, dsn string, log *slog.Logger, failed func(error)) error {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		_, err := Migrate(ctx, dsn, log)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failed(err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (s *Store) appliedVersions(ctx context.Context) (map[uint32]bool, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	done := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		done[v] = true
	}
	return done, rows.Err()
}

// addColumn matches a migration's ALTER TABLE that adds one column.
var addColumn = regexp.MustCompile("^ALTER TABLE (?:`[^`]*`\\.)?(\\w+)(?: ON CLUSTER \\S+)? ADD COLUMN (\\w+) ")

// addedColumn reports whether stmt adds a column that the table has
// already: ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, and a
// migration interrupted after its ALTER, or run by two processes at once,
// must not fail on the column it added.
func (s *Store) addedColumn(ctx context.Context, stmt string) (bool, error) {
	m := addColumn.FindStringSubmatch(stmt)
	if m == nil {
		return false, nil
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = ? AND name = ?",
		m[1], m[2]).Scan(&n); err != nil {
		return false, fmt.Errorf("look for column %s.%s: %w", m[1], m[2], err)
	}
	return n > 0, nil
}

// SchemaVersion returns the highest applied migration, 0 when none is.
func (s *Store) SchemaVersion(ctx context.Context) (uint32, error) {
	var exists uint8
	if err := s.conn.QueryRow(ctx, "SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'").Scan(&exists); err != nil {
		return 0, err
	}
	if exists == 0 {
		return 0, nil
	}
	var v uint32
	if err := s.conn.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, err
	}
	return v, nil
}

func quoteIdent(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`"
}

// Record is a decoded event with the Kafka position it came from.
type Record struct {
	Event     *event.Event
	Topic     string
	Partition int
	Offset    int64
	// hash is the event's content hash when hashed (NewRecord); Claim
	// computes it otherwise.
	hash   hash
	hashed bool
}

// NewRecord is the record of e from topic, partition and offset, with its
// content hash computed now: the ingester makes records where it decodes,
// ahead of the batch's claim, which then need not hash them. e must not
// change until it is claimed.
func NewRecord(e *event.Event, topic string, partition int, offset int64) Record {
	r := Record{Event: e, Topic: topic, Partition: partition, Offset: offset, hashed: true}
	buf := hashBufs.Get().(*[]byte)
	r.hash, *buf = eventHash(e, *buf)
	hashBufs.Put(buf)
	return r
}

// hashBufs are NewRecord's scratch buffers.
var hashBufs = sync.Pool{New: func() any { return new([]byte) }}

// DeadLetter is a message that could not be decoded, with the reason.
type DeadLetter struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Payload   []byte
	Headers   []event.Header
	Reason    event.Reason
	Detail    string // the full, human-readable reason
	At        time.Time
	// NotPublished, when set, is why the dead letter could not be
	// published to the dead-letter topic; the row's reason says so.
	NotPublished string
}

// Write stores a batch of records and dead letters. It returns only when
// every row is acknowledged by ClickHouse, so the caller may then commit the
// batch's offsets. Writing the same batch again is harmless: rows are
// identified by event id (dead letters by topic, partition and offset).
// The tables are written at once, each over its own connection, so that
// ClickHouse and the caller build their parts side by side.
func (s *Store) Write(ctx context.Context, records []Record, dead []DeadLetter) error {
	now := time.Now().UTC()
	counts := map[event.Kind]int{}
	for _, r := range records {
		counts[r.Event.Kind]++
	}
	byKind := make(map[event.Kind][]Record, len(counts))
	for k, n := range counts {
		byKind[k] = make([]Record, 0, n)
	}
	for _, r := range records {
		byKind[r.Event.Kind] = append(byKind[r.Event.Kind], r)
	}
	errs := make([]error, len(event.Kinds)+1)
	var wg sync.WaitGroup
	for i, k := range event.Kinds {
		if rs := byKind[k]; len(rs) > 0 {
			wg.Go(func() {
				if err := s.writeKind(ctx, k, rs, now); err != nil {
					errs[i] = fmt.Errorf("insert %d %s events: %w", len(rs), k, err)
				}
			})
		}
	}
	if len(dead) > 0 {
		wg.Go(func() {
			if err := s.writeDeadLetters(ctx, dead); err != nil {
				errs[len(event.Kinds)] = fmt.Errorf("insert %d dead letters: %w", len(dead), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

const sourceColumns = "source_topic, source_partition, source_offset, ingested_at"

func (s *Store) writeKind(ctx context.Context, k event.Kind, rs []Record, now time.Time) error {
	cols := eventColumns(k, len(rs), now)
	for i := range rs {
		for _, c := range cols {
			c.add(&rs[i])
		}
	}
	return insert(ctx, s, insertSQL(k), cols)
}

// insert runs a batch INSERT of query with the values of cols, in the
// query's column order. Its String columns are made with room for their
// values (presize.go).
func insert[R any](ctx context.Context, s *Store, query string, cols []col[R]) error {
	sizes := map[string]strSize{}
	for i, name := range insertColumns(query) {
		if i < len(cols) {
			if sz, ok := cols[i].size(); ok {
				sizes[name] = sz
			}
		}
	}
	b, err := presized.prepareBatch(ctx, s.conn, query, sizes)
	if err != nil {
		return err
	}
	defer b.Abort()
	for i, c := range cols {
		if err := c.appendTo(b.Column(i)); err != nil {
			return err
		}
	}
	return b.Send()
}

func (s *Store) writeDeadLetters(ctx context.Context, dead []DeadLetter) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO dead_letter_events (topic, partition, offset, message_key, payload, header_keys, header_values, reason_code, reason, dead_lettered_at)")
	if err != nil {
		return err
	}
	defer b.Abort()
	for _, d := range dead {
		keys, values := make([]string, 0, len(d.Headers)), make([]string, 0, len(d.Headers))
		for _, h := range d.Headers {
			keys = append(keys, h.Key)
			values = append(values, string(h.Value))
		}
		reason := d.Detail
		if d.NotPublished != "" {
			reason += " [not published to the dead-letter topic: " + d.NotPublished + "]"
		}
		if err := b.Append(d.Topic, int32(d.Partition), d.Offset, string(d.Key), string(d.Payload), keys, values,
			string(d.Reason), reason, ts(d.At)); err != nil {
			return err
		}
	}
	return b.Send()
}

var epoch = time.Unix(0, 0).UTC()

// ts maps an unset time to the epoch, which the schema reads as "unset".
func ts(t time.Time) time.Time {
	if t.IsZero() || t.Before(epoch) {
		return epoch
	}
	return t.UTC()
}

// ValidateDSN checks that dsn has the form clickhouse://user:pass@host:port/db.
// The error never shows the password.
func ValidateDSN(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "clickhouse" || u.Host == "" {
		shown := "<unparseable>"
		if err == nil {
			shown = u.Redacted()
		}
		return fmt.Errorf("want clickhouse://user:pass@host:port/db, got %q", shown)
	}
	return nil
}
