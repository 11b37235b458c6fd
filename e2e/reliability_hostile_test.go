package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/opsmetrics/opsmetrics/api"
	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// The scenarios of the reliability suite that play a hostile producer, a
// careless operator and an overloaded API (issue 10).

// poisonMessages interleaves every kind of message that once stopped
// ingestion with good events, and runs `opsmetrics ingest` until idle.
func poisonMessages(t *testing.T, rc reliabilityConfig, tab *figures) {
	const scenario = "poison messages"
	h := testenv.NewPipeline(t, 3)
	topic := h.Topics.Deployments
	h.SetTopicConfig(topic, "max.message.bytes", fmt.Sprint(4<<20)) // the dead-letter topic keeps Kafka's default
	const rounds, goodPerPoison = 5, 100
	var good, poison []kafka.Message
	for r := range rounds {
		for _, v := range []string{
			testenv.DeploymentJSON(fmt.Sprintf("p-%d-status", r), strings.Repeat("s", 700<<10), ""), // quoted in the reason
			testenv.Padded(fmt.Sprintf("p-%d-near", r), testenv.BrokerMaxMessageBytes-300),
			testenv.Padded(fmt.Sprintf("p-%d-big", r), 2<<20),
		} {
			poison = append(poison, kafka.Message{Topic: topic, Key: []byte(strconv.Itoa(len(poison))), Value: []byte(v)})
			for range goodPerPoison {
				id := fmt.Sprintf("g-%d", len(good))
				good = append(good, kafka.Message{Topic: topic, Key: []byte(id), Value: []byte(testenv.DeploymentJSON(id, "success", ""))})
			}
		}
	}
	// Each poison message ahead of its good events, on every partition.
	for i, p := range poison {
		h.ProduceLarge(p)
		h.Produce(good[i*goodPerPoison : (i+1)*goodPerPoison]...)
	}
	start := time.Now()
	in := testenv.StartIngester(t, h, "poison", "--batch-size", "1000", "--until-idle", "5s")
	in.Wait(t, 3*time.Minute)
	took := time.Since(start)

	stored := testenv.Count(t, h.Store, "SELECT count() FROM deployments WHERE status = 'success'")
	dead := testenv.Count(t, h.Store, "SELECT count() FROM dead_letters")
	maxReason := testenv.Count(t, h.Store, "SELECT max(length(reason)) FROM dead_letters")
	dlq := h.ConsumeAll(h.Topics.DeadLetter, 3)
	largest := 0
	sources := map[string]bool{} // the topic is at-least-once: a retried publish may repeat a dead letter
	for _, m := range dlq {
		n := len(m.Key) + len(m.Value)
		hdr := map[string]string{}
		for _, hd := range m.Headers {
			n += len(hd.Key) + len(hd.Value)
			hdr[hd.Key] = string(hd.Value)
		}
		sources[hdr[ingest.HeaderPartition]+"/"+hdr[ingest.HeaderOffset]] = true
		largest = max(largest, n)
	}
	committed := h.CommittedOffsets("poison")
	if len(dlq) != len(poison) { // say why some were published twice
		for _, line := range strings.Split(in.Log.String(), "\n") {
			if strings.Contains(line, "deadletter") || strings.Contains(line, "dead-letter") || strings.Contains(line, "level=ERROR") {
				t.Logf("ingester: %.400s", line)
			}
		}
	}
	tab.report(scenario, "poison: 700 KB status, 1 MB - 300 B, 2 MiB", fmt.Sprintf("%d x 3", rounds))
	tab.check(t, scenario, "good events stored", thousands(int64(stored)), "= "+thousands(int64(len(good))), stored == uint64(len(good)))
	tab.check(t, scenario, "dead letters in dead_letters", strconv.Itoa(int(dead)), "= "+strconv.Itoa(len(poison)), dead == uint64(len(poison)))
	tab.check(t, scenario, "poison messages on the dead-letter topic", fmt.Sprintf("%d (%d records)", len(sources), len(dlq)),
		"= "+strconv.Itoa(len(poison)), len(sources) == len(poison))
	tab.check(t, scenario, "largest dead letter, bytes", thousands(int64(largest)), "< "+thousands(testenv.BrokerMaxMessageBytes), largest < testenv.BrokerMaxMessageBytes)
	tab.check(t, scenario, "longest reason stored, bytes", thousands(int64(maxReason)), fmt.Sprintf("<= %d", 1024), maxReason <= 1024)
	tab.check(t, scenario, "offsets committed", thousands(committed), "= "+thousands(int64(len(good)+len(poison))), committed == int64(len(good)+len(poison)))
	tab.report(scenario, "time to idle exit", took.Round(100*time.Millisecond).String())
}

// largeMessageBacklog ingests a backlog of large, valid events with the
// default settings and samples the ingester's peak RSS. With
// OPSMETRICS_RELIABILITY_REFERENCE set to another opsmetrics binary (an
// older build), it ingests the same backlog with it first, for the ratio.
func largeMessageBacklog(t *testing.T, rc reliabilityConfig, tab *figures) {
	const scenario = "large-message backlog"
	h := testenv.NewPipeline(t, 6)
	title := strings.Repeat("incident report line; ", rc.largeBytes/22+1)[:rc.largeBytes]
	var msgs []kafka.Message
	for i := range rc.largeMessages {
		id := fmt.Sprintf("big-%d", i)
		msgs = append(msgs, kafka.Message{Topic: h.Topics.Incidents, Key: []byte(id), Value: []byte(fmt.Sprintf(
			`{"kind":"incident","event_id":"%s","incident_id":"INC-%s","title":"%s","service":"checkout","environment":"production",`+
				`"severity":"high","detected_at":"2026-03-02T10:00:00Z"}`, id, id, title))})
	}
	produceStart := time.Now()
	w := &kafka.Writer{Addr: kafka.TCP(h.Brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, BatchSize: 100, BatchBytes: 1 << 20}
	for i := 0; i < len(msgs); i += 200 {
		if err := w.WriteMessages(context.Background(), msgs[i:min(i+200, len(msgs))]...); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	w.Close()
	total := int64(len(msgs)) * int64(len(msgs[0].Value))
	msgs = nil
	t.Logf("produced %d messages, %d MiB, in %v", rc.largeMessages, total>>20, time.Since(produceStart).Round(time.Millisecond))

	measure := func(binary, group string) (peak int64, took time.Duration) {
		args := []string{"ingest", "--clickhouse", h.DSN, "--brokers", h.Brokers[0], "--group", group, "--until-idle", "8s",
			"--session-timeout", "6s", "--log-level", "info"} // every other setting at its default: batch 10,000, budget 256 MiB
		cmd := exec.Command(binary, args...)
		log := &testenv.Buffer{}
		cmd.Stdout, cmd.Stderr = log, log
		cmd.Env = append(os.Environ(), "OPSMETRICS_CONFIG=")
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s: %v\n%s", binary, err, testenv.Tail(log.String()))
				}
				return peak, time.Since(start)
			case <-tick.C:
				peak = max(peak, testenv.PeakRSS(cmd.Process.Pid))
			case <-time.After(5 * time.Minute):
				cmd.Process.Kill()
				t.Fatalf("%s did not finish within 5 minutes\n%s", binary, testenv.Tail(log.String()))
			}
		}
	}
	if ref := os.Getenv("OPSMETRICS_RELIABILITY_REFERENCE"); ref != "" {
		peak, took := measure(ref, "backlog-reference")
		tab.report(scenario, "reference binary peak RSS (VmHWM)", fmt.Sprintf("%.1f MiB", float64(peak)/(1<<20)))
		tab.report(scenario, "reference binary time", took.Round(100*time.Millisecond).String())
	}
	peak, took := measure(testenv.Binary(t), "backlog")
	stored := testenv.Count(t, h.Store, "SELECT count() FROM incidents")
	budget := ingest.DefaultConfig().MemoryBudget
	tab.report(scenario, "backlog", fmt.Sprintf("%s x %d KB", thousands(int64(rc.largeMessages)), rc.largeBytes>>10))
	tab.check(t, scenario, "events stored", thousands(int64(stored)), "= "+thousands(int64(rc.largeMessages)), stored == uint64(rc.largeMessages))
	tab.check(t, scenario, "ingester peak RSS (VmHWM)", fmt.Sprintf("%.1f MiB", float64(peak)/(1<<20)),
		fmt.Sprintf("< %d MiB (the budget)", budget>>20), peak > 0 && peak < budget)
	tab.report(scenario, "time to idle exit, MiB/s", fmt.Sprintf("%v, %.0f", took.Round(100*time.Millisecond), float64(total)/(1<<20)/took.Seconds()))
}

// kafkaOutage runs `opsmetrics serve --components ingest,api`, takes the
// broker away for rc.kafkaDown and brings it back with its data, probing
// /healthz and /readyz throughout.
func kafkaOutage(t *testing.T, rc reliabilityConfig, tab *figures) {
	const scenario = "Kafka outage"
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	topics := broker.DefaultTopics()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kafkaAddr := l.Addr().String()
	l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	var cluster *kfake.Cluster
	startKafka := func() {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir),
			kfake.SeedTopics(6, append(topics.Inputs(), topics.DeadLetter)...))
		if err != nil {
			t.Fatalf("start kafka: %v", err)
		}
		cluster = c
	}
	startKafka()
	defer func() { cluster.Close() }()
	h := &testenv.Pipeline{T: t, DSN: dsn, Store: st, Brokers: []string{kafkaAddr}, Topics: topics}

	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	cmd := exec.Command(testenv.Binary(t), "serve", "--components", "ingest,api", "--clickhouse", dsn, "--brokers", kafkaAddr,
		"--listen", listen, "--session-timeout", "6s", "--retry-max-backoff", "2s", "--batch-max-latency", "200ms")
	log := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "OPSMETRICS_CONFIG=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { cmd.Process.Kill(); <-exited }()
	probe := func(path string) int {
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + listen + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	msgs, _ := h.Stream(generator.Config{Services: 6, Days: 60, Seed: 31, End: t0})
	half := len(msgs) / 2
	produceAll(t, h, msgs[:half])
	testenv.Eventually(t, 2*time.Minute, "the first half stored by serve", func() (bool, string) {
		n := distinctStored(t, h)
		return n == uint64(half), fmt.Sprintf("%d of %d", n, half)
	})

	cluster.Close()
	downAt := time.Now()
	var healthFails, probes int
	notReadyAfter := time.Duration(-1)
	for time.Since(downAt) < rc.kafkaDown {
		probes++
		if probe("/healthz") != http.StatusOK {
			healthFails++
		}
		if notReadyAfter < 0 && probe("/readyz") == http.StatusServiceUnavailable {
			notReadyAfter = time.Since(downAt)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var alive bool
	select {
	case err := <-exited:
		exited <- err
	default:
		alive = true
	}
	startKafka()
	upAt := time.Now()
	produceAll(t, h, msgs[half:])
	testenv.Eventually(t, 3*time.Minute, "every event stored after Kafka came back", func() (bool, string) {
		n := distinctStored(t, h)
		return n == uint64(len(msgs)), fmt.Sprintf("%d of %d", n, len(msgs))
	})
	recovered := time.Since(upAt)
	testenv.Eventually(t, time.Minute, "ready again", func() (bool, string) { return probe("/readyz") == http.StatusOK, "not ready" })
	readyAgain := time.Since(upAt)
	h.CheckExactlyOnce(expectedViews(t, msgs))
	rows, distinct := rawStored(t, h), distinctStored(t, h)

	tab.report(scenario, "Kafka down for", rc.kafkaDown.String())
	tab.check(t, scenario, "serve still running when Kafka came back", fmt.Sprint(alive), "= true", alive)
	tab.check(t, scenario, "/healthz failures while down", fmt.Sprintf("%d of %d", healthFails, probes), "= 0", healthFails == 0)
	tab.check(t, scenario, "/readyz 503 after Kafka went away", notReadyAfter.Round(100*time.Millisecond).String(), "within 30s",
		notReadyAfter >= 0 && notReadyAfter < 30*time.Second)
	tab.report(scenario, "every event stored, after Kafka was back", recovered.Round(100*time.Millisecond).String())
	tab.report(scenario, "/readyz 200 again, after Kafka was back", readyAgain.Round(100*time.Millisecond).String())
	tab.check(t, scenario, "lost events", thousands(int64(len(msgs))-int64(distinct)), "= 0", distinct == uint64(len(msgs)))
	tab.check(t, scenario, "duplicated events (after FINAL)", thousands(int64(rows)-int64(distinct)), "= 0", rows == distinct)
}

// idReuse stores a generated stream, then sends part of its ids again with
// other content (another status, month or entity, on other topics and
// partitions) and part unchanged, and ids claimed with two contents at once
// by two ingesters of one group.
func idReuse(t *testing.T, rc reliabilityConfig, tab *figures) {
	const scenario = "id reuse"
	h := testenv.NewPipeline(t, 6)
	msgs, want := h.Stream(generator.Config{Services: 4, Days: 60, Seed: 41, End: t0})
	produceAll(t, h, msgs)
	in := testenv.StartIngester(t, h, "reuse", "--until-idle", "5s")
	in.Wait(t, 3*time.Minute)
	before := h.Views()

	// Every other message again: a year earlier (so in another month, and
	// for changes and patches with other times), on another topic, hence
	// partition; and unchanged.
	var again []kafka.Message
	conflicts := 0
	topics := h.Topics.Inputs()
	earlier := regexp.MustCompile(`"20(\d\d)-`)
	for i := 0; i < len(msgs) && conflicts < rc.reused; i += 2 {
		m := msgs[i]
		changed := earlier.ReplaceAllStringFunc(string(m.Value), func(y string) string {
			n, _ := strconv.Atoi(y[3:5])
			return fmt.Sprintf(`"20%02d-`, n-1)
		})
		topic := topics[(i+1)%len(topics)]
		again = append(again, kafka.Message{Topic: topic, Key: []byte("other-" + strconv.Itoa(i)), Value: []byte(changed), Headers: m.Headers},
			kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: m.Headers})
		conflicts++
	}
	// New ids, each with two contents on two topics: two ingesters of the
	// group take them at the same time.
	const raced = 200
	for i := range raced {
		id := fmt.Sprintf("race-%d", i)
		for j, status := range []string{"success", "failure"} {
			again = append(again, kafka.Message{Topic: topics[j], Key: []byte(id + status), Value: []byte(testenv.DeploymentJSON(id, status, ""))})
		}
	}
	produceAll(t, h, again)
	a, b := testenv.StartIngester(t, h, "reuse", "--until-idle", "5s"), testenv.StartIngester(t, h, "reuse", "--until-idle", "5s")
	a.Wait(t, 3*time.Minute)
	b.Wait(t, 3*time.Minute)

	dead := testenv.Count(t, h.Store, "SELECT count() FROM dead_letters WHERE reason_code = 'id_conflict' AND reason NOT LIKE '%race-%'")
	others := testenv.Count(t, h.Store, "SELECT count() FROM dead_letters WHERE reason_code != 'id_conflict'")
	// The raced ids are new deployments: the views are compared without them.
	withoutRaced := func(views map[string]string) string {
		var out []string
		for _, view := range []string{"deployments", "incidents", "patches", "changes"} {
			for _, line := range strings.Split(views[view], "\n") {
				if !strings.HasPrefix(line, "d-race-") {
					out = append(out, view+": "+line)
				}
			}
		}
		return strings.Join(out, "\n")
	}
	after := h.Views()
	for _, table := range testenv.EventTables {
		if err := h.Store.Conn().Exec(context.Background(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	merged := h.Views()
	racedAccepted := testenv.Count(t, h.Store, "SELECT count() FROM deployments WHERE deployment_id LIKE 'd-race-%'")
	twoContents := testenv.Count(t, h.Store, "SELECT count() FROM (SELECT event_id FROM deployment_events WHERE event_id LIKE 'race-%' GROUP BY event_id HAVING uniqExact(status) > 1)")
	bothRefused := testenv.Count(t, h.Store, `SELECT count() FROM (SELECT visitParamExtractString(payload, 'event_id') AS id FROM dead_letters
		WHERE reason_code = 'id_conflict' AND id LIKE 'race-%' GROUP BY id HAVING count() = 2)`)

	tab.report(scenario, "events stored first", thousands(int64(want["events"])))
	tab.check(t, scenario, "ids sent again with other content, refused", fmt.Sprintf("%d of %d", dead, conflicts), "all", dead == uint64(conflicts))
	tab.check(t, scenario, "other dead letters", strconv.Itoa(int(others)), "= 0", others == 0)
	unchanged := withoutRaced(before) == withoutRaced(after)
	tab.check(t, scenario, "views unchanged by reused ids and replays", fmt.Sprint(unchanged), "= true", unchanged)
	final := after["deployments"] == merged["deployments"] && withoutRaced(after) == withoutRaced(merged)
	tab.check(t, scenario, "views unchanged by OPTIMIZE FINAL", fmt.Sprint(final), "= true", final)
	tab.report(scenario, "ids raced by two ingesters: one content accepted", strconv.Itoa(int(racedAccepted)))
	tab.report(scenario, "  both contents refused", strconv.Itoa(int(bothRefused)))
	tab.check(t, scenario, "  ids stored with two contents", strconv.Itoa(int(twoContents)), "= 0", twoContents == 0)
	tab.check(t, scenario, "  raced ids accepted once or refused both", strconv.Itoa(int(racedAccepted+bothRefused)), "= "+strconv.Itoa(raced),
		racedAccepted+bothRefused == raced)
}

// apiOverload has rc.apiClients clients send a mix of simple and heavy KPI
// requests for rc.apiDuration to the API with its default limits, while a
// probe asks /readyz twice a second.
func apiOverload(t *testing.T, rc reliabilityConfig, tab *figures, dsn string) {
	const scenario = "API overload"
	st := testenv.Store(t, dsn)
	if n := testenv.Count(t, st, "SELECT count() FROM deployments"); n == 0 {
		t.Fatal("no deployments stored: the crash storm stored nothing to query")
	}
	apiStore, err := store.Connect(dsn, api.DefaultLimits.Connections())
	if err != nil {
		t.Fatal(err)
	}
	defer apiStore.Close()
	probe, err := store.Connect(dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	srv := httptest.NewServer(api.New(api.Options{Conn: apiStore.Conn(), Defaults: metrics.Query{Production: []string{"production"}},
		Ready: func(ctx context.Context) error { return probe.Ping(ctx) }, Log: testenv.Logger(t)}))
	defer srv.Close()
	// The stream ends on 2026-03-02.
	simple := []string{
		"from=2026-02-01&to=2026-03-01",
		"from=2026-02-01&to=2026-03-01&by=team",
		"from=2026-02-01&to=2026-03-01&service=svc-1",
	}
	heavy := []string{
		"from=2026-02-01&to=2026-03-01&by=service&compare=true",
		"from=2025-09-01&to=2026-03-01&by=team&bucket=week",
		"from=2025-03-01&to=2026-03-01&bucket=month&compare=true",
		"from=2026-01-01&to=2026-03-01&by=service&bucket=day",
	}
	type result struct {
		heavy   bool
		latency time.Duration
		end     time.Time
		code    int
		msg     string
	}
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: rc.apiClients}}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	deadline := time.Now().Add(rc.apiDuration)
	// Requests still running 10 s after the load ends are cut, not waited
	// for, and counted apart.
	cutCtx, cut := context.WithDeadline(context.Background(), deadline.Add(10*time.Second))
	defer cut()
	for c := range rc.apiClients {
		wg.Go(func() {
			for i := c; time.Now().Before(deadline); i++ {
				isHeavy := i%2 == 0
				q := simple[i%len(simple)]
				if isHeavy {
					q = heavy[i%len(heavy)]
				}
				s := time.Now()
				code, msg := getStatus(cutCtx, client, srv.URL+"/api/v1/kpis?"+q)
				mu.Lock()
				results = append(results, result{isHeavy, time.Since(s), time.Now(), code, msg})
				mu.Unlock()
			}
		})
	}
	var ready []time.Duration
	var readyFails atomic.Int64
	wg.Go(func() {
		for time.Now().Before(deadline) {
			s := time.Now()
			if code, _ := getStatus(context.Background(), client, srv.URL+"/readyz"); code != http.StatusOK {
				readyFails.Add(1)
			}
			ready = append(ready, time.Since(s))
			time.Sleep(500 * time.Millisecond)
		}
	})
	wg.Wait()

	pct := func(ls []time.Duration, p float64) string {
		if len(ls) == 0 {
			return "-"
		}
		slices.Sort(ls)
		return ls[min(len(ls)-1, int(p*float64(len(ls))))].Round(time.Millisecond).String()
	}
	var simpleOK, heavyOK []time.Duration
	refused, failed, unfinished := 0, 0, 0
	var firstFailures []string
	for _, r := range results {
		switch {
		case r.code == http.StatusOK && r.heavy:
			heavyOK = append(heavyOK, r.latency)
		case r.code == http.StatusOK:
			simpleOK = append(simpleOK, r.latency)
		case r.code == http.StatusServiceUnavailable && (strings.Contains(r.msg, "api.") || strings.Contains(r.msg, "too many")):
			refused++
		case r.code == 0 && cutCtx.Err() != nil && !r.end.Before(deadline.Add(10*time.Second)):
			unfinished++
		default:
			failed++
			if len(firstFailures) < 5 {
				firstFailures = append(firstFailures, fmt.Sprintf("%d %s", r.code, r.msg))
			}
		}
	}
	for _, f := range firstFailures {
		t.Logf("API failure: %s", f)
	}
	tab.report(scenario, "clients x duration, half heavy", fmt.Sprintf("%d x %v", rc.apiClients, rc.apiDuration))
	tab.check(t, scenario, "simple requests answered", strconv.Itoa(len(simpleOK)), "> 0", len(simpleOK) > 0)
	tab.report(scenario, "  latency p50 / p99", pct(simpleOK, 0.5)+" / "+pct(simpleOK, 0.99))
	tab.report(scenario, "heavy requests answered", strconv.Itoa(len(heavyOK)))
	tab.report(scenario, "  latency p50 / p99", pct(heavyOK, 0.5)+" / "+pct(heavyOK, 0.99))
	tab.report(scenario, "503 naming a limit", strconv.Itoa(refused))
	tab.report(scenario, "cut 10s after the load ended", strconv.Itoa(unfinished))
	tab.check(t, scenario, "other errors (5xx, transport)", strconv.Itoa(failed), "= 0", failed == 0)
	tab.check(t, scenario, "/readyz failures under load", strconv.Itoa(int(readyFails.Load())), "= 0", readyFails.Load() == 0)
	tab.check(t, scenario, "/readyz latency p99", pct(ready, 0.99), "< 1s", len(ready) > 0 && ready[min(len(ready)-1, int(0.99*float64(len(ready))))] < time.Second)
}

// getStatus requests url and returns the status and, unless 200, the body.
func getStatus(ctx context.Context, c *http.Client, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "read body: " + err.Error()
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}
