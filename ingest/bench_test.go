package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/publish"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// BenchmarkIngestEndToEnd measures `opsmetrics ingest` moving a generated
// stream (1M events by default; OPSMETRICS_BENCH_EVENTS sets it) from an
// in-process Kafka broker into a private ClickHouse, and, in the same run,
// clickhouse-client inserting the same rows as JSONEachRow into the same
// tables. It prints both rates, their ratio and the ingester's peak RSS.
// Run it with `make bench-ingest`.
func BenchmarkIngestEndToEnd(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("OPSMETRICS_BENCH_EVENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("OPSMETRICS_BENCH_EVENTS: %v", err)
		}
	}
	b.StopTimer()
	ctx := context.Background()
	srv, err := clickhouse.Start(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	topics := broker.DefaultTopics()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(6, append(topics.Inputs(), topics.DeadLetter)...))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	// About 4,600 events per service-year: size the stream to n.
	gcfg := generator.Config{Services: max(1, n/4600), Days: 365, Seed: 11, End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	var buf bytes.Buffer
	stats, err := generator.WriteJSONL(&buf, gcfg, generator.FormatMixed)
	if err != nil {
		b.Fatal(err)
	}
	p := publish.New(brokers, publish.TopicsFrom(topics), nil)
	pstart := time.Now()
	if _, err := p.File(ctx, &buf); err != nil {
		b.Fatal(err)
	}
	p.Close()
	produceTook := time.Since(pstart)
	buf = bytes.Buffer{}
	runtime.GC()

	dsn := srv.DSN("bench")
	if _, err := store.Migrate(ctx, dsn, testenv.Logger(b)); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	bin := benchBinary(b)
	const idle = 5 * time.Second
	cmd := exec.Command(bin, "ingest", "--clickhouse", dsn, "--brokers", brokers[0], "--group", "bench",
		"--until-idle", idle.String(), "--log-level", "warn")
	cmd.Stderr = os.Stderr
	b.StartTimer()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// Time to the moment the last row is stored, not to the idle exit.
	var stored uint64
	var peakRSS int64
	for stored < uint64(stats.Events) {
		time.Sleep(50 * time.Millisecond)
		peakRSS = max(peakRSS, testenv.PeakRSS(cmd.Process.Pid))
		stored = 0
		for _, t := range []string{"deployment_events", "incident_events", "patch_events", "change_events"} {
			var c uint64
			if err := st.Conn().QueryRow(ctx, "SELECT count() FROM "+t).Scan(&c); err != nil {
				b.Fatal(err)
			}
			stored += c
		}
		if time.Since(start) > 30*time.Minute {
			b.Fatalf("only %d of %d events stored after 30 minutes", stored, stats.Events)
		}
	}
	took := time.Since(start)
	b.StopTimer()
	peakRSS = max(peakRSS, testenv.PeakRSS(cmd.Process.Pid))
	if err := cmd.Wait(); err != nil {
		b.Fatalf("ingester: %v", err)
	}

	// The reference: clickhouse-client loads the same rows, exported as
	// JSONEachRow, into a fresh copy of the same tables.
	refDSN := srv.DSN("bench_reference")
	if _, err := store.Migrate(ctx, refDSN, testenv.Logger(b)); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var refTook time.Duration
	var refRows int
	for _, t := range []string{"deployment_events", "incident_events", "patch_events", "change_events"} {
		file := filepath.Join(dir, t+".json")
		out, err := exec.Command("clickhouse-client", "--port", strconv.Itoa(srv.TCPPort), "--database", "bench",
			"--query", "SELECT * FROM "+t+" FORMAT JSONEachRow").Output()
		if err != nil {
			b.Fatalf("export %s: %v", t, err)
		}
		refRows += bytes.Count(out, []byte("\n"))
		if err := os.WriteFile(file, out, 0o644); err != nil {
			b.Fatal(err)
		}
		f, _ := os.Open(file)
		load := exec.Command("clickhouse-client", "--port", strconv.Itoa(srv.TCPPort), "--database", "bench_reference",
			"--query", "INSERT INTO "+t+" FORMAT JSONEachRow")
		load.Stdin = f
		s := time.Now()
		if out, err := load.CombinedOutput(); err != nil {
			b.Fatalf("clickhouse-client load %s: %v\n%s", t, err, out)
		}
		refTook += time.Since(s)
		f.Close()
	}

	rate := float64(stats.Events) / took.Seconds()
	refRate := float64(refRows) / refTook.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(refRate, "ref-rows/s")
	b.ReportMetric(rate/refRate, "ratio")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-RSS-MiB")
	fmt.Printf("\n%-52s %12s\n", "measure", "value")
	fmt.Printf("%-52s %12d\n", "events (kfake -> opsmetrics ingest -> ClickHouse)", stats.Events)
	fmt.Printf("%-52s %12s\n", "producing them into kfake took (not counted)", produceTook.Round(time.Millisecond))
	fmt.Printf("%-52s %12s\n", "end to end, until the last row was stored", took.Round(time.Millisecond))
	fmt.Printf("%-52s %12.0f\n", "opsmetrics events/s", rate)
	fmt.Printf("%-52s %12.0f\n", "clickhouse-client JSONEachRow rows/s (same rows)", refRate)
	fmt.Printf("%-52s %12.2f\n", "ratio opsmetrics / clickhouse-client", rate/refRate)
	fmt.Printf("%-52s %9.1f MiB\n", "ingester peak RSS", float64(peakRSS)/(1<<20))
	fmt.Printf("%-52s %12d\n", "GOMAXPROCS", runtime.GOMAXPROCS(0))
}

func benchBinary(b *testing.B) string {
	dir := b.TempDir()
	bin := filepath.Join(dir, "opsmetrics")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/opsmetrics").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
