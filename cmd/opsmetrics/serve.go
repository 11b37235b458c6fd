package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/api"
	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/telemetry"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func runServe(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := config.Bind(fs, config.SetClickHouse, config.SetMetricsAddr)
	listen := fs.String("listen", "127.0.0.1:8080", "listen address of the HTTP API")
	refresh := fs.Duration("kpi-refresh", time.Minute, "how often the Prometheus KPI gauges are recomputed")
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
	exp := metrics.NewExporter(st.Conn(), defaults, nil, log)
	reg.MustRegister(exp)
	if cfg.MetricsAddr != "" {
		if err := telemetry.ServeMetrics(ctx, cfg.MetricsAddr, reg, log); err != nil {
			return err
		}
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
	go exp.Run(ctx, *refresh)
	log.Info("serving the API", "addr", l.Addr().String())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
