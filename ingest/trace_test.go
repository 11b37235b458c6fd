package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestBatchSpan checks that each committed batch emits one CONSUMER span
// with the messaging semantic-convention attributes.
func TestBatchSpan(t *testing.T) {
	h := newHarness(t, 1)
	var msgs []kafka.Message
	for i := range 5 {
		msgs = append(msgs, kafka.Message{Topic: h.Topics.Changes, Value: []byte(fmt.Sprintf(
			`{"kind":"change","event_id":"span-%d","change_id":"sha-%d","service":"search","merged_at":"2026-03-02T10:00:00Z"}`, i, i))})
	}
	h.Produce(msgs...)

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	cfg := h.cfg
	cfg.Group, cfg.UntilIdle, cfg.BatchMaxLatency, cfg.SessionTimeout = "spans", 3*time.Second, 500*time.Millisecond, 6*time.Second
	in, err := ingest.New(cfg, h.Store, testenv.Logger(t), nil, tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) == 0 {
		t.Fatal("no span emitted")
	}
	var messages int64
	for _, s := range spans {
		if s.SpanKind != trace.SpanKindConsumer {
			t.Errorf("span %q kind %v, want consumer", s.Name, s.SpanKind)
		}
		if s.Name != "process "+h.Topics.Changes {
			t.Errorf("span name %q", s.Name)
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes {
			attrs[string(a.Key)] = a.Value.Emit()
			if a.Key == "messaging.batch.message_count" {
				messages += a.Value.AsInt64()
			}
		}
		for k, v := range map[string]string{
			"messaging.system": "kafka", "messaging.operation.type": "process",
			"messaging.destination.name": h.Topics.Changes, "messaging.consumer.group.name": "spans",
			"messaging.destination.partition.id": "0",
		} {
			if attrs[k] != v {
				t.Errorf("span attribute %s = %q, want %q", k, attrs[k], v)
			}
		}
	}
	if messages != 5 {
		t.Errorf("spans cover %d messages, want 5", messages)
	}
}
