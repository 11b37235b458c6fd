package main

import (
	"context"
	"flag"
	"os"

	"github.com/opsmetrics/opsmetrics/anomaly"
)

// runTargets reviews the configured targets (alerting.thresholds) over the
// last quarter.
func runTargets(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if len(args) == 0 || args[0] != "review" {
		return subcommandUsage(fs, args, "usage: opsmetrics targets review [flags]")
	}
	parse := bind(fs, setClickHouse)
	at := fs.String("at", "", "review the quarter that ends at the start of this day (default today)")
	cfg, err := parse(args[1:])
	if err != nil {
		return err
	}
	now, err := parseAt(*at)
	if err != nil {
		return usageError{err}
	}
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	stop := spinner("reviewing targets", nil)
	rr, err := anomaly.ReviewRules(ctx, st.Conn(), cfg.Alerting.Thresholds, cfg.KPI.Production, now, anomaly.ReviewOptions{})
	stop()
	if err != nil {
		return err
	}
	return rr.WriteTable(os.Stdout)
}
