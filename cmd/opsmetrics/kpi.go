package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func runKPI(ctx context.Context, fs *flag.FlagSet, args []string) error {
	explain := ""
	if len(args) > 0 && args[0] == "explain" {
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			return fmt.Errorf("usage: opsmetrics kpi explain KPI [flags]; KPI is one of %s", strings.Join(metrics.ExplainableKPIs, ", "))
		}
		explain, args = args[1], args[2:]
	}
	parse := config.Bind(fs, config.SetClickHouse)
	from := fs.String("from", "", "start of the range, inclusive: a date or RFC 3339 time (default: 30 days before --to)")
	to := fs.String("to", "", "end of the range, exclusive (default: today 00:00 UTC)")
	by := fs.String("by", "", "slice by a comma-separated list of service, team, environment")
	service := fs.String("service", "", "only these services (comma-separated)")
	team := fs.String("team", "", "only these teams (comma-separated)")
	env := fs.String("environment", "", "only these environments (comma-separated)")
	prod := fs.String("production", "production", "environments that count as production (comma-separated)")
	gap := fs.Duration("max-gap", metrics.DefaultMaxGap, "longest time from a deployment to an incident it can be blamed for")
	leadFrom := fs.String("lead-time-from", "commit", "start of change lead time: commit or merge")
	format := fs.String("format", "table", "output: table, json or csv")
	bucket := fs.String("bucket", "", "compute per day, week or month instead of over the whole range")
	tz := fs.String("tz", "UTC", "time zone of --from/--to dates and of bucket edges (IANA name)")
	compare := fs.Bool("compare", false, "also compute the previous period of the same length, and the change")
	report := fs.String("dora-report", metrics.DefaultLevelTable, "DORA report whose performance clusters give the levels: 2023 or 2024")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if err := cfg.Require(config.SetClickHouse); err != nil {
		return err
	}
	loc, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("--tz: %w", err)
	}
	b, err := metrics.ParseBucket(*bucket)
	if err != nil {
		return fmt.Errorf("--bucket: %w", err)
	}
	q := metrics.Query{Levels: *report, MaxGap: *gap, Services: list(*service), Teams: list(*team), Environments: list(*env), Production: list(*prod)}
	now := time.Now().In(loc)
	q.To = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	if *to != "" {
		if q.To, err = parseTimeIn(*to, loc); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	q.From = q.To.AddDate(0, 0, -30)
	if *from != "" {
		if q.From, err = parseTimeIn(*from, loc); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	for _, d := range list(*by) {
		dim, err := metrics.ParseDimension(d)
		if err != nil {
			return fmt.Errorf("--by: %w", err)
		}
		q.By = append(q.By, dim)
	}
	switch *leadFrom {
	case "commit":
	case "merge":
		q.LeadTimeFromMerge = true
	default:
		return fmt.Errorf("--lead-time-from: want commit or merge, got %q", *leadFrom)
	}
	if *format != "table" && *format != "json" && *format != "csv" {
		return fmt.Errorf("--format: want table, json or csv, got %q", *format)
	}
	st, err := store.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer st.Close()
	if explain != "" {
		e, err := metrics.Explain(ctx, st.Conn(), explain, q)
		if err != nil {
			return err
		}
		return e.WriteTable(os.Stdout)
	}
	r, err := metrics.Run(ctx, st.Conn(), q, b, loc, *compare)
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		return r.WriteJSON(os.Stdout)
	case "csv":
		return r.WriteCSV(os.Stdout)
	}
	return r.WriteTable(os.Stdout)
}

// parseTimeIn accepts an RFC 3339 time or a date, midnight in loc.
func parseTimeIn(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("want a date (2006-01-02) or an RFC 3339 time, got %q", s)
	}
	return t, nil
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
