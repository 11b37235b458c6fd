// Package testenv gives tests the real servers they run against: one private
// ClickHouse server per test binary (Debian's clickhouse-server, started by
// package localserver/clickhouse) with a fresh, migrated database per test,
// and an in-process Kafka broker (kfake) that speaks the real wire protocol.
// Pipeline is the two together with the default topics, and Process the
// opsmetrics binary running against them. It is for tests only.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

var (
	mu     sync.Mutex
	shared *clickhouse.Server
)

// Main runs the tests of a package and then stops the shared ClickHouse
// server, if one was started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	if shared != nil {
		shared.Close()
	}
	mu.Unlock()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

// ClickHouse returns the ClickHouse server shared by the tests of this binary,
// starting it on first use. Packages that use it must call Main from TestMain.
func ClickHouse(tb testing.TB) *clickhouse.Server {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil && shared.Running() {
		return shared
	}
	if shared != nil { // a test stopped it; bring it back
		if err := shared.Restart(context.Background()); err != nil {
			tb.Fatalf("restart shared clickhouse: %v", err)
		}
		return shared
	}
	s, err := clickhouse.Start(context.Background(), "")
	if err != nil {
		tb.Fatalf("start clickhouse: %v", err)
	}
	shared = s
	return s
}

// OwnClickHouse starts a ClickHouse server for one test alone, for tests
// that stop or restart it. It is removed when the test ends.
func OwnClickHouse(tb testing.TB) *clickhouse.Server {
	tb.Helper()
	s, err := clickhouse.Start(context.Background(), tb.TempDir())
	if err != nil {
		tb.Fatalf("start clickhouse: %v", err)
	}
	tb.Cleanup(func() { s.Stop() })
	return s
}

// Database creates a fresh database on the shared server, migrates it and
// returns its DSN.
func Database(tb testing.TB) string {
	tb.Helper()
	return MigratedDatabase(tb, ClickHouse(tb))
}

// MigratedDatabase creates a fresh, migrated database on s and returns its DSN.
func MigratedDatabase(tb testing.TB, s *clickhouse.Server) string {
	tb.Helper()
	dsn := s.DSN("t_" + RandomName())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := store.Migrate(ctx, dsn, Logger(tb)); err != nil {
		tb.Fatalf("migrate %s: %v", dsn, err)
	}
	return dsn
}

// Store opens dsn and closes it when the test ends.
func Store(tb testing.TB, dsn string) *store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Kafka starts an in-process Kafka cluster with the given topics, each with
// the given number of partitions, and returns its seed brokers.
func Kafka(tb testing.TB, partitions int32, topics ...string) (*kfake.Cluster, []string) {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		tb.Fatalf("start kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// RandomName returns 12 random lower-case hex characters.
func RandomName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Logger returns a logger that writes to the test log, or discards when the
// test is not verbose.
func Logger(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(string(p))
	return len(p), nil
}

// Count runs a SELECT count() style query and returns the number.
func Count(tb testing.TB, s *store.Store, query string, args ...any) uint64 {
	tb.Helper()
	var n uint64
	if err := s.Conn().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// Eventually polls cond every 100ms until it is true or timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("%s: not reached within %v: %s", what, timeout, last)
}

// Rows runs query and returns every row formatted as a string, in order.
// Tests use it to compare whole views before and after a replay.
func Rows(tb testing.TB, s *store.Store, query string, args ...any) []string {
	tb.Helper()
	rows, err := s.Conn().Query(context.Background(), query, args...)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out []string
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			tb.Fatalf("scan %s: %v", query, err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			rv := reflect.ValueOf(v).Elem()
			for rv.Kind() == reflect.Pointer {
				if rv.IsNil() {
					break
				}
				rv = rv.Elem()
			}
			if rv.Kind() == reflect.Pointer {
				parts[i] = "NULL"
			} else {
				parts[i] = fmt.Sprint(rv.Interface())
			}
		}
		out = append(out, strings.Join(parts, " | "))
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return out
}

// ConfigCase is a configuration file of a package's testdata/config and the
// error it must give, empty for a good file.
type ConfigCase struct{ File, Want string }

// ConfigFiles reads each file of cases onto the defaults of a package's
// configuration section and validates it (config.LoadFile, then Validate):
// the good files pass, each bad one fails with its error.
func ConfigFiles[T interface{ Validate() error }](tb testing.TB, defaults func() T, cases []ConfigCase) {
	tb.Helper()
	for _, c := range cases {
		cfg := defaults()
		err := config.LoadFile(filepath.Join("testdata", "config", c.File+".yaml"), &cfg)
		if err == nil {
			err = cfg.Validate()
		}
		switch {
		case c.Want == "" && err != nil:
			tb.Errorf("%s: %v", c.File, err)
		case c.Want != "" && (err == nil || !strings.Contains(err.Error(), c.Want)):
			tb.Errorf("%s: error %v, want one containing %q", c.File, err, c.Want)
		}
	}
}

// StoreGenerated writes the events of cfg's generated stream to st,
// batch at a time, as an ingester would store them, and returns the
// generator's counts.
func StoreGenerated(tb testing.TB, st *store.Store, cfg generator.Config, batch int) generator.Stats {
	tb.Helper()
	ctx := context.Background()
	recs := make([]store.Record, 0, batch)
	flush := func() {
		if err := st.Write(ctx, recs, nil); err != nil {
			tb.Fatal(err)
		}
		recs = recs[:0]
	}
	stats, err := generator.Generate(cfg, func(e *event.Event) error {
		recs = append(recs, store.Record{Event: e, Topic: "generated", Offset: int64(len(recs))})
		if len(recs) == batch {
			flush()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	flush()
	return stats
}
