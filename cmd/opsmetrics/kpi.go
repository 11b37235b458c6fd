package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/metrics"
)

func runKPI(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if len(args) > 0 && args[0] == "refresh" {
		return runKPIRefresh(ctx, fs, args[1:])
	}
	explain, explaining := "", len(args) > 0 && args[0] == "explain"
	if explaining {
		switch {
		case len(args) > 1 && isHelp(args[1]):
			args = args[1:] // the flags parse to flag.ErrHelp
		case len(args) < 2 || strings.HasPrefix(args[1], "-"):
			return usagef("usage: opsmetrics kpi explain KPI [flags]; KPI is one of %s", strings.Join(metrics.ExplainableKPIs, ", "))
		case !slices.Contains(metrics.ExplainableKPIs, args[1]):
			return usagef("kpi explain: unknown KPI %q: want one of %s", args[1], strings.Join(metrics.ExplainableKPIs, ", "))
		default:
			explain, args = args[1], args[2:]
		}
	}
	parse := bind(fs, setClickHouse)
	var p metrics.Params
	fs.StringVar(&p.From, "from", "", "start of the range, inclusive: a date or RFC 3339 time (default: 30 days before --to)")
	fs.StringVar(&p.To, "to", "", "end of the range, exclusive (default: today 00:00 in --tz)")
	fs.StringVar(&p.Services, "service", "", "only these services (comma-separated)")
	fs.StringVar(&p.Teams, "team", "", "only these teams (comma-separated)")
	fs.StringVar(&p.Environments, "environment", "", "only these environments (comma-separated)")
	fs.StringVar(&p.Systems, "system", "", "only the services of these systems of the service catalog (comma-separated)")
	fs.StringVar(&p.Tiers, "tier", "", "only the services of these tiers of the service catalog (comma-separated)")
	fs.StringVar(&p.Production, "production", "", "environments that count as production, comma-separated (default: kpi.production of the configuration, production)")
	fs.StringVar(&p.TZ, "tz", "UTC", "time zone of --from/--to dates and of bucket edges (IANA name)")
	fs.StringVar(&p.DORAReport, "dora-report", "", "DORA report whose performance clusters give the levels: 2023, 2024 or a table of kpi.dora_levels (default 2024)")
	fs.StringVar(&p.MaxGap, "max-gap", "", "longest time from a deployment to an incident it can be blamed for, or unbounded (default 24h)")
	fs.StringVar(&p.LeadTimeFrom, "lead-time-from", "commit", "start of change lead time: commit or merge")
	fs.StringVar(&p.LeadTimeLookback, "lead-time-lookback", "", "how long before --from a change may have started and still count in lead time (default 2160h)")
	compare, format := new(bool), new(string)
	*format = "table"
	if !explaining { // explain lists the rows of one range: no slices, buckets, comparison or formats
		fs.StringVar(&p.By, "by", "", "slice by a comma-separated list of service, team, environment, system, tier (system and tier: from the service catalog)")
		fs.StringVar(&p.Bucket, "bucket", "", "compute per day, week or month instead of over the whole range")
		fs.BoolVar(compare, "compare", false, "also compute the previous period of the same length, and the change")
		fs.StringVar(format, "format", "table", "output: table, json or csv")
	}
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	p.Compare = fmt.Sprint(*compare)
	if p.Defaults, err = cfg.kpiDefaults(); err != nil {
		return err
	}
	req, err := p.Parse(time.Now())
	if err != nil {
		return paramsError(err)
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if explain != "" {
		e, err := metrics.ExplainIn(ctx, st.Conn(), explain, req.Query, req.Location)
		if err != nil {
			return err
		}
		if err := noteNoData(ctx, st.Conn(), req.Query, os.Stderr); err != nil {
			return err
		}
		metrics.WriteRange(os.Stdout, req.Query.From, req.Query.To, req.Location)
		return e.WriteTable(os.Stdout)
	}
	stop := spinner("computing KPIs", nil)
	r, err := metrics.Run(ctx, st.Conn(), req.Query, req.Bucket, req.Location, req.Compare)
	stop()
	if err != nil {
		return err
	}
	if err := noteNoData(ctx, st.Conn(), req.Query, os.Stderr); err != nil {
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

// noteNoData writes a note to w for each service, team or environment of
// q's filters that has no data in q's range: a name the user may have
// mistyped, which is no error.
func noteNoData(ctx context.Context, conn driver.Conn, q metrics.Query, w io.Writer) error {
	filters := []struct {
		d     metrics.Dimension
		names []string
	}{{metrics.Service, q.Services}, {metrics.Team, q.Teams}, {metrics.Environment, q.Environments}, {metrics.System, q.Systems},
		{metrics.Tier, q.Tiers}}
	for _, f := range filters {
		if len(f.names) == 0 {
			continue
		}
		bq := q
		bq.By, bq.Step = []metrics.Dimension{f.d}, ""
		sums, err := metrics.Summaries(ctx, conn, bq)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, s := range sums {
			seen[s.Slice[f.d]] = true
		}
		for _, n := range f.names {
			if !seen[n] {
				fmt.Fprintf(w, "note: no data for %s %s in range %s to %s\n", f.d, n,
					q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
			}
		}
	}
	return nil
}

// paramsError is an error of metrics.Params.Parse as a usage error that
// names the flag: "bucket: …" becomes "--bucket: …".
func paramsError(err error) error {
	field, rest, ok := strings.Cut(err.Error(), ": ")
	if !ok || strings.ContainsAny(field, " ,") {
		return usageError{err}
	}
	return usagef("--%s: %s", strings.ReplaceAll(field, "_", "-"), rest)
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// runKPIRefresh builds the KPI rollup now, unless it is of the stored rows
// (serve rebuilds it every kpi.rollup_interval).
func runKPIRefresh(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse)
	cfg, err := parse(args)
	if err != nil {
		return err
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

// checkFormat refuses an output format other than table, json or csv.
func checkFormat(format string) error {
	if format != "table" && format != "json" && format != "csv" {
		return usagef("--format: want table, json or csv, got %q", format)
	}
	return nil
}
