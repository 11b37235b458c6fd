package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opsmetrics/opsmetrics/metrics"
	"github.com/opsmetrics/opsmetrics/report"
)

func runReport(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse)
	var p metrics.Params
	fs.StringVar(&p.From, "from", "", "start of the range, inclusive: a date or RFC 3339 time (default: 30 days before --to)")
	fs.StringVar(&p.To, "to", "", "end of the range, exclusive (default: today 00:00 in --tz)")
	fs.StringVar(&p.TZ, "tz", "UTC", "time zone of --from/--to dates, of trend buckets and of the times shown (IANA name)")
	fs.StringVar(&p.By, "by", "team", "slice the DORA table by a comma-separated list of service, team, environment, system, tier (empty: organisation only)")
	out := fs.String("out", "", "HTML file to write, - for stdout (required)")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required: the HTML file to write, or - for stdout")
	}
	// Check the output path before computing: a temporary file beside it,
	// renamed onto it once the page is complete, so that a failure leaves
	// no half-written file.
	var tmp *os.File
	if *out != "-" {
		if tmp, err = os.CreateTemp(filepath.Dir(*out), ".opsmetrics-report-*.html"); err != nil {
			return fmt.Errorf("--out %s: cannot write there: %w", *out, err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
	}
	if p.Defaults, err = cfg.kpiDefaults(); err != nil {
		return err
	}
	now := time.Now()
	req, err := p.Parse(now)
	if err != nil {
		return paramsError(err)
	}
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	stop := spinner("computing the report", nil)
	r, err := report.Build(ctx, st.Conn(), report.Options{From: req.Query.From, To: req.Query.To, Location: req.Location,
		By: req.Query.By, Query: req.Query, Now: now, Thresholds: cfg.Alerting.Thresholds, Tiers: cfg.Alerting.Tiers})
	stop()
	if err != nil {
		return err
	}
	// Render in full first: a failure leaves no half-written file.
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	if tmp == nil {
		_, err = os.Stdout.Write(b.Bytes())
		return err
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
