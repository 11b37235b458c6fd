package ingest_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// startServe starts `opsmetrics serve --components ingest`, a replica of a
// scaled-out ingestion.
func startServe(t *testing.T, h *harness, group string) *testenv.Process {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return testenv.StartProcess(t, "serve", "--components", "ingest", "--clickhouse", h.DSN,
		"--brokers", h.Brokers[0], "--group", group, "--listen", addr, "--batch-size", "200", "--batch-max-latency", "100ms",
		"--session-timeout", "6s", "--retry-max-backoff", "1s", "--log-level", "debug")
}

// TestScaleOut runs three serve replicas ingesting one 12-partition stream
// through the consumer group, kills one with SIGKILL mid-stream, and checks
// that every event is stored exactly once.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the opsmetrics binary three times")
	}
	h := newHarness(t, 12)
	msgs, want := h.Stream(generator.Config{Services: 20, Days: 90, Seed: 5, End: t0})
	replicas := []*testenv.Process{startServe(t, h, "scale"), startServe(t, h, "scale"), startServe(t, h, "scale")}
	h.Produce(msgs...)
	stored := func() uint64 {
		return testenv.Count(t, h.Store, `SELECT (SELECT count() FROM deployment_events) + (SELECT count() FROM incident_events)
			+ (SELECT count() FROM patch_events) + (SELECT count() FROM change_events)`)
	}
	testenv.Eventually(t, 90*time.Second, "a third of the stream stored", func() (bool, string) {
		n := stored()
		return n > uint64(len(msgs))/3, fmt.Sprintf("%d of %d", n, len(msgs))
	})
	replicas[1].Kill(t)
	t.Logf("killed one of three replicas with %d of %d messages stored", stored(), len(msgs))
	testenv.Eventually(t, 3*time.Minute, "the two survivors store everything", func() (bool, string) {
		n := testenv.Count(t, h.Store, `SELECT (SELECT uniqExact(event_id) FROM deployment_events) + (SELECT uniqExact(event_id) FROM incident_events)
			+ (SELECT uniqExact(event_id) FROM patch_events) + (SELECT uniqExact(event_id) FROM change_events)`)
		return n == uint64(want["events"]), fmt.Sprintf("%d of %d distinct events", n, want["events"])
	})
	h.CheckExactlyOnce(want)
	for i, r := range []*testenv.Process{replicas[0], replicas[2]} {
		if stored := r.Log.String(); !contains(stored, "batch committed") {
			t.Errorf("surviving replica %d never committed a batch: the partitions were not shared", i)
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
