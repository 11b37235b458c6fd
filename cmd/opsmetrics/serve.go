package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/api"
	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/telemetry"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// components are what serve can run, each switchable with --components.
var components = []string{"ingest", "api", "kpi", "anomaly"}

func runServe(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse, setBrokers, setGroup, setTopics, setIngest,
		setMetricsAddr, setAlerting, setAPI)
	shutdownTimeout := 30 * time.Second
	fs.Var(config.Duration(&shutdownTimeout), "shutdown-timeout",
		"bound on the whole shutdown: HTTP requests in flight, the ingester's final flush (itself bounded by ingest.shutdown_timeout) and the last alert delivery")
	listen := fs.String("listen", "127.0.0.1:8080", "listen address of the HTTP API and of /healthz and /readyz")
	refresh := fs.Duration("kpi-refresh", time.Minute, "how often the Prometheus KPI gauges are recomputed")
	comps := fs.String("components", strings.Join(components, ","),
		"components to run, comma-separated: ingest (Kafka to ClickHouse), api (HTTP API), kpi (Prometheus KPI gauges), anomaly (baseline relearning, detection and alerts)")
	prod := fs.String("production", "", "environments that count as production, comma-separated (default: kpi.production of the configuration)")
	migrate := fs.Bool("migrate", true, "apply schema migrations at start-up; false: wait until opsmetrics migrate has brought the schema to this build's version")
	tokenFile := fs.String("api-token-file", "", "file holding the bearer token the API requires (or OPSMETRICS_API_TOKEN; empty: no token)")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	on := map[string]bool{}
	for _, c := range strings.Split(*comps, ",") {
		c = strings.TrimSpace(c)
		if !contains(components, c) {
			return usagef("--components: unknown component %q: want %s", c, strings.Join(components, ", "))
		}
		on[c] = true
	}
	required := []string{setClickHouse}
	if on["ingest"] {
		required = append(required, setBrokers)
	}
	if err := cfg.require(required...); err != nil {
		return err
	}
	if *refresh < time.Second {
		return usagef("--kpi-refresh: must be at least 1s")
	}
	token, err := apiToken(*tokenFile)
	if err != nil {
		return err
	}
	log := cfg.Log.Logger()
	if on["ingest"] {
		limitMemory(cfg.Ingest.MemoryBudget, on["api"] || on["kpi"] || on["anomaly"], log)
	}

	// ClickHouse may be down now and come later: the stores connect when
	// first used, the schema is migrated in the background, retrying, and
	// what needs it waits. The API has its own pool, bounded like its
	// requests, and readiness a small one, so that neither waits behind
	// the other or behind the scheduled jobs.
	st, err := store.Connect(cfg.ClickHouse, 0)
	if err != nil {
		return err
	}
	defer st.Close()
	probe, err := store.Connect(cfg.ClickHouse, 2)
	if err != nil {
		return err
	}
	defer probe.Close()
	defaults, err := cfg.kpiDefaults()
	if err != nil {
		return err
	}
	if *prod != "" {
		defaults.Production = strings.Split(*prod, ",")
	}

	// Every component runs until the group stops; none fails because Kafka
	// or ClickHouse does. The group stops at a signal or when a component
	// fails, in the order the components are added: HTTP intake first,
	// then ingestion with its final flush, the scheduled jobs and the
	// notifier's last delivery, and telemetry last, within
	// --shutdown-timeout.
	g := newRunGroup(shutdownTimeout, log)
	schema := &schemaState{migrated: make(chan struct{})}
	// afterSchema runs a component once the schema is migrated.
	afterSchema := func(run func(context.Context) error) func(context.Context) error {
		return func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return nil
			case <-schema.migrated:
				return run(ctx)
			}
		}
	}

	reg := telemetry.NewRegistry()
	// One cache of rollup reads for the API, the exporter and detection.
	if defaults.Cache = metrics.NewRollupCache(cfg.KPI.RollupCacheBytes); defaults.Cache != nil {
		reg.MustRegister(defaults.Cache)
	}
	// The service catalog of the ingester, the alerts, the API and the
	// KPI gauges, reloaded when its files change: each reads the catalog
	// of the moment.
	var services *catalog.Watcher
	if cfg.Catalog.Enabled() && (on["ingest"] || on["anomaly"] || on["api"] || on["kpi"]) {
		if services, err = catalog.NewWatcher(cfg.Catalog, log); err != nil {
			return err
		}
	}
	var in *ingest.Ingester
	if on["ingest"] {
		icfg, err := cfg.ingestConfig()
		if err != nil {
			return err
		}
		if services != nil {
			icfg.Catalog = services.Catalog
		}
		tp, shutdown, err := telemetry.Tracing(ctx)
		if err != nil {
			return err
		}
		defer shutdown(context.Background())
		if in, err = ingest.New(icfg, st, log, reg, tp); err != nil {
			return err
		}
	}
	var exp *metrics.Exporter
	if on["kpi"] {
		exp = metrics.NewExporter(st.Conn(), defaults, nil, log)
		exp.LimitLabels(cfg.KPI.MaxLabelBytes, cfg.KPI.MaxLabelValues)
		if services != nil {
			exp.FollowCatalog(services.Catalog)
		}
		reg.MustRegister(exp)
	}
	var svc *anomaly.Service
	if on["anomaly"] {
		svc = &anomaly.Service{Conn: st.Conn(), Learn: cfg.baselinesConfig(), Detect: cfg.anomalyConfig(), Alerts: cfg.Alerting.AlertConfig,
			Rules: cfg.Alerting.Thresholds, RelearnInterval: cfg.Baselines.RelearnInterval, EvaluationInterval: cfg.Anomaly.EvaluationInterval, Log: log}
		svc.Learn.Production, svc.Detect.Production = defaults.Production, defaults.Production
		svc.Alerts.Calendar = defaults.Calendar
		svc.Alerts.Catalog = services
		if err := svc.Register(reg); err != nil {
			return err
		}
		if cfg.Alerting.Alertmanager != "" {
			if svc.Notifier, err = anomaly.NewNotifier(cfg.Alerting.Notifier(), reg, log); err != nil {
				return err
			}
		} else {
			log.Warn("no Alertmanager configured (--alertmanager): anomalies are recorded, not sent")
		}
	}
	var ms *telemetry.MetricsServer
	if cfg.MetricsAddr != "" {
		if ms, err = telemetry.ListenMetrics(cfg.MetricsAddr, reg, log); err != nil {
			return err
		}
	}

	// Readiness: ClickHouse answers with the current schema, and, when this
	// replica ingests, the ingester makes progress.
	ready := func(ctx context.Context) error {
		if err := schema.available(); err != nil {
			return err
		}
		if err := probe.Ping(ctx); err != nil {
			return fmt.Errorf("clickhouse unreachable: %w", err)
		}
		if err := probe.CheckSchema(ctx); err != nil {
			return err
		}
		if in != nil {
			return in.Ready()
		}
		return nil
	}
	limits := cfg.API.Limits
	o := api.Options{Defaults: defaults, Token: token, Ready: ready, Available: schema.available, Limits: limits,
		Tiers: cfg.Alerting.Tiers, Log: log}
	if services != nil {
		o.Catalog = services.Catalog
	}
	if on["api"] {
		ast, err := store.Connect(cfg.ClickHouse, cfg.API.Limits.Connections())
		if err != nil {
			return err
		}
		defer ast.Close()
		o.Conn = ast.Conn()
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.New(o), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.API.ReadTimeout,
		WriteTimeout: limits.WriteTimeout(), IdleTimeout: cfg.API.IdleTimeout}
	g.addServer("http", func() error {
		log.Info("serving", "addr", l.Addr().String(), "components", *comps, "api_token", token != "")
		return srv.Serve(l)
	}, srv.Shutdown)
	if in != nil {
		g.add("ingest", afterSchema(in.Run))
	}
	g.add("migrate", func(ctx context.Context) error {
		if prepareSchema(ctx, *migrate, cfg.ClickHouse, st, log, schema.failed) == nil {
			schema.done()
		}
		return nil
	})
	if exp != nil {
		g.add("kpi", afterSchema(func(ctx context.Context) error { return exp.Run(ctx, *refresh) }))
	}
	if cfg.KPI.RollupInterval > 0 && (on["api"] || on["kpi"] || on["anomaly"]) {
		rf := metrics.RollupRefresher{Conn: st.Conn(), Query: defaults, Interval: cfg.KPI.RollupInterval, Log: log}
		if services != nil {
			rf.Catalog = services.Catalog
		}
		g.add("rollup", afterSchema(rf.Run))
	}
	if svc != nil {
		g.add("anomaly", afterSchema(svc.Run))
	}
	if services != nil {
		g.add("catalog", services.Run)
		// The dashboards read the catalog from ClickHouse: the replicas
		// that serve readers keep it stored as it reloads.
		if on["api"] || on["kpi"] || on["anomaly"] {
			pub := metrics.CatalogPublisher{Conn: st.Conn(), Catalog: services.Catalog, Interval: cfg.Catalog.WithDefaults().ReloadInterval, Log: log}
			g.add("catalog-store", afterSchema(pub.Run))
		}
	}
	if ms != nil {
		g.add("metrics", ms.Run)
	}
	return g.run(ctx)
}

// prepareSchema migrates the schema of dsn when migrate is set, or else
// waits until it is this build's (Store.CheckSchema), retrying with capped
// backoff while ClickHouse is down or the schema old; each failure goes to
// failed and the log. It returns nil once the schema is ready, or ctx's
// error.
func prepareSchema(ctx context.Context, migrate bool, dsn string, st *store.Store, log *slog.Logger, failed func(error)) error {
	if migrate {
		return store.MigrateRetrying(ctx, dsn, log, func(err error) {
			failed(err)
			log.Warn("cannot migrate the ClickHouse schema yet; retrying", "err", err)
		})
	}
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := st.CheckSchema(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failed(err)
		log.Warn("the ClickHouse schema is not ready (--migrate=false); retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// schemaState is whether the ClickHouse schema is migrated, and if not,
// why.
type schemaState struct {
	mu       sync.Mutex
	err      error
	migrated chan struct{} // closed once migrated
}

func (s *schemaState) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *schemaState) done() { close(s.migrated) }

// available is nil once the schema is migrated, else why it is not.
func (s *schemaState) available() error {
	select {
	case <-s.migrated:
		return nil
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("clickhouse: schema not migrated yet, retrying: %w", s.err)
	}
	return errors.New("clickhouse: migrating the schema")
}

// limitMemory gives an ingesting process the Go runtime's soft memory limit
// of the ingester's budget (ingest.GoMemoryLimit), 128 MiB more when it also
// serves the API or runs the scheduled jobs, unless GOMEMLIMIT sets one: the
// collector then works harder before the process outgrows it.
func limitMemory(budget int64, more bool, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := ingest.GoMemoryLimit(budget)
	if more {
		limit += 128 << 20
	}
	debug.SetMemoryLimit(limit)
	log.Debug("Go soft memory limit", "bytes", limit)
}

// apiToken reads the API's bearer token: from --api-token-file,
// OPSMETRICS_API_TOKEN_FILE or OPSMETRICS_API_TOKEN, in that order.
func apiToken(file string) (string, error) {
	if file == "" {
		file = os.Getenv("OPSMETRICS_API_TOKEN_FILE")
	}
	if file == "" {
		return os.Getenv("OPSMETRICS_API_TOKEN"), nil
	}
	token, err := readSecret(file)
	if err != nil {
		return "", fmt.Errorf("--api-token-file: %w", err)
	}
	return token, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
