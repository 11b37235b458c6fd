package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/api"
	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/telemetry"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// components are what serve can run, each switchable with --components.
var components = []string{"ingest", "api", "kpi", "anomaly"}

func runServe(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := config.Bind(fs, config.SetClickHouse, config.SetBrokers, config.SetGroup, config.SetTopics, config.SetIngest,
		config.SetMetricsAddr, config.SetAlerting)
	listen := fs.String("listen", "127.0.0.1:8080", "listen address of the HTTP API and of /healthz and /readyz")
	refresh := fs.Duration("kpi-refresh", time.Minute, "how often the Prometheus KPI gauges are recomputed")
	comps := fs.String("components", strings.Join(components, ","),
		"components to run, comma-separated: ingest (Kafka to ClickHouse), api (HTTP API), kpi (Prometheus KPI gauges), anomaly (baseline relearning, detection and alerts)")
	prod := fs.String("production", "", "environments that count as production, comma-separated (default: kpi.production of the configuration)")
	tokenFile := fs.String("api-token-file", "", "file holding the bearer token the API requires (or OPSMETRICS_API_TOKEN; empty: no token)")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	on := map[string]bool{}
	for _, c := range strings.Split(*comps, ",") {
		c = strings.TrimSpace(c)
		if !contains(components, c) {
			return fmt.Errorf("--components: unknown component %q: want %s", c, strings.Join(components, ", "))
		}
		on[c] = true
	}
	required := []string{config.SetClickHouse}
	if on["ingest"] {
		required = append(required, config.SetBrokers)
	}
	if err := cfg.Require(required...); err != nil {
		return err
	}
	if *refresh < time.Second {
		return errors.New("--kpi-refresh: must be at least 1s")
	}
	token, err := apiToken(*tokenFile)
	if err != nil {
		return err
	}
	rules, err := thresholdRules(cfg)
	if err != nil {
		return err
	}
	log := cfg.Logger()
	if _, err := store.Migrate(ctx, cfg.ClickHouse, log); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer st.Close()
	defaults := kpiDefaults(cfg)
	if *prod != "" {
		defaults.Production = strings.Split(*prod, ",")
	}

	// Every component runs until ctx is cancelled; the first to fail
	// cancels the others. Shutdown is bounded by --shutdown-timeout.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}

	reg := telemetry.NewRegistry()
	icfg := ingest.ConfigFrom(cfg)
	if err := icfg.Secure(cfg.Kafka); err != nil {
		return err
	}
	if on["ingest"] {
		tp, shutdown, err := telemetry.Tracing(ctx)
		if err != nil {
			return err
		}
		defer shutdown(context.Background())
		in, err := ingest.New(icfg, st, log, reg, tp)
		if err != nil {
			return err
		}
		start("ingest", in.Run)
	}
	if on["kpi"] {
		exp := metrics.NewExporter(st.Conn(), defaults, nil, log)
		reg.MustRegister(exp)
		start("kpi", func(ctx context.Context) error { return exp.Run(ctx, *refresh) })
	}
	if on["anomaly"] {
		svc := &anomaly.Service{Conn: st.Conn(), Learn: baselinesConfig(cfg), Detect: anomalyConfig(cfg), Alerts: alertConfig(cfg),
			Rules: rules, RelearnInterval: cfg.Baselines.RelearnInterval, EvaluationInterval: cfg.Anomaly.EvaluationInterval, Log: log}
		svc.Learn.Production, svc.Detect.Production = defaults.Production, defaults.Production
		if err := svc.Register(reg); err != nil {
			return err
		}
		if cfg.Alerting.Alertmanager != "" {
			if svc.Notifier, err = anomaly.NewNotifier(anomaly.NotifierConfig{URL: cfg.Alerting.Alertmanager,
				ResendInterval: cfg.Alerting.ResendInterval}, reg, log); err != nil {
				return err
			}
		} else {
			log.Warn("no Alertmanager configured (--alertmanager): anomalies are recorded, not sent")
		}
		start("anomaly", svc.Run)
	}
	if cfg.MetricsAddr != "" {
		if err := telemetry.ServeMetrics(ctx, cfg.MetricsAddr, reg, log); err != nil {
			return err
		}
	}

	// Readiness: ClickHouse answers with the current schema, and Kafka
	// answers when this replica ingests.
	ready := func(ctx context.Context) error {
		if err := st.Ping(ctx); err != nil {
			return fmt.Errorf("clickhouse unreachable: %w", err)
		}
		if v, err := st.SchemaVersion(ctx); err != nil || v != store.LatestVersion() {
			return fmt.Errorf("clickhouse schema version %d, want %d (%v)", v, store.LatestVersion(), err)
		}
		if on["ingest"] {
			if err := icfg.Reachable(ctx); err != nil {
				return fmt.Errorf("kafka unreachable: %w", err)
			}
		}
		return nil
	}
	o := api.Options{Defaults: defaults, Token: token, Ready: ready, Log: log}
	if on["api"] {
		o.Conn = st.Conn()
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.New(o), ReadHeaderTimeout: 10 * time.Second}
	start("http", func(ctx context.Context) error {
		log.Info("serving", "addr", l.Addr().String(), "components", *comps, "api_token", token != "")
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})

	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errs:
	}
	cancel()
	log.Info("shutting down", "timeout", cfg.Ingest.ShutdownTimeout)
	sctx, scancel := context.WithTimeout(context.Background(), cfg.Ingest.ShutdownTimeout)
	defer scancel()
	srv.Shutdown(sctx)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		log.Warn("components did not stop within the shutdown timeout; exiting", "timeout", cfg.Ingest.ShutdownTimeout)
	}
	return failed
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
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--api-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("--api-token-file: %s is empty", file)
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
