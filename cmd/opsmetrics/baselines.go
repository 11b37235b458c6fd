package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
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
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	stop := spinner("learning baselines", nil)
	res, err := anomaly.Relearn(ctx, st.Conn(), cfg.baselinesConfig(), now, log)
	stop()
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
	if _, ok := baselines.LookupKPI(*kpi); *kpi != "" && !ok {
		return usagef("--kpi: unknown KPI %q: the baselined ones are %s", *kpi, strings.Join(baselines.KPINames(), ", "))
	}
	if s := baselines.Status(*status); s != "" && s != baselines.Ready && s != baselines.Learning {
		return usagef("--status: unknown status %q: want %s or %s", *status, baselines.Ready, baselines.Learning)
	}
	if *step != "" {
		if _, err := metrics.ParseStep(*step); err != nil {
			return usagef("--step: %w", err)
		}
	}
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	cur, err := baselines.Current(ctx, st.Conn(), metrics.Step(*step))
	if err != nil {
		return err
	}
	// A service or team with no series is likely mistyped: say so.
	for _, f := range []struct {
		dim, name string
		of        func(baselines.Series) string
	}{{"service", *service, func(s baselines.Series) string { return s.Service }}, {"team", *team, func(s baselines.Series) string { return s.Team }}} {
		if f.name != "" && !slices.ContainsFunc(cur, func(c baselines.Stored) bool { return f.of(c.Series) == f.name }) && len(cur) > 0 {
			fmt.Fprintf(os.Stderr, "note: no baselines for %s %s\n", f.dim, f.name)
		}
	}
	return baselines.WriteCurrent(os.Stdout, cur, baselines.ShowFilter{KPI: *kpi, Service: *service, Team: *team, Status: *status}, time.Now())
}
