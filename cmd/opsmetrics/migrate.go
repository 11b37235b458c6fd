package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func runMigrate(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse)
	cluster := fs.String("cluster", "", "ClickHouse cluster (remote_servers) to create replicated local tables and Distributed tables on, ON CLUSTER; needs ZooKeeper")
	printDDL := fs.Bool("print", false, "print the statements for --cluster instead of running them")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if *printDDL {
		if *cluster == "" {
			return usagef("--print needs --cluster")
		}
		db := "default"
		if u, err := url.Parse(cfg.ClickHouse); err == nil && strings.Trim(u.Path, "/") != "" {
			db = strings.Trim(u.Path, "/")
		}
		ddl, err := store.ClusterDDL(*cluster, db)
		if err != nil {
			return err
		}
		fmt.Println(strings.Join(ddl, ";\n\n") + ";")
		return nil
	}
	if err := cfg.require(setClickHouse); err != nil {
		return err
	}
	applied, err := store.MigrateCluster(ctx, cfg.ClickHouse, *cluster, cfg.Log.Logger())
	if err != nil {
		return err
	}
	fmt.Printf("schema at version %d (%d migrations applied now)\n", store.LatestVersion(), len(applied))
	if *cluster != "" || cfg.KPI.RollupInterval == 0 {
		return nil // the rollup is not built on a cluster (docs/kpis.md)
	}
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	q, err := cfg.kpiDefaults() // with the calendar and the catalog's tiers, whose counts the rollup keeps
	if err != nil {
		return err
	}
	return refreshRollup(ctx, st.Conn(), q)
}

// refreshRollup builds the KPI rollup unless it is of the stored rows,
// and says which, with a spinner on a terminal meanwhile.
func refreshRollup(ctx context.Context, conn driver.Conn, q metrics.Query) error {
	stop := spinner("building the KPI rollup", nil)
	r, built, err := metrics.RefreshRollup(ctx, conn, q)
	stop()
	if err != nil {
		return err
	}
	if !built {
		fmt.Printf("kpi rollup: up to date (built %s)\n", r.BuiltAt.Format(time.RFC3339))
		return nil
	}
	fmt.Printf("kpi rollup: built %d rows in %s\n", r.Rows, r.Took.Round(time.Millisecond))
	return nil
}
