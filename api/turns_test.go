package api

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTurns: heavy requests take at most all turns but one, so that a
// light request still runs; beyond the turns, requests queue up to the
// queue's bound, each for at most the queue timeout.
func TestTurns(t *testing.T) {
	tr := newTurns(Limits{MaxConcurrent: 3, MaxQueued: 1, QueueTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	var leaves []func()
	for range 2 {
		leave, err := tr.enter(ctx, true)
		if err != nil {
			t.Fatalf("heavy request with turns free: %v", err)
		}
		leaves = append(leaves, leave)
	}
	start := time.Now()
	if _, err := tr.enter(ctx, true); err == nil || !strings.Contains(err.Error(), "api.queue_timeout") {
		t.Errorf("a third heavy request of three turns: %v, want a queue timeout", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("the third heavy request waited %v, want the queue timeout", waited)
	}
	light, err := tr.enter(ctx, false)
	if err != nil {
		t.Fatalf("a light request beside two heavy ones: %v", err)
	}
	// Every turn is taken: one more may wait, the next is refused.
	queued := make(chan error, 1)
	go func() {
		leave, err := tr.enter(ctx, false)
		if err == nil {
			leave()
		}
		queued <- err
	}()
	for tr.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := tr.enter(ctx, false); err == nil || !strings.Contains(err.Error(), "api.max_queued_queries") {
		t.Errorf("a request beyond the queue: %v, want refused", err)
	}
	light()
	if err := <-queued; err != nil {
		t.Errorf("the queued request once a turn was free: %v", err)
	}
	for _, l := range leaves {
		l()
	}
	if len(tr.all) != 0 || len(tr.heavy) != 0 {
		t.Errorf("turns not given back: %d, %d", len(tr.all), len(tr.heavy))
	}
}
