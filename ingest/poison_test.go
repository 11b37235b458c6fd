package ingest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

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
	topic := h.Topics.Deployments
	h.SetTopicConfig(topic, "max.message.bytes", fmt.Sprint(4<<20))
	poison := []struct {
		name, value, code string
		truncated         bool
	}{
		{"700 KB invalid status", testenv.DeploymentJSON("p-1", strings.Repeat("s", 700<<10), ""), "invalid_value", false},
		{"300 bytes under the broker's limit", testenv.Padded("p-2", testenv.BrokerMaxMessageBytes-300), "invalid_value", true},
		{"2 MiB, over max_message_bytes", testenv.Padded("p-3", 2<<20), "oversized", true},
	}
	var msgs []kafka.Message
	for i, p := range poison {
		msgs = append(msgs,
			kafka.Message{Topic: topic, Value: []byte(testenv.DeploymentJSON(fmt.Sprintf("good-%d", i), "success", ""))},
			kafka.Message{Topic: topic, Value: []byte(p.value)})
	}
	msgs = append(msgs, kafka.Message{Topic: topic, Value: []byte(testenv.DeploymentJSON("good-last", "success", ""))})
	h.ProduceLarge(msgs...)
	reg := h.ingestUntilIdle("poison")

	if n := testenv.Count(t, h.Store, "SELECT count() FROM deployments WHERE status = 'success'"); n != uint64(len(poison)+1) {
		t.Errorf("good deployments stored: %d, want %d", n, len(poison)+1)
	}
	dlq := h.ConsumeAll(h.Topics.DeadLetter, 1)
	if len(dlq) != len(poison) {
		t.Fatalf("dead-letter topic holds %d messages, want %d", len(dlq), len(poison))
	}
	for i, p := range poison {
		offset := int64(2*i + 1)
		rows := testenv.Rows(t, h.Store, "SELECT reason_code, length(reason), length(payload) FROM dead_letters WHERE offset = ?", offset)
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
		if size >= testenv.BrokerMaxMessageBytes || hdr[ingest.HeaderOffset] != fmt.Sprint(offset) || len(hdr[ingest.HeaderReason]) > ingest.MaxReasonBytes {
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
	if got := testenv.Counter(t, reg, "opsmetrics_ingest_dead_letters_total", map[string]string{}); got != float64(len(poison)) {
		t.Errorf("dead letters counted: %v, want %d", got, len(poison))
	}
	if got := h.CommittedOffsets("poison"); got != int64(len(msgs)) {
		t.Errorf("committed offsets add up to %d, want %d", got, len(msgs))
	}

	// A dead-letter topic that refuses even a bare dead letter.
	h.SetTopicConfig(h.Topics.DeadLetter, "max.message.bytes", "256")
	h.ProduceLarge(kafka.Message{Topic: topic, Value: []byte(testenv.DeploymentJSON("p-4", "exploded", ""))},
		kafka.Message{Topic: topic, Value: []byte(testenv.DeploymentJSON("good-after", "success", ""))})
	reg = h.ingestUntilIdle("poison")
	if n := testenv.Count(t, h.Store, "SELECT count() FROM deployments WHERE deployment_id = 'd-good-after'"); n != 1 {
		t.Errorf("the good event after an unpublishable dead letter: %d stored, want 1", n)
	}
	rows := testenv.Rows(t, h.Store, "SELECT reason FROM dead_letters WHERE offset = ?", int64(len(msgs)))
	if len(rows) != 1 || !strings.Contains(rows[0], "not published to the dead-letter topic") {
		t.Errorf("unpublishable dead letter: dead_letters %q, want its reason to say it was not published", rows)
	}
	if got := testenv.SumCounter(t, reg, "opsmetrics_ingest_dead_letter_publish_failures_total"); got != 1 {
		t.Errorf("publish failures counted: %v, want 1", got)
	}
	if got := h.CommittedOffsets("poison"); got != int64(len(msgs)+2) {
		t.Errorf("committed offsets add up to %d, want %d", got, len(msgs)+2)
	}
}
