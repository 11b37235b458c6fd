package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/publish"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// opsmetricsBinary builds cmd/opsmetrics once per test binary.
func opsmetricsBinary(t *testing.T) string { return testenv.Binary(t) }

// ingester is an `opsmetrics ingest` process.
type ingester struct {
	cmd  *exec.Cmd
	done chan error
	log  *syncBuffer
}

// syncBuffer is a buffer a process can write while a test reads.
type syncBuffer = testenv.Buffer

func startIngester(t *testing.T, h *harness, group string, extra ...string) *ingester {
	t.Helper()
	args := append([]string{"ingest", "--clickhouse", h.dsn, "--brokers", h.brokers[0], "--group", group,
		"--batch-size", "300", "--batch-max-latency", "100ms", "--session-timeout", "6s", "--retry-max-backoff", "1s",
		"--log-level", "debug"}, extra...)
	cmd := exec.Command(opsmetricsBinary(t), args...)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "OPSMETRICS_CONFIG=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &ingester{cmd: cmd, done: make(chan error, 1), log: log}
	go func() { in.done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-in.done })
	return in
}

func (in *ingester) kill(t *testing.T) {
	t.Helper()
	in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.done
	in.done <- nil // for Cleanup
}

func (in *ingester) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-in.done:
		in.done <- err
		if err != nil {
			t.Fatalf("ingester: %v\n%s", err, tail(in.log.String()))
		}
	case <-time.After(timeout):
		t.Fatalf("ingester did not finish within %v\n%s", timeout, tail(in.log.String()))
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// stream generates a stream and returns its messages and the entities it
// should produce in each view.
func stream(t *testing.T, h *harness, cfg generator.Config) ([]kafka.Message, map[string]int) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := generator.WriteJSONL(&buf, cfg, generator.FormatMixed); err != nil {
		t.Fatal(err)
	}
	p := publish.New(h.brokers, publish.TopicsFrom(h.cfg.Topics), nil)
	defer p.Close()
	var msgs []kafka.Message
	entities := map[event.Kind]map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		m, err := p.Message(line)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
		e, err := (&event.Decoder{}).Decode(event.Message{Value: line})
		if err != nil {
			t.Fatal(err)
		}
		if entities[e.Kind] == nil {
			entities[e.Kind] = map[string]bool{}
		}
		entities[e.Kind][e.EntityKey()] = true
	}
	want := map[string]int{
		"deployments": len(entities[event.KindDeployment]),
		"incidents":   len(entities[event.KindIncident]),
		"patches":     len(entities[event.KindPatch]),
		"changes":     len(entities[event.KindChange]),
		"events":      len(msgs),
	}
	return msgs, want
}

// checkExactlyOnce asserts that every generated entity is in its view and
// that, once duplicates are merged, every message is stored exactly once.
func checkExactlyOnce(t *testing.T, h *harness, want map[string]int) {
	t.Helper()
	for _, view := range []string{"deployments", "incidents", "patches", "changes"} {
		if got := testenv.Count(t, h.st, "SELECT count() FROM "+view); got != uint64(want[view]) {
			t.Errorf("%s: %d rows, want %d", view, got, want[view])
		}
	}
	var rawTotal, unique uint64
	for _, table := range []string{"deployment_events", "incident_events", "patch_events", "change_events"} {
		if err := h.st.Conn().Exec(context.Background(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
		rawTotal += testenv.Count(t, h.st, "SELECT count() FROM "+table)
		unique += testenv.Count(t, h.st, "SELECT uniqExact(event_id) FROM "+table)
	}
	if unique != uint64(want["events"]) {
		t.Errorf("stored %d distinct events, want %d: events were lost", unique, want["events"])
	}
	if rawTotal != unique {
		t.Errorf("after merging, %d rows hold %d events: events are doubled", rawTotal, unique)
	}
	if n := testenv.Count(t, h.st, "SELECT count() FROM dead_letters"); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// TestCrashMidStream kills the ingester with SIGKILL several times while it
// consumes, restarts it each time, and checks that every event is stored
// once and none is lost.
func TestCrashMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the opsmetrics binary")
	}
	h := newHarness(t, 6)
	msgs, want := stream(t, h, generator.Config{Services: 20, Days: 90, Seed: 3, End: t0})
	h.produce(msgs...)
	t.Logf("produced %d messages", len(msgs))

	rng := rand.New(rand.NewPCG(1, 2))
	stored := func() uint64 {
		return testenv.Count(t, h.st, `SELECT (SELECT count() FROM deployment_events) + (SELECT count() FROM incident_events)
			+ (SELECT count() FROM patch_events) + (SELECT count() FROM change_events)`)
	}
	const kills = 4
	for i := range kills {
		in := startIngester(t, h, "crash", "--batch-size", "100")
		// Kill once more rows have landed, so that the kill falls mid-stream.
		before := stored()
		testenv.Eventually(t, 60*time.Second, "ingester makes progress", func() (bool, string) {
			n := stored()
			return n > before, fmt.Sprintf("%d rows", n)
		})
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		in.kill(t)
		n := stored()
		t.Logf("kill %d: %d of %d messages stored", i+1, n, len(msgs))
		if n >= uint64(len(msgs)) {
			t.Fatalf("the stream was fully stored before kill %d; make it longer so the kills fall mid-stream", i+1)
		}
	}
	in := startIngester(t, h, "crash", "--until-idle", "8s")
	in.wait(t, 3*time.Minute)
	checkExactlyOnce(t, h, want)
}

// TestClickHouseRestart stops ClickHouse mid-stream. The ingester must keep
// retrying without committing, survive a SIGKILL while ClickHouse is down,
// and once ClickHouse is back, store everything exactly once.
func TestClickHouseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the opsmetrics binary and its own ClickHouse")
	}
	srv := testenv.OwnClickHouse(t)
	h := newHarness(t, 3)
	h.dsn = testenv.MigratedDatabase(t, srv)
	h.st = testenv.Store(t, h.dsn)
	msgs, want := stream(t, h, generator.Config{Services: 8, Days: 30, Seed: 5, End: t0})
	half := len(msgs) / 2
	h.produce(msgs[:half]...)

	in := startIngester(t, h, "restart")
	testenv.Eventually(t, 60*time.Second, "first half stored", func() (bool, string) {
		n := testenv.Count(t, h.st, "SELECT uniqExact(event_id) FROM change_events")
		return n > 0, fmt.Sprintf("%d change events", n)
	})
	srv.Stop()
	h.produce(msgs[half:]...)
	committedDown := committedOffsets(t, h, "restart")
	time.Sleep(3 * time.Second) // the ingester fetches the second half and fails to store it
	if got := committedOffsets(t, h, "restart"); got != committedDown {
		t.Errorf("offsets committed while ClickHouse was down: %d then %d", committedDown, got)
	}
	// The first ClickHouse operation of a batch claims its event ids.
	if !bytes.Contains(in.log.Bytes(), []byte("msg=retrying op=write")) && !bytes.Contains(in.log.Bytes(), []byte("msg=retrying op=claim")) {
		t.Errorf("the ingester never failed a claim or write while ClickHouse was down; the test proves nothing:\n%s", tail(in.log.String()))
	}
	in.kill(t) // the fetched, unstored batch must not have been committed

	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	in = startIngester(t, h, "restart", "--until-idle", "8s")
	in.wait(t, 3*time.Minute)
	checkExactlyOnce(t, h, want)
}

// committedOffsets sums the committed offsets of group over the input topics.
func committedOffsets(t *testing.T, h *harness, group string) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(h.brokers...), Timeout: 10 * time.Second}
	topics := map[string][]int{}
	for _, topic := range h.cfg.Topics.Inputs() {
		topics[topic] = []int{0, 1, 2}
	}
	resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: topics})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	var sum int64
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.CommittedOffset > 0 {
				sum += p.CommittedOffset
			}
		}
	}
	return sum
}

// TestGracefulShutdown sends SIGTERM while a batch is held back by a long
// batch latency: the ingester must write and commit it, and exit 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the opsmetrics binary")
	}
	h := newHarness(t, 3)
	msgs, want := stream(t, h, generator.Config{Services: 3, Days: 5, Seed: 8, End: t0})
	h.produce(msgs...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	in := startIngester(t, h, "graceful", "--batch-size", "1000000", "--batch-max-latency", "10m", "--metrics-addr", addr)
	// Everything is fetched into one batch that would wait ten minutes.
	testenv.Eventually(t, 60*time.Second, "messages fetched", func() (bool, string) {
		return bytes.Contains(in.log.Bytes(), []byte("ingesting")), "not started"
	})
	time.Sleep(3 * time.Second)
	if n := testenv.Count(t, h.st, "SELECT count() FROM change_events"); n != 0 {
		t.Fatalf("%d rows written before the batch was due; the test would prove nothing", n)
	}
	// The metrics endpoint shows the fetched, not yet stored, messages.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"opsmetrics_ingest_messages_consumed_total{topic=\"ops.changes\"}", "opsmetrics_ingest_batch_duration_seconds_bucket", "go_goroutines"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	in.wait(t, 60*time.Second)
	if !bytes.Contains(in.log.Bytes(), []byte("final batch committed")) {
		t.Errorf("no final batch committed in the log:\n%s", tail(in.log.String()))
	}
	checkExactlyOnce(t, h, want)
	if got := committedOffsets(t, h, "graceful"); got != int64(len(msgs)) {
		t.Errorf("committed offsets add up to %d, want %d (every message)", got, len(msgs))
	}
}
