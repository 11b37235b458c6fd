// Package publish sends files of events (JSON Lines: native, CloudEvents in
// structured mode, bare CDEvents) to Kafka, each to the topic of its kind and
// keyed by its entity (or its CloudEvents partitionkey), so that one
// incident's lifecycle stays ordered in one partition.
// It is the engine of `opsmetrics produce` and of the demo.
package publish

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/event"
)

// Topics maps each kind to its topic.
type Topics map[event.Kind]string

// Publisher writes events to Kafka.
type Publisher struct {
	w      *kafka.Writer
	topics Topics
	dec    event.Decoder
	// Progress, when set, is called after each chunk with the lines sent.
	Progress func(lines int)
}

// New returns a Publisher that writes to brokers. Close it when done.
func New(brokers []string, topics Topics, transport kafka.RoundTripper) *Publisher {
	return &Publisher{
		w: &kafka.Writer{
			Addr:         kafka.TCP(brokers...),
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchSize:    5000,
			// A batch of a partition is one record batch, which the broker
			// refuses over its max.message.bytes (1048588 by default).
			BatchBytes:             1 << 20,
			BatchTimeout:           5 * time.Millisecond,
			AllowAutoTopicCreation: true,
			Transport:              transport,
		},
		topics: topics,
		// The file is the user's: let far-future or oversized events through
		// to the ingester, which dead-letters them with the reason.
		dec: event.Decoder{MaxBytes: 1 << 30, MaxFutureSkew: 1 << 62},
	}
}

// Close flushes and closes the writer.
func (p *Publisher) Close() error { return p.w.Close() }

// Message builds the Kafka message for one line: the kind decides the topic,
// the entity the key, and a CloudEvent gets the structured-mode content type.
func (p *Publisher) Message(line []byte) (kafka.Message, error) {
	e, err := p.dec.Decode(event.Message{Value: line})
	if err != nil {
		return kafka.Message{}, err
	}
	topic, ok := p.topics[e.Kind]
	if !ok {
		return kafka.Message{}, fmt.Errorf("no topic for kind %q", e.Kind)
	}
	m := kafka.Message{Topic: topic, Key: []byte(e.EntityKey()), Value: append([]byte(nil), line...)}
	// A structured CloudEvent gets its content type (the Kafka binding, 3.3);
	// its partitionkey extension, when present, is the message key (3.1).
	if key, ok := event.StructuredCloudEvent(line); ok {
		m.Headers = []kafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
		if key != "" {
			m.Key = []byte(key)
		}
	}
	return m, nil
}

// Send publishes messages as they are, waiting for every acknowledgement.
func (p *Publisher) Send(ctx context.Context, msgs ...kafka.Message) error {
	return p.w.WriteMessages(ctx, msgs...)
}

// File publishes every non-empty line of r and returns how many it sent. A
// line that is not a valid event stops it with an error naming the line.
func (p *Publisher) File(ctx context.Context, r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	const chunk = 5000
	var (
		msgs = make([]kafka.Message, 0, chunk)
		sent int
		line int
	)
	flush := func() error {
		if len(msgs) == 0 {
			return nil
		}
		if err := p.w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("publish after line %d: %w", line, err)
		}
		sent += len(msgs)
		if p.Progress != nil {
			p.Progress(len(msgs))
		}
		msgs = msgs[:0]
		return nil
	}
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		m, err := p.Message(b)
		if err != nil {
			return sent, fmt.Errorf("line %d: %w", line, err)
		}
		msgs = append(msgs, m)
		if len(msgs) == chunk {
			if err := flush(); err != nil {
				return sent, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return sent, fmt.Errorf("read line %d: %w", line+1, err)
	}
	return sent, flush()
}

// TopicsFrom maps each kind to its configured topic.
func TopicsFrom(t broker.Topics) Topics {
	return Topics{
		event.KindDeployment: t.Deployments,
		event.KindIncident:   t.Incidents,
		event.KindPatch:      t.Patches,
		event.KindChange:     t.Changes,
	}
}
