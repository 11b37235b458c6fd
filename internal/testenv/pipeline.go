package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/publish"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// Pipeline is a migrated database on a ClickHouse server and an in-process
// Kafka cluster with the default topics: what the ingestion tests and the
// whole-pipeline tests (package e2e) produce to, ingest from and check.
type Pipeline struct {
	T       testing.TB
	DSN     string
	Store   *store.Store
	Brokers []string
	Topics  broker.Topics
}

// NewPipeline returns a pipeline on a fresh database of the shared
// ClickHouse, with partitions partitions per topic.
func NewPipeline(t testing.TB, partitions int32) *Pipeline {
	t.Helper()
	return PipelineOn(t, Database(t), partitions)
}

// PipelineOn returns a pipeline on the migrated database dsn (on a
// ClickHouse of the caller's, which may stop it) and a new Kafka cluster.
func PipelineOn(t testing.TB, dsn string, partitions int32) *Pipeline {
	t.Helper()
	topics := broker.DefaultTopics()
	_, brokers := Kafka(t, partitions, append(topics.Inputs(), topics.DeadLetter)...)
	return &Pipeline{T: t, DSN: dsn, Store: Store(t, dsn), Brokers: brokers, Topics: topics}
}

// EventTables are the raw event tables.
var EventTables = []string{"deployment_events", "incident_events", "patch_events", "change_events"}

// Produce sends msgs, in chunks of 1,000.
func (p *Pipeline) Produce(msgs ...kafka.Message) {
	p.T.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(p.Brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, BatchSize: 1000}
	defer w.Close()
	for i := 0; i < len(msgs); i += 1000 {
		if err := w.WriteMessages(context.Background(), msgs[i:min(i+1000, len(msgs))]...); err != nil {
			p.T.Fatalf("produce: %v", err)
		}
	}
}

// ProduceLarge sends messages of any size the topic accepts.
func (p *Pipeline) ProduceLarge(msgs ...kafka.Message) {
	p.T.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(p.Brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, BatchSize: 1, BatchBytes: 16 << 20}
	defer w.Close()
	for _, m := range msgs {
		if err := w.WriteMessages(context.Background(), m); err != nil {
			p.T.Fatalf("produce %d bytes: %v", len(m.Value), err)
		}
	}
}

// ConsumeAll reads every message of topic from the start, without a group.
func (p *Pipeline) ConsumeAll(topic string, partitions int) []kafka.Message {
	p.T.Helper()
	var out []kafka.Message
	for part := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: p.Brokers, Topic: topic, Partition: part, MaxWait: 100 * time.Millisecond})
		conn, err := kafka.DialLeader(context.Background(), "tcp", p.Brokers[0], topic, part)
		if err != nil {
			p.T.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			p.T.Fatal(err)
		}
		for range last {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				p.T.Fatalf("read %s/%d: %v", topic, part, err)
			}
			out = append(out, m)
		}
		r.Close()
	}
	return out
}

// SetTopicConfig sets one configuration of a topic, as kafka-configs.sh
// --alter would.
func (p *Pipeline) SetTopicConfig(topic, name, value string) {
	p.T.Helper()
	client := &kafka.Client{Addr: kafka.TCP(p.Brokers...), Timeout: 10 * time.Second}
	resp, err := client.AlterConfigs(context.Background(), &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.AlterConfigRequestConfig{{Name: name, Value: value}}}}})
	if err == nil {
		for _, e := range resp.Errors {
			if e != nil {
				err = e
			}
		}
	}
	if err != nil {
		p.T.Fatalf("set %s of %s to %s: %v", name, topic, value, err)
	}
}

// ResetOffsets commits offset zero for every input partition of an idle
// group, as an operator rewinding a consumer group would.
func (p *Pipeline) ResetOffsets(group string, partitions int) {
	p.T.Helper()
	client := &kafka.Client{Addr: kafka.TCP(p.Brokers...), Timeout: 10 * time.Second}
	topics := map[string][]kafka.OffsetCommit{}
	for _, topic := range p.Topics.Inputs() {
		for part := range partitions {
			topics[topic] = append(topics[topic], kafka.OffsetCommit{Partition: part, Offset: 0})
		}
	}
	resp, err := client.OffsetCommit(context.Background(), &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: topics})
	if err != nil {
		p.T.Fatalf("reset offsets of %s: %v", group, err)
	}
	for topic, ps := range resp.Topics {
		for _, part := range ps {
			if part.Error != nil {
				p.T.Fatalf("reset offsets of %s on %s/%d: %v", group, topic, part.Partition, part.Error)
			}
		}
	}
}

// CommittedOffsets sums the committed offsets of group over the input
// topics' first three partitions.
func (p *Pipeline) CommittedOffsets(group string) int64 {
	p.T.Helper()
	client := &kafka.Client{Addr: kafka.TCP(p.Brokers...), Timeout: 10 * time.Second}
	topics := map[string][]int{}
	for _, topic := range p.Topics.Inputs() {
		topics[topic] = []int{0, 1, 2}
	}
	resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: topics})
	if err != nil {
		p.T.Fatalf("offset fetch: %v", err)
	}
	var sum int64
	for _, ps := range resp.Topics {
		for _, part := range ps {
			if part.CommittedOffset > 0 {
				sum += part.CommittedOffset
			}
		}
	}
	return sum
}

// Views returns every public view's rows, sorted, one string per view.
func (p *Pipeline) Views() map[string]string {
	p.T.Helper()
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
		rows := Rows(p.T, p.Store, fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", cols, view, order))
		sort.Strings(rows)
		out[view] = strings.Join(rows, "\n")
	}
	return out
}

// Stream generates a stream and returns its messages and the entities it
// should produce in each view.
func (p *Pipeline) Stream(cfg generator.Config) ([]kafka.Message, map[string]int) {
	p.T.Helper()
	var buf bytes.Buffer
	if _, err := generator.WriteJSONL(&buf, cfg, generator.FormatMixed); err != nil {
		p.T.Fatal(err)
	}
	pub := publish.New(p.Brokers, publish.TopicsFrom(p.Topics), nil)
	defer pub.Close()
	var msgs []kafka.Message
	entities := map[event.Kind]map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		m, err := pub.Message(line)
		if err != nil {
			p.T.Fatal(err)
		}
		msgs = append(msgs, m)
		e, err := (&event.Decoder{}).Decode(event.Message{Value: line})
		if err != nil {
			p.T.Fatal(err)
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

// CheckExactlyOnce asserts that every generated entity is in its view and
// that, once duplicates are merged, every message is stored exactly once.
func (p *Pipeline) CheckExactlyOnce(want map[string]int) {
	t := p.T
	t.Helper()
	for _, view := range []string{"deployments", "incidents", "patches", "changes"} {
		if got := Count(t, p.Store, "SELECT count() FROM "+view); got != uint64(want[view]) {
			t.Errorf("%s: %d rows, want %d", view, got, want[view])
		}
	}
	var rawTotal, unique uint64
	for _, table := range EventTables {
		if err := p.Store.Conn().Exec(context.Background(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
		rawTotal += Count(t, p.Store, "SELECT count() FROM "+table)
		unique += Count(t, p.Store, "SELECT uniqExact(event_id) FROM "+table)
	}
	if unique != uint64(want["events"]) {
		t.Errorf("stored %d distinct events, want %d: events were lost", unique, want["events"])
	}
	if rawTotal != unique {
		t.Errorf("after merging, %d rows hold %d events: events are doubled", rawTotal, unique)
	}
	if n := Count(t, p.Store, "SELECT count() FROM dead_letters"); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// Process is a running opsmetrics command (Binary).
type Process struct {
	Cmd  *exec.Cmd
	Log  *Buffer
	done chan error
}

// StartIngester starts `opsmetrics ingest` of group on p, with small
// batches and short timeouts, and kills it when the test ends.
func StartIngester(t testing.TB, p *Pipeline, group string, extra ...string) *Process {
	t.Helper()
	args := append([]string{"ingest", "--clickhouse", p.DSN, "--brokers", p.Brokers[0], "--group", group,
		"--batch-size", "300", "--batch-max-latency", "100ms", "--session-timeout", "6s", "--retry-max-backoff", "1s",
		"--log-level", "debug"}, extra...)
	return StartProcess(t, args...)
}

// StartProcess starts the opsmetrics binary with args, its output in Log and
// no configuration file from the environment, and kills it when the test
// ends.
func StartProcess(t testing.TB, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	log := &Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "OPSMETRICS_CONFIG=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, done: make(chan error, 1), Log: log}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	return p
}

// Kill stops the process with SIGKILL, as a crash would.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil // for Cleanup
}

// Wait waits for the process to exit 0 within timeout.
func (p *Process) Wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("%s: %v\n%s", p.Cmd.Args[1], err, Tail(p.Log.String()))
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not finish within %v\n%s", p.Cmd.Args[1], timeout, Tail(p.Log.String()))
	}
}

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// Tail is the last 4,000 bytes of s.
func Tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// Counter returns the sum of the series of a counter in reg that have the
// given labels.
func Counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
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

// SumCounter adds up every series of a counter in reg.
func SumCounter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return Counter(t, reg, name, map[string]string{})
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

// DeploymentJSON is a native deployment event, with extra fields.
func DeploymentJSON(id, status, extra string) string {
	return fmt.Sprintf(`{"kind":"deployment","event_id":%q,"deployment_id":%q,"service":"checkout","environment":"production",`+
		`"status":%q,"finished_at":"2026-03-02T10:00:00Z"%s}`, id, "d-"+id, status, extra)
}

// Padded is a deployment with an invalid status, padded with a title to n
// bytes.
func Padded(id string, n int) string {
	s := DeploymentJSON(id, "exploded", `,"title":""`)
	return strings.Replace(s, `"title":""`, `"title":"`+strings.Repeat("t", n-len(s))+`"`, 1)
}

// PeakRSS returns the peak resident set of process pid since it started its
// program, from /proc. (The rusage of a child is no use here: Go starts
// children with vfork semantics, so their maxrss includes the parent's
// memory, and the parent holds the whole Kafka log.)
func PeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BrokerMaxMessageBytes is Kafka's default max.message.bytes, kfake's too.
const BrokerMaxMessageBytes = 1048588
