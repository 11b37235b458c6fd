package ingest

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// The memory budget (Config.MemoryBudget) bounds, in bytes, the ingester's
// resident memory whatever the messages' size and the backlog. It is spent
// on:
//
//   - what is not Go's heap: the executable's resident pages (about 31 MiB),
//     goroutine stacks, the runtime's own data, and what the heap overshoots
//     its soft limit by while the collector catches up on busy cores:
//     nonHeapBytes. The rest is the Go runtime's soft memory limit
//     (GoMemoryLimit, set by cmd/opsmetrics), so that garbage is collected
//     before the process outgrows the budget;
//   - a third of that heap is left to garbage between two collections, and
//     heapReserve to the connections' buffers, the batch being committed
//     (its offsets and its dead letters' reasons) and the rest of the
//     process. What remains is live: the plan below holds at most that;
//   - the kafka-go reader: its queue of QueueCapacity messages, plus the one
//     message each assigned partition's fetcher holds while the queue is
//     full. A message is at most the largest max.message.bytes of the input
//     topics (read from Kafka at start): the broker refuses larger ones. The
//     reader gets a quarter of the live bytes, more if one message per
//     partition needs it, up to half;
//   - the pipeline's batches (pipeline.go), with the rest: the batch being
//     filled holds its messages and their decoded events, fillFactor times
//     its bytes; the batch being written holds its events, its ClickHouse
//     block and the block's encoding (its messages are let go once its
//     event ids are claimed), writeFactor times its bytes. A batch is
//     handed on when it reaches BatchSize messages or batchBytes bytes, so
//     it holds at most batchBytes plus one message.
//
// With the defaults (256 MiB, 1 MiB messages, 24 partitions) that is a
// queue of 3 messages and batches of at most 16 MiB.
const (
	// MinMemoryBudget is the smallest budget accepted.
	MinMemoryBudget = 128 << 20
	nonHeapBytes    = 64 << 20
	heapReserve     = 16 << 20
	fillFactor      = 2
	writeFactor     = 3
	minBatchBytes   = 1 << 20
)

// GoMemoryLimit is the Go runtime's soft memory limit for a budget: what is
// left of it when the executable's pages and the stacks are counted.
func GoMemoryLimit(budget int64) int64 { return budget - nonHeapBytes }

// memoryPlan is how the budget is spent.
type memoryPlan struct {
	budget       int64
	messageBytes int   // the largest message the input topics accept
	partitions   int   // the input partitions, at most all assigned here
	queue        int   // the reader's queue, in messages
	batchBytes   int64 // a batch is written once it holds this much
	live         int64 // what the plan may hold live, at most
	worstCase    int64 // what it holds with every queue slot and partition holding a message of the largest size
}

func planMemory(budget int64, messageBytes, partitions, batchSize int) memoryPlan {
	p := memoryPlan{budget: budget, messageBytes: max(messageBytes, 1), partitions: partitions}
	p.live = max(GoMemoryLimit(budget)*2/3-heapReserve, 0)
	msg := int64(p.messageBytes)
	reader := min(max(p.live/4, int64(partitions+1)*msg), p.live/2)
	p.queue = int(min(max(reader/msg-int64(partitions), 1), int64(min(batchSize, 1000))))
	readerBytes := int64(p.queue+partitions) * msg
	p.batchBytes = max((p.live-readerBytes)/(fillFactor+writeFactor)-msg, minBatchBytes)
	p.worstCase = readerBytes + (p.batchBytes+msg)*(fillFactor+writeFactor)
	return p
}

// plan is the memory plan for the topics as Kafka described them.
func (in *Ingester) plan() memoryPlan {
	msg, parts := in.limits.input()
	return planMemory(in.cfg.MemoryBudget, max(msg, in.cfg.MaxMessageBytes), parts, in.cfg.BatchSize)
}

// readerConfig is the consumer group reader of the plan. A fetch asks for
// at most one message of the largest size (the broker still returns a
// larger first batch whole), and messages are read from the connection one
// at a time, so the queue bounds what the reader holds.
func (in *Ingester) readerConfig(p memoryPlan) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:           in.cfg.Brokers,
		GroupID:           in.cfg.Group,
		GroupTopics:       in.cfg.Topics,
		Dialer:            in.cfg.Dialer,
		StartOffset:       kafka.FirstOffset,
		MinBytes:          1,
		MaxBytes:          p.messageBytes,
		MaxWait:           250 * time.Millisecond,
		QueueCapacity:     p.queue,
		CommitInterval:    0, // synchronous: CommitMessages returns once committed
		SessionTimeout:    in.cfg.SessionTimeout,
		RebalanceTimeout:  in.cfg.SessionTimeout,
		HeartbeatInterval: in.cfg.SessionTimeout / 10,
		JoinGroupBackoff:  time.Second,
		ReadBackoffMax:    time.Second,
		ErrorLogger:       kafka.LoggerFunc(func(msg string, args ...any) { in.log.Debug("kafka: " + sprintf(msg, args...)) }),
	}
}
