package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := metrics.ParseTime(s, time.UTC)
	if err != nil {
		return time.Time{}, usagef("--at: %w", err)
	}
	return t, nil
}

func runAnomaly(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if len(args) == 0 || (args[0] != "detect" && args[0] != "score") {
		return subcommandUsage(fs, args, "usage: opsmetrics anomaly detect|score [flags]")
	}
	if args[0] == "score" {
		return runScore(fs, args[1:])
	}
	parse := bind(fs, setClickHouse, setAlerting)
	at := fs.String("at", "", "detect as of this time (default now): judges the last closed interval before it")
	from := fs.String("from", "", "judge every closed interval from this time, each with the baseline learnt before it, and alert nobody (with --to)")
	to := fs.String("to", "", "end of the range --from judges (default now)")
	cfg, err := parse(args[1:])
	if err != nil {
		return err
	}
	now, err := parseAt(*at)
	if err != nil {
		return err
	}
	var past anomaly.BackfillOptions
	if *from != "" || *to != "" {
		if *from == "" || *at != "" {
			return usagef("--from and --to judge a past range: give --from, and no --at")
		}
		if past.From, err = metrics.ParseTime(*from, time.UTC); err != nil {
			return usagef("--from: %w", err)
		}
		past.To = now
		if *to != "" {
			if past.To, err = metrics.ParseTime(*to, time.UTC); err != nil {
				return usagef("--to: %w", err)
			}
		}
		if !past.From.Before(past.To) {
			return usagef("--from %s is not before --to %s", *from, past.To.Format(time.RFC3339))
		}
	}
	log := cfg.Log.Logger()
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if !past.From.IsZero() {
		past.Learn, past.Detect, past.Now = cfg.baselinesConfig(), cfg.anomalyConfig(), now
		stop := spinner("judging past intervals", nil)
		res, err := anomaly.Backfill(ctx, st.Conn(), past, log)
		stop()
		if err != nil {
			return err
		}
		return res.Write(os.Stdout, past)
	}
	alerting := cfg.Alerting
	if alerting.Calendar, err = cfg.calendar(); err != nil {
		return err
	}
	return anomaly.Check(ctx, st.Conn(), anomaly.CheckOptions{Detect: cfg.anomalyConfig(), Alerting: alerting, Catalog: cfg.Catalog, Now: now,
		Out: os.Stdout, Log: log})
}

func runScore(fs *flag.FlagSet, args []string) error {
	in := fs.String("in", "", "one exported series: CSV of timestamp,value (or num,den for rates), or the JSON of a Prometheus range query, CloudWatch GetMetricData or GetMetricStatistics, or a Datadog query; - for stdin")
	out := fs.String("out", "-", "CSV to write, one row per input row in input order: timestamp,value,expected,lower,upper,score,anomaly,test; - for stdout")
	kind := fs.String("kind", "auto", "model: count, rate, duration, dense or auto")
	season := fs.String("season", "auto", "season in intervals, auto, or none")
	alpha := fs.Float64("alpha", 0, "two-sided tail probability below which a row is an anomaly (default 0.002, 0.0001 for dense series)")
	minHistory := fs.Int("min-history", 0, "rows of history before scoring starts (default 14 intervals; a day of rows, 30 to 300, for dense series)")
	window := fs.Int("window", 0, "past intervals that train each score of a count, rate or duration (default 8 weeks of intervals, at least 28)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return usagef("--in is required")
	}
	if !slices.Contains(anomaly.ScoreKinds, *kind) {
		return usagef("--kind: unknown kind %q: want %s", *kind, strings.Join(anomaly.ScoreKinds, ", "))
	}
	o := anomaly.ScoreOptions{Kind: *kind, Window: *window, Options: baselines.Options{Alpha: *alpha, MinHistory: *minHistory}}
	switch *season {
	case "auto":
	case "none":
		o.Season = -1
	default:
		n, err := strconv.Atoi(*season)
		if err != nil || n < 1 {
			return usagef("--season: want a number of intervals, auto or none, got %q", *season)
		}
		o.Season = n
	}
	r := os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	points, rates, err := anomaly.ReadSeries(r)
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	rows, rep, err := anomaly.ScoreSeries(points, rates, o)
	if err != nil {
		return err
	}
	w := os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := anomaly.WriteScores(w, rows); err != nil {
		return err
	}
	rep.WriteSummary(os.Stderr, rows)
	return nil
}
