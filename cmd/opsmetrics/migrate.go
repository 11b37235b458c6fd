package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/opsmetrics/opsmetrics/internal/store"
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
	return nil
}
