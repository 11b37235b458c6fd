// Command opsmetrics is the operations-metrics pipeline: it ingests
// deployment, incident, patch and change events from Kafka into ClickHouse.
// Each subcommand wires packages together and holds no logic of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name, usage, summary string
	run                  func(ctx context.Context, fs *flag.FlagSet, args []string) error
}

var commands = []command{
	{"migrate", "migrate --clickhouse DSN [--cluster NAME [--print]]", "create or upgrade the ClickHouse schema (idempotent)", runMigrate},
	{"ingest", "ingest --clickhouse DSN --brokers LIST [--until-idle D] [--metrics-addr ADDR]", "consume events from Kafka into ClickHouse", runIngest},
	{"generate", "generate [--services N] [--teams N] [--days N] [--seed N] [--out F]", "write a realistic, seeded event stream as JSON Lines", runGenerate},
	{"produce", "produce --brokers LIST --file F", "publish a JSON Lines file of events to Kafka", runProduce},
	{"kpi", "kpi --clickhouse DSN [--from T] [--to T] [--by service,team,environment] [--service S] [--bucket day|week|month] [--compare] [--format table|json|csv]\n       opsmetrics kpi explain KPI --clickhouse DSN --service S [--from T] [--to T]", "compute the DORA and incident KPIs over a range", runKPI},
	{"serve", "serve --clickhouse DSN [--listen ADDR] [--metrics-addr ADDR] [--kpi-refresh D] [--alertmanager URL] [--components api,kpi,anomaly]",
		"serve the KPI HTTP API and Prometheus KPI gauges, relearn baselines and send anomaly alerts on schedules", runServe},
	{"baselines", "baselines learn --clickhouse DSN [--at T] [--config F]\n       opsmetrics baselines show --clickhouse DSN [--kpi K] [--service S] [--team T] [--status ready|learning] [--step day|hour]",
		"learn the expected value and band of every KPI series, or list them", runBaselines},
	{"anomaly", "anomaly detect --clickhouse DSN [--alertmanager URL] [--at T] [--config F]\n       opsmetrics anomaly score --in series.csv --out scores.csv [--kind count|rate|duration|auto] [--season N|auto]",
		"judge the latest intervals against their baselines and alert; or score a CSV series offline", runAnomaly},
	{"dashboards", "dashboards build --out DIR [--clickhouse DSN] [--prometheus-url URL] [--dashboards-path P]\n" +
		"       opsmetrics dashboards provision --grafana-url URL [--grafana-token-file F | --grafana-user U --grafana-password-file F] [--clickhouse DSN] [--prometheus-url URL] [--password-env NAME]",
		"write the Grafana dashboards and a file-provisioning tree for them, or create or update them through Grafana's HTTP API", runDashboards},
	{"report", "report --clickhouse DSN [--from T] [--to T] [--by team] [--tz Z] --out report.html", "write the ops-review report: a self-contained HTML page with KPI trends, baselines, anomalies and incidents", runReport},
	{"demo", "demo", "run the whole pipeline end to end on embedded defaults", runDemo},
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("opsmetrics "+c.name, flag.ContinueOnError)
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage: opsmetrics %s\n\n%s.\n\nFlags:\n", c.usage, c.summary)
			fs.PrintDefaults()
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, fs, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		default:
			fmt.Fprintf(os.Stderr, "opsmetrics %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "opsmetrics: unknown command %q\n\n", args[0])
	usage()
	return 2
}

func usage() {
	fmt.Fprintf(os.Stderr, "Usage: opsmetrics COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'opsmetrics COMMAND --help' for a command's flags.\n")
}
