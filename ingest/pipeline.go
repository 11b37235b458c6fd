package ingest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// The pipeline. Run's fetch loop fetches messages and decodes each as it
// arrives into the filling batch. A full or due batch goes to the writer,
// which claims its event ids, publishes its dead letters and writes its
// rows, then to the committer, which commits its offsets. So fetching and
// decoding the next batch overlap writing this one and committing the one
// before. The stages hand batches on through unbuffered channels: at most
// one batch fills, one is written and one committed (memory.go counts
// them), and a stage that cannot hand on stops the one before it, so while
// ClickHouse is down nothing more is fetched. Batches are written and
// committed one at a time, in the order they were fetched, so each
// partition's committed offset only grows, and a batch is committed only
// once its rows, claims and dead letters are durable.

// batch is messages fetched together, then written and committed as one.
type batch struct {
	msgs    []kafka.Message // in fetch order; dropped once claimed
	records []store.Record  // the decoded events; once claimed, those to write
	dead    []deadLetter
	bytes   int64     // the messages' keys, values and headers
	firstAt time.Time // when the first was fetched
	// last is each partition's last message, without key, value and
	// headers: what the commit and the lag metric need.
	last []kafka.Message
	// stored counts the events written, by kind, once the events are let go.
	stored map[event.Kind]int
	owners owners
	n      int // messages
	span   trace.Span
}

// add decodes m into the batch: an event to store, a dead letter, or a
// skipped message.
func (in *Ingester) add(b *batch, m kafka.Message) {
	if b.n == 0 {
		b.firstAt = time.Now()
	}
	b.msgs = append(b.msgs, m)
	b.n++
	b.bytes += messageBytes(m)
	e, err := in.decoder.Decode(event.Message{Topic: m.Topic, Value: m.Value, Headers: eventHeaders(m.Headers)})
	if err == nil {
		in.countDecoded(e)
		b.records = append(b.records, store.NewRecord(e, m.Topic, m.Partition, m.Offset))
		return
	}
	if in.skip(err) {
		return
	}
	var de *event.DecodeError
	if !errors.As(err, &de) {
		de = &event.DecodeError{Reason: event.ReasonInvalidJSON, Detail: err.Error()}
	}
	b.dead = append(b.dead, in.deadLetter(m, de.Reason, de.Detail, time.Now().UTC()))
}

func messageBytes(m kafka.Message) int64 {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

func eventHeaders(hs []kafka.Header) []event.Header {
	out := make([]event.Header, len(hs))
	for j, h := range hs {
		out[j] = event.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// pipeline is the writer and the committer of one consumer group reader.
type pipeline struct {
	toWrite  chan *batch
	toCommit chan *batch
	// work bounds the stages: cancelled to drop what is in flight (the
	// group rejoined) or when the shutdown timeout is over.
	work   context.Context
	cancel context.CancelFunc
	// abandoned is closed when a commit failed for a session timeout; the
	// fetch loop then rejoins the group.
	abandoned   chan struct{}
	abandonOnce sync.Once
	stages      sync.WaitGroup
	// inflight counts the batches handed on and not yet committed or
	// dropped; dropped the batches given up.
	inflight, dropped atomic.Int64
	// gap is set once a batch is given up: no later batch is committed,
	// because that would commit past the messages of the one given up. (A
	// commit with a cancelled context may still go through: kafka-go's
	// CommitMessages selects between the two.)
	gap atomic.Bool
}

func (in *Ingester) startPipeline(work context.Context, r *kafka.Reader) *pipeline {
	p := &pipeline{toWrite: make(chan *batch), toCommit: make(chan *batch), abandoned: make(chan struct{})}
	p.work, p.cancel = context.WithCancel(work)
	p.stages.Go(func() { in.writeStage(p) })
	p.stages.Go(func() { in.commitStage(p, r) })
	return p
}

// send hands b to the writer, waiting while it writes the batch before.
// It returns false when the pipeline stopped taking batches (a commit was
// abandoned, or work is done); b is then dropped.
func (p *pipeline) send(b *batch) bool {
	p.inflight.Add(1)
	select {
	case p.toWrite <- b:
		return true
	case <-p.abandoned:
	case <-p.work.Done():
	}
	p.drop()
	return false
}

func (p *pipeline) drop() {
	p.gap.Store(true)
	p.inflight.Add(-1)
	p.dropped.Add(1)
}

func (p *pipeline) isAbandoned() bool {
	select {
	case <-p.abandoned:
		return true
	default:
		return false
	}
}

// close waits until the batches handed on are committed, or given up when
// work is done.
func (p *pipeline) close() {
	close(p.toWrite)
	p.stages.Wait()
	p.cancel()
}

// abort drops what is in flight and waits for the stages to stop.
func (p *pipeline) abort() {
	p.cancel()
	p.close()
}

// writeStage claims, publishes and writes each batch, retrying until it
// succeeds or work is done, and hands it to the committer.
func (in *Ingester) writeStage(p *pipeline) {
	defer close(p.toCommit)
	for b := range p.toWrite {
		if p.gap.Load() {
			p.drop()
			continue
		}
		if err := in.write(p.work, b); err != nil {
			b.span.RecordError(err)
			b.span.SetStatus(codes.Error, err.Error())
			b.span.End()
			in.log.Warn("batch not written; it will be consumed again", "messages", b.n, "err", err)
			p.drop()
			continue
		}
		select {
		case p.toCommit <- b:
		case <-p.work.Done():
			b.span.End()
			p.drop()
		}
	}
}

// commitStage commits each batch's offsets, in order. A commit abandoned
// (errAbandoned) drops every batch in flight and makes the fetch loop
// rejoin the group, so that the uncommitted messages come again.
func (in *Ingester) commitStage(p *pipeline, r *kafka.Reader) {
	for b := range p.toCommit {
		if p.gap.Load() {
			b.span.End()
			p.drop()
			continue
		}
		err := in.commit(p.work, r, b.last)
		if err != nil {
			b.span.RecordError(err)
			b.span.SetStatus(codes.Error, err.Error())
			b.span.End()
			p.drop()
			if errors.Is(err, errAbandoned) {
				in.log.Warn("offsets not committed; rejoining the group, the uncommitted messages will be consumed again", "messages", b.n)
				p.abandonOnce.Do(func() { close(p.abandoned) })
				p.cancel()
			} else {
				in.log.Warn("batch not committed; it will be consumed again", "messages", b.n, "err", err)
			}
			continue
		}
		in.committed(b)
		p.inflight.Add(-1)
	}
}

// write claims a batch's event ids, publishes its dead letters and writes
// its events and dead letters to ClickHouse, retrying each step with
// backoff until it succeeds or ctx is done. It then keeps of the messages
// only what the commit needs.
func (in *Ingester) write(ctx context.Context, b *batch) error {
	ctx, b.span = in.tracer.Start(ctx, "process "+batchDestination(b.msgs), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(in.spanAttributes(b.msgs)...))
	accepted, err := in.claim(ctx, b.msgs, b.records, &b.dead)
	if err != nil {
		return err
	}
	b.records = accepted
	b.owners = in.fillOwners(b.records)
	b.last = lastOfPartitions(b.msgs)
	b.msgs = nil // the events and dead letters hold what is still needed
	if len(b.dead) > 0 {
		if err := in.retry(ctx, "deadletter", func(ctx context.Context) error { return in.publishDeadLetters(ctx, b.dead) }); err != nil {
			return err
		}
	}
	err = in.retry(ctx, "write", func(ctx context.Context) error { return in.store.Write(ctx, b.records, storeDeadLetters(b.dead)) })
	if err != nil {
		return err
	}
	// What the committer needs: counts, and the dead letters without
	// their payloads.
	b.stored = map[event.Kind]int{}
	for _, r := range b.records {
		b.stored[r.Event.Kind]++
	}
	b.records = nil
	for i := range b.dead {
		b.dead[i].Key, b.dead[i].Payload, b.dead[i].Headers = nil, nil, nil
	}
	return nil
}

// lastOfPartitions is the last message of each partition in msgs, without
// key, value and headers.
func lastOfPartitions(msgs []kafka.Message) []kafka.Message {
	var last []kafka.Message
	at := map[string]int{}
	for _, m := range msgs {
		k := m.Topic + "/" + strconv.Itoa(m.Partition)
		i, ok := at[k]
		if !ok {
			i = len(last)
			at[k] = i
			last = append(last, kafka.Message{})
		}
		last[i] = kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, HighWaterMark: m.HighWaterMark}
	}
	return last
}

// committed records a committed batch in the metrics, the log, the span
// and the health.
func (in *Ingester) committed(b *batch) {
	events := 0
	for k, n := range b.stored {
		in.metrics.stored.WithLabelValues(string(k)).Add(float64(n))
		events += n
	}
	for _, d := range b.dead {
		in.metrics.deadLettered.WithLabelValues(string(d.Reason)).Inc()
		in.log.Warn("dead-lettered message", "topic", d.Topic, "partition", d.Partition, "offset", d.Offset,
			"reason", d.Reason, "detail", d.Detail, "published", d.NotPublished == "")
	}
	keys := make([]string, 0, len(b.last))
	for _, m := range b.last {
		p := strconv.Itoa(m.Partition)
		in.metrics.lag.WithLabelValues(m.Topic, p).Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
		in.metrics.committed.WithLabelValues(m.Topic, p).Set(float64(m.Offset))
		keys = append(keys, m.Topic+"/"+p)
	}
	in.countOwners(b.owners)
	in.health.committed(keys, time.Now())
	in.metrics.batchLatency.Observe(time.Since(b.firstAt).Seconds())
	in.metrics.batchSize.Observe(float64(b.n))
	in.metrics.batchBytes.Observe(float64(b.bytes))
	b.span.SetAttributes(attribute.Int("opsmetrics.events_stored", events), attribute.Int("opsmetrics.dead_letters", len(b.dead)))
	b.span.End()
	in.log.Debug("batch committed", "messages", b.n, "bytes", b.bytes, "events", events, "dead_letters", len(b.dead),
		"took", time.Since(b.firstAt))
}
