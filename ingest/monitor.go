package ingest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// limits are what Kafka says about the topics: read once at start.
type limits struct {
	mu             sync.Mutex
	deadLetter     int // max.message.bytes of the dead-letter topic, or the configured bound
	inputMessage   int // the largest max.message.bytes of the input topics, or 0
	partitions     int // input partitions
	deadLetterSeen bool
}

func (l *limits) deadLetterBytes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadLetter
}

func (l *limits) input() (messageBytes, partitions int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inputMessage, l.partitions
}

// discover reads the input topics' partitions and the topics'
// max.message.bytes, retrying while Kafka is unreachable. Without the
// topic configuration (an old broker, a missing permission) it goes on with
// the configured dead-letter bound. It fails only when ctx is done.
func (in *Ingester) discover(ctx context.Context) error {
	in.limits.deadLetter = in.cfg.DeadLetterMaxBytes
	for attempt := 1; ; attempt++ {
		err := in.discoverOnce(ctx)
		if err == nil {
			in.health.ok("kafka")
			in.health.start()
			return nil
		}
		in.health.fail("kafka", err)
		in.metrics.errors.WithLabelValues("kafka").Inc()
		if attempt == 1 || attempt%10 == 0 {
			in.log.Warn("kafka unreachable; retrying", "attempt", attempt, "err", excerpt(err.Error(), maxLoggedError))
		}
		if !sleep(ctx, in.backoff(attempt)) {
			return ctx.Err()
		}
	}
}

func (in *Ingester) discoverOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := in.client()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: in.cfg.Topics})
	if err != nil {
		return err
	}
	parts := 0
	for _, t := range meta.Topics {
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		parts += len(t.Partitions)
	}
	req := &kafka.DescribeConfigsRequest{}
	for _, t := range append([]string{in.cfg.DeadLetterTopic}, in.cfg.Topics...) {
		req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: t, ConfigNames: []string{"max.message.bytes"}})
	}
	resp, err := client.DescribeConfigs(ctx, req)
	in.limits.mu.Lock()
	defer in.limits.mu.Unlock()
	in.limits.partitions = parts
	if err != nil {
		in.log.Warn("cannot read the topics' max.message.bytes; dead letters are bounded by the configuration",
			"dead_letter_max_bytes", in.cfg.DeadLetterMaxBytes, "err", err)
		return nil
	}
	for _, r := range resp.Resources {
		for _, e := range r.ConfigEntries {
			n, perr := strconv.Atoi(e.ConfigValue)
			if r.Error != nil || e.ConfigName != "max.message.bytes" || perr != nil || n <= 0 {
				continue
			}
			if r.ResourceName == in.cfg.DeadLetterTopic {
				in.limits.deadLetter, in.limits.deadLetterSeen = n, true
			} else {
				in.limits.inputMessage = max(in.limits.inputMessage, n)
			}
		}
	}
	if !in.limits.deadLetterSeen {
		in.log.Warn("the dead-letter topic's max.message.bytes is unknown; dead letters are bounded by the configuration",
			"topic", in.cfg.DeadLetterTopic, "dead_letter_max_bytes", in.cfg.DeadLetterMaxBytes)
	}
	return nil
}

func (in *Ingester) client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(in.cfg.Brokers...), Transport: in.cfg.Transport, Timeout: 10 * time.Second}
}

// monitor reads the group's lag every LagInterval, exports it per
// partition, whether or not anything is fetched, and judges progress.
func (in *Ingester) monitor(ctx context.Context) {
	t := time.NewTicker(in.cfg.LagInterval)
	defer t.Stop()
	for {
		parts, err := in.partitionLags(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			in.health.fail("kafka", err)
			in.metrics.errors.WithLabelValues("lag").Inc()
			in.log.Debug("reading the group's lag failed", "err", err)
		default:
			in.health.ok("kafka")
			for _, p := range parts {
				ps := strconv.Itoa(p.partition)
				in.metrics.lag.WithLabelValues(p.topic, ps).Set(float64(p.lag()))
				if p.committed >= 0 {
					in.metrics.committed.WithLabelValues(p.topic, ps).Set(float64(p.committed - 1))
				}
			}
			in.health.observe(parts, time.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// partitionLag is one input partition's end offset and the group's
// committed offset there (-1: none).
type partitionLag struct {
	topic     string
	partition int
	end       int64
	committed int64
}

func (p partitionLag) lag() int64 { return max(p.end-max(p.committed, 0), 0) }

// partitionLags reads the end and committed offsets of every input
// partition.
func (in *Ingester) partitionLags(ctx context.Context) ([]partitionLag, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := in.client()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: in.cfg.Topics})
	if err != nil {
		return nil, err
	}
	ends := map[string][]kafka.OffsetRequest{}
	ids := map[string][]int{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			ends[t.Name] = append(ends[t.Name], kafka.LastOffsetOf(p.ID))
			ids[t.Name] = append(ids[t.Name], p.ID)
		}
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
	if err != nil {
		return nil, err
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: in.cfg.Group, Topics: ids})
	if err != nil {
		return nil, err
	}
	if committed.Error != nil {
		return nil, committed.Error
	}
	done := map[string]int64{}
	for topic, ps := range committed.Topics {
		for _, p := range ps {
			done[topic+"/"+strconv.Itoa(p.Partition)] = p.CommittedOffset
		}
	}
	var out []partitionLag
	for topic, ps := range offs.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error)
			}
			c, ok := done[topic+"/"+strconv.Itoa(p.Partition)]
			if !ok {
				c = -1
			}
			out = append(out, partitionLag{topic: topic, partition: p.Partition, end: p.LastOffset, committed: c})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].topic < out[j].topic || out[i].topic == out[j].topic && out[i].partition < out[j].partition
	})
	return out, nil
}

// groupLag returns how many messages of the input topics the group has not
// committed yet.
func (in *Ingester) groupLag(ctx context.Context) (int64, error) {
	parts, err := in.partitionLags(ctx)
	var lag int64
	for _, p := range parts {
		lag += p.lag()
	}
	return lag, err
}

// health is what Ready reports: operations failing now, and partitions
// whose lag does not move.
type health struct {
	mu         sync.Mutex
	started    bool
	failing    map[string]failure
	stallAfter time.Duration
	parts      map[string]progress
	stalled    string
}

type failure struct {
	since, last time.Time
	err         error
}

// progress is when a partition was last seen caught up, or its committed
// offset moving.
type progress struct {
	committed int64
	since     time.Time
}

// failGrace is how long an operation may fail before the ingester says it
// is not ready: a rebalance or a retried write is not an outage.
const failGrace = 10 * time.Second

// opNames say what failing operations are, for Ready.
var opNames = map[string]string{
	"kafka":      "reading from Kafka",
	"fetch":      "fetching from Kafka",
	"claim":      "claiming event ids in ClickHouse",
	"write":      "writing to ClickHouse",
	"deadletter": "publishing dead letters",
	"commit":     "committing offsets to Kafka",
}

func newHealth(stallAfter time.Duration) *health {
	return &health{failing: map[string]failure{}, parts: map[string]progress{}, stallAfter: stallAfter}
}

func (h *health) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = true
}

func (h *health) fail(op string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.failing[op]
	f.last = time.Now()
	if !ok {
		f.since = f.last
	}
	f.err = err
	h.failing[op] = f
}

// expire forgets a failure of op that has not recurred for d: kafka-go
// reports fetch errors while they last, and says nothing when they end
// while there is nothing to fetch.
func (h *health) expire(op string, d time.Duration, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f, ok := h.failing[op]; ok && now.Sub(f.last) >= d {
		delete(h.failing, op)
	}
}

func (h *health) ok(op string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.failing, op)
}

// committed notes that this ingester committed on the partitions keys
// ("topic/partition"): they move, whatever the last lag reading says.
func (h *health) committed(keys []string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		if p, ok := h.parts[k]; ok {
			p.since = now
			h.parts[k] = p
		}
	}
}

// observe takes a lag reading. A partition stalls when it has lag and its
// committed offset has not moved for stallAfter.
func (h *health) observe(parts []partitionLag, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var (
		stuck   []string
		waiting int64
		longest time.Duration
	)
	for _, p := range parts {
		key := p.topic + "/" + strconv.Itoa(p.partition)
		prev, ok := h.parts[key]
		if !ok || p.lag() == 0 || p.committed != prev.committed {
			prev.since = now
		}
		prev.committed = p.committed
		h.parts[key] = prev
		if d := now.Sub(prev.since); p.lag() > 0 && d >= h.stallAfter {
			stuck = append(stuck, key)
			waiting += p.lag()
			longest = max(longest, d)
		}
	}
	h.stalled = ""
	if len(stuck) > 0 {
		h.stalled = fmt.Sprintf("ingest: no progress for %v while %d messages wait on %d partitions (%s)",
			longest.Round(time.Second), waiting, len(stuck), strings.Join(stuck[:min(len(stuck), 3)], ", "))
	}
}

func (h *health) ready(now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		if f, ok := h.failing["kafka"]; ok {
			return fmt.Errorf("ingest: waiting for Kafka: %s", excerpt(f.err.Error(), 300))
		}
		return errors.New("ingest: starting")
	}
	ops := make([]string, 0, len(h.failing))
	for op := range h.failing {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		f := h.failing[op]
		if d := now.Sub(f.since); d >= failGrace {
			return fmt.Errorf("ingest: %s failing for %v: %s", opNames[op], d.Round(time.Second), excerpt(f.err.Error(), 300))
		}
	}
	if h.stalled != "" {
		return errors.New(h.stalled)
	}
	return nil
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

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
