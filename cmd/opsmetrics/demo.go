package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/opsmetrics/opsmetrics/demo"
)

func runDemo(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse, setBrokers, setTopics, setIngest, setIngestFlush)
	o := demo.Options{Out: os.Stdout}
	fs.IntVar(&o.Services, "services", 20, "number of services")
	fs.IntVar(&o.Days, "days", 90, "days of history")
	fs.Uint64Var(&o.Seed, "seed", 1, "generator seed")
	fs.StringVar(&o.Dir, "dir", "", "working directory (default: a new temporary directory, removed at exit)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the servers running after the summary, until Ctrl-C")
	fs.DurationVar(&o.UntilIdle, "until-idle", 3*time.Second, "stop ingesting after this long without messages")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "opsmetrics-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	o.ClickHouse, o.Kafka, o.Topics, o.Ingest, o.Log = cfg.ClickHouse, cfg.Kafka, cfg.Topics, cfg.Ingest, cfg.Log.Logger()
	o.Ingest.Group = "opsmetrics-demo-" + time.Now().UTC().Format("20060102T150405")
	if o.Calendar, err = cfg.calendar(); err != nil { // nil: the demo's own
		return err
	}
	o.End = time.Now().UTC().Truncate(24 * time.Hour)
	return demo.Run(ctx, o)
}
