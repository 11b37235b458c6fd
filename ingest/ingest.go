// Package ingest consumes operations events from Kafka and stores them in
// ClickHouse without losing or doubling any.
//
// An Ingester fetches messages with a kafka-go consumer group, decodes them in
// batches, claims their event ids (so that an id means one content), publishes
// the rejected messages to the dead-letter topic, writes the events and the
// dead letters to ClickHouse, and only then commits the batch's offsets. A
// crash at any point therefore replays at most the uncommitted batch, and
// storage is idempotent by event id, so a replay changes nothing.
//
// No message can stop it: a dead letter is cut to what the dead-letter topic
// accepts, and one that still cannot be published is recorded in ClickHouse
// and committed. No dependency can stop it either: while Kafka or ClickHouse
// fails, it retries with backoff and fetches nothing more, and Ready says
// why it makes no progress. Its memory is bounded by a budget in bytes
// (memory.go), whatever the size of the messages and of the backlog.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// Config configures an Ingester. The tagged fields are the configuration
// file's ingest section; the others come from its top level (brokers,
// kafka, group, topics: SetKafka) or from the command.
type Config struct {
	Brokers         []string `yaml:"-"`
	Group           string   `yaml:"-"`
	Topics          []string `yaml:"-"` // input topics
	DeadLetterTopic string   `yaml:"-"`

	BatchSize       int           `yaml:"batch_size"`        // most messages per write
	BatchMaxLatency time.Duration `yaml:"batch_max_latency"` // longest a fetched message waits to be written
	MaxMessageBytes int           `yaml:"max_message_bytes"` // larger payloads are dead-lettered
	MaxFutureSkew   time.Duration `yaml:"max_future_skew"`   // timestamps further ahead are rejected
	RetryMaxBackoff time.Duration `yaml:"retry_max_backoff"` // cap of the backoff between retries
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`  // bound on the final flush
	SessionTimeout  time.Duration `yaml:"session_timeout"`   // consumer group session timeout; 0 means 30s
	// MemoryBudget bounds, in bytes, what the ingester holds: fetched,
	// queued, decoded and batched messages (memory.go). 0 means 256 MiB.
	MemoryBudget int64 `yaml:"memory_budget_bytes"`
	// DeadLetterMaxBytes bounds a dead-letter record when the dead-letter
	// topic's max.message.bytes cannot be read. 0 means Kafka's default,
	// 1048588.
	DeadLetterMaxBytes int `yaml:"dead_letter_max_bytes"`
	// LagInterval is how often the group's lag is read and exported, and
	// progress checked. 0 means 10s.
	LagInterval time.Duration `yaml:"-"`
	// UntilIdle, when positive, makes Run return nil once no message has
	// arrived for that long, everything fetched is committed and the group
	// has no lag left on the input topics.
	UntilIdle time.Duration `yaml:"-"`

	// Dialer, when set, is used for every broker connection (TLS, SASL).
	Dialer *kafka.Dialer `yaml:"-"`
	// Transport, when set, is used by the dead-letter producer and the
	// lag, configuration and readiness requests.
	Transport kafka.RoundTripper `yaml:"-"`

	// DeadLetterUnused dead-letters valid CDEvents of types opsmetrics does
	// not store instead of skipping them.
	DeadLetterUnused bool `yaml:"dead_letter_unused"`
	// EnvironmentAliases maps environment names onto the one they stand
	// for (prod → production) as events are decoded. Names are compared
	// without regard to case.
	EnvironmentAliases map[string]string `yaml:"environment_aliases"`
	// Catalog, when set, returns the current service catalog (a
	// catalog.Watcher's Catalog): events without a team take their
	// service's owner from it, and those whose team differs are counted
	// (owners.go). It is called once per batch.
	Catalog func() *catalog.Catalog `yaml:"-"`
}

// Defaults of the optional settings.
const (
	DefaultMemoryBudget       = 256 << 20
	DefaultDeadLetterMaxBytes = 1048588 // Kafka's default max.message.bytes
	defaultLagInterval        = 10 * time.Second
	defaultSessionTimeout     = 30 * time.Second
)

// Ingester moves events from Kafka to ClickHouse. Build it with New and run
// it with Run.
type Ingester struct {
	cfg     Config
	store   *store.Store
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer
	decoder event.Decoder
	health  *health
	limits  limits
	dlq     *kafka.Writer // set by Run once the dead-letter topic's limit is known
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
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = defaultSessionTimeout
	}
	if cfg.MemoryBudget == 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	if cfg.MemoryBudget < MinMemoryBudget {
		return nil, fmt.Errorf("ingest: memory budget %d bytes is below the minimum of %d", cfg.MemoryBudget, MinMemoryBudget)
	}
	if cfg.DeadLetterMaxBytes == 0 {
		cfg.DeadLetterMaxBytes = DefaultDeadLetterMaxBytes
	}
	if cfg.LagInterval == 0 {
		cfg.LagInterval = defaultLagInterval
	}
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return &Ingester{
		cfg:     cfg,
		store:   st,
		log:     log,
		metrics: newMetrics(reg),
		tracer:  tp.Tracer("github.com/opsmetrics/opsmetrics/ingest"),
		decoder: event.Decoder{MaxBytes: cfg.MaxMessageBytes, MaxFutureSkew: cfg.MaxFutureSkew,
			EnvironmentAliases: cfg.Aliases(), RejectUnused: cfg.DeadLetterUnused},
		health: newHealth(3 * cfg.SessionTimeout),
	}, nil
}

// Ready reports whether the ingester makes progress: nil, or why not
// (Kafka or ClickHouse failing, or the group's lag not moving).
func (in *Ingester) Ready() error { return in.health.ready(time.Now()) }

// errAbandoned ends a batch whose offsets could not be committed: the group
// will hand its messages out again, and storing them again is harmless.
var errAbandoned = errors.New("batch abandoned")

// Run consumes until ctx is cancelled (then it writes and commits what it
// has fetched, within the shutdown timeout, and returns nil), or until it
// has been idle for Config.UntilIdle. Failures of Kafka and ClickHouse are
// retried, never returned.
func (in *Ingester) Run(ctx context.Context) error {
	mctx, stopMonitor := context.WithCancel(ctx)
	defer stopMonitor()
	if err := in.discover(ctx); err != nil {
		return nil // cancelled while waiting for Kafka
	}
	var wg sync.WaitGroup
	wg.Go(func() { in.monitor(mctx) })
	defer wg.Wait()
	defer stopMonitor()

	in.dlq = in.deadLetterWriter()
	defer in.dlq.Close()
	plan := in.plan()
	rcfg := in.readerConfig(plan)

	in.log.Info("ingesting", "topics", in.cfg.Topics, "group", in.cfg.Group, "batch_size", in.cfg.BatchSize,
		"batch_max_latency", in.cfg.BatchMaxLatency, "memory_budget", in.cfg.MemoryBudget, "batch_max_bytes", plan.batchBytes,
		"queue_capacity", plan.queue, "max_message_bytes_on_topics", plan.messageBytes, "partitions", plan.partitions,
		"dead_letter_max_bytes", in.limits.deadLetterBytes())
	if plan.worstCase > plan.live {
		in.log.Warn("the memory budget cannot hold one message of the largest size the input topics accept per partition; "+
			"raise --memory-budget or lower the topics' max.message.bytes",
			"memory_budget", plan.budget, "live_bytes_needed", plan.worstCase, "live_bytes_planned", plan.live,
			"partitions", plan.partitions, "max_message_bytes", plan.messageBytes)
	}
	// The pipeline's work outlives ctx by the shutdown timeout, to write
	// and commit what was fetched.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(in.cfg.ShutdownTimeout, stopWork) })
	defer stopAfter()
	for {
		r := kafka.NewReader(rcfg)
		rejoin := in.consume(ctx, work, r, plan)
		r.Close()
		if !rejoin {
			return nil
		}
	}
}

// consume fetches from r into a pipeline until ctx is done (then it hands
// on what it fetched and waits until that is committed or the shutdown
// timeout is over) or Config.UntilIdle says to stop, and returns false; or
// until the group must be rejoined with a new reader, and returns true.
func (in *Ingester) consume(ctx, work context.Context, r *kafka.Reader, plan memoryPlan) (rejoin bool) {
	p := in.startPipeline(work, r)
	var (
		b          = &batch{}
		lastActive = time.Now()
		// The group watchdog: when this reader has nothing to do while the
		// group's lag stays the same, nobody is consuming the lagging
		// partitions. kafka-go readers can stall so after a rebalance
		// (segmentio/kafka-go#955); rejoining the group recovers them. A
		// quiet reader checks every --until-idle, or every session timeout.
		idleCheck  = in.cfg.SessionTimeout
		stalled    stall
		fetchFails int
		fetchCtx   = deadlineContext{parent: ctx}
	)
	defer fetchCtx.stop()
	if in.cfg.UntilIdle > 0 {
		idleCheck = in.cfg.UntilIdle
	}
	// abort drops what is in flight; the group is rejoined unless ctx is
	// done.
	abort := func() bool {
		p.abort()
		return ctx.Err() == nil
	}
	// send hands the batch on; false means the pipeline stopped taking
	// batches.
	send := func() bool {
		next := &batch{msgs: make([]kafka.Message, 0, cap(b.msgs)), records: make([]store.Record, 0, cap(b.records))}
		ok := p.send(b)
		b = next
		return ok
	}
	for {
		var deadline time.Time
		if b.n > 0 {
			deadline = b.firstAt.Add(in.cfg.BatchMaxLatency)
		}
		if idle := lastActive.Add(idleCheck); deadline.IsZero() || idle.Before(deadline) {
			deadline = idle
		}
		m, err := r.FetchMessage(fetchCtx.until(deadline))
		switch {
		case err == nil:
			if fetchFails > 0 {
				in.log.Info("fetching again", "failed_attempts", fetchFails)
				fetchFails = 0
			}
			in.health.ok("fetch")
			lastActive = time.Now()
			in.add(b, m)
			in.metrics.consumed.WithLabelValues(m.Topic).Inc()
			if (b.n >= in.cfg.BatchSize || b.bytes >= plan.batchBytes) && !send() {
				return abort()
			}
		case ctx.Err() != nil:
			in.finish(p, b)
			return false
		case p.isAbandoned():
			return abort()
		case errors.Is(err, context.DeadlineExceeded):
			now := time.Now()
			in.health.expire("fetch", 30*time.Second, now)
			if b.n > 0 && !now.Before(b.firstAt.Add(in.cfg.BatchMaxLatency)) {
				if !send() {
					return abort()
				}
				lastActive = now
			}
			if b.n == 0 && p.inflight.Load() == 0 && !now.Before(lastActive.Add(idleCheck)) {
				// Quiet is not idle while the group still has messages to
				// read, for example while a rebalance holds the partitions.
				lag, err := in.groupLag(ctx)
				if err == nil && lag == 0 && in.cfg.UntilIdle > 0 {
					in.log.Info("idle, stopping", "idle_for", in.cfg.UntilIdle)
					p.close()
					return false
				}
				if err == nil && lag > 0 && in.cfg.UntilIdle > 0 {
					in.log.Info("quiet but not caught up; going on", "lag", lag)
				}
				if stalled.observe(lag, err, now) >= 3*in.cfg.SessionTimeout {
					in.log.Warn("the group has lag that nobody consumes; rejoining it", "lag", lag, "stalled_for", now.Sub(stalled.since))
					in.metrics.errors.WithLabelValues("stalled").Inc()
					p.close()
					return true
				}
				lastActive = now
			}
		default:
			// kafka-go retries broker errors itself and reports them here
			// as it goes: a broker away, a rebalance, an authentication
			// failure. None ends ingestion. What was fetched and not
			// committed is written when the batch is due, or fetched again.
			fetchFails++
			in.metrics.errors.WithLabelValues("fetch").Inc()
			in.health.fail("fetch", err)
			if fetchFails == 1 || fetchFails%10 == 0 {
				in.log.Warn("fetch from kafka failed; retrying", "attempt", fetchFails, "err", err)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				return abort() // the reader ended; a new one starts from the committed offsets
			}
			if !sleep(ctx, in.backoff(fetchFails)) {
				in.finish(p, b)
				return false
			}
		}
	}
}

// deadlineContext is a context with a deadline, kept while the deadline
// stays the same: a new one for every message fetched would cost a timer
// each.
type deadlineContext struct {
	parent   context.Context
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
}

func (d *deadlineContext) until(deadline time.Time) context.Context {
	if d.ctx == nil || d.ctx.Err() != nil || !deadline.Equal(d.deadline) {
		d.stop()
		d.ctx, d.cancel = context.WithDeadline(d.parent, deadline)
		d.deadline = deadline
	}
	return d.ctx
}

func (d *deadlineContext) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// finish hands on the last batch and waits until everything handed on is
// committed, or the shutdown timeout is over.
func (in *Ingester) finish(p *pipeline, b *batch) {
	inflight := p.inflight.Load()
	if b.n > 0 {
		p.send(b)
	}
	p.close()
	switch {
	case p.dropped.Load() > 0:
		in.log.Warn("final batch not committed; it will be consumed again", "messages", b.n, "batches", p.dropped.Load())
	case b.n > 0 || inflight > 0:
		in.log.Info("final batch committed", "messages", b.n, "batches_before", inflight)
	}
}

// claim claims the records' event ids (store.Claim) and dead-letters the
// conflicts as id_conflict. It returns the records to write.
func (in *Ingester) claim(ctx context.Context, msgs []kafka.Message, records []store.Record, dead *[]deadLetter) ([]store.Record, error) {
	var (
		accepted  []store.Record
		conflicts []store.Conflict
	)
	err := in.retry(ctx, "claim", func(ctx context.Context) error {
		var err error
		accepted, conflicts, err = in.store.Claim(ctx, records)
		return err
	})
	if err != nil || len(conflicts) == 0 {
		return accepted, err
	}
	at := map[string]int{}
	for i, m := range msgs {
		at[m.Topic+"/"+strconv.Itoa(m.Partition)+"/"+strconv.FormatInt(m.Offset, 10)] = i
	}
	now := time.Now().UTC()
	for _, c := range conflicts {
		i := at[c.Record.Topic+"/"+strconv.Itoa(c.Record.Partition)+"/"+strconv.FormatInt(c.Record.Offset, 10)]
		*dead = append(*dead, in.deadLetter(msgs[i], event.ReasonIDConflict, c.Detail, now))
	}
	return accepted, nil
}

// commit commits the batch's offsets. Each attempt is bounded, because a
// commit sent while the group rebalances can wait for ever; after a session
// timeout of failures the batch is abandoned.
func (in *Ingester) commit(ctx context.Context, r *kafka.Reader, msgs []kafka.Message) error {
	cctx, cancel := context.WithTimeout(ctx, in.cfg.SessionTimeout)
	defer cancel()
	err := in.retry(cctx, "commit", func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return r.CommitMessages(actx, msgs...)
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: %w", errAbandoned, err)
	}
	return err
}

// retry runs op until it succeeds or ctx is done, with capped exponential
// backoff and jitter. Each failure is counted and logged, and makes the
// ingester not ready while it lasts.
func (in *Ingester) retry(ctx context.Context, name string, op func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			in.health.ok(name)
			if attempt > 1 {
				in.log.Info("recovered", "op", name, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %w)", name, err, ctx.Err())
		}
		in.metrics.errors.WithLabelValues(name).Inc()
		in.health.fail(name, err)
		wait := in.backoff(attempt)
		in.log.Warn("retrying", "op", name, "attempt", attempt, "backoff", wait, "err", excerpt(err.Error(), maxLoggedError))
		if !sleep(ctx, wait) {
			return fmt.Errorf("%s: %w (gave up: %w)", name, err, ctx.Err())
		}
	}
}

// backoff is the wait before the next attempt: exponential from 100ms,
// capped at RetryMaxBackoff, with jitter.
func (in *Ingester) backoff(attempt int) time.Duration {
	d := min(100*time.Millisecond<<min(attempt-1, 20), in.cfg.RetryMaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, or until ctx is done (then it returns false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
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
