package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/api"
	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/telemetry"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func runServe(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := config.Bind(fs, config.SetClickHouse, config.SetMetricsAddr, config.SetAlerting)
	listen := fs.String("listen", "127.0.0.1:8080", "listen address of the HTTP API")
	refresh := fs.Duration("kpi-refresh", time.Minute, "how often the Prometheus KPI gauges are recomputed")
	components := fs.String("components", "api,kpi,anomaly", "components to run, comma-separated: api (HTTP API), kpi (Prometheus KPI gauges), anomaly (baseline relearning, detection and alerts)")
	prod := fs.String("production", "", "environments that count as production, comma-separated (default: kpi.production of the configuration)")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if err := cfg.Require(config.SetClickHouse); err != nil {
		return err
	}
	if *refresh < time.Second {
		return errors.New("--kpi-refresh: must be at least 1s")
	}
	on := map[string]bool{}
	for _, c := range strings.Split(*components, ",") {
		switch c = strings.TrimSpace(c); c {
		case "api", "kpi", "anomaly":
			on[c] = true
		default:
			return fmt.Errorf("--components: unknown component %q: want api, kpi or anomaly", c)
		}
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

	reg := telemetry.NewRegistry()
	if on["kpi"] {
		exp := metrics.NewExporter(st.Conn(), defaults, nil, log)
		reg.MustRegister(exp)
		go exp.Run(ctx, *refresh)
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
		go svc.Run(ctx)
	}
	if cfg.MetricsAddr != "" {
		if err := telemetry.ServeMetrics(ctx, cfg.MetricsAddr, reg, log); err != nil {
			return err
		}
	}
	if !on["api"] {
		<-ctx.Done()
		return nil
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.Handler(st.Conn(), defaults, log), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("serving the API", "addr", l.Addr().String())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
