package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Bind(fs, SetClickHouse, SetBrokers, SetGroup, SetTopics, SetIngest)(args)
}

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte(`
clickhouse: clickhouse://file@h:9000/db
brokers: [file:9092]
group: from-file
ingest:
  batch_size: 111
  batch_max_latency: 3s
`), 0o644)
	t.Setenv("OPSMETRICS_GROUP", "from-env")
	t.Setenv("OPSMETRICS_BATCH_SIZE", "222")
	cfg, err := load(t, "--config", file, "--batch-size", "333")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"clickhouse from file", cfg.ClickHouse, "clickhouse://file@h:9000/db"},
		{"brokers from file", strings.Join(cfg.Brokers, ","), "file:9092"},
		{"group: env beats file", cfg.Group, "from-env"},
		{"batch size: flag beats env and file", cfg.Ingest.BatchSize, 333},
		{"latency from file", cfg.Ingest.BatchMaxLatency, 3 * time.Second},
		{"default topic", cfg.Topics.Deployments, "ops.deployments"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestValidationNamesTheField(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want string
	}{
		{"negative batch size", []string{"--batch-size", "-3"}, nil, "", "config: ingest.batch_size: must be > 0, got -3"},
		{"bad DSN", []string{"--clickhouse", "http://x"}, nil, "", "config: clickhouse: want clickhouse://"},
		{"bad broker", []string{"--brokers", "kafka"}, nil, "", `config: brokers: want host:port, got "kafka"`},
		{"bad env duration", nil, map[string]string{"OPSMETRICS_BATCH_MAX_LATENCY": "soon"}, "", "config: OPSMETRICS_BATCH_MAX_LATENCY: want a duration"},
		{"dead-letter topic is an input", []string{"--topic-deadletter", "ops.changes"}, nil, "", "config: topics.deadletter: must differ"},
		{"unknown YAML key", nil, nil, "ingest:\n  batchsize: 3\n", "field batchsize not found"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "", "config: log.format: want text or json"},
		{"password is not echoed", []string{"--clickhouse", "clickhouse://u:hunter2@/db"}, nil, "", "config: clickhouse:"},
		{"unknown DORA report", nil, nil, "kpi:\n  dora_report: \"2019\"\n", `config: kpi.dora_report: want 2023, 2024 or a table of kpi.dora_levels, got "2019"`},
		{"rising frequency bounds", nil, nil, "kpi:\n  dora_levels:\n    ours:\n      deploys_per_day: [0.1, 1, 0.01]\n" +
			"      lead_time: [1h, 2h, 3h]\n      recovery_time: [1h, 2h, 3h]\n      change_failure_rate: [0.1, 0.2, 0.3, 0.4]\n",
			"config: kpi.dora_levels.ours.deploys_per_day: want three positive, falling bounds"},
		{"unknown patch severity", nil, nil, "kpi:\n  patch_deadlines:\n    urgent: 24h\n", `config: kpi.patch_deadlines: unknown severity "urgent"`},
		{"no production environment", nil, nil, "kpi:\n  production: []\n", "config: kpi.production: must name at least one environment"},
		{"negative gap", nil, nil, "kpi:\n  max_gap: -1h\n", "config: kpi.max_gap: want a duration up to 876000h, or 0 for no bound"},
		{"gap beyond a century", nil, nil, "kpi:\n  max_gap: 1000000h\n", "config: kpi.max_gap:"},
		{"placeholder is never production", nil, nil, "kpi:\n  production: [production, Unknown]\n", `config: kpi.production: "Unknown" is the placeholder`},
		{"production names an alias", []string{"--environment-aliases", "prod=production"}, nil, "kpi:\n  production: [PROD]\n",
			`config: kpi.production: "PROD" is an alias of "production"`},
		{"alias chain", nil, nil, "ingest:\n  environment_aliases:\n    prd: prod\n    prod: production\n", `config: ingest.environment_aliases.prd: maps "prd" onto "prod", which is itself an alias`},
		{"alias onto itself", []string{"--environment-aliases", "Prod=prod"}, nil, "", `maps "Prod" onto itself`},
		{"alias onto unknown", []string{"--environment-aliases", "none=unknown"}, nil, "", "cannot be aliased"},
		{"alias with a control character", []string{"--environment-aliases", "pro\x1bd=production"}, nil, "", "U+001B"},
		{"same alias twice", nil, nil, "ingest:\n  environment_aliases:\n    Prod: production\n    prod: production\n", "are the same alias"},
		{"alias flag syntax", []string{"--environment-aliases", "prod"}, nil, "", "want alias=environment pairs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := c.args
			if c.yaml != "" {
				file := filepath.Join(t.TempDir(), "c.yaml")
				os.WriteFile(file, []byte(c.yaml), 0o644)
				args = append(args, "--config", file)
			}
			_, err := load(t, args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("args %v: error %v, want one containing %q", args, err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	cfg, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Require(SetClickHouse, SetBrokers)
	if err == nil || !strings.Contains(err.Error(), "--clickhouse or OPSMETRICS_CLICKHOUSE") || !strings.Contains(err.Error(), "brokers") {
		t.Fatalf("Require: %v", err)
	}
}

func TestKPISection(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte(`
kpi:
  production: [prod-eu, prod-us]
  dora_report: strict
  dora_levels:
    strict:
      deploys_per_day: [2, 0.5, 0.1]
      lead_time: [12h, 72h, 336h]
      recovery_time: [30m, 4h, 24h]
      change_failure_rate: [0.02, 0.05, 0.1, 0.3]
  max_gap: 6h
  patch_deadlines:
    critical: 48h
`), 0o644)
	cfg, err := load(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.KPI
	if strings.Join(k.Production, ",") != "prod-eu,prod-us" || k.DORAReport != "strict" || k.MaxGap != 6*time.Hour ||
		k.PatchDeadlines["critical"] != 48*time.Hour || k.LeadTimeLookback != 90*24*time.Hour ||
		k.DORALevels["strict"].RecoveryTime[1] != 4*time.Hour || k.DORALevels["strict"].ChangeFailureRate[3] != 0.3 {
		t.Errorf("kpi section read as %+v", k)
	}
}

func TestIngestEnvironments(t *testing.T) {
	cfg, err := load(t, "--environment-aliases", "Prod=Production, prd-eu = production", "--dead-letter-unused")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.Ingest.Aliases()); got != "map[prd-eu:production prod:production]" || !cfg.Ingest.DeadLetterUnused {
		t.Errorf("aliases %s, dead_letter_unused %v", got, cfg.Ingest.DeadLetterUnused)
	}
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("kpi:\n  max_gap: 0s\n"), 0o644)
	if cfg, err = load(t, "--config", file); err != nil || cfg.KPI.MaxGap != 0 {
		t.Errorf("max_gap 0 (unbounded): %v, %v", cfg, err)
	}
}

// TestSecretsFromFiles: OPSMETRICS_X_FILE reads a setting from a file;
// setting both is an error, and neither error shows the secret.
func TestSecretsFromFiles(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dsn")
	os.WriteFile(file, []byte("clickhouse://u:hunter2@h:9000/db\n"), 0o600)
	t.Setenv("OPSMETRICS_CLICKHOUSE_FILE", file)
	cfg, err := load(t)
	if err != nil || cfg.ClickHouse != "clickhouse://u:hunter2@h:9000/db" {
		t.Fatalf("from file: %q, %v", cfg.ClickHouse, err)
	}
	t.Setenv("OPSMETRICS_CLICKHOUSE", "clickhouse://u:hunter2@h:9000/db")
	if _, err := load(t); err == nil || !strings.Contains(err.Error(), "set one") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("both set: %v", err)
	}
	os.Unsetenv("OPSMETRICS_CLICKHOUSE")
	t.Setenv("OPSMETRICS_CLICKHOUSE_FILE", filepath.Join(t.TempDir(), "missing"))
	if _, err := load(t); err == nil || !strings.Contains(err.Error(), "OPSMETRICS_CLICKHOUSE_FILE") {
		t.Errorf("missing file: %v", err)
	}
}

// TestSubcommandFlagsReadTheEnvironment: a flag a subcommand defines itself
// reads OPSMETRICS_<FLAG> too, and the command line still wins.
func TestSubcommandFlagsReadTheEnvironment(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	parse := Bind(fs, SetClickHouse)
	components := fs.String("components", "all", "components")
	listen := fs.String("listen", "127.0.0.1:8080", "listen address")
	t.Setenv("OPSMETRICS_COMPONENTS", "ingest")
	t.Setenv("OPSMETRICS_LISTEN", ":9999")
	if _, err := parse([]string{"--listen", ":7777"}); err != nil {
		t.Fatal(err)
	}
	if *components != "ingest" || *listen != ":7777" {
		t.Errorf("components %q (want ingest from the environment), listen %q (want :7777 from the flag)", *components, *listen)
	}
	if f := fs.Lookup("components"); !strings.Contains(f.Usage, "OPSMETRICS_COMPONENTS") {
		t.Errorf("--help does not name the variable: %q", f.Usage)
	}
}

func TestMemoryBudgetFlag(t *testing.T) {
	for _, c := range []struct {
		arg  string
		want int64
		err  string
	}{
		{"268435456", 256 << 20, ""},
		{"512MiB", 512 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"200MB", 200e6, ""},
		{"100MiB", 0, "ingest.memory_budget_bytes: must be at least 128 MiB"},
		{"lots", 0, "want a size like"},
		{"1.5GiB", 0, "want a size like"},
	} {
		cfg, err := load(t, "--memory-budget", c.arg)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("--memory-budget %s: %v, want an error saying %q", c.arg, err, c.err)
		case c.err == "" && (err != nil || cfg.Ingest.MemoryBudgetBytes != c.want):
			t.Errorf("--memory-budget %s: %v, %v; want %d", c.arg, cfg, err, c.want)
		}
	}
}
