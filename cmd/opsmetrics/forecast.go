package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/opsmetrics/opsmetrics/baselines"
)

// runForecast forecasts a KPI's series from the current baselines.
func runForecast(ctx context.Context, fs *flag.FlagSet, args []string) error {
	parse := bind(fs, setClickHouse)
	var p baselines.ForecastParams
	fs.StringVar(&p.KPI, "kpi", "", "the KPI to forecast, one of the baselined ones (required)")
	fs.StringVar(&p.By, "by", "", "forecast each team, environment or service instead of the organisation")
	fs.StringVar(&p.Services, "service", "", "only these services (comma-separated)")
	fs.StringVar(&p.Teams, "team", "", "only these teams (comma-separated)")
	fs.StringVar(&p.Environments, "environment", "", "only these environments (comma-separated)")
	fs.StringVar(&p.Step, "step", "day", "forecast per day or hour")
	fs.StringVar(&p.Horizon, "horizon", "14d", "how far ahead: days (14d), weeks (2w) or hours (36h)")
	fs.StringVar(&p.At, "at", "", "forecast from the interval that holds this time (default now)")
	fs.StringVar(&p.Level, "level", "0.9", "the band's nominal coverage")
	format := fs.String("format", "table", "output: table, json or csv")
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	q, err := p.Parse(time.Now())
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
	cur, err := baselines.Current(ctx, st.Conn(), q.Step)
	if err != nil {
		return err
	}
	r, err := baselines.Forecasts(cur, q)
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
