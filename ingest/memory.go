package ingest

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// The memory budget (Config.MemoryBudget) bounds, in bytes, what the
// ingester holds whatever the messages' size and the backlog. What it holds:
//
//   - the kafka-go reader's queue, QueueCapacity messages, plus the one
//     message each assigned partition's fetcher holds while the queue is
//     full. A message is at most the largest max.message.bytes of the input
//     topics (read from Kafka at start): the broker refuses larger ones;
//   - the batch: flushed when it reaches BatchSize messages or batchBytes
//     bytes, so at most batchBytes plus one message. While it is written,
//     its decoded events, the ClickHouse blocks and the dead letters add
//     copies of it: flushFactor times its size in all;
//   - a fixed reserve for the rest of the process: the runtime, the
//     connections' buffers, the code.
//
// Half of what the reserve leaves goes to the queue, half to the batch.
// With the defaults (256 MiB, 1 MiB messages, 24 partitions) that is a
// queue of 80 messages and batches of at most 25 MiB. The Go runtime is
// told the budget as its soft memory limit (cmd/opsmetrics), so that
// garbage is collected before the process outgrows it.
const (
	// MinMemoryBudget is the smallest budget accepted.
	MinMemoryBudget = 64 << 20
	reservedBytes   = 48 << 20
	flushFactor     = 4
	minBatchBytes   = 1 << 20
)

// memoryPlan is how the budget is spent.
type memoryPlan struct {
	budget       int64
	messageBytes int   // the largest message the input topics accept
	partitions   int   // the input partitions, at most all assigned here
	queue        int   // the reader's queue, in messages
	batchBytes   int64 // a batch is written once it holds this much
	worstCase    int64 // the most the plan holds
}

func planMemory(budget int64, messageBytes, partitions, batchSize int) memoryPlan {
	p := memoryPlan{budget: budget, messageBytes: max(messageBytes, 1), partitions: partitions}
	half := max(budget-reservedBytes, 0) / 2
	p.batchBytes = max(half/flushFactor-int64(p.messageBytes), minBatchBytes)
	p.queue = int(min(max(half/int64(p.messageBytes)-int64(partitions), 1), int64(min(batchSize, 1000))))
	p.worstCase = reservedBytes + int64(p.queue+partitions)*int64(p.messageBytes) + (p.batchBytes+int64(p.messageBytes))*flushFactor
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
