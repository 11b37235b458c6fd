package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestCrashMidStream kills the ingester with SIGKILL several times while it
// consumes, restarts it each time, and checks that every event is stored
// once and none is lost.
func TestCrashMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the opsmetrics binary")
	}
	h := newHarness(t, 6)
	msgs, want := h.Stream(generator.Config{Services: 20, Days: 90, Seed: 3, End: t0})
	h.Produce(msgs...)
	t.Logf("produced %d messages", len(msgs))

	rng := rand.New(rand.NewPCG(1, 2))
	stored := func() uint64 {
		return testenv.Count(t, h.Store, `SELECT (SELECT count() FROM deployment_events) + (SELECT count() FROM incident_events)
			+ (SELECT count() FROM patch_events) + (SELECT count() FROM change_events)`)
	}
	const kills = 4
	for i := range kills {
		in := testenv.StartIngester(t, h.Pipeline, "crash", "--batch-size", "100")
		// Kill once more rows have landed, so that the kill falls mid-stream.
		before := stored()
		testenv.Eventually(t, 60*time.Second, "ingester makes progress", func() (bool, string) {
			n := stored()
			return n > before, fmt.Sprintf("%d rows", n)
		})
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		in.Kill(t)
		n := stored()
		t.Logf("kill %d: %d of %d messages stored", i+1, n, len(msgs))
		if n >= uint64(len(msgs)) {
			t.Fatalf("the stream was fully stored before kill %d; make it longer so the kills fall mid-stream", i+1)
		}
	}
	in := testenv.StartIngester(t, h.Pipeline, "crash", "--until-idle", "8s")
	in.Wait(t, 3*time.Minute)
	h.CheckExactlyOnce(want)
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
	h.DSN = testenv.MigratedDatabase(t, srv)
	h.Store = testenv.Store(t, h.DSN)
	msgs, want := h.Stream(generator.Config{Services: 8, Days: 30, Seed: 5, End: t0})
	half := len(msgs) / 2
	h.Produce(msgs[:half]...)

	in := testenv.StartIngester(t, h.Pipeline, "restart")
	testenv.Eventually(t, 60*time.Second, "first half stored", func() (bool, string) {
		n := testenv.Count(t, h.Store, "SELECT uniqExact(event_id) FROM change_events")
		return n > 0, fmt.Sprintf("%d change events", n)
	})
	srv.Stop()
	h.Produce(msgs[half:]...)
	committedDown := h.CommittedOffsets("restart")
	time.Sleep(3 * time.Second) // the ingester fetches the second half and fails to store it
	if got := h.CommittedOffsets("restart"); got != committedDown {
		t.Errorf("offsets committed while ClickHouse was down: %d then %d", committedDown, got)
	}
	// The first ClickHouse operation of a batch claims its event ids.
	if !bytes.Contains(in.Log.Bytes(), []byte("msg=retrying op=write")) && !bytes.Contains(in.Log.Bytes(), []byte("msg=retrying op=claim")) {
		t.Errorf("the ingester never failed a claim or write while ClickHouse was down; the test proves nothing:\n%s", testenv.Tail(in.Log.String()))
	}
	in.Kill(t) // the fetched, unstored batch must not have been committed

	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	in = testenv.StartIngester(t, h.Pipeline, "restart", "--until-idle", "8s")
	in.Wait(t, 3*time.Minute)
	h.CheckExactlyOnce(want)
}

// TestGracefulShutdown sends SIGTERM while a batch is held back by a long
// batch latency: the ingester must write and commit it, and exit 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the opsmetrics binary")
	}
	h := newHarness(t, 3)
	msgs, want := h.Stream(generator.Config{Services: 3, Days: 5, Seed: 8, End: t0})
	h.Produce(msgs...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	in := testenv.StartIngester(t, h.Pipeline, "graceful", "--batch-size", "1000000", "--batch-max-latency", "10m", "--metrics-addr", addr)
	// Everything is fetched into one batch that would wait ten minutes.
	testenv.Eventually(t, 60*time.Second, "messages fetched", func() (bool, string) {
		return bytes.Contains(in.Log.Bytes(), []byte("ingesting")), "not started"
	})
	time.Sleep(3 * time.Second)
	if n := testenv.Count(t, h.Store, "SELECT count() FROM change_events"); n != 0 {
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
	in.Cmd.Process.Signal(syscall.SIGTERM)
	in.Wait(t, 60*time.Second)
	if !bytes.Contains(in.Log.Bytes(), []byte("final batch committed")) {
		t.Errorf("no final batch committed in the log:\n%s", testenv.Tail(in.Log.String()))
	}
	h.CheckExactlyOnce(want)
	if got := h.CommittedOffsets("graceful"); got != int64(len(msgs)) {
		t.Errorf("committed offsets add up to %d, want %d (every message)", got, len(msgs))
	}
}
