// Command opsmetrics is the operations-metrics pipeline: it ingests
// deployment, incident, patch and change events from Kafka into ClickHouse.
// Each subcommand wires packages together and holds no logic of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/opsmetrics/opsmetrics/internal/config"
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
	{"kpi", "kpi --clickhouse DSN [--from T] [--to T] [--tz Z] [--by service,team,environment,system,tier] [--service S] [--bucket day|week|month] [--compare] [--format table|json|csv]\n       opsmetrics kpi explain KPI --clickhouse DSN [--service S] [--from T] [--to T] [--tz Z]\n       opsmetrics kpi refresh --clickhouse DSN", "compute the DORA and incident KPIs over a range", runKPI},
	{"serve", "serve --clickhouse DSN [--listen ADDR] [--metrics-addr ADDR] [--kpi-refresh D] [--alertmanager URL] [--components api,kpi,anomaly]",
		"serve the KPI HTTP API and Prometheus KPI gauges, relearn baselines and send anomaly alerts on schedules", runServe},
	{"baselines", "baselines learn --clickhouse DSN [--at T] [--config F]\n       opsmetrics baselines show --clickhouse DSN [--kpi K] [--service S] [--team T] [--status ready|learning] [--step day|hour]",
		"learn the expected value and band of every KPI series, or list them", runBaselines},
	{"forecast", "forecast --clickhouse DSN --kpi K [--by team|service|environment] [--service S] [--team T] [--environment E] [--step day|hour] [--horizon 14d] [--at T] [--level 0.9] [--format table|json|csv]",
		"forecast a KPI's future intervals from the learnt baselines: the expected value and band of each", runForecast},
	{"anomaly", "anomaly detect --clickhouse DSN [--alertmanager URL] [--at T | --from T [--to T]] [--config F]\n       opsmetrics anomaly score --in series.csv --out scores.csv [--kind count|rate|duration|dense|auto] [--season N|auto|none]",
		"judge the latest intervals against their baselines and alert; or score a CSV series offline", runAnomaly},
	{"targets", "targets review --clickhouse DSN [--config F] [--at T]",
		"review every threshold rule over the last quarter: stale, never met or shifted targets, with a suggested value", runTargets},
	{"dashboards", "dashboards build --out DIR [--clickhouse DSN] [--prometheus-url URL] [--dashboards-path P]\n" +
		"       opsmetrics dashboards provision --grafana-url URL [--grafana-token-file F | --grafana-user U --grafana-password-file F] [--clickhouse DSN] [--prometheus-url URL] [--password-env NAME]",
		"write the Grafana dashboards and a file-provisioning tree for them, or create or update them through Grafana's HTTP API", runDashboards},
	{"report", "report --clickhouse DSN [--from T] [--to T] [--by team] [--tz Z] --out report.html", "write the ops-review report: a self-contained HTML page with KPI trends, baselines, anomalies and incidents", runReport},
	{"catalog", "catalog check --config F --clickhouse DSN [--from T] [--to T] [--format table|json]\n       opsmetrics catalog store --config F --clickhouse DSN",
		"load the service catalog and list the teams stored that are not their service's owner (exit 1 when any); or store it for the dashboards", runCatalog},
	{"demo", "demo [--services N] [--days N] [--seed N] [--dir DIR] [--keep]", "run the whole pipeline end to end on embedded defaults", runDemo},
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// Exit codes: 1 for a failure, 2 for a usage error (a bad command line),
// as Go's flag package and most CLIs use them.
const (
	exitFailure = 1
	exitUsage   = 2
)

func run(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return exitUsage
	}
	if isHelp(args[0]) {
		usage(os.Stdout)
		return 0
	}
	switch args[0] {
	case "-version", "--version", "version":
		fmt.Println(version())
		return 0
	case "completion": // not in commands: it reads them
		if err := runCompletion(args[1:], os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "opsmetrics completion: %v\n", err)
			return exitUsage
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		// Help goes to stdout, errors to stderr, each printed here once:
		// the flag set itself prints nothing. The flag package calls Usage
		// on every parse error, which makes that error a usage error.
		fs := flag.NewFlagSet("opsmetrics "+c.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		badFlags := false
		fs.Usage = func() { badFlags = true }
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, fs, args[1:])
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			commandHelp(os.Stdout, c, fs)
			return 0
		case badFlags || errors.As(err, &ue):
			msg := err.Error()
			if badFlags {
				msg = flagMessage(fs, msg)
			}
			name := c.name // with its subcommand: opsmetrics baselines learn --help
			if len(args) > 1 && slices.Contains(subcommands[c.name], args[1]) {
				name += " " + args[1]
			}
			fmt.Fprintf(os.Stderr, "opsmetrics %s: %s\nRun 'opsmetrics %s --help' for usage.\n", c.name, msg, name)
			return exitUsage
		default:
			fmt.Fprintf(os.Stderr, "opsmetrics %s: %v\n", c.name, err)
			return exitFailure
		}
	}
	fmt.Fprintf(os.Stderr, "opsmetrics: unknown command %q", args[0])
	if near := closest(args[0], append(commandNames(), "completion")); near != "" {
		fmt.Fprintf(os.Stderr, "; did you mean %q?", near)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'opsmetrics --help' for the commands.\n")
	return exitUsage
}

// flagDash finds the flag in the flag package's errors ("flag provided but
// not defined: -nope", "invalid value "x" for flag -days: parse error").
var flagDash = regexp.MustCompile(`(defined: |for flag |for |argument: )-([\w-]+)`)

// flagMessage is an error of the flag package as the rest of the command
// line writes them: the flag as --flag, and for a value the standard flags
// fail to parse, what they take.
func flagMessage(fs *flag.FlagSet, msg string) string {
	m := flagDash.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	msg = strings.Replace(msg, m[0], m[1]+"--"+m[2], 1)
	if f := fs.Lookup(m[2]); f != nil && (strings.HasSuffix(msg, ": parse error") || strings.HasSuffix(msg, ": value out of range")) {
		if want := config.Accepts(f.Value); want != "" {
			msg = msg[:strings.LastIndex(msg, ": ")] + ": want " + want
		}
	}
	return msg
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: opsmetrics COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "completion", "write the bash or zsh completion script (opsmetrics completion bash|zsh)")
	fmt.Fprintf(w, "\nRun 'opsmetrics COMMAND --help' for a command's flags, 'opsmetrics --version' for the build.\n")
}

// commandHelp writes a command's usage and the flags registered on fs,
// each spelt --flag.
func commandHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: opsmetrics %s\n\n%s.\n", c.usage, c.summary)
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	if b.Len() > 0 {
		fmt.Fprint(w, "\nFlags:\n"+strings.ReplaceAll("\n"+b.String(), "\n  -", "\n  --")[1:])
	}
}

// usageError is an error of the command line: a missing or unknown
// argument, or a value outside the ones a flag takes. It exits 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// usagef returns a usageError.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// subcommandUsage answers --help on a command that needs a subcommand, and
// says what is missing otherwise.
func subcommandUsage(fs *flag.FlagSet, args []string, usage string) error {
	if len(args) > 0 && isHelp(args[0]) {
		return flag.ErrHelp
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return usagef("unknown subcommand %q; %s", args[0], usage)
	}
	return usageError{errors.New(usage)}
}

func commandNames() []string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return names
}

// closest is the name within two edits of s (or that s is a prefix of),
// for "did you mean"; empty when none is.
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := editDistance(s, n)
		if strings.HasPrefix(n, s) && len(s) > 1 {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// commit is the commit the binary was built from, set by the Makefile
// (-ldflags "-X main.commit=abc1234", "abc1234-dirty" with local changes),
// which works where the toolchain records no VCS information
// (-buildvcs=false).
var commit string

// version is the module version and the commit the binary was built from:
// the one the Makefile set, or else the one the Go toolchain recorded.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "opsmetrics (no build information)"
	}
	v := "opsmetrics " + bi.Main.Version
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	rev, modified := commit, false
	if rev != "" {
		rev, modified = strings.CutSuffix(rev, "-dirty")
	} else if rev = vcs["vcs.revision"]; rev != "" {
		rev += " (" + vcs["vcs.time"] + ")"
		modified = vcs["vcs.modified"] == "true"
	}
	switch {
	case rev == "":
		v += " commit unknown (built outside a repository, or with -buildvcs=false and not by make)"
	case modified:
		v += " commit " + rev + " with local changes"
	default:
		v += " commit " + rev
	}
	return v + ", " + bi.GoVersion
}
