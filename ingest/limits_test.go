package ingest

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// TestDeadLetterFits builds the dead letters of hostile messages and checks
// that each fits the dead-letter topic's limit with room for the record's
// framing, that the reason is bounded, and that what was cut is marked.
func TestDeadLetterFits(t *testing.T) {
	big := func(n int) []byte { return []byte(strings.Repeat("x", n)) }
	cases := []struct {
		name                 string
		limit                int // the dead-letter topic's max.message.bytes
		key, value           []byte
		headers              []kafka.Header
		detail               string
		wantTruncated        bool
		wantDroppedHeaders   int
		wantPayloadUntouched bool
	}{
		{"small", 1048588, []byte("k"), big(100), []kafka.Header{{Key: "content-type", Value: []byte("application/json")}}, "bad", false, 0, true},
		{"700 KB value quoted in the reason", 1048588, nil, big(700 << 10), nil, "status " + string(big(700<<10)) + " is not a status", false, 0, true},
		{"300 bytes under the broker's limit", 1048588, nil, big(1048588 - 300), nil, "bad", true, 0, false},
		{"oversized, default-limit topic", 1048588, nil, big(2 << 20), nil, "payload is too large", true, 0, false},
		{"huge header", 1048588, nil, big(1000), []kafka.Header{{Key: "ce_id", Value: []byte("1")}, {Key: "junk", Value: big(900 << 10)}}, "bad", false, 1, true},
		{"huge key", 1048588, big(500 << 10), big(1000), nil, "bad", true, 0, true},
		{"small topic", 16 << 10, nil, big(64 << 10), nil, "bad", true, 0, false},
	}
	for _, c := range cases {
		in := &Ingester{cfg: Config{MaxMessageBytes: 1 << 20}}
		in.limits.deadLetter = c.limit
		m := kafka.Message{Topic: "ops.deployments", Partition: 3, Offset: 42, Key: c.key, Value: c.value, Headers: c.headers}
		d := in.deadLetter(m, event.ReasonInvalidValue, c.detail, time.Now())
		msg := d.message(false)
		size := len(msg.Key) + len(msg.Value)
		hdr := map[string]string{}
		for _, h := range msg.Headers {
			size += len(h.Key) + len(h.Value) + headerOverhead
			hdr[h.Key] = string(h.Value)
		}
		if size > c.limit-recordOverhead {
			t.Errorf("%s: dead letter of %d bytes, want at most %d (limit %d less framing)", c.name, size, c.limit-recordOverhead, c.limit)
		}
		if len(d.Detail) > MaxReasonBytes || !utf8.ValidString(d.Detail) || !strings.HasPrefix(d.Detail, "invalid_value: ") {
			t.Errorf("%s: reason of %d bytes %.60q, want at most %d, valid UTF-8, with its code", c.name, len(d.Detail), d.Detail, MaxReasonBytes)
		}
		if (hdr[HeaderTruncated] == "true") != c.wantTruncated {
			t.Errorf("%s: truncated header %q, want %v", c.name, hdr[HeaderTruncated], c.wantTruncated)
		}
		if c.wantTruncated && hdr[HeaderOriginalBytes] != fmt.Sprint(len(c.value)) {
			t.Errorf("%s: original size header %q, want %d", c.name, hdr[HeaderOriginalBytes], len(c.value))
		}
		if got := hdr[HeaderDroppedHeaders]; (c.wantDroppedHeaders == 0 && got != "") || (c.wantDroppedHeaders > 0 && got != fmt.Sprint(c.wantDroppedHeaders)) {
			t.Errorf("%s: dropped headers %q, want %d", c.name, got, c.wantDroppedHeaders)
		}
		if c.wantPayloadUntouched && string(msg.Value) != string(c.value) {
			t.Errorf("%s: payload cut to %d bytes, want it whole (%d)", c.name, len(msg.Value), len(c.value))
		}
		if hdr[HeaderOffset] != "42" || hdr[HeaderPartition] != "3" || hdr[HeaderTopic] != "ops.deployments" {
			t.Errorf("%s: source headers %v", c.name, hdr)
		}
		bare := d.message(true)
		if len(bare.Value) != 0 || len(bare.Key) != 0 {
			t.Errorf("%s: bare dead letter keeps %d payload bytes", c.name, len(bare.Value))
		}
	}
}

func TestExcerpt(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{strings.Repeat("a", 100), 40, strings.Repeat("a", 20) + "… (80 bytes more)"},
		{strings.Repeat("é", 50), 30, strings.Repeat("é", 5) + "… (90 bytes more)"},
	} {
		got := excerpt(c.in, c.n)
		if got != c.want || len(got) > c.n || !utf8.ValidString(got) {
			t.Errorf("excerpt(%.20q, %d) = %q (%d bytes), want %q", c.in, c.n, got, len(got), c.want)
		}
	}
}

// TestMemoryPlan checks how the budget is divided, and that what the plan
// can hold fits in it when the topics' limits allow.
func TestMemoryPlan(t *testing.T) {
	for _, c := range []struct {
		name                  string
		budget                int64
		message, parts, batch int
		wantQueue             int
		wantBatchBytes        int64
		wantFits              bool
	}{
		// (256 - 64) MiB of heap, two thirds of it less 16 MiB live: 112
		// MiB. A quarter (28 MiB) for the reader: 27 messages, one per
		// partition and 3 queued; a fifth of the other 84 MiB for a batch
		// (it is held in 5 copies: 2 filling, 3 writing).
		{"defaults", 256 << 20, 1048588, 24, 10000, 27 - 24, (112<<20-27*1048588)/5 - 1048588, true},
		{"small messages still queue at most 1000", 256 << 20, 16 << 10, 24, 10000, 1000, (112<<20-1024*16<<10)/5 - 16<<10, true},
		{"batch size bounds the queue", 256 << 20, 1 << 20, 4, 10, 10, (112<<20-14<<20)/5 - 1<<20, true},
		{"topic allows 16 MiB messages on 48 partitions", 256 << 20, 16 << 20, 48, 10000, 1, 1 << 20, false},
		// 27962026 bytes live; the reader needs 13 MiB for one message per
		// partition and one queued, more than a quarter.
		{"minimum budget", 128 << 20, 1 << 20, 12, 10000, 1, (27962026-13<<20)/5 - 1<<20, true},
	} {
		p := planMemory(c.budget, c.message, c.parts, c.batch)
		if p.queue != c.wantQueue || p.batchBytes != c.wantBatchBytes {
			t.Errorf("%s: queue %d, batch bytes %d; want %d, %d", c.name, p.queue, p.batchBytes, c.wantQueue, c.wantBatchBytes)
		}
		if fits := p.worstCase <= p.live; fits != c.wantFits {
			t.Errorf("%s: worst case %d of %d live, fits %v, want %v", c.name, p.worstCase, p.live, fits, c.wantFits)
		}
		if p.live+nonHeapBytes+heapReserve > c.budget {
			t.Errorf("%s: plans %d bytes live, more than the budget %d allows", c.name, p.live, c.budget)
		}
	}
}

// TestHealth: failing operations make the ingester not ready after a grace
// period, and a partition with lag whose committed offset does not move
// stalls it after stallAfter; progress or catching up clears it.
func TestHealth(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	h := newHealth(30 * time.Second)
	if err := h.ready(t0); err == nil || !strings.Contains(err.Error(), "starting") {
		t.Errorf("before start: %v", err)
	}
	h.start()
	if err := h.ready(t0); err != nil {
		t.Errorf("started: %v", err)
	}
	lags := func(committed ...int64) []partitionLag {
		var ps []partitionLag
		for i, c := range committed {
			ps = append(ps, partitionLag{topic: "ops.changes", partition: i, end: 100, committed: c})
		}
		return ps
	}
	steps := []struct {
		at        time.Duration
		committed []int64
		want      string // "" for ready
	}{
		{0, []int64{10, 100}, ""},
		{20 * time.Second, []int64{10, 100}, ""},
		{31 * time.Second, []int64{10, 100}, "no progress for 31s while 90 messages wait on 1 partitions (ops.changes/0)"},
		{40 * time.Second, []int64{20, 100}, ""}, // it moved
		{75 * time.Second, []int64{20, 100}, "no progress for 35s"},
		{80 * time.Second, []int64{100, 100}, ""}, // caught up
		{200 * time.Second, []int64{100, 100}, ""},
	}
	for _, s := range steps {
		h.observe(lags(s.committed...), t0.Add(s.at))
		err := h.ready(t0.Add(s.at))
		if (s.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), s.want)) {
			t.Errorf("at %v: %v, want %q", s.at, err, s.want)
		}
	}
	h.fail("write", fmt.Errorf("dial tcp 127.0.0.1:9000: connection refused"))
	if err := h.ready(time.Now()); err != nil {
		t.Errorf("a fresh failure is within the grace period: %v", err)
	}
	if err := h.ready(time.Now().Add(failGrace)); err == nil || !strings.Contains(err.Error(), "writing to ClickHouse failing") {
		t.Errorf("a lasting failure: %v", err)
	}
	h.ok("write")
	if err := h.ready(time.Now().Add(failGrace)); err != nil {
		t.Errorf("recovered: %v", err)
	}
	// A fetch error that does not recur is forgotten.
	h.fail("fetch", fmt.Errorf("rebalance in progress"))
	h.expire("fetch", 30*time.Second, time.Now().Add(10*time.Second))
	if err := h.ready(time.Now().Add(20 * time.Second)); err == nil {
		t.Errorf("a fetch error 20s ago, not forgotten after 10s: ready")
	}
	h.expire("fetch", 30*time.Second, time.Now().Add(31*time.Second))
	if err := h.ready(time.Now().Add(31 * time.Second)); err != nil {
		t.Errorf("a fetch error that did not recur for 31s: %v", err)
	}
}
