package main

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

// load parses args as a command that binds the ingestion settings does.
func load(t *testing.T, args ...string) (*fileConfig, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return bind(fs, setClickHouse, setBrokers, setGroup, setTopics, setIngest, setIngestFlush, setAPI, setAlerting)(args)
}

// file is the path of a configuration of testdata/config.
func file(name string) string { return filepath.Join("testdata", "config", name+".yaml") }

// TestGoodFile reads a file of every section into the packages' types.
func TestGoodFile(t *testing.T) {
	cfg, err := load(t, "--config", file("good"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"clickhouse", cfg.ClickHouse, "clickhouse://file@h:9000/db"},
		{"brokers", strings.Join(cfg.Kafka.Brokers, ","), "file:9092"},
		{"kafka.sasl_mechanism", cfg.Kafka.SASLMechanism, "SCRAM-SHA-512"},
		{"group", cfg.Group, "from-file"},
		{"topics.deployments", cfg.Topics.Deployments, "ops.deployments"},
		{"topics.changes, a default", cfg.Topics.Changes, "ops.changes"},
		{"ingest.batch_size", cfg.Ingest.BatchSize, 111},
		{"ingest.memory_budget_bytes", cfg.Ingest.MemoryBudget, int64(256 << 20)},
		{"ingest.environment_aliases", fmt.Sprint(cfg.Ingest.EnvironmentAliases), "map[Prod:production]"},
		{"log.format", cfg.Log.Format, "json"},
		{"kpi.max_gap", cfg.KPI.MaxGap, 6 * time.Hour},
		{"api.max_concurrent_queries", cfg.API.MaxConcurrent, 2},
		{"api.query_timeout, a default", cfg.API.QueryTimeout, 30 * time.Second},
		{"baselines.alpha", cfg.Baselines.Alpha, 0.001},
		{"baselines.min_count, a default", cfg.Baselines.MinCount, 3.0},
		{"baselines.maintenance[0].service", cfg.Baselines.Maintenance[0].Service, "checkout"},
		{"anomaly.persistence.hour.m", cfg.Anomaly.Persistence["hour"].M, 4},
		{"alerting.runbooks.mttr", cfg.Alerting.Runbooks["mttr"], "https://runbooks.example/mttr"},
		{"alerting.thresholds[0].above, parsed", *cfg.Alerting.Thresholds[0].Above, 0.15},
		{"alerting.thresholds[0].by", fmt.Sprint(cfg.Alerting.Thresholds[0].By), "[team]"},
		{"alerting.thresholds[0].set_at", cfg.Alerting.Thresholds[0].SetAt.Format(time.RFC3339), "2026-08-01T00:00:00Z"},
		{"anomaly detects at the baselines' steps", fmt.Sprint(cfg.anomalyConfig().Steps), "[day]"},
		{"change_calendar.windows[0].teams", fmt.Sprint(cfg.Calendar.Windows[0].Teams), "[payments]"},
		{"change_calendar.freezes[0].reason", cfg.Calendar.Freezes[0].Reason, "year-end trading peak"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if q, err := cfg.kpiDefaults(); err != nil || q.Calendar == nil {
		t.Errorf("the KPIs' defaults have no change calendar (%v)", err)
	}
	// The dashboards' KPI panels read the rollup of the configured
	// definitions, unless no rollup is kept.
	if o, err := cfg.dashboardOptions(); err != nil || o.KPI == nil || o.KPI.MaxGap != 6*time.Hour {
		t.Errorf("the dashboards do not take the KPI definitions: %+v, %v", o.KPI, err)
	}
	cfg.KPI.RollupInterval = 0
	if o, err := cfg.dashboardOptions(); err != nil || o.KPI != nil || o.Definitions == nil || o.Definitions.MaxGap != 6*time.Hour {
		t.Errorf("with no rollup kept, the dashboards read it, or not with the configured definitions: %+v, %+v, %v", o.KPI, o.Definitions, err)
	}
}

func TestPrecedence(t *testing.T) {
	t.Setenv("OPSMETRICS_GROUP", "from-env")
	t.Setenv("OPSMETRICS_BATCH_SIZE", "222")
	cfg, err := load(t, "--config", file("good"), "--batch-size", "333")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"clickhouse from file", cfg.ClickHouse, "clickhouse://file@h:9000/db"},
		{"brokers from file", strings.Join(cfg.Kafka.Brokers, ","), "file:9092"},
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
		file string // of testdata/config
		want string
	}{
		{"negative batch size", []string{"--batch-size", "-3"}, nil, "", "--batch-size: must be > 0, got -3"},
		{"bad DSN", []string{"--clickhouse", "http://x"}, nil, "", "--clickhouse: want clickhouse://"},
		{"bad broker", []string{"--brokers", "kafka"}, nil, "", `--brokers: want host:port, got "kafka"`},
		{"bad env duration", nil, map[string]string{"OPSMETRICS_BATCH_MAX_LATENCY": "soon"}, "", "config: OPSMETRICS_BATCH_MAX_LATENCY: want a duration"},
		{"invalid env value", nil, map[string]string{"OPSMETRICS_BATCH_SIZE": "-4"}, "", "config: OPSMETRICS_BATCH_SIZE: must be > 0, got -4"},
		{"invalid file value", nil, nil, "bad-batch-size", "config: ingest.batch_size: must be > 0, got -5"},
		{"dead-letter topic is an input", []string{"--topic-deadletter", "ops.changes"}, nil, "", "--topic-deadletter: must differ"},
		{"unknown YAML key", nil, nil, "bad-unknown-key", "field batchsize not found"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "", "--log-format: want text or json"},
		{"password is not echoed", []string{"--clickhouse", "clickhouse://u:hunter2@/db"}, nil, "", "--clickhouse:"},
		{"unknown DORA report", nil, nil, "bad-dora-report", `config: kpi.dora_report: want 2023, 2024 or a table of kpi.dora_levels, got "2019"`},
		{"rising frequency bounds", nil, nil, "bad-dora-levels", "config: kpi.dora_levels.ours.deploys_per_day: want three positive, falling bounds"},
		{"unknown patch severity", nil, nil, "bad-patch-severity", `config: kpi.patch_deadlines: unknown severity "urgent"`},
		{"no production environment", nil, nil, "bad-no-production", "config: kpi.production: must name at least one environment"},
		{"negative gap", nil, nil, "bad-negative-gap", "config: kpi.max_gap: want a duration up to 876000h, or 0 for no bound"},
		{"gap beyond a century", nil, nil, "bad-century-gap", "config: kpi.max_gap:"},
		{"placeholder is never production", nil, nil, "bad-placeholder-production", `config: kpi.production: "Unknown" is the placeholder`},
		{"production names an alias", []string{"--environment-aliases", "prod=production"}, nil, "bad-production-alias",
			`config: kpi.production: "PROD" is an alias of "production"`},
		{"alias chain", nil, nil, "bad-alias-chain", `config: ingest.environment_aliases.prd: maps "prd" onto "prod", which is itself an alias`},
		{"alias onto itself", []string{"--environment-aliases", "Prod=prod"}, nil, "", `maps "Prod" onto itself`},
		{"alias onto unknown", []string{"--environment-aliases", "none=unknown"}, nil, "", "cannot be aliased"},
		{"alias with a control character", []string{"--environment-aliases", "pro\x1bd=production"}, nil, "", "U+001B"},
		{"same alias twice", nil, nil, "bad-same-alias", "are the same alias"},
		{"alias flag syntax", []string{"--environment-aliases", "prod"}, nil, "", "want alias=environment pairs"},
		{"threshold bound in the KPI's unit", nil, nil, "bad-threshold-bound", `threshold rule "org-cfr": above: want a ratio in [0, 1] or a percentage`},
		{"duplicate threshold rule", nil, nil, "bad-threshold-duplicate", `config: alerting.thresholds[1].name: duplicate rule name "a"`},
		{"unknown key of a threshold rule", nil, nil, "bad-threshold-unknown-key", "field sevrity not found"},
		{"persistence of an unknown step", nil, nil, "bad-persistence-step", `config: anomaly.persistence: want day or hour keys, got "week"`},
		{"unknown baselines step", nil, nil, "bad-baselines-step", `config: baselines.steps: want day or hour, got "minute"`},
		{"calendar day", nil, nil, "bad-calendar-days",
			`config: change_calendar.windows[1].days[0]: want mon, tue, wed, thu, fri, sat, sun or a range like mon-fri, got "fri-"`},
		{"change-window alert too short", nil, nil, "bad-window-alert-for", "config: alerting.window_alert_for: want at least 1m, or 0 for 24h0m0s, got 10s"},
		{"late change-window alert negative", nil, nil, "bad-window-alert-late", "config: alerting.window_alert_late: want a duration >= 0 (0 for 168h0m0s), got -1h0m0s"},
		{"no API bucket", nil, nil, "bad-api-buckets", "config: api.max_buckets: must be >= 1, got 0"},
		{"bad Alertmanager URL", []string{"--alertmanager", "ftp://x"}, nil, "", "--alertmanager: want an http(s) URL"},
		{"SASL without a password", []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"}, nil, "",
			"--kafka-sasl-username: SASL PLAIN needs a user name and a password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := c.args
			if c.file != "" {
				args = append(args, "--config", file(c.file))
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
	err = cfg.require(setClickHouse, setBrokers)
	if err == nil || !strings.Contains(err.Error(), "--clickhouse or OPSMETRICS_CLICKHOUSE") || !strings.Contains(err.Error(), "brokers") {
		t.Fatalf("require: %v", err)
	}
}

func TestKPISection(t *testing.T) {
	cfg, err := load(t, "--config", file("kpi-strict"))
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.KPI
	if strings.Join(k.Production, ",") != "prod-eu,prod-us" || k.DORAReport != "strict" || k.MaxGap != 6*time.Hour ||
		k.PatchDeadlines["critical"] != 48*time.Hour || k.LeadTimeLookback != 90*24*time.Hour ||
		k.DORALevels["strict"].Recovery[1] != 4*time.Hour || k.DORALevels["strict"].ChangeFailureRate[3] != 0.3 {
		t.Errorf("kpi section read as %+v", k)
	}
	if q := k.Defaults(); q.LevelTables["strict"].Name != "strict" || q.Levels != "strict" {
		t.Errorf("the query defaults of the kpi section: %+v", q)
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
	if cfg, err = load(t, "--config", file("kpi-unbounded-gap")); err != nil || cfg.KPI.MaxGap != 0 {
		t.Errorf("max_gap 0 (unbounded): %v, %v", cfg, err)
	}
}

// TestSecretsFromFiles: OPSMETRICS_X_FILE reads a setting from a file;
// setting both is an error, and neither error shows the secret.
func TestSecretsFromFiles(t *testing.T) {
	f := filepath.Join(t.TempDir(), "dsn")
	os.WriteFile(f, []byte("clickhouse://u:hunter2@h:9000/db\n"), 0o600)
	t.Setenv("OPSMETRICS_CLICKHOUSE_FILE", f)
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
		{"100MiB", 0, "--memory-budget: must be at least 128 MiB"},
		{"lots", 0, "want a size like"},
		{"1.5GiB", 0, "want a size like"},
	} {
		cfg, err := load(t, "--memory-budget", c.arg)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("--memory-budget %s: %v, want an error saying %q", c.arg, err, c.err)
		case c.err == "" && (err != nil || cfg.Ingest.MemoryBudget != c.want):
			t.Errorf("--memory-budget %s: %v, %v; want %d", c.arg, cfg, err, c.want)
		}
	}
}
