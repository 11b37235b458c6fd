package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/store"
)

func runMigrate(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := config.Bind(fs, config.SetClickHouse)
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if err := cfg.Require(config.SetClickHouse); err != nil {
		return err
	}
	applied, err := store.Migrate(ctx, cfg.ClickHouse, cfg.Logger())
	if err != nil {
		return err
	}
	fmt.Printf("schema at version %d (%d migrations applied now)\n", store.LatestVersion(), len(applied))
	return nil
}
