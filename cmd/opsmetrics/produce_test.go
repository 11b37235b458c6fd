package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestGenerateThenProduce runs the two user tools as a user would and
// checks that every line reached the topic of its kind.
func TestGenerateThenProduce(t *testing.T) {
	topics := broker.DefaultTopics()
	_, brokers := testenv.Kafka(t, 2, append(topics.Inputs(), topics.DeadLetter)...)
	file := filepath.Join(t.TempDir(), "events.jsonl")
	if code := run([]string{"generate", "--services", "3", "--days", "7", "--end", "2026-03-01", "--format", "mixed", "--out", file}); code != 0 {
		t.Fatalf("generate: exit %d", code)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines++
	}
	f.Close()
	if code := run([]string{"produce", "--brokers", brokers[0], "--file", file}); code != 0 {
		t.Fatalf("produce: exit %d", code)
	}
	total := 0
	for _, topic := range topics.Inputs() {
		for p := range 2 {
			conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic, p)
			if err != nil {
				t.Fatal(err)
			}
			last, err := conn.ReadLastOffset()
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			total += int(last)
		}
	}
	if total != lines {
		t.Errorf("topics hold %d messages, want the file's %d lines", total, lines)
	}
}
