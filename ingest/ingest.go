// Package ingest consumes operations events from Kafka and stores them in
// ClickHouse without losing or doubling any.
//
// An Ingester fetches messages with a kafka-go consumer group, decodes them in
// batches, writes the events (and the rejected messages, as dead letters) to
// ClickHouse, publishes the rejected messages to the dead-letter topic, and
// only then commits the batch's offsets. A crash at any point therefore
// replays at most the uncommitted batch, and storage is idempotent by event
// id, so a replay changes nothing. While ClickHouse fails, the ingester
// retries the same batch with backoff and fetches nothing more, so memory is
// bounded by the batch and the reader's queue, not by the backlog.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// Config configures an Ingester.
type Config struct {
	Brokers         []string
	Group           string
	Topics          []string // input topics
	DeadLetterTopic string

	BatchSize       int           // most messages per write
	BatchMaxLatency time.Duration // longest a fetched message waits to be written
	MaxMessageBytes int           // larger payloads are dead-lettered
	MaxFutureSkew   time.Duration // timestamps further ahead are rejected
	RetryMaxBackoff time.Duration // cap of the backoff between retries
	ShutdownTimeout time.Duration // bound on the final flush
	SessionTimeout  time.Duration // consumer group session timeout; 0 means 30s
	// UntilIdle, when positive, makes Run return nil once no message has
	// arrived for that long, everything fetched is committed and the group
	// has no lag left on the input topics.
	UntilIdle time.Duration

	// Dialer, when set, is used for every broker connection (TLS, SASL).
	Dialer *kafka.Dialer
	// Transport, when set, is used by the dead-letter producer.
	Transport kafka.RoundTripper

	// DeadLetterUnused dead-letters valid CDEvents of types opsmetrics does
	// not store instead of skipping them.
	DeadLetterUnused bool
	// EnvironmentAliases maps environment names onto the one they stand
	// for (prod → production) as events are decoded.
	EnvironmentAliases map[string]string
}

// Ingester moves events from Kafka to ClickHouse. Build it with New and run
// it with Run.
type Ingester struct {
	cfg     Config
	store   *store.Store
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer
	decoder event.Decoder
	dlq     *kafka.Writer
}

// New returns an Ingester that writes to st. reg receives its metrics and tp
// its tracing spans; either may be nil.
func New(cfg Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer, tp trace.TracerProvider) (*Ingester, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("ingest: no brokers")
	}
	if len(cfg.Topics) == 0 || cfg.DeadLetterTopic == "" || cfg.Group == "" {
		return nil, errors.New("ingest: topics, dead-letter topic and group are required")
	}
	if cfg.BatchSize <= 0 || cfg.BatchMaxLatency <= 0 || cfg.RetryMaxBackoff <= 0 || cfg.ShutdownTimeout <= 0 {
		return nil, fmt.Errorf("ingest: batch size, batch latency, retry backoff and shutdown timeout must be positive")
	}
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	in := &Ingester{
		cfg:     cfg,
		store:   st,
		log:     log,
		metrics: newMetrics(reg),
		tracer:  tp.Tracer("github.com/opsmetrics/opsmetrics/ingest"),
		decoder: event.Decoder{MaxBytes: cfg.MaxMessageBytes, MaxFutureSkew: cfg.MaxFutureSkew,
			EnvironmentAliases: cfg.EnvironmentAliases, RejectUnused: cfg.DeadLetterUnused},
	}
	in.dlq = &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        cfg.DeadLetterTopic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		// Oversized payloads are truncated before they get here, so the
		// dead-letter topic never refuses a message for its size.
		BatchBytes: int64(cfg.MaxMessageBytes) + 64<<10,
		Transport:  cfg.Transport,
	}
	return in, nil
}

// Run consumes until ctx is cancelled (then it writes and commits what it
// has fetched, within the shutdown timeout, and returns nil), until it has
// been idle for Config.UntilIdle, or until an unrecoverable error.
func (in *Ingester) Run(ctx context.Context) error {
	defer in.dlq.Close()
	sessionTimeout := in.cfg.SessionTimeout
	if sessionTimeout == 0 {
		sessionTimeout = 30 * time.Second
	}
	maxBytes := 4*in.cfg.MaxMessageBytes + 1<<20
	rcfg := kafka.ReaderConfig{
		Brokers:           in.cfg.Brokers,
		GroupID:           in.cfg.Group,
		GroupTopics:       in.cfg.Topics,
		Dialer:            in.cfg.Dialer,
		StartOffset:       kafka.FirstOffset,
		MinBytes:          1,
		MaxBytes:          maxBytes,
		MaxWait:           250 * time.Millisecond,
		QueueCapacity:     min(in.cfg.BatchSize, 1000),
		CommitInterval:    0, // synchronous: CommitMessages returns once committed
		SessionTimeout:    sessionTimeout,
		RebalanceTimeout:  sessionTimeout,
		HeartbeatInterval: sessionTimeout / 10,
		JoinGroupBackoff:  time.Second,
		ReadBackoffMax:    time.Second,
		ErrorLogger:       kafka.LoggerFunc(func(msg string, args ...any) { in.log.Debug("kafka: " + fmt.Sprintf(msg, args...)) }),
	}
	r := kafka.NewReader(rcfg)
	defer func() { r.Close() }()

	in.log.Info("ingesting", "topics", in.cfg.Topics, "group", in.cfg.Group, "batch_size", in.cfg.BatchSize,
		"batch_max_latency", in.cfg.BatchMaxLatency)
	var (
		batch      = make([]kafka.Message, 0, in.cfg.BatchSize)
		firstAt    time.Time // when the batch's first message was fetched
		lastActive = time.Now()
		// The group watchdog: when this reader has nothing to do while the
		// group's lag stays the same, nobody is consuming the lagging
		// partitions. kafka-go readers can stall so after a rebalance
		// (segmentio/kafka-go#955); rejoining the group recovers them. A
		// quiet reader checks every --until-idle, or every session timeout.
		idleCheck = sessionTimeout
		stalled   stall
	)
	if in.cfg.UntilIdle > 0 {
		idleCheck = in.cfg.UntilIdle
	}
	for {
		var deadline time.Time
		if len(batch) > 0 {
			deadline = firstAt.Add(in.cfg.BatchMaxLatency)
		}
		if idle := lastActive.Add(idleCheck); deadline.IsZero() || idle.Before(deadline) {
			deadline = idle
		}
		fctx, cancel := ctx, context.CancelFunc(func() {})
		if !deadline.IsZero() {
			fctx, cancel = context.WithDeadline(ctx, deadline)
		}
		m, err := r.FetchMessage(fctx)
		cancel()
		switch {
		case err == nil:
			if len(batch) == 0 {
				firstAt = time.Now()
			}
			lastActive = time.Now()
			batch = append(batch, m)
			in.metrics.consumed.WithLabelValues(m.Topic).Inc()
			if len(batch) >= in.cfg.BatchSize {
				if err := in.flush(ctx, r, batch, firstAt); err != nil {
					return in.stop(r, batch, firstAt, err)
				}
				batch = batch[:0]
			}
		case ctx.Err() != nil:
			return in.stop(r, batch, firstAt, nil)
		case errors.Is(err, context.DeadlineExceeded):
			now := time.Now()
			if len(batch) > 0 && !now.Before(firstAt.Add(in.cfg.BatchMaxLatency)) {
				if err := in.flush(ctx, r, batch, firstAt); err != nil {
					return in.stop(r, batch, firstAt, err)
				}
				batch = batch[:0]
				lastActive = now
			}
			if len(batch) == 0 && !now.Before(lastActive.Add(idleCheck)) {
				// Quiet is not idle while the group still has messages to
				// read, for example while a rebalance holds the partitions.
				lag, err := in.groupLag(ctx)
				if err == nil && lag == 0 && in.cfg.UntilIdle > 0 {
					in.log.Info("idle, stopping", "idle_for", in.cfg.UntilIdle)
					return nil
				}
				if err == nil && lag > 0 && in.cfg.UntilIdle > 0 {
					in.log.Info("quiet but not caught up; going on", "lag", lag)
				}
				if stalled.observe(lag, err, now) >= 3*sessionTimeout {
					in.log.Warn("the group has lag that nobody consumes; rejoining it", "lag", lag, "stalled_for", now.Sub(stalled.since))
					in.metrics.errors.WithLabelValues("stalled").Inc()
					r.Close()
					r = kafka.NewReader(rcfg)
					stalled = stall{}
				}
				lastActive = now
			}
		default:
			// kafka-go retries broker errors itself; what reaches us ends the
			// reader (for example, it was closed). Nothing fetched after the
			// last commit is lost: it will be fetched again.
			in.metrics.errors.WithLabelValues("fetch").Inc()
			return in.stop(r, batch, firstAt, fmt.Errorf("fetch from kafka: %w", err))
		}
	}
}

// groupLag returns how many messages of the input topics the group has not
// committed yet.
func (in *Ingester) groupLag(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(in.cfg.Brokers...), Transport: in.cfg.Transport}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: in.cfg.Topics})
	if err != nil {
		return 0, err
	}
	ends := map[string][]kafka.OffsetRequest{}
	parts := map[string][]int{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return 0, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			ends[t.Name] = append(ends[t.Name], kafka.LastOffsetOf(p.ID))
			parts[t.Name] = append(parts[t.Name], p.ID)
		}
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
	if err != nil {
		return 0, err
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: in.cfg.Group, Topics: parts})
	if err != nil {
		return 0, err
	}
	if committed.Error != nil {
		return 0, committed.Error
	}
	done := map[string]int64{}
	for topic, ps := range committed.Topics {
		for _, p := range ps {
			done[topic+"/"+strconv.Itoa(p.Partition)] = max(p.CommittedOffset, 0)
		}
	}
	var lag int64
	for topic, ps := range offs.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return 0, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error)
			}
			lag += max(p.LastOffset-done[topic+"/"+strconv.Itoa(p.Partition)], 0)
		}
	}
	return lag, nil
}

// stop writes and commits what was fetched, within the shutdown timeout, and
// returns cause.
func (in *Ingester) stop(r *kafka.Reader, batch []kafka.Message, firstAt time.Time, cause error) error {
	if len(batch) > 0 && (cause == nil || errors.Is(cause, context.Canceled)) {
		ctx, cancel := context.WithTimeout(context.Background(), in.cfg.ShutdownTimeout)
		defer cancel()
		if err := in.flush(ctx, r, batch, firstAt); err != nil {
			in.log.Warn("final batch not committed; it will be consumed again", "messages", len(batch), "err", err)
			return nil
		}
		in.log.Info("final batch committed", "messages", len(batch))
	}
	if errors.Is(cause, context.Canceled) {
		return nil
	}
	return cause
}

// flush stores a batch, publishes its dead letters and commits its offsets,
// retrying each step with backoff until it succeeds or ctx is done.
func (in *Ingester) flush(ctx context.Context, r *kafka.Reader, batch []kafka.Message, firstAt time.Time) error {
	ctx, span := in.tracer.Start(ctx, "process "+batchDestination(batch), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(in.spanAttributes(batch)...))
	defer span.End()

	records, dead := in.decode(batch)
	err := in.retry(ctx, "write", func(ctx context.Context) error { return in.store.Write(ctx, records, dead) })
	if err == nil && len(dead) > 0 {
		err = in.retry(ctx, "deadletter", func(ctx context.Context) error { return in.publishDeadLetters(ctx, dead) })
	}
	if err == nil {
		err = in.retry(ctx, "commit", func(ctx context.Context) error { return r.CommitMessages(ctx, batch...) })
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}

	for _, rec := range records {
		in.metrics.stored.WithLabelValues(string(rec.Event.Kind)).Inc()
	}
	for _, d := range dead {
		in.metrics.deadLettered.WithLabelValues(string(d.Reason)).Inc()
		in.log.Warn("dead-lettered message", "topic", d.Topic, "partition", d.Partition, "offset", d.Offset,
			"reason", d.Reason, "detail", d.Detail)
	}
	last := map[string]kafka.Message{}
	for _, m := range batch {
		last[m.Topic+"/"+strconv.Itoa(m.Partition)] = m
	}
	for _, m := range last {
		p := strconv.Itoa(m.Partition)
		in.metrics.lag.WithLabelValues(m.Topic, p).Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
		in.metrics.committed.WithLabelValues(m.Topic, p).Set(float64(m.Offset))
	}
	in.metrics.batchLatency.Observe(time.Since(firstAt).Seconds())
	in.metrics.batchSize.Observe(float64(len(batch)))
	span.SetAttributes(attribute.Int("opsmetrics.events_stored", len(records)), attribute.Int("opsmetrics.dead_letters", len(dead)))
	in.log.Debug("batch committed", "messages", len(batch), "events", len(records), "dead_letters", len(dead),
		"took", time.Since(firstAt))
	return nil
}

// decode decodes a batch, spread over the available cores (decoding is most
// of the ingester's CPU time), and keeps the batch's order.
func (in *Ingester) decode(batch []kafka.Message) ([]store.Record, []store.DeadLetter) {
	type result struct {
		e       *event.Event
		err     error
		headers []event.Header
	}
	results := make([]result, len(batch))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(batch)/256))
	chunk := (len(batch) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(batch); lo += chunk {
		hi := min(lo+chunk, len(batch))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				m := batch[i]
				headers := make([]event.Header, len(m.Headers))
				for j, h := range m.Headers {
					headers[j] = event.Header{Key: h.Key, Value: h.Value}
				}
				e, err := in.decoder.Decode(event.Message{Topic: m.Topic, Value: m.Value, Headers: headers})
				results[i] = result{e, err, headers}
			}
		})
	}
	wg.Wait()

	records := make([]store.Record, 0, len(batch))
	var dead []store.DeadLetter
	now := time.Now().UTC()
	for i, m := range batch {
		r := results[i]
		if r.err == nil {
			in.countDecoded(r.e)
			records = append(records, store.Record{Event: r.e, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
			continue
		}
		if in.skip(r.err) {
			continue
		}
		var de *event.DecodeError
		if !errors.As(r.err, &de) {
			de = &event.DecodeError{Reason: event.ReasonInvalidJSON, Detail: r.err.Error()}
		}
		payload := m.Value
		if len(payload) > in.cfg.MaxMessageBytes {
			payload = payload[:in.cfg.MaxMessageBytes]
		}
		dead = append(dead, store.DeadLetter{
			Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
			Key: m.Key, Payload: payload, Headers: r.headers,
			Reason: de.Reason, Detail: de.Error(), At: now,
		})
	}
	return records, dead
}

// Dead-letter headers. The original headers are kept as they were.
const (
	HeaderReason     = "opsmetrics-reason"      // the full reason, as in dead_letters.reason
	HeaderReasonCode = "opsmetrics-reason-code" // the short code, as in the metric label
	HeaderTopic      = "opsmetrics-source-topic"
	HeaderPartition  = "opsmetrics-source-partition"
	HeaderOffset     = "opsmetrics-source-offset"
	HeaderTruncated  = "opsmetrics-truncated" // "true" when the payload was cut to max_message_bytes
)

func (in *Ingester) publishDeadLetters(ctx context.Context, dead []store.DeadLetter) error {
	msgs := make([]kafka.Message, len(dead))
	for i, d := range dead {
		hs := make([]kafka.Header, 0, len(d.Headers)+6)
		for _, h := range d.Headers {
			hs = append(hs, kafka.Header{Key: h.Key, Value: h.Value})
		}
		hs = append(hs,
			kafka.Header{Key: HeaderReason, Value: []byte(d.Detail)},
			kafka.Header{Key: HeaderReasonCode, Value: []byte(d.Reason)},
			kafka.Header{Key: HeaderTopic, Value: []byte(d.Topic)},
			kafka.Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(d.Partition))},
			kafka.Header{Key: HeaderOffset, Value: []byte(strconv.FormatInt(d.Offset, 10))},
		)
		if d.Reason == event.ReasonOversized {
			hs = append(hs, kafka.Header{Key: HeaderTruncated, Value: []byte("true")})
		}
		msgs[i] = kafka.Message{Key: d.Key, Value: d.Payload, Headers: hs}
	}
	return in.dlq.WriteMessages(ctx, msgs...)
}

// retry runs op until it succeeds or ctx is done, with capped exponential
// backoff and jitter. Each failure is counted and logged.
func (in *Ingester) retry(ctx context.Context, name string, op func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			if attempt > 1 {
				in.log.Info("recovered", "op", name, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %w)", name, err, ctx.Err())
		}
		in.metrics.errors.WithLabelValues(name).Inc()
		wait := backoff/2 + rand.N(backoff/2+1)
		in.log.Warn("retrying", "op", name, "attempt", attempt, "backoff", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (gave up: %w)", name, err, ctx.Err())
		case <-time.After(wait):
		}
		backoff = min(backoff*2, in.cfg.RetryMaxBackoff)
	}
}

func batchDestination(batch []kafka.Message) string {
	t := batch[0].Topic
	for _, m := range batch[1:] {
		if m.Topic != t {
			return "(multiple topics)"
		}
	}
	return t
}

func (in *Ingester) spanAttributes(batch []kafka.Message) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.operation.name", "process"),
		attribute.String("messaging.consumer.group.name", in.cfg.Group),
		attribute.Int("messaging.batch.message_count", len(batch)),
	}
	if d := batchDestination(batch); d != "(multiple topics)" {
		attrs = append(attrs, attribute.String("messaging.destination.name", d))
		samePartition := true
		for _, m := range batch[1:] {
			samePartition = samePartition && m.Partition == batch[0].Partition
		}
		if samePartition {
			attrs = append(attrs,
				attribute.String("messaging.destination.partition.id", strconv.Itoa(batch[0].Partition)),
				attribute.Int64("messaging.kafka.offset", batch[0].Offset))
		}
	}
	return attrs
}

// ConfigFrom takes the ingestion settings from the process configuration.
func ConfigFrom(c *config.Config) Config {
	return Config{
		Brokers:         c.Brokers,
		Group:           c.Group,
		Topics:          c.Topics.Inputs(),
		DeadLetterTopic: c.Topics.DeadLetter,
		BatchSize:       c.Ingest.BatchSize,
		BatchMaxLatency: c.Ingest.BatchMaxLatency,
		MaxMessageBytes: c.Ingest.MaxMessageBytes,
		MaxFutureSkew:   c.Ingest.MaxFutureSkew,
		RetryMaxBackoff: c.Ingest.RetryMaxBackoff,
		ShutdownTimeout: c.Ingest.ShutdownTimeout,
		SessionTimeout:  c.Ingest.SessionTimeout,

		DeadLetterUnused:   c.Ingest.DeadLetterUnused,
		EnvironmentAliases: c.Ingest.Aliases(),
	}
}

// stall tracks how long the group's lag has stayed the same, above zero,
// while this reader had nothing to fetch.
type stall struct {
	lag   int64
	since time.Time
}

// observe records a lag reading and returns for how long the lag has been
// stuck at that value.
func (s *stall) observe(lag int64, err error, now time.Time) time.Duration {
	if err != nil || lag == 0 || lag != s.lag || s.since.IsZero() {
		*s = stall{lag: lag, since: now}
		if err != nil || lag == 0 {
			s.since = time.Time{}
		}
		return 0
	}
	return now.Sub(s.since)
}

// Reachable reports whether the brokers answer a metadata request for the
// input topics.
func (c Config) Reachable(ctx context.Context) error {
	client := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Transport: c.Transport, Timeout: 5 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: c.Topics})
	if err != nil {
		return err
	}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
	}
	return nil
}
