package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
// in-process Kafka broker with 6 partitions per topic into a private
// ClickHouse, and, in the same run, clickhouse-client inserting the same
// rows as JSONEachRow into the same tables. It prints both rates, their
// ratio, the ingester's peak RSS and the CPU time each process spent. Run
// it with `make bench-ingest`.
//
// To compare builds in one run, OPSMETRICS_BENCH_BINARIES lists opsmetrics
// binaries (colon-separated; default: this tree's) and
// OPSMETRICS_BENCH_ROUNDS how many times each ingests the same messages,
// in turn, each time into a fresh database with a fresh group.
// OPSMETRICS_BENCH_ARGS adds arguments to every ingester's command line,
// OPSMETRICS_BENCH_DSN_QUERY a query to its ClickHouse DSN (compress=lz4).
// OPSMETRICS_BENCH_PROFILE names a file to write a 10-second CPU profile of
// the first ingester to, taken from its second second, and a heap
// profile after it to the same name with .heap added.
// OPSMETRICS_BENCH_QUERY_LOG=1 logs the ingesters' queries (log_queries=1)
// and prints, after each run, ClickHouse's time per statement while it ran:
// wall time, the ingester's building and sending of a batch included.
func BenchmarkIngestEndToEnd(b *testing.B) {
	bench := newIngestBench(b, 6)
	bins := bench.binaries()
	rounds := envInt(b, "OPSMETRICS_BENCH_ROUNDS", 1)
	var runs []ingestRun
	for round := range rounds {
		for i, bin := range bins {
			r := bench.ingest(fmt.Sprintf("run%d_%d", round, i), bin, 1)
			fmt.Printf("round %d, %s: %s\n", round+1, bin, r)
			if r.statements != "" {
				fmt.Print(r.statements)
			}
			runs = append(runs, r)
		}
	}
	ref := bench.reference(runs[0].db)

	r := runs[0]
	b.ReportMetric(r.rate(), "events/s")
	b.ReportMetric(ref.rate(), "ref-rows/s")
	b.ReportMetric(r.rate()/ref.rate(), "ratio")
	b.ReportMetric(float64(r.peakRSS)/(1<<20), "peak-RSS-MiB")
	fmt.Printf("\n%-56s %12s\n", "measure", "value")
	fmt.Printf("%-56s %12d\n", "events (kfake -> opsmetrics ingest -> ClickHouse)", bench.events)
	fmt.Printf("%-56s %12s\n", "producing them into kfake took (not counted)", bench.produceTook.Round(time.Millisecond))
	fmt.Printf("%-56s %12s\n", "end to end, until the last row was stored", r.took.Round(time.Millisecond))
	fmt.Printf("%-56s %12.0f\n", "opsmetrics events/s", r.rate())
	fmt.Printf("%-56s %12.0f\n", "clickhouse-client JSONEachRow rows/s (same rows)", ref.rate())
	fmt.Printf("%-56s %12.2f\n", "ratio opsmetrics / clickhouse-client", r.rate()/ref.rate())
	fmt.Printf("%-56s %9.1f MiB\n", "ingester peak RSS", float64(r.peakRSS)/(1<<20))
	fmt.Printf("%-56s %12.2f\n", "CPU s: ingester", r.cpu.ingesters)
	fmt.Printf("%-56s %12.2f\n", "CPU s: ClickHouse server, while ingesting", r.cpu.server)
	fmt.Printf("%-56s %12.2f\n", "CPU s: Kafka broker (kfake) and benchmark, while ingesting", r.cpu.broker)
	fmt.Printf("%-56s %12.2f\n", "CPU s: clickhouse-client, loading the reference", ref.cpu.ingesters)
	fmt.Printf("%-56s %12.2f\n", "CPU s: ClickHouse server, loading the reference", ref.cpu.server)
	fmt.Printf("%-56s %12d\n", "GOMAXPROCS", runtime.GOMAXPROCS(0))
	fmt.Printf("ClickHouse while ingesting: %s\n", r.server)
	fmt.Printf("ClickHouse loading the reference: %s\n", ref.server)
}

// BenchmarkIngestScaleOut is BenchmarkIngestEndToEnd with 12 partitions per
// topic and 1, 2 and 3 `opsmetrics ingest` processes in one consumer group,
// each count ingesting the same messages into a fresh database. It prints
// the aggregate rate of each, and the reference's. Run it with
// `make bench-ingest-scale`.
func BenchmarkIngestScaleOut(b *testing.B) {
	bench := newIngestBench(b, 12)
	bin := bench.binaries()[0]
	var runs []ingestRun
	for n := 1; n <= 3; n++ {
		r := bench.ingest(fmt.Sprintf("scale%d", n), bin, n)
		fmt.Printf("%d ingesters: %s\n", n, r)
		runs = append(runs, r)
	}
	ref := bench.reference(runs[0].db)
	fmt.Printf("\n%-44s %12s %12s %8s %14s %10s\n", "ingesters in the group (12 partitions)", "events/s", "end to end", "ratio", "peak RSS each", "CPU s")
	for i, r := range runs {
		fmt.Printf("%-44d %12.0f %12s %8.2f %10.1f MiB %10.2f\n", i+1, r.rate(), r.took.Round(time.Millisecond),
			r.rate()/ref.rate(), float64(r.peakRSS)/(1<<20), r.cpu.ingesters)
		b.ReportMetric(r.rate(), fmt.Sprintf("events/s-%d", i+1))
	}
	fmt.Printf("%-44s %12.0f\n", "clickhouse-client JSONEachRow rows/s", ref.rate())
	b.ReportMetric(ref.rate(), "ref-rows/s")
}

// ingestBench is a ClickHouse server and a Kafka broker holding a generated
// stream, which each run ingests from the start.
type ingestBench struct {
	b           *testing.B
	srv         *clickhouse.Server
	serverPID   int
	brokers     []string
	st          *store.Store
	events      int
	produceTook time.Duration
}

func newIngestBench(b *testing.B, partitions int32) *ingestBench {
	n := envInt(b, "OPSMETRICS_BENCH_EVENTS", 1_000_000)
	b.StopTimer()
	ctx := context.Background()
	srv, err := clickhouse.Start(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Stop() })
	topics := broker.DefaultTopics()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(partitions, append(topics.Inputs(), topics.DeadLetter)...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cluster.Close)
	bench := &ingestBench{b: b, srv: srv, serverPID: pidOf(srv.Dir), brokers: cluster.ListenAddrs()}

	// About 4,600 events per service-year: size the stream to n.
	// OPSMETRICS_BENCH_UUIDS: event ids as random-looking UUIDs, as
	// producers commonly send them, not "gen-11-<n>" in emission order.
	gcfg := generator.Config{Services: max(1, n/4600), Days: 365, Seed: 11, End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		UUIDs: os.Getenv("OPSMETRICS_BENCH_UUIDS") != ""}
	var buf bytes.Buffer
	stats, err := generator.WriteJSONL(&buf, gcfg, generator.FormatMixed)
	if err != nil {
		b.Fatal(err)
	}
	bench.events = stats.Events
	p := publish.New(bench.brokers, publish.TopicsFrom(topics), nil)
	pstart := time.Now()
	if _, err := p.File(ctx, &buf); err != nil {
		b.Fatal(err)
	}
	p.Close()
	bench.produceTook = time.Since(pstart)
	buf = bytes.Buffer{}
	runtime.GC()

	// A database to count in: every run has its own.
	dsn := srv.DSN("default")
	if bench.st, err = store.Open(ctx, dsn); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bench.st.Close() })
	return bench
}

// binaries are the opsmetrics binaries to run: OPSMETRICS_BENCH_BINARIES,
// or this tree's.
func (bench *ingestBench) binaries() []string {
	if s := os.Getenv("OPSMETRICS_BENCH_BINARIES"); s != "" {
		return strings.Split(s, ":")
	}
	return []string{benchBinary(bench.b)}
}

// cpuSeconds is the CPU time of the processes of a run.
type cpuSeconds struct {
	ingesters float64 // the ingesters, or clickhouse-client
	server    float64 // clickhouse-server
	broker    float64 // this process: kfake and the benchmark's polling
}

// ingestRun is one run's result.
type ingestRun struct {
	db      string
	events  int
	took    time.Duration
	peakRSS int64 // the largest of the processes'
	cpu     cpuSeconds
	server  serverWork // what ClickHouse counted while the run went on
	// replayed is the rows stored twice (a batch written and not committed
	// before a rebalance), not yet merged away at the end.
	replayed uint64
	// statements is ClickHouse's time per statement, with
	// OPSMETRICS_BENCH_QUERY_LOG.
	statements string
}

func (r ingestRun) rate() float64 { return float64(r.events) / r.took.Seconds() }

func (r ingestRun) String() string {
	return fmt.Sprintf("%.0f events/s in %s, peak RSS %.1f MiB, CPU s: ingesters %.2f, ClickHouse %.2f, broker %.2f; rows replayed %d; ClickHouse: %s",
		r.rate(), r.took.Round(time.Millisecond), float64(r.peakRSS)/(1<<20), r.cpu.ingesters, r.cpu.server, r.cpu.broker, r.replayed, r.server)
}

// ingest runs n ingesters of bin in one new group into a new database db,
// and times them from their start until every event is stored.
func (bench *ingestBench) ingest(db, bin string, n int) ingestRun {
	b := bench.b
	ctx := context.Background()
	dsn := bench.srv.DSN(db)
	if _, err := store.Migrate(ctx, dsn, quiet); err != nil {
		b.Fatal(err)
	}
	var query []string
	if q := os.Getenv("OPSMETRICS_BENCH_DSN_QUERY"); q != "" {
		query = append(query, q)
	}
	logQueries := os.Getenv("OPSMETRICS_BENCH_QUERY_LOG") != ""
	if logQueries {
		query = append(query, "log_queries=1")
	}
	if len(query) > 0 {
		dsn += "?" + strings.Join(query, "&")
	}
	const idle = 5 * time.Second
	var cmds []*exec.Cmd
	var profile string
	for i := range n {
		args := []string{"ingest", "--clickhouse", dsn, "--brokers", bench.brokers[0], "--group", db,
			"--until-idle", idle.String(), "--log-level", "warn"}
		args = append(args, strings.Fields(os.Getenv("OPSMETRICS_BENCH_ARGS"))...)
		if file := os.Getenv("OPSMETRICS_BENCH_PROFILE"); file != "" && i == 0 {
			profile = freeAddr(b)
			args = append(args, "--metrics-addr", profile)
		}
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		cmds = append(cmds, cmd)
	}
	cpu0 := bench.cpu(nil)
	work0 := bench.serverWork()
	b.StartTimer()
	start := time.Now()
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
	}
	if profile != "" {
		go writeProfile(b, profile, os.Getenv("OPSMETRICS_BENCH_PROFILE"))
	}
	// Time to the moment the last event is stored, not to the idle exit.
	// The rows are counted from the parts' metadata while polling (a
	// count() would read a column of every row, 20 times a second, and take
	// ClickHouse's CPU from the ingester); once there are enough, the
	// distinct events are counted, as rows replayed by a rebalance are
	// there twice until ClickHouse merges them.
	var peakRSS int64
	var stored uint64
	for stored < uint64(bench.events) {
		time.Sleep(50 * time.Millisecond)
		for _, cmd := range cmds {
			peakRSS = max(peakRSS, testenv.PeakRSS(cmd.Process.Pid))
		}
		if bench.partRows(db) >= uint64(bench.events) {
			stored = bench.stored(db)
		}
		if time.Since(start) > 30*time.Minute {
			b.Fatalf("only %d of %d events stored after 30 minutes", stored, bench.events)
		}
	}
	took := time.Since(start)
	b.StopTimer()
	cpu := bench.cpu(cmds)
	work := bench.serverWork().minus(work0)
	var statements string
	if logQueries {
		statements = bench.statements(start)
	}
	for _, cmd := range cmds {
		peakRSS = max(peakRSS, testenv.PeakRSS(cmd.Process.Pid))
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			b.Fatalf("ingester: %v", err)
		}
	}
	if stored = bench.stored(db); stored != uint64(bench.events) {
		b.Fatalf("%d events stored for %d produced", stored, bench.events)
	}
	return ingestRun{db: db, events: bench.events, took: took, peakRSS: peakRSS, server: work, statements: statements,
		replayed: bench.partRows(db) - stored,
		cpu:      cpuSeconds{ingesters: cpu.ingesters, server: cpu.server - cpu0.server, broker: cpu.broker - cpu0.broker}}
}

// statements sums system.query_log by statement (its first 48
// characters) over the queries that finished since start: count, wall
// time, rows read and written.
func (bench *ingestBench) statements(start time.Time) string {
	ctx := context.Background()
	if err := bench.st.Conn().Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
		bench.b.Fatal(err)
	}
	rows, err := bench.st.Conn().Query(ctx, `SELECT substring(replaceRegexpAll(query, '\\s+', ' '), 1, 48) AS q,
		count(), sum(query_duration_ms), sum(read_rows), sum(written_rows)
	FROM system.query_log
	WHERE type = 2 AND event_time >= ? AND query NOT LIKE '%system.%'
	GROUP BY q ORDER BY sum(query_duration_ms) DESC`, start.Truncate(time.Second))
	if err != nil {
		bench.b.Fatal(err)
	}
	defer rows.Close()
	var sb strings.Builder
	for rows.Next() {
		var q string
		var n, ms, read, written uint64
		if err := rows.Scan(&q, &n, &ms, &read, &written); err != nil {
			bench.b.Fatal(err)
		}
		fmt.Fprintf(&sb, "  %-50q %5d queries %8d ms %10d rows read %10d written\n", q, n, ms, read, written)
	}
	if err := rows.Err(); err != nil {
		bench.b.Fatal(err)
	}
	return sb.String()
}

// stored is the distinct events stored in db.
func (bench *ingestBench) stored(db string) uint64 {
	var n uint64
	for _, t := range testenv.EventTables {
		var c uint64
		if err := bench.st.Conn().QueryRow(context.Background(), "SELECT uniqExact(event_id) FROM "+db+"."+t).Scan(&c); err != nil {
			bench.b.Fatal(err)
		}
		n += c
	}
	return n
}

// partRows is the rows in the active parts of db's event tables, replays
// included until they are merged away.
func (bench *ingestBench) partRows(db string) uint64 {
	var n uint64
	err := bench.st.Conn().QueryRow(context.Background(), "SELECT toUInt64(sum(rows)) FROM system.parts WHERE active AND database = ? AND table IN ('"+
		strings.Join(testenv.EventTables, "', '")+"')", db).Scan(&n)
	if err != nil {
		bench.b.Fatal(err)
	}
	return n
}

// reference loads the rows of database db, exported as JSONEachRow, with
// clickhouse-client into a fresh copy of the same tables.
func (bench *ingestBench) reference(db string) ingestRun {
	b := bench.b
	ctx := context.Background()
	if _, err := store.Migrate(ctx, bench.srv.DSN("bench_reference"), quiet); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	port := strconv.Itoa(bench.srv.TCPPort)
	r := ingestRun{db: "bench_reference", server: serverWork{}}
	for _, t := range testenv.EventTables {
		file := filepath.Join(dir, t+".json")
		out, err := exec.Command("clickhouse-client", "--port", port, "--database", db,
			"--query", "SELECT * FROM "+t+" FORMAT JSONEachRow").Output()
		if err != nil {
			b.Fatalf("export %s: %v", t, err)
		}
		r.events += bytes.Count(out, []byte("\n"))
		if err := os.WriteFile(file, out, 0o644); err != nil {
			b.Fatal(err)
		}
		f, _ := os.Open(file)
		load := exec.Command("clickhouse-client", "--port", port, "--database", "bench_reference",
			"--query", "INSERT INTO "+t+" FORMAT JSONEachRow")
		load.Stdin = f
		var output bytes.Buffer
		load.Stdout, load.Stderr = &output, &output
		cpu0, work0 := bench.cpu(nil), bench.serverWork()
		s := time.Now()
		if err := load.Start(); err != nil {
			b.Fatal(err)
		}
		err = load.Wait()
		r.took += time.Since(s)
		cpu := bench.cpu(nil)
		for k, v := range bench.serverWork().minus(work0) {
			r.server[k] += v
		}
		if err != nil {
			b.Fatalf("clickhouse-client load %s: %v\n%s", t, err, output.Bytes())
		}
		r.cpu.ingesters += load.ProcessState.UserTime().Seconds() + load.ProcessState.SystemTime().Seconds()
		r.cpu.server += cpu.server - cpu0.server
		f.Close()
	}
	return r
}

// serverWork is some of ClickHouse's counters (system.events): what the
// server spent its CPU time on.
type serverWork map[string]uint64

var serverCounters = []string{"InsertQuery", "SelectQuery", "InsertedRows", "MergeTreeDataWriterBlocks", "SelectedMarks", "CompressedReadBufferBytes",
	"MergedRows", "MergesTimeMilliseconds", "UserTimeMicroseconds", "SystemTimeMicroseconds"}

func (bench *ingestBench) serverWork() serverWork {
	rows, err := bench.st.Conn().Query(context.Background(), "SELECT event, value FROM system.events")
	if err != nil {
		bench.b.Fatal(err)
	}
	defer rows.Close()
	w := serverWork{}
	for rows.Next() {
		var name string
		var v uint64
		if err := rows.Scan(&name, &v); err != nil {
			bench.b.Fatal(err)
		}
		w[name] = v
	}
	return w
}

func (w serverWork) minus(before serverWork) serverWork {
	d := serverWork{}
	for k, v := range w {
		d[k] = v - before[k]
	}
	return d
}

func (w serverWork) String() string {
	var s []string
	for _, k := range serverCounters {
		s = append(s, fmt.Sprintf("%s %d", k, w[k]))
	}
	return strings.Join(s, ", ")
}

// cpu reads the CPU time of the server, this process and cmds so far.
func (bench *ingestBench) cpu(cmds []*exec.Cmd) cpuSeconds {
	c := cpuSeconds{server: procCPU(bench.serverPID), broker: procCPU(os.Getpid())}
	for _, cmd := range cmds {
		c.ingesters += procCPU(cmd.Process.Pid)
	}
	return c
}

// procCPU is the user and system CPU time of process pid so far, from
// /proc (clock ticks of 1/100 s, as Linux reports them to user space).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// pidOf finds the process whose command line mentions dir: the private
// ClickHouse server started there.
func pidOf(dir string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte(dir)) {
			return pid
		}
	}
	return 0
}

func writeProfile(b *testing.B, addr, file string) {
	time.Sleep(time.Second)
	for _, p := range []struct{ path, file string }{{"profile?seconds=10", file}, {"heap", file + ".heap"}} {
		resp, err := http.Get("http://" + addr + "/debug/pprof/" + p.path)
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		f, err := os.Create(p.file)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(f, resp.Body)
		resp.Body.Close()
		f.Close()
	}
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// quiet logs nothing: the migrations of every run would bury the figures.
var quiet = slog.New(slog.DiscardHandler)

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return n
}

func benchBinary(b *testing.B) string {
	dir := b.TempDir()
	bin := filepath.Join(dir, "opsmetrics")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/opsmetrics").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
