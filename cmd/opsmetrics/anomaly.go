package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := metrics.ParseTime(s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at: %w", err)
	}
	return t, nil
}

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
	if err := cfg.require(setClickHouse); err != nil {
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
	fmt.Printf("generation %d: %d series, %d ready, %d learning\n", res.Generation, res.Series, res.Ready, res.Series-res.Ready)
	return nil
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
	cfg, err := parse(args[1:])
	if err != nil {
		return err
	}
	if err := cfg.require(setClickHouse); err != nil {
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
	fire, resolve, err := detectOnce(ctx, st.Conn(), cfg, now, log, os.Stdout)
	if err != nil {
		return err
	}
	if cfg.Alerting.Alertmanager == "" {
		if len(fire) > 0 {
			log.Warn("alerts not sent: no Alertmanager configured (--alertmanager)", "firing", len(fire))
		}
		return nil
	}
	// A one-shot run: alerts last four evaluation intervals unless re-sent,
	// so a scheduled `anomaly detect` keeps them alive.
	n, err := anomaly.NewNotifier(anomaly.NotifierConfig{URL: cfg.Alerting.Alertmanager, ResendInterval: cfg.Anomaly.EvaluationInterval}, nil, log)
	if err != nil {
		return err
	}
	for _, a := range fire {
		n.Fire(a)
	}
	for _, a := range resolve {
		n.ResolveFromHistory(a)
	}
	if err := n.Flush(ctx); err != nil {
		return fmt.Errorf("send %d alerts to Alertmanager: %w", len(fire)+len(resolve), err)
	}
	return nil
}

// detectOnce runs detection and the threshold rules, prints what fires, and
// returns the alerts to fire and the anomaly alerts to resolve.
func detectOnce(ctx context.Context, conn driver.Conn, cfg *fileConfig, now time.Time,
	log *slog.Logger, out *os.File) (fire, resolve []anomaly.Alert, err error) {
	ev, err := anomaly.Evaluate(ctx, conn, cfg.anomalyConfig(), cfg.Alerting.Thresholds, cfg.Alerting.AlertConfig, now, log)
	if err != nil {
		return nil, nil, err
	}
	evals, fire, resolve := ev.Series, ev.Fire, ev.Resolve
	if out != nil {
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ALERT\tKPI\tSLICE\tSEVERITY\tSUMMARY")
		for _, a := range fire {
			var slice []string
			for _, k := range []string{"step", "service", "team", "environment"} {
				if v := a.Labels[k]; v != "" {
					slice = append(slice, k+"="+v)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Labels["alertname"], a.Labels["kpi"], strings.Join(slice, " "),
				a.Labels["severity"], a.Annotations["summary"])
		}
		tw.Flush()
		judged, learning := 0, 0
		for _, e := range evals {
			if e.Model.Status == baselines.Learning {
				learning++
			} else {
				judged++
			}
		}
		fmt.Fprintf(out, "\n%d series judged, %d learning; %d alerts firing, %d resolved\n", judged, learning, len(fire), len(resolve))
	}
	return fire, resolve, nil
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
		return errors.New("--in is required")
	}
	o := anomaly.ScoreOptions{Kind: *kind, Window: *window, Options: baselines.Options{Alpha: *alpha, MinHistory: *minHistory}}
	switch *season {
	case "auto":
	case "none":
		o.Season = -1
	default:
		n, err := strconv.Atoi(*season)
		if err != nil || n < 1 {
			return fmt.Errorf("--season: want a number of intervals, auto or none, got %q", *season)
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
	n := 0
	for _, r := range rows {
		if r.Anomaly {
			n++
		}
	}
	fmt.Fprintf(os.Stderr, "scored %d rows as %s, step %v, season %d intervals: %d anomalies\n", len(rows), rep.Kind, rep.Step, rep.Season, n)
	if rep.Missing+rep.Repeated+rep.OutOfOrder+rep.OffGrid+rep.Gaps > 0 {
		fmt.Fprintf(os.Stderr, "  %d rows without a value, %d repeated timestamps, %d out of order, %d off the %v grid; %d intervals missing\n",
			rep.Missing, rep.Repeated, rep.OutOfOrder, rep.OffGrid, rep.Step, rep.Gaps)
	}
	return nil
}

// subcommandUsage answers --help on a command that needs a subcommand, and
// says what is missing otherwise.
func subcommandUsage(fs *flag.FlagSet, args []string, usage string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
		fs.Usage()
		return flag.ErrHelp
	}
	return errors.New(usage)
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
	if err := cfg.require(setClickHouse); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer st.Close()
	cur, err := baselines.Current(ctx, st.Conn(), metrics.Step(*step))
	if err != nil {
		return err
	}
	if len(cur) == 0 {
		fmt.Println("no baselines yet: run opsmetrics baselines learn")
		return nil
	}
	fmt.Printf("generation %d, trained %s\n\n", cur[0].Generation, cur[0].TrainedAt.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KPI\tSTEP\tSLICE\tSTATUS\tMODEL\tSAMPLES\tNOW EXPECTED\tBAND")
	now := time.Now()
	for _, c := range cur {
		s, m := c.Series, c.Model
		if (*kpi != "" && s.KPI != *kpi) || (*service != "" && s.Service != *service) || (*team != "" && s.Team != *team) ||
			(*status != "" && string(m.Status) != *status) {
			continue
		}
		k, _ := baselines.LookupKPI(s.KPI)
		e, lo, hi := m.Band(m.Slot(now))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s–%s\n", s.KPI, s.Step, s.Slice(), m.Status, m.Family, m.Samples,
			k.Format(e), k.Format(lo), k.Format(hi))
	}
	return tw.Flush()
}
