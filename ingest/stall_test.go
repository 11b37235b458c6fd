package ingest

import (
	"errors"
	"testing"
	"time"
)

func TestStallWatchdog(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s stall
	steps := []struct {
		lag  int64
		err  error
		at   time.Duration
		want time.Duration
	}{
		{100, nil, 0, 0}, // first sight of lag
		{100, nil, 10 * time.Second, 10 * time.Second}, // unchanged: stuck for 10s
		{90, nil, 20 * time.Second, 0},                 // somebody consumed: not stuck
		{90, nil, 50 * time.Second, 30 * time.Second},
		{0, nil, 60 * time.Second, 0}, // caught up
		{90, nil, 70 * time.Second, 0},
		{90, errors.New("broker down"), 80 * time.Second, 0}, // unknown: start again
		{90, nil, 90 * time.Second, 0},
		{90, nil, 95 * time.Second, 5 * time.Second},
	}
	for i, st := range steps {
		if got := s.observe(st.lag, st.err, t0.Add(st.at)); got != st.want {
			t.Errorf("step %d (lag %d at %v): stuck for %v, want %v", i, st.lag, st.at, got, st.want)
		}
	}
}
