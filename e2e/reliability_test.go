package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/publish"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// reliabilityConfig sizes the reliability suite. The environment can scale
// it down to fit a slower machine; the suite prints what it used.
type reliabilityConfig struct {
	events   int           // OPSMETRICS_RELIABILITY_EVENTS: the crash storm's stream
	outage   time.Duration // OPSMETRICS_RELIABILITY_OUTAGE: how long ClickHouse is down under load
	fuzzTime time.Duration // OPSMETRICS_RELIABILITY_FUZZTIME: how long the decoder is fuzzed
	seed     uint64        // OPSMETRICS_RELIABILITY_SEED: the random kill moments; default from the clock

	only *regexp.Regexp // OPSMETRICS_RELIABILITY_ONLY: run only the scenarios it matches

	kills       int           // SIGKILLs of the ingester in the crash storm
	rate        int           // events per second produced during the outage scenario
	warmup      time.Duration // steady load before ClickHouse stops
	rssBound    int64         // the ingester's peak RSS must stay below it
	apiClients  int           // concurrent API clients
	apiDuration time.Duration // how long they send requests
	amDown      time.Duration // how long the notifier fails against a stopped Alertmanager
	amBound     time.Duration // delivery after Alertmanager is back must take less

	largeMessages int           // the large-message backlog: this many events
	largeBytes    int           // of this size
	kafkaDown     time.Duration // how long Kafka is away under serve
	reused        int           // ids sent again with other content
}

// t0 is the end of the generated streams.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func reliabilityConfigFromEnv(t *testing.T) reliabilityConfig {
	t.Helper()
	c := reliabilityConfig{
		events:   1_000_000,
		outage:   60 * time.Second,
		fuzzTime: 60 * time.Second,
		seed:     uint64(time.Now().UnixNano()),

		kills:       10,
		rate:        5000,
		warmup:      15 * time.Second,
		rssBound:    512 << 20,
		apiClients:  32,
		apiDuration: 30 * time.Second,
		amDown:      10 * time.Second,
		amBound:     60 * time.Second,

		largeMessages: 8000,
		largeBytes:    250 << 10,
		kafkaDown:     60 * time.Second,
		reused:        500,
	}
	if s := os.Getenv("OPSMETRICS_RELIABILITY_ONLY"); s != "" {
		re, err := regexp.Compile(s)
		if err != nil {
			t.Fatalf("OPSMETRICS_RELIABILITY_ONLY: %v", err)
		}
		c.only = re
	}
	if s := os.Getenv("OPSMETRICS_RELIABILITY_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10_000 {
			t.Fatalf("OPSMETRICS_RELIABILITY_EVENTS: want a number of events >= 10000, got %q", s)
		}
		c.events = n
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{
		{"OPSMETRICS_RELIABILITY_OUTAGE", &c.outage},
		{"OPSMETRICS_RELIABILITY_FUZZTIME", &c.fuzzTime},
	} {
		if s := os.Getenv(d.env); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v <= 0 {
				t.Fatalf("%s: want a positive duration like 60s, got %q", d.env, s)
			}
			*d.dst = v
		}
	}
	if s := os.Getenv("OPSMETRICS_RELIABILITY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("OPSMETRICS_RELIABILITY_SEED: want an unsigned integer, got %q", s)
		}
		c.seed = v
	}
	return c
}

// figures collects the rows of the table the suite prints at the end.
type figures struct {
	mu   sync.Mutex
	rows []figure
}

type figure struct {
	scenario, name, value, requirement string
	result                             string // PASS, FAIL, or "-" for a figure without requirement
}

// report records a figure that has no requirement.
func (f *figures) report(scenario, name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = append(f.rows, figure{scenario, name, value, "-", "-"})
}

// check records a figure with its requirement and fails t when it is not met.
func (f *figures) check(t *testing.T, scenario, name, value, requirement string, ok bool) {
	t.Helper()
	result := "PASS"
	if !ok {
		result = "FAIL"
		t.Errorf("%s: %s = %s, want %s", scenario, name, value, requirement)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = append(f.rows, figure{scenario, name, value, requirement, result})
}

func (f *figures) failed(scenario string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.rows, func(r figure) bool { return r.scenario == scenario && r.result == "FAIL" })
}

func (f *figures) print() {
	f.mu.Lock()
	defer f.mu.Unlock()
	const format = "%-20s %-46s %16s  %-22s %s\n"
	fmt.Printf("\n"+format, "scenario", "figure", "value", "requirement", "result")
	fmt.Printf(format, strings.Repeat("-", 20), strings.Repeat("-", 46), strings.Repeat("-", 16), strings.Repeat("-", 22), "------")
	for _, r := range f.rows {
		fmt.Printf(format, r.scenario, r.name, r.value, r.requirement, r.result)
	}
}

// TestReliability is the reliability suite behind `make reliability`: real
// servers on loopback, at most ten minutes, one table of figures at the end.
// It runs only when OPSMETRICS_RELIABILITY=1, so that `make test` leaves it out.
//
//  1. crash storm: the ingester is SIGKILLed ten times and ClickHouse restarted
//     twice while a 1M-event stream is ingested; nothing is lost or doubled.
//  2. ClickHouse outage: ClickHouse stops for a minute under steady load;
//     nothing is lost, memory stays bounded, and the backlog is caught up.
//  3. decoder fuzzing: FuzzDecode for a fixed time finds nothing.
//  4. API overload: 32 clients send simple and heavy KPI requests; the
//     simple ones are answered, the rest answered or refused naming a limit.
//  5. Alertmanager outage: an anomaly alert fired while Alertmanager is down
//     reaches it once it is back.
//  6. poison messages: every message that once stopped ingestion, among
//     good events; the good events land, the bad ones are dead-lettered.
//  7. large-message backlog: 8,000 events of 250 KB; peak RSS within the
//     memory budget.
//  8. Kafka outage: the broker goes away for a minute under serve, which
//     stays alive and live, says it is not ready, and catches up.
//  9. id reuse: ids sent again with other content are refused, the views
//     do not change, not even after OPTIMIZE FINAL; ids raced by two
//     ingesters are never stored with two contents.
func TestReliability(t *testing.T) {
	if os.Getenv("OPSMETRICS_RELIABILITY") != "1" {
		t.Skip("the reliability suite runs only with OPSMETRICS_RELIABILITY=1; use make reliability")
	}
	start := time.Now()
	rc := reliabilityConfigFromEnv(t)
	fmt.Printf("reliability suite: %d events, %d kills, ClickHouse outage %v at %d events/s, fuzzing %v, "+
		"%d API clients for %v, seed %d, GOMAXPROCS %d\n", rc.events, rc.kills, rc.outage, rc.rate, rc.fuzzTime,
		rc.apiClients, rc.apiDuration, rc.seed, runtime.GOMAXPROCS(0))

	tab := &figures{}
	defer tab.print()
	run := func(name string, f func(t *testing.T)) {
		if rc.only != nil && !rc.only.MatchString(name) {
			return
		}
		if !t.Run(name, f) && !tab.failed(name) {
			tab.check(t, name, "scenario ran to its end", "no", "yes (see the log)", false)
		}
	}
	// together runs two scenarios side by side: one that mostly waits (an
	// outage) beside one that works, to keep the suite short.
	together := func(names [2]string, fs [2]func(t *testing.T)) {
		var ran [2]bool
		t.Run(names[0]+" + "+names[1], func(t *testing.T) {
			for i, name := range names {
				if rc.only != nil && !rc.only.MatchString(name) {
					ran[i] = true
					continue
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					fs[i](t)
					ran[i] = true
				})
			}
		})
		for i, name := range names {
			if !ran[i] && !tab.failed(name) {
				tab.check(t, name, "scenario ran to its end", "no", "yes (see the log)", false)
			}
		}
	}

	// The crash storm's ClickHouse and database outlive it: the API scenario
	// queries what it stored.
	stormCH := testenv.OwnClickHouse(t)
	stormDSN := testenv.MigratedDatabase(t, stormCH)
	var stormMsgs []kafka.Message
	run("crash storm", func(t *testing.T) { stormMsgs = crashStorm(t, rc, tab, stormCH, stormDSN) })
	run("ClickHouse outage", func(t *testing.T) { clickHouseOutage(t, rc, tab, stormMsgs) })
	stormMsgs = nil
	together([2]string{"decoder fuzzing", "Kafka outage"}, [2]func(*testing.T){
		func(t *testing.T) { fuzzDecoder(t, rc, tab) }, func(t *testing.T) { kafkaOutage(t, rc, tab) }})
	run("API overload", func(t *testing.T) { apiOverload(t, rc, tab, stormDSN) })
	together([2]string{"Alertmanager outage", "poison messages"}, [2]func(*testing.T){
		func(t *testing.T) { alertmanagerOutage(t, rc, tab) }, func(t *testing.T) { poisonMessages(t, rc, tab) }})
	run("large-message backlog", func(t *testing.T) { largeMessageBacklog(t, rc, tab) })
	run("id reuse", func(t *testing.T) { idReuse(t, rc, tab) })

	took := time.Since(start)
	// Printed, not asserted: a busy 2-core machine makes any bound on time flaky.
	tab.report("suite", "total time", took.Round(time.Second).String())
}

// crashStorm produces rc.events events to six partitions per topic, and
// ingests them with `opsmetrics ingest` while killing it rc.kills times at
// random moments, each after it made progress, and restarting ClickHouse
// twice: once stopped gracefully with the ingester killed while it is down,
// once crashed (SIGKILL) under the running ingester. A last ingester runs
// until idle; then every event must be stored exactly once. It returns the
// messages, for the outage scenario to reuse.
func crashStorm(t *testing.T, rc reliabilityConfig, tab *figures, srv *clickhouse.Server, dsn string) []kafka.Message {
	const scenario = "crash storm"
	h := testenv.PipelineOn(t, dsn, 6)
	genStart := time.Now()
	// About 4,600 events per service-year, as in BenchmarkIngestEndToEnd.
	msgs, want := h.Stream(generator.Config{Services: max(1, rc.events/4600), Days: 365, Seed: 21, End: t0})
	genTook := time.Since(genStart)
	produceStart := time.Now()
	produceAll(t, h, msgs)
	t.Logf("generated %d events in %v, produced them in %v", len(msgs), genTook.Round(time.Millisecond),
		time.Since(produceStart).Round(time.Millisecond))

	rng := rand.New(rand.NewPCG(rc.seed, 1))
	// Kill at a random moment within maxSleep of the first progress, sized so
	// that the kills fall mid-stream: together they should leave at least half
	// of the stream to the last ingester at about 40,000 events/s.
	maxSleep := min(max(time.Duration(float64(len(msgs))/2/40000/float64(rc.kills)*float64(time.Second)), 100*time.Millisecond), 1500*time.Millisecond)
	jitter := func(d time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(d))) }
	const group = "storm"
	var (
		kills, midStream, chRestarts int
		start                        = time.Now()
	)
	for i := range rc.kills {
		in := testenv.StartIngester(t, h, group, "--batch-size", "5000")
		waitProgress(t, h, fmt.Sprintf("ingester %d makes progress", i+1))
		switch i {
		case rc.kills / 3:
			// ClickHouse stops under the ingester, which dies while it is down.
			srv.Stop()
			time.Sleep(time.Second + jitter(2*time.Second))
			in.Kill(t)
			if err := srv.Restart(context.Background()); err != nil {
				t.Fatalf("restart clickhouse: %v", err)
			}
			chRestarts++
		case 2 * rc.kills / 3:
			// ClickHouse crashes under the ingester and comes back; the
			// ingester must carry on by itself before it is killed.
			srv.Kill()
			time.Sleep(time.Second + jitter(2*time.Second))
			if err := srv.Restart(context.Background()); err != nil {
				t.Fatalf("restart clickhouse: %v", err)
			}
			chRestarts++
			waitProgress(t, h, fmt.Sprintf("ingester %d makes progress after ClickHouse came back", i+1))
			time.Sleep(jitter(maxSleep))
			in.Kill(t)
		default:
			time.Sleep(jitter(maxSleep))
			in.Kill(t)
		}
		kills++
		n := distinctStored(t, h)
		if n < uint64(len(msgs)) {
			midStream++
		}
		t.Logf("kill %d: %d of %d events stored", i+1, n, len(msgs))
	}
	in := testenv.StartIngester(t, h, group, "--batch-size", "5000", "--until-idle", "8s")
	in.Wait(t, 5*time.Minute)
	took := time.Since(start)

	beforeMerge := rawStored(t, h)
	h.CheckExactlyOnce(want) // merges duplicates with OPTIMIZE ... FINAL
	rows, distinct := rawStored(t, h), distinctStored(t, h)
	lost := int64(want["events"]) - int64(distinct)
	dup := int64(rows) - int64(distinct)

	tab.report(scenario, "events produced (6 partitions per topic)", thousands(int64(len(msgs))))
	tab.check(t, scenario, "ingester SIGKILLs", strconv.Itoa(kills), "= "+strconv.Itoa(rc.kills), kills == rc.kills)
	tab.check(t, scenario, "  of them with events still to store", strconv.Itoa(midStream), "= "+strconv.Itoa(rc.kills), midStream == rc.kills)
	tab.check(t, scenario, "ClickHouse restarts (1 stop, 1 SIGKILL)", strconv.Itoa(chRestarts), "= 2", chRestarts == 2)
	tab.report(scenario, "total time, first start to idle exit", took.Round(100*time.Millisecond).String())
	tab.report(scenario, "rows replayed, merged away by FINAL", thousands(int64(beforeMerge)-int64(rows)))
	tab.check(t, scenario, "lost events", thousands(lost), "= 0", lost == 0)
	tab.check(t, scenario, "duplicated events (after FINAL)", thousands(dup), "= 0", dup == 0)
	return msgs
}

// clickHouseOutage runs the ingester under a steady load of rc.rate events/s,
// stops ClickHouse for rc.outage while the load goes on, and restarts it. It
// measures the ingester's peak RSS throughout and the time from ClickHouse
// being back until the backlog it found is committed, then checks that every
// produced event is stored exactly once.
func clickHouseOutage(t *testing.T, rc reliabilityConfig, tab *figures, msgs []kafka.Message) {
	const scenario = "ClickHouse outage"
	srv := testenv.OwnClickHouse(t)
	const partitions = 6
	h := testenv.PipelineOn(t, testenv.MigratedDatabase(t, srv), partitions)
	if len(msgs) == 0 { // the crash storm did not get as far as producing
		msgs, _ = h.Stream(generator.Config{Services: max(1, rc.events/4600), Days: 365, Seed: 21, End: t0})
	}

	const group = "outage"
	in := testenv.StartIngester(t, h, group, "--batch-size", "50000") // the default batch size
	pid := in.Cmd.Process.Pid
	var peakRSS atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			peakRSS.Store(max(peakRSS.Load(), testenv.PeakRSS(pid)))
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		select {
		case <-stopSampling:
		default:
			close(stopSampling)
		}
		<-sampled
	}()

	p := produceSteadily(h, msgs, rc.rate)
	defer p.stop()
	time.Sleep(rc.warmup)
	waitProgress(t, h, "ingester stores the steady load")

	srv.Stop()
	downAt := time.Now()
	time.Sleep(rc.outage)
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatalf("restart clickhouse: %v", err)
	}
	upAt := time.Now()
	if exited, err := in.Exited(); exited {
		t.Fatalf("the ingester exited while ClickHouse was down: %v\n%s", err, testenv.Tail(in.Log.String()))
	}
	backlog := snapshotOffsets(t, h, group, partitions)
	// Caught up: the group has committed every message that was in Kafka when
	// ClickHouse came back, while the load goes on.
	testenv.Eventually(t, 5*time.Minute, "backlog of the outage committed", func() (bool, string) {
		now := snapshotOffsets(t, h, group, partitions)
		var left int64
		for k, end := range backlog.ends {
			left += max(end-now.committed[k], 0)
		}
		return left == 0, fmt.Sprintf("%d messages of the backlog left", left)
	})
	catchUp := time.Since(upAt)
	produced, producing := p.stop()
	if err := p.err(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	testenv.Eventually(t, 2*time.Minute, "group lag 0", func() (bool, string) {
		lag := snapshotOffsets(t, h, group, partitions).lag()
		return lag == 0, fmt.Sprintf("lag %d", lag)
	})
	in.Cmd.Process.Signal(syscall.SIGTERM)
	in.Wait(t, time.Minute)
	close(stopSampling)
	<-sampled
	// ClickHouse fails first on claiming the batch's event ids, then on
	// writing it.
	retries := bytes.Count(in.Log.Bytes(), []byte("msg=retrying op=write")) + bytes.Count(in.Log.Bytes(), []byte("msg=retrying op=claim"))

	h.CheckExactlyOnce(expectedViews(t, msgs[:produced]))
	rows, distinct := rawStored(t, h), distinctStored(t, h)
	lost := int64(produced) - int64(distinct)
	dup := int64(rows) - int64(distinct)

	tab.report(scenario, "events produced", thousands(int64(produced)))
	tab.report(scenario, "production rate achieved, events/s", thousands(int64(float64(produced)/producing.Seconds())))
	tab.report(scenario, "ClickHouse down for", upAt.Sub(downAt).Round(100*time.Millisecond).String())
	tab.check(t, scenario, "claim and write retries while down", strconv.Itoa(retries), "> 0 (else proves nothing)", retries > 0)
	tab.report(scenario, "backlog when ClickHouse was back, messages", thousands(backlog.lag()))
	tab.report(scenario, "catch-up time (backlog committed)", catchUp.Round(100*time.Millisecond).String())
	tab.check(t, scenario, "ingester peak RSS (VmHWM)", fmt.Sprintf("%.1f MiB", float64(peakRSS.Load())/(1<<20)),
		fmt.Sprintf("< %d MiB", rc.rssBound>>20), peakRSS.Load() > 0 && peakRSS.Load() < rc.rssBound)
	tab.check(t, scenario, "lost events", thousands(lost), "= 0", lost == 0)
	tab.check(t, scenario, "duplicated events (after FINAL)", thousands(dup), "= 0", dup == 0)
}

// fuzzDecoder runs FuzzDecode of package event for rc.fuzzTime with go test.
func fuzzDecoder(t *testing.T, rc reliabilityConfig, tab *figures) {
	const scenario = "decoder fuzzing"
	cmd := exec.Command("go", "test", "./internal/event", "-run", "^$", "-fuzz", "^FuzzDecode$",
		"-fuzztime", rc.fuzzTime.String())
	cmd.Dir = ".." // the module root
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(rc.fuzzTime + 5*time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("go test -fuzz did not finish within %v:\n%s", rc.fuzzTime+5*time.Minute, testenv.Tail(out.String()))
	}
	took := time.Since(start)
	text := out.String()
	if err != nil {
		t.Logf("go test -fuzz: %v\n%s", err, testenv.Tail(text))
	}
	execs := "unknown"
	if m := regexp.MustCompile(`execs: (\d+)`).FindAllStringSubmatch(text, -1); len(m) > 0 {
		n, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
		execs = thousands(n)
	}
	failures := strings.Count(text, "--- FAIL")
	if err != nil && failures == 0 {
		failures = 1 // it failed without a test failure: a build error, a crash of the fuzzer
	}
	tab.report(scenario, "fuzzing time (go test -fuzz, with build)", fmt.Sprintf("%v (%v)", rc.fuzzTime, took.Round(time.Second)))
	tab.report(scenario, "executions", execs)
	tab.check(t, scenario, "panics and failures", strconv.Itoa(failures), "= 0", failures == 0)
}

// alertmanagerOutage fires an anomaly alert while Alertmanager is down, lets
// the notifier fail for rc.amDown, restarts Alertmanager and times the
// alert's arrival there.
func alertmanagerOutage(t *testing.T, rc reliabilityConfig, tab *figures) {
	const scenario = "Alertmanager outage"
	ctx := context.Background()
	am, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { am.Close() })
	am.Stop()

	reg := prometheus.NewRegistry()
	n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: am.URL, ResendInterval: time.Second, MaxBackoff: time.Second},
		reg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); n.Run(runCtx) }()
	defer func() { cancel(); <-stopped }()

	labels := map[string]string{"alertname": "KPIAnomaly", "kpi": "incidents", "service": "checkout",
		"severity": "critical", "direction": "up"}
	n.Fire(anomaly.Alert{Labels: labels, Annotations: map[string]string{"summary": "incidents of checkout are anomalously high"}})
	time.Sleep(rc.amDown)
	failures := testenv.SumCounter(t, reg, "opsmetrics_alert_send_failures_total")

	restart := time.Now()
	if err := am.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	testenv.Eventually(t, rc.amBound, "alert listed by Alertmanager", func() (bool, string) {
		alerts, err := am.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == "KPIAnomaly" && a.Labels["service"] == "checkout" && a.Labels["kpi"] == "incidents" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d other alerts", len(alerts))
	})
	delay := time.Since(ready)

	tab.report(scenario, "Alertmanager down for", ready.Sub(restart).Round(100*time.Millisecond).String()+" + "+rc.amDown.String())
	tab.check(t, scenario, "send failures counted while down", strconv.Itoa(int(failures)), "> 0", failures > 0)
	tab.check(t, scenario, "delivery delay after Alertmanager is ready", delay.Round(10*time.Millisecond).String(),
		"< "+rc.amBound.String(), delay < rc.amBound)
}

// produceAll sends msgs in chunks of 5,000, as `opsmetrics produce` does.
func produceAll(t *testing.T, h *testenv.Pipeline, msgs []kafka.Message) {
	t.Helper()
	p := publish.New(h.Brokers, publish.TopicsFrom(h.Topics), nil)
	defer p.Close()
	for i := 0; i < len(msgs); i += 5000 {
		if err := p.Send(context.Background(), msgs[i:min(i+5000, len(msgs))]...); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// steadyProducer sends messages at a fixed rate until stopped or out of
// messages.
type steadyProducer struct {
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once
	produced int
	took     time.Duration
	sendErr  error
}

func produceSteadily(h *testenv.Pipeline, msgs []kafka.Message, rate int) *steadyProducer {
	sp := &steadyProducer{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		p := publish.New(h.Brokers, publish.TopicsFrom(h.Topics), nil)
		defer p.Close()
		start := time.Now()
		defer func() { sp.took = time.Since(start) }()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for sp.produced < len(msgs) {
			select {
			case <-sp.quit:
				return
			case <-tick.C:
			}
			// Catch up with the schedule when a send took long.
			due := min(int(time.Since(start).Seconds()*float64(rate)), len(msgs))
			if due > sp.produced {
				if err := p.Send(context.Background(), msgs[sp.produced:due]...); err != nil {
					sp.sendErr = err
					return
				}
				sp.produced = due
			}
		}
	}()
	return sp
}

// stop stops the producer and returns how many messages it sent, in how long.
func (sp *steadyProducer) stop() (int, time.Duration) {
	sp.once.Do(func() { close(sp.quit) })
	<-sp.done
	return sp.produced, sp.took
}

// err is the error that stopped the producer, if any; call it after stop.
func (sp *steadyProducer) err() error { return sp.sendErr }

// waitProgress waits until more distinct events are stored than now.
func waitProgress(t *testing.T, h *testenv.Pipeline, what string) {
	t.Helper()
	before := distinctStored(t, h)
	testenv.Eventually(t, 2*time.Minute, what, func() (bool, string) {
		n := distinctStored(t, h)
		return n > before, fmt.Sprintf("%d events stored", n)
	})
}

// rawStored counts the rows of the event tables, replays included until
// ClickHouse merges them.
func rawStored(t *testing.T, h *testenv.Pipeline) uint64 {
	t.Helper()
	var n uint64
	for _, table := range testenv.EventTables {
		n += testenv.Count(t, h.Store, "SELECT count() FROM "+table)
	}
	return n
}

// distinctStored counts the distinct events stored.
func distinctStored(t *testing.T, h *testenv.Pipeline) uint64 {
	t.Helper()
	var n uint64
	for _, table := range testenv.EventTables {
		n += testenv.Count(t, h.Store, "SELECT uniqExact(event_id) FROM "+table)
	}
	return n
}

// expectedViews returns, as stream does, the rows each view should hold once
// msgs are ingested, and their number of events.
func expectedViews(t *testing.T, msgs []kafka.Message) map[string]int {
	t.Helper()
	entities := map[event.Kind]map[string]bool{}
	for _, m := range msgs {
		e, err := (&event.Decoder{}).Decode(event.Message{Value: m.Value})
		if err != nil {
			t.Fatal(err)
		}
		if entities[e.Kind] == nil {
			entities[e.Kind] = map[string]bool{}
		}
		entities[e.Kind][e.EntityKey()] = true
	}
	return map[string]int{
		"deployments": len(entities[event.KindDeployment]),
		"incidents":   len(entities[event.KindIncident]),
		"patches":     len(entities[event.KindPatch]),
		"changes":     len(entities[event.KindChange]),
		"events":      len(msgs),
	}
}

// groupOffsets are the end offsets of the input partitions and a group's
// committed offsets there, by "topic/partition".
type groupOffsets struct {
	ends, committed map[string]int64
}

// lag is how many messages the group has not committed.
func (o groupOffsets) lag() int64 {
	var lag int64
	for k, end := range o.ends {
		lag += max(end-o.committed[k], 0)
	}
	return lag
}

func snapshotOffsets(t *testing.T, h *testenv.Pipeline, group string, partitions int) groupOffsets {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(h.Brokers...), Timeout: 10 * time.Second}
	ends := map[string][]kafka.OffsetRequest{}
	parts := map[string][]int{}
	for _, topic := range h.Topics.Inputs() {
		for p := range partitions {
			ends[topic] = append(ends[topic], kafka.LastOffsetOf(p))
			parts[topic] = append(parts[topic], p)
		}
	}
	ctx := context.Background()
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	o := groupOffsets{ends: map[string]int64{}, committed: map[string]int64{}}
	for topic, ps := range offs.Topics {
		for _, p := range ps {
			if p.Error != nil {
				t.Fatalf("list offsets of %s/%d: %v", topic, p.Partition, p.Error)
			}
			o.ends[topic+"/"+strconv.Itoa(p.Partition)] = p.LastOffset
		}
	}
	for topic, ps := range committed.Topics {
		for _, p := range ps {
			o.committed[topic+"/"+strconv.Itoa(p.Partition)] = max(p.CommittedOffset, 0)
		}
	}
	return o
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
