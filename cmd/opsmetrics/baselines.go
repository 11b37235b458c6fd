package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func runBaselines(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if len(args) == 0 || (args[0] != "learn" && args[0] != "show") {
		return subcommandUsage(fs, args, "usage: opsmetrics baselines learn|show [flags]")
	}
	if args[0] == "show" {
		return runBaselinesShow(ctx, fs, args[1:])
	}
	parse := bind(fs, setClickHouse)
	at := fs.String("at", "", "learn as of this time (default now): the training window ends at the last closed interval before it")
	cfg, err := parse(args[1:])
	if err != nil {
		return err
	}
	now, err := parseAt(*at)
	if err != nil {
		return err
	}
	log := cfg.Log.Logger()
	st, err := cfg.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := anomaly.Relearn(ctx, st.Conn(), cfg.baselinesConfig(), now, log)
	if err != nil {
		return err
	}
	fmt.Println(res)
	return nil
}

// runBaselinesShow lists the current baselines: every series with its
// status (learning ones never alert), model, and the expected value and
// band of the current slot.
func runBaselinesShow(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse)
	kpi := fs.String("kpi", "", "only this KPI")
	service := fs.String("service", "", "only this service")
	team := fs.String("team", "", "only this team")
	status := fs.String("status", "", "only ready or learning series")
	step := fs.String("step", "", "only day or hour series")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	st, err := cfg.openStore(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	cur, err := baselines.Current(ctx, st.Conn(), metrics.Step(*step))
	if err != nil {
		return err
	}
	return baselines.WriteCurrent(os.Stdout, cur, baselines.ShowFilter{KPI: *kpi, Service: *service, Team: *team, Status: *status}, time.Now())
}
