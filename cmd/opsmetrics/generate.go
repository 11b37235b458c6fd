package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func runGenerate(_ context.Context, fs *flag.FlagSet, args []string) error {
	var cfg generator.Config
	fs.IntVar(&cfg.Services, "services", generator.DefaultServices, "number of services")
	fs.IntVar(&cfg.Teams, "teams", generator.DefaultTeams, "number of teams")
	fs.IntVar(&cfg.Days, "days", generator.DefaultDays, "number of days")
	fs.Uint64Var(&cfg.Seed, "seed", generator.DefaultSeed, "random seed: the same seed and flags give the same stream")
	fs.BoolVar(&cfg.Anomalies, "anomalies", false, "inject anomalies in the last 7 days (a failure burst, a deployment stop)")
	end := fs.String("end", "", "exclusive end of the range, a date or RFC 3339 time (default: today 00:00 UTC)")
	format := fs.String("format", "native", "encoding: native, cloudevents, cdevents (spec 0.5.1) or mixed")
	out := fs.String("out", "", "output file (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.End = time.Now().UTC().Truncate(24 * time.Hour)
	if *end != "" {
		t, err := metrics.ParseTime(*end, time.UTC)
		if err != nil {
			return usagef("--end: %w", err)
		}
		cfg.End = t.UTC()
	}
	if err := errors.Join(cfg.Validate(), generator.Format(*format).Validate()); err != nil {
		// "generator: services: …" is of the flag --services.
		return usageError{errors.New(strings.ReplaceAll(err.Error(), "generator: ", "--"))}
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	stats, err := generator.WriteJSONL(w, cfg, generator.Format(*format))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "generated %d events: %d deployments, %d changes, %d incidents (%d messages), %d patch targets (%d messages)\n",
		stats.Events, stats.Deployments, stats.Changes, stats.Incidents, stats.IncidentMessages, stats.Patches, stats.PatchMessages)
	for _, a := range stats.Anomalies {
		fmt.Fprintf(os.Stderr, "injected anomaly: %s\n", a)
	}
	return nil
}
