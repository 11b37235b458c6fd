package main

import (
	"context"
	"flag"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/telemetry"
)

func runIngest(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse, setBrokers, setGroup, setTopics,
		setIngest, setIngestFlush, setMetricsAddr)
	untilIdle := fs.Duration("until-idle", 0, "exit 0 after this long with no new messages (0: run until signalled)")
	migrate := fs.Bool("migrate", true, "apply schema migrations at start; false: wait until opsmetrics migrate has brought the schema to this build's version")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if err := cfg.require(setClickHouse, setBrokers); err != nil {
		return err
	}
	log := cfg.Log.Logger()
	limitMemory(cfg.Ingest.MemoryBudget, false, log)
	// ClickHouse may be down now: the store connects when first used,
	// migrating waits for it, and so do the ingester's writes.
	st, err := store.Connect(cfg.ClickHouse, 0)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := prepareSchema(ctx, *migrate, cfg.ClickHouse, st, log, func(error) {}); err != nil {
		return nil // interrupted while waiting
	}

	reg := telemetry.NewRegistry()
	tp, shutdown, err := telemetry.Tracing(ctx)
	if err != nil {
		return err
	}
	defer shutdown(context.Background())
	icfg, err := cfg.ingestConfig()
	if err != nil {
		return err
	}
	icfg.UntilIdle = *untilIdle
	var services *catalog.Watcher
	if cfg.Catalog.Enabled() {
		if services, err = catalog.NewWatcher(cfg.Catalog, log); err != nil {
			return err
		}
		icfg.Catalog = services.Catalog
	}
	in, err := ingest.New(icfg, st, log, reg, tp)
	if err != nil {
		return err
	}
	stop := spinner("ingesting", func() string { return "ingesting: " + ingestCounts(reg) })
	var once sync.Once
	done := func() {
		stop()
		if *untilIdle > 0 {
			once.Do(func() { fmt.Println(ingestCounts(reg)) })
		}
	}
	defer done()
	// After --until-idle drained the topics, the KPI rollup is rebuilt
	// once, so that the KPIs read next are of what was stored.
	run := func(ctx context.Context) error {
		if err := in.Run(ctx); err != nil || *untilIdle == 0 || ctx.Err() != nil || cfg.KPI.RollupInterval == 0 {
			return err
		}
		done()
		q, err := cfg.kpiDefaults() // with the calendar and the catalog's tiers, whose counts the rollup keeps
		if err != nil {
			return err
		}
		return refreshRollup(ctx, st.Conn(), q)
	}
	if cfg.MetricsAddr == "" && services == nil {
		return run(ctx)
	}
	// The ingester ends the group (--until-idle, a signal); the catalog
	// watcher and the metrics server stop after it. The ingester bounds
	// its own final flush.
	g := newRunGroup(0, log)
	g.add("ingest", func(ctx context.Context) error { return stopping(run(ctx)) })
	if services != nil {
		g.add("catalog", services.Run)
	}
	if cfg.MetricsAddr != "" {
		ms, err := telemetry.ListenMetrics(cfg.MetricsAddr, reg, log)
		if err != nil {
			return err
		}
		g.add("metrics", ms.Run)
	}
	return g.run(ctx)
}

// ingestCounts says what this run has ingested, from the ingester's
// counters in reg.
func ingestCounts(reg prometheus.Gatherer) string {
	total := map[string]float64{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			total[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	return fmt.Sprintf("stored %.0f events, dead-lettered %.0f messages, skipped %.0f (of %.0f consumed)",
		total["opsmetrics_ingest_events_stored_total"], total["opsmetrics_ingest_dead_letters_total"],
		total["opsmetrics_ingest_skipped_total"], total["opsmetrics_ingest_messages_consumed_total"])
}
