package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestStalledIsVisible stops ClickHouse under a running ingester: it must
// say it is not ready, and why, while the lag of every input partition,
// including those it has fetched nothing from, is exported and grows. Once
// ClickHouse is back it is ready again, with no lag left.
func TestStalledIsVisible(t *testing.T) {
	srv := testenv.OwnClickHouse(t)
	h := newHarness(t, 2)
	h.DSN = testenv.MigratedDatabase(t, srv)
	h.Store = testenv.Store(t, h.DSN)
	cfg := h.cfg
	cfg.Group, cfg.BatchMaxLatency, cfg.SessionTimeout, cfg.RetryMaxBackoff, cfg.LagInterval = "stalled", 100*time.Millisecond, 6*time.Second, time.Second, 500*time.Millisecond
	reg := prometheus.NewRegistry()
	in, err := ingest.New(cfg, h.Store, testenv.Logger(t), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() { cancel(); <-done }()

	change := func(i int) kafka.Message {
		return kafka.Message{Topic: h.Topics.Changes, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf(
			`{"kind":"change","event_id":"s-%d","change_id":"c-%d","service":"search","merged_at":"2026-03-02T10:00:00Z"}`, i, i))}
	}
	h.Produce(change(0))
	testenv.Eventually(t, time.Minute, "ready, the first event stored", func() (bool, string) {
		err := in.Ready()
		n := testenv.Count(t, h.Store, "SELECT count() FROM changes")
		return err == nil && n == 1, fmt.Sprintf("ready: %v, %d stored", err, n)
	})

	srv.Stop()
	var msgs []kafka.Message
	for i := 1; i <= 40; i++ {
		msgs = append(msgs, change(i))
	}
	h.Produce(msgs...)
	testenv.Eventually(t, time.Minute, "not ready, saying why", func() (bool, string) {
		err := in.Ready()
		return err != nil && strings.Contains(err.Error(), "ClickHouse"), fmt.Sprint(err)
	})
	// Every input partition has its lag exported, whether or not this
	// ingester fetched from it; the changes topic's add up to what waits.
	testenv.Eventually(t, 30*time.Second, "lag exported per partition", func() (bool, string) {
		lags := gauges(t, reg, "opsmetrics_ingest_consumer_lag_messages")
		var changes float64
		for k, v := range lags {
			if strings.HasPrefix(k, h.Topics.Changes+"/") {
				changes += v
			}
		}
		return len(lags) == 2*len(h.Topics.Inputs()) && changes == 40, fmt.Sprintf("%v", lags)
	})

	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "ready again, nothing left", func() (bool, string) {
		err := in.Ready()
		n := testenv.Count(t, h.Store, "SELECT count() FROM changes")
		return err == nil && n == 41, fmt.Sprintf("ready: %v, %d stored", err, n)
	})
	testenv.Eventually(t, 30*time.Second, "lag 0 exported", func() (bool, string) {
		var sum float64
		for _, v := range gauges(t, reg, "opsmetrics_ingest_consumer_lag_messages") {
			sum += v
		}
		return sum == 0, fmt.Sprint(sum)
	})
}

// gauges returns the values of a gauge by "topic/partition".
func gauges(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			out[label(m, "topic")+"/"+label(m, "partition")] = m.GetGauge().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.Label {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}
