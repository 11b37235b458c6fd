package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// brokerLimit is Kafka's default max.message.bytes, kfake's too.
const brokerLimit = 1048588

// setTopicConfig sets one configuration of a topic, as kafka-configs.sh
// --alter would.
func (h *harness) setTopicConfig(topic, name, value string) {
	h.t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(h.brokers...), Timeout: 10 * time.Second}
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
		h.t.Fatalf("set %s of %s to %s: %v", name, topic, value, err)
	}
}

// produceLarge sends messages of any size the topic accepts.
func (h *harness) produceLarge(msgs ...kafka.Message) {
	h.t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(h.brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, BatchSize: 1, BatchBytes: 16 << 20}
	defer w.Close()
	for _, m := range msgs {
		if err := w.WriteMessages(context.Background(), m); err != nil {
			h.t.Fatalf("produce %d bytes: %v", len(m.Value), err)
		}
	}
}

// deploymentJSON is a native deployment event, with extra fields.
func deploymentJSON(id, status, extra string) string {
	return fmt.Sprintf(`{"kind":"deployment","event_id":%q,"deployment_id":%q,"service":"checkout","environment":"production",`+
		`"status":%q,"finished_at":"2026-03-02T10:00:00Z"%s}`, id, "d-"+id, status, extra)
}

// padded is a deployment with an invalid status, padded with a title to n
// bytes.
func padded(id string, n int) string {
	s := deploymentJSON(id, "exploded", `,"title":""`)
	return strings.Replace(s, `"title":""`, `"title":"`+strings.Repeat("t", n-len(s))+`"`, 1)
}

// TestPoisonMessages produces each message that used to stop ingestion for
// good, each followed by a good event: a 700 KB invalid status (quoted in
// the reason), an invalid message 300 bytes under the broker's limit, and a
// 2 MiB message on a topic that accepts it while the dead-letter topic
// keeps Kafka's default limit. Every good event must land, every bad one be
// dead-lettered within the topic's limit, and every offset committed. Then,
// with the dead-letter topic refusing anything larger than 256 bytes, a bad
// message is recorded in dead_letters only, and ingestion still goes on.
func TestPoisonMessages(t *testing.T) {
	h := newHarness(t, 1)
	topic := h.cfg.Topics.Deployments
	h.setTopicConfig(topic, "max.message.bytes", fmt.Sprint(4<<20))
	poison := []struct {
		name, value, code string
		truncated         bool
	}{
		{"700 KB invalid status", deploymentJSON("p-1", strings.Repeat("s", 700<<10), ""), "invalid_value", false},
		{"300 bytes under the broker's limit", padded("p-2", brokerLimit-300), "invalid_value", true},
		{"2 MiB, over max_message_bytes", padded("p-3", 2<<20), "oversized", true},
	}
	var msgs []kafka.Message
	for i, p := range poison {
		msgs = append(msgs,
			kafka.Message{Topic: topic, Value: []byte(deploymentJSON(fmt.Sprintf("good-%d", i), "success", ""))},
			kafka.Message{Topic: topic, Value: []byte(p.value)})
	}
	msgs = append(msgs, kafka.Message{Topic: topic, Value: []byte(deploymentJSON("good-last", "success", ""))})
	h.produceLarge(msgs...)
	reg := h.ingestUntilIdle("poison")

	if n := testenv.Count(t, h.st, "SELECT count() FROM deployments WHERE status = 'success'"); n != uint64(len(poison)+1) {
		t.Errorf("good deployments stored: %d, want %d", n, len(poison)+1)
	}
	dlq := h.consumeAll(h.cfg.Topics.DeadLetter, 1)
	if len(dlq) != len(poison) {
		t.Fatalf("dead-letter topic holds %d messages, want %d", len(dlq), len(poison))
	}
	for i, p := range poison {
		offset := int64(2*i + 1)
		rows := testenv.Rows(t, h.st, "SELECT reason_code, length(reason), length(payload) FROM dead_letters WHERE offset = ?", offset)
		if len(rows) != 1 || !strings.HasPrefix(rows[0], p.code+" | ") {
			t.Errorf("%s: dead_letters %v, want one %s row", p.name, rows, p.code)
		}
		var reasonLen, payloadLen int
		fmt.Sscanf(strings.SplitN(rows[0], " | ", 2)[1], "%d | %d", &reasonLen, &payloadLen)
		if reasonLen > ingest.MaxReasonBytes {
			t.Errorf("%s: reason of %d bytes stored, want at most %d", p.name, reasonLen, ingest.MaxReasonBytes)
		}
		m := dlq[i]
		size := len(m.Key) + len(m.Value)
		hdr := map[string]string{}
		for _, hd := range m.Headers {
			size += len(hd.Key) + len(hd.Value)
			hdr[hd.Key] = string(hd.Value)
		}
		if size >= brokerLimit || hdr[ingest.HeaderOffset] != fmt.Sprint(offset) || len(hdr[ingest.HeaderReason]) > ingest.MaxReasonBytes {
			t.Errorf("%s: dead letter of %d bytes at source offset %s with a reason of %d bytes", p.name, size, hdr[ingest.HeaderOffset], len(hdr[ingest.HeaderReason]))
		}
		if (hdr[ingest.HeaderTruncated] == "true") != p.truncated || (p.truncated && hdr[ingest.HeaderOriginalBytes] != fmt.Sprint(len(p.value))) {
			t.Errorf("%s: truncated %q, original bytes %q; want truncated %v of %d", p.name, hdr[ingest.HeaderTruncated],
				hdr[ingest.HeaderOriginalBytes], p.truncated, len(p.value))
		}
		if !p.truncated && string(m.Value) != p.value {
			t.Errorf("%s: payload cut to %d bytes, want it whole", p.name, len(m.Value))
		}
		if payloadLen != len(m.Value) {
			t.Errorf("%s: dead_letters holds %d payload bytes, the topic %d", p.name, payloadLen, len(m.Value))
		}
	}
	if got := counter(t, reg, "opsmetrics_ingest_dead_letters_total", map[string]string{}); got != float64(len(poison)) {
		t.Errorf("dead letters counted: %v, want %d", got, len(poison))
	}
	if got := committedOffsets(t, h, "poison"); got != int64(len(msgs)) {
		t.Errorf("committed offsets add up to %d, want %d", got, len(msgs))
	}

	// A dead-letter topic that refuses even a bare dead letter.
	h.setTopicConfig(h.cfg.Topics.DeadLetter, "max.message.bytes", "256")
	h.produceLarge(kafka.Message{Topic: topic, Value: []byte(deploymentJSON("p-4", "exploded", ""))},
		kafka.Message{Topic: topic, Value: []byte(deploymentJSON("good-after", "success", ""))})
	reg = h.ingestUntilIdle("poison")
	if n := testenv.Count(t, h.st, "SELECT count() FROM deployments WHERE deployment_id = 'd-good-after'"); n != 1 {
		t.Errorf("the good event after an unpublishable dead letter: %d stored, want 1", n)
	}
	rows := testenv.Rows(t, h.st, "SELECT reason FROM dead_letters WHERE offset = ?", int64(len(msgs)))
	if len(rows) != 1 || !strings.Contains(rows[0], "not published to the dead-letter topic") {
		t.Errorf("unpublishable dead letter: dead_letters %q, want its reason to say it was not published", rows)
	}
	if got := sumCounter(t, reg, "opsmetrics_ingest_dead_letter_publish_failures_total"); got != 1 {
		t.Errorf("publish failures counted: %v, want 1", got)
	}
	if got := committedOffsets(t, h, "poison"); got != int64(len(msgs)+2) {
		t.Errorf("committed offsets add up to %d, want %d", got, len(msgs)+2)
	}
}
