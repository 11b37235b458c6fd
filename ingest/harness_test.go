package ingest_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// harness is a migrated database on the shared ClickHouse and an in-process
// Kafka cluster with the default topics.
type harness struct {
	t       *testing.T
	dsn     string
	st      *store.Store
	brokers []string
	cfg     config.Config
}

func newHarness(t *testing.T, partitions int32) *harness {
	t.Helper()
	cfg := config.Default()
	_, brokers := testenv.Kafka(t, partitions, append(cfg.Topics.Inputs(), cfg.Topics.DeadLetter)...)
	dsn := testenv.Database(t)
	cfg.ClickHouse, cfg.Brokers = dsn, brokers
	return &harness{t: t, dsn: dsn, st: testenv.Store(t, dsn), brokers: brokers, cfg: cfg}
}

func (h *harness) produce(msgs ...kafka.Message) {
	h.t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(h.brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, BatchSize: 1000}
	defer w.Close()
	for i := 0; i < len(msgs); i += 1000 {
		if err := w.WriteMessages(context.Background(), msgs[i:min(i+1000, len(msgs))]...); err != nil {
			h.t.Fatalf("produce: %v", err)
		}
	}
}

// ingestUntilIdle runs an in-process ingester of group until it has been
// idle for a while, and returns its metrics registry.
func (h *harness) ingestUntilIdle(group string) *prometheus.Registry {
	h.t.Helper()
	cfg := ingest.ConfigFrom(&h.cfg)
	cfg.Group = group
	cfg.BatchSize = 500
	cfg.BatchMaxLatency = 200 * time.Millisecond
	cfg.UntilIdle = 3 * time.Second
	cfg.SessionTimeout = 6 * time.Second
	reg := prometheus.NewRegistry()
	in, err := ingest.New(cfg, h.st, testenv.Logger(h.t), reg, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := in.Run(ctx); err != nil {
		h.t.Fatalf("ingest: %v", err)
	}
	return reg
}

// consumeAll reads every message of topic from the start, without a group.
func (h *harness) consumeAll(topic string, partitions int) []kafka.Message {
	h.t.Helper()
	var out []kafka.Message
	for p := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: h.brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		conn, err := kafka.DialLeader(context.Background(), "tcp", h.brokers[0], topic, p)
		if err != nil {
			h.t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			h.t.Fatal(err)
		}
		for range last {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				h.t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
		}
		r.Close()
	}
	return out
}

// counter returns the sum of the series of a counter in reg that have the
// given labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if matches(m, labels) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.Label {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

// views returns every public view's rows, sorted, one string per view.
func (h *harness) views() map[string]string {
	h.t.Helper()
	out := map[string]string{}
	for view, order := range map[string]string{
		"deployments":  "deployment_id",
		"incidents":    "incident_id",
		"patches":      "patch_id, target",
		"changes":      "change_id",
		"dead_letters": "topic, partition, offset",
	} {
		cols := "*"
		if view == "dead_letters" {
			cols = "topic, partition, offset, payload, reason_code, reason" // not the time
		}
		rows := testenv.Rows(h.t, h.st, fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", cols, view, order))
		sort.Strings(rows)
		out[view] = strings.Join(rows, "\n")
	}
	return out
}

func kcatAvailable(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/kcat", "/usr/bin/kafkacat"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("kcat is not installed (apt-get install kcat)")
	}
	t.Skip("kcat is not installed (apt-get install kcat)")
	return ""
}

// sumCounter adds up every series of a counter in reg.
func sumCounter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return counter(t, reg, name, map[string]string{})
}

// resetOffsets commits offset zero for every input partition of an idle
// group, as an operator rewinding a consumer group would.
func (h *harness) resetOffsets(group string, partitions int) {
	h.t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(h.brokers...), Timeout: 10 * time.Second}
	topics := map[string][]kafka.OffsetCommit{}
	for _, topic := range h.cfg.Topics.Inputs() {
		for p := range partitions {
			topics[topic] = append(topics[topic], kafka.OffsetCommit{Partition: p, Offset: 0})
		}
	}
	resp, err := client.OffsetCommit(context.Background(), &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: topics})
	if err != nil {
		h.t.Fatalf("reset offsets of %s: %v", group, err)
	}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				h.t.Fatalf("reset offsets of %s on %s/%d: %v", group, topic, p.Partition, p.Error)
			}
		}
	}
}
