package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/opsmetrics/opsmetrics/dashboards"
	"github.com/opsmetrics/opsmetrics/internal/config"
)

func runDashboards(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if len(args) == 0 || args[0] != "build" {
		return subcommandUsage(fs, args, "usage: opsmetrics dashboards build --out DIR [flags]")
	}
	parse := config.Bind(fs, config.SetClickHouse)
	out := fs.String("out", "", "directory to write the Grafana provisioning tree to")
	path := fs.String("dashboards-path", "/var/lib/grafana/dashboards/opsmetrics",
		"where Grafana will find the dashboard JSON files (the tree's dashboards/ directory, mounted)")
	prom := fs.String("prometheus-url", "", "Prometheus URL for the pipeline health dashboard (empty: not provisioned)")
	passwordEnv := fs.String("password-env", "OPSMETRICS_CLICKHOUSE_PASSWORD",
		"environment variable Grafana reads the ClickHouse password from; no password is written")
	cfg, err := parse(args[1:])
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	ds := dashboards.DataSources{Host: "localhost", Port: 9000, Database: "default", User: "default",
		PasswordEnv: *passwordEnv, PrometheusURL: *prom}
	if cfg.ClickHouse != "" {
		u, err := url.Parse(cfg.ClickHouse)
		if err != nil {
			return fmt.Errorf("--clickhouse: %w", err)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			host, port = u.Host, "9000"
		}
		ds.Host = host
		if ds.Port, err = strconv.Atoi(port); err != nil {
			return fmt.Errorf("--clickhouse: port %q: %w", port, err)
		}
		if db := strings.Trim(u.Path, "/"); db != "" {
			ds.Database = db
		}
		if u.User != nil && u.User.Username() != "" {
			ds.User = u.User.Username()
		}
		ds.Secure = u.Query().Get("secure") == "true"
	}
	files, err := dashboards.WriteTree(*out, *path, ds)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Println(f)
	}
	return nil
}
