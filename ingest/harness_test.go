package ingest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// harness is a pipeline (testenv.Pipeline) and the configuration the
// in-process ingesters of a test run with.
type harness struct {
	*testenv.Pipeline
	cfg ingest.Config
}

func newHarness(t *testing.T, partitions int32) *harness {
	t.Helper()
	p := testenv.NewPipeline(t, partitions)
	cfg := ingest.DefaultConfig()
	cfg.Brokers, cfg.Group = p.Brokers, "opsmetrics"
	cfg.SetTopics(p.Topics)
	return &harness{Pipeline: p, cfg: cfg}
}

// ingestUntilIdle runs an in-process ingester of group until it has been
// idle for a while, and returns its metrics registry.
func (h *harness) ingestUntilIdle(group string) *prometheus.Registry {
	h.T.Helper()
	cfg := h.cfg
	cfg.Group = group
	cfg.BatchSize = 500
	cfg.BatchMaxLatency = 200 * time.Millisecond
	cfg.UntilIdle = 3 * time.Second
	cfg.SessionTimeout = 6 * time.Second
	reg := prometheus.NewRegistry()
	in, err := ingest.New(cfg, h.Store, testenv.Logger(h.T), reg, nil)
	if err != nil {
		h.T.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := in.Run(ctx); err != nil {
		h.T.Fatalf("ingest: %v", err)
	}
	return reg
}

func kcatAvailable(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/kcat", "/usr/bin/kafkacat"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("kcat is not installed (apt-get install kcat)")
	}
	t.Skip("kcat is not installed (apt-get install kcat)")
	return ""
}
