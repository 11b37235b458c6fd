package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

// Dead-letter headers. The original headers are kept as they were, as far
// as they fit.
const (
	HeaderReason     = "opsmetrics-reason"      // the full reason, as in dead_letters.reason
	HeaderReasonCode = "opsmetrics-reason-code" // the short code, as in the metric label
	HeaderTopic      = "opsmetrics-source-topic"
	HeaderPartition  = "opsmetrics-source-partition"
	HeaderOffset     = "opsmetrics-source-offset"
	// HeaderTruncated is "true" when the payload or the key was cut: to
	// max_message_bytes, or to what the dead-letter topic accepts.
	HeaderTruncated = "opsmetrics-truncated"
	// HeaderOriginalBytes is the payload's size before it was cut.
	HeaderOriginalBytes = "opsmetrics-original-bytes"
	// HeaderDroppedHeaders counts the original headers left out to fit.
	HeaderDroppedHeaders = "opsmetrics-dropped-headers"
)

// Bounds of a dead letter's parts. A reason quotes the value it rejects, so
// a hostile value would otherwise make a hostile reason: in the header, in
// dead_letters.reason and in the log.
const (
	MaxReasonBytes = 1024
	maxKeyBytes    = 1024
	maxLoggedError = 1024
	// recordOverhead covers a record batch's header (61 bytes) and one
	// record's framing and varints, with room to spare: what a broker
	// counts against max.message.bytes beyond keys, values and headers.
	recordOverhead = 512
	headerOverhead = 10 // a header's varints
)

// deadLetter is a rejected message as it is published and stored: cut to
// fit the dead-letter topic.
type deadLetter struct {
	store.DeadLetter
	originalBytes  int // the payload's size before it was cut
	truncated      bool
	droppedHeaders int
}

// deadLetter builds the dead letter of m, cut to fit: the reason to
// MaxReasonBytes, the key to 1 KiB, the original headers to a quarter of
// what the dead-letter topic accepts, and the payload to the rest and to
// max_message_bytes.
func (in *Ingester) deadLetter(m kafka.Message, reason event.Reason, detail string, at time.Time) deadLetter {
	d := deadLetter{DeadLetter: store.DeadLetter{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		Reason: reason, Detail: excerpt(string(reason)+": "+detail, MaxReasonBytes), At: at}, originalBytes: len(m.Value)}
	room := in.limits.deadLetterBytes() - recordOverhead
	for _, h := range d.ownHeaders() {
		room -= len(h.Key) + len(h.Value) + headerOverhead
	}
	room -= 3 * (len(HeaderOriginalBytes) + 2*headerOverhead + 20) // the markers below, if needed

	d.Key = m.Key
	if len(d.Key) > maxKeyBytes {
		d.Key, d.truncated = d.Key[:maxKeyBytes], true
	}
	room -= len(d.Key)
	headerRoom := room / 4
	for _, h := range m.Headers {
		n := len(h.Key) + len(h.Value) + headerOverhead
		if n > headerRoom {
			d.droppedHeaders++
			continue
		}
		headerRoom -= n
		room -= n
		d.Headers = append(d.Headers, event.Header{Key: h.Key, Value: h.Value})
	}
	d.Payload = m.Value
	if limit := min(max(room, 0), in.cfg.MaxMessageBytes); len(d.Payload) > limit {
		d.Payload, d.truncated = d.Payload[:limit], true
	}
	return d
}

// ownHeaders are the headers the ingester adds to every dead letter.
func (d *deadLetter) ownHeaders() []kafka.Header {
	return []kafka.Header{
		{Key: HeaderReason, Value: []byte(d.Detail)},
		{Key: HeaderReasonCode, Value: []byte(d.Reason)},
		{Key: HeaderTopic, Value: []byte(d.Topic)},
		{Key: HeaderPartition, Value: []byte(strconv.Itoa(d.Partition))},
		{Key: HeaderOffset, Value: []byte(strconv.FormatInt(d.Offset, 10))},
	}
}

// message is the dead letter as published; bare leaves out the key, the
// payload and the original headers.
func (d *deadLetter) message(bare bool) kafka.Message {
	hs := make([]kafka.Header, 0, len(d.Headers)+8)
	if !bare {
		for _, h := range d.Headers {
			hs = append(hs, kafka.Header{Key: h.Key, Value: h.Value})
		}
	}
	hs = append(hs, d.ownHeaders()...)
	if d.truncated || bare {
		hs = append(hs, kafka.Header{Key: HeaderTruncated, Value: []byte("true")},
			kafka.Header{Key: HeaderOriginalBytes, Value: []byte(strconv.Itoa(d.originalBytes))})
	}
	if dropped := d.droppedHeaders + len(d.Headers)*boolInt(bare); dropped > 0 {
		hs = append(hs, kafka.Header{Key: HeaderDroppedHeaders, Value: []byte(strconv.Itoa(dropped))})
	}
	if bare {
		return kafka.Message{Headers: hs}
	}
	return kafka.Message{Key: d.Key, Value: d.Payload, Headers: hs}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// publishDeadLetters publishes the batch's dead letters. A dead letter the
// topic refuses for its size is published alone, then bare (reason and
// source only); one refused even bare is marked NotPublished, which the
// dead_letters row records, and counted. Other errors (the broker away)
// are returned, for the caller to retry.
func (in *Ingester) publishDeadLetters(ctx context.Context, dead []deadLetter) error {
	var msgs []kafka.Message
	var at []int // index in dead of each message
	for i := range dead {
		if dead[i].NotPublished == "" {
			msgs = append(msgs, dead[i].message(false))
			at = append(at, i)
		}
	}
	err := in.dlq.WriteMessages(ctx, msgs...)
	if err == nil || !tooLarge(err) {
		return err
	}
	// Publish again, one at a time, those that were not written: all of
	// them when the writer refused the call, else those with an error.
	var we kafka.WriteErrors
	failed := errors.As(err, &we)
	for j, i := range at {
		if failed && we[j] == nil {
			continue
		}
		d := &dead[i]
		err := in.dlq.WriteMessages(ctx, d.message(false))
		if err != nil && tooLarge(err) {
			in.log.Warn("dead letter too large for the dead-letter topic; publishing it without payload and headers",
				"topic", d.Topic, "partition", d.Partition, "offset", d.Offset, "err", err)
			err = in.dlq.WriteMessages(ctx, d.message(true))
		}
		switch {
		case err == nil:
		case tooLarge(err):
			d.NotPublished = excerpt(err.Error(), maxLoggedError)
			in.metrics.deadLetterPublishFailures.Inc()
		default:
			return err
		}
	}
	return nil
}

// tooLarge reports whether a write failed because a message was too large
// for the writer or the topic, which no retry can change.
func tooLarge(err error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && tooLarge(e) {
				return true
			}
		}
		return false
	}
	return errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge) || errors.Is(err, kafka.InvalidRecord)
}

func storeDeadLetters(dead []deadLetter) []store.DeadLetter {
	out := make([]store.DeadLetter, len(dead))
	for i, d := range dead {
		out[i] = d.DeadLetter
	}
	return out
}

// deadLetterWriter is the dead-letter producer, its batches bounded by what
// the topic accepts.
func (in *Ingester) deadLetterWriter() *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(in.cfg.Brokers...),
		Topic:        in.cfg.DeadLetterTopic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchBytes:   int64(max(in.limits.deadLetterBytes()-recordOverhead/2, 1)),
		WriteTimeout: 30 * time.Second,
		Transport:    in.cfg.Transport,
	}
}

// excerpt returns s cut to at most n bytes, at a character boundary, saying
// how much was left out.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	longest := fmt.Sprintf("… (%d bytes more)", len(s))
	cut := max(n-len(longest), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes more)", len(s)-cut)
}
