// Package config holds opsmetrics' configuration: one plain struct, filled in
// one place from, in rising order of precedence, built-in defaults, an
// optional YAML file (--config or OPSMETRICS_CONFIG), OPSMETRICS_*
// environment variables and command-line flags, then validated with errors
// that name the bad field.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/opsmetrics/opsmetrics/internal/event"
)

// Config is the whole configuration. Each subcommand binds the settings it
// uses as flags; the YAML file may hold any of them.
type Config struct {
	ClickHouse  string    `yaml:"clickhouse"`
	Brokers     []string  `yaml:"brokers"`
	Kafka       Kafka     `yaml:"kafka"`
	Group       string    `yaml:"group"`
	Topics      Topics    `yaml:"topics"`
	Ingest      Ingest    `yaml:"ingest"`
	Log         Log       `yaml:"log"`
	MetricsAddr string    `yaml:"metrics_addr"`
	KPI         KPI       `yaml:"kpi"`
	API         API       `yaml:"api"`
	Baselines   Baselines `yaml:"baselines"`
	Anomaly     Anomaly   `yaml:"anomaly"`
	Alerting    Alerting  `yaml:"alerting"`
}

// Baselines configures learning (docs/baselines.md).
type Baselines struct {
	// Training is the length of the training window.
	Training time.Duration `yaml:"training"`
	// Steps are the granularities learnt: day, hour or both.
	Steps []string `yaml:"steps"`
	// Alpha is the two-sided tail probability below which an interval is
	// anomalous.
	Alpha float64 `yaml:"alpha"`
	// MinHistory is the least number of intervals before a series alerts.
	MinHistory int `yaml:"min_history"`
	// MinCount is the least count that can be an upward anomaly.
	MinCount float64 `yaml:"min_count"`
	// RelearnInterval is how often serve relearns.
	RelearnInterval time.Duration `yaml:"relearn_interval"`
	// Maintenance windows do not train baselines.
	Maintenance []Maintenance `yaml:"maintenance"`
}

// Maintenance is a time range, for one service or all, that does not
// train baselines.
type Maintenance struct {
	From    time.Time `yaml:"from"`
	To      time.Time `yaml:"to"`
	Service string    `yaml:"service"`
	Reason  string    `yaml:"reason"`
}

// Anomaly configures detection.
type Anomaly struct {
	// EvaluationInterval is how often serve detects.
	EvaluationInterval time.Duration `yaml:"evaluation_interval"`
	// Persistence per step: fire when N of the last M intervals are
	// anomalous.
	Persistence map[string]Persistence `yaml:"persistence"`
}

// Persistence is an N-of-M rule.
type Persistence struct {
	N int `yaml:"n"`
	M int `yaml:"m"`
}

// Alerting configures notifications.
type Alerting struct {
	// Alertmanager is the base URL of Alertmanager; empty sends nothing.
	Alertmanager string `yaml:"alertmanager"`
	// ResendInterval is how often active alerts are re-sent.
	ResendInterval time.Duration `yaml:"resend_interval"`
	// Runbooks maps a KPI to its runbook URL; DefaultRunbook serves the
	// others.
	Runbooks       map[string]string `yaml:"runbooks"`
	DefaultRunbook string            `yaml:"default_runbook"`
	// DashboardURL is the anomalies dashboard alerts link to.
	DashboardURL string `yaml:"dashboard_url"`
	// Thresholds are the KPI target rules.
	Thresholds []Threshold `yaml:"thresholds"`
}

// Threshold is one KPI target rule; Above and Below are in the KPI's unit
// ("15%", "4h", "3") and are checked by the anomaly package.
type Threshold struct {
	Name         string        `yaml:"name"`
	KPI          string        `yaml:"kpi"`
	Above        string        `yaml:"above"`
	Below        string        `yaml:"below"`
	Window       time.Duration `yaml:"window"`
	By           []string      `yaml:"by"`
	Services     []string      `yaml:"services"`
	Teams        []string      `yaml:"teams"`
	Environments []string      `yaml:"environments"`
	Severity     string        `yaml:"severity"`
	Runbook      string        `yaml:"runbook"`
}

// KPI holds the settings of the KPI definitions (docs/kpis.md). The flags
// of `opsmetrics kpi` and the API's parameters override them per query.
type KPI struct {
	// Production lists the environments that count as production.
	Production []string `yaml:"production"`
	// DORAReport names the active level table: 2023, 2024 or a key of
	// DORALevels.
	DORAReport string `yaml:"dora_report"`
	// DORALevels adds level tables, or replaces the built-in 2023 and 2024.
	DORALevels map[string]DORALevels `yaml:"dora_levels"`
	// MaxGap is the longest time from a deployment to an incident it can
	// be blamed for; 0 means no bound.
	MaxGap time.Duration `yaml:"max_gap"`
	// LeadTimeLookback is how long before a range a change may have
	// started and still count in its lead time.
	LeadTimeLookback time.Duration `yaml:"lead_time_lookback"`
	// PatchDeadlines is the time allowed to apply a patch, per severity
	// (critical, high, medium, low, unknown); missing ones keep their
	// defaults.
	PatchDeadlines map[string]time.Duration `yaml:"patch_deadlines"`
	// MaxLabelBytes cuts longer service, team and environment names where
	// the KPI gauges export them as Prometheus labels.
	MaxLabelBytes int `yaml:"max_label_bytes"`
	// MaxLabelValues is the most distinct values of each of those labels
	// the KPI gauges export; the slices beyond are left out.
	MaxLabelValues int `yaml:"max_label_values"`
}

// API bounds the work of the HTTP API (docs/configuration.md).
type API struct {
	// MaxRange is the longest range of one KPI request.
	MaxRange time.Duration `yaml:"max_range"`
	// MaxBuckets is the most buckets of one request: the longest range
	// per bucket size is that many days, weeks or months.
	MaxBuckets int `yaml:"max_buckets"`
	// QueryTimeout bounds the ClickHouse work of one request.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxConcurrentQueries is how many KPI requests run at once; heavy
	// ones (many buckets, comparisons, slices) leave one of them free.
	MaxConcurrentQueries int `yaml:"max_concurrent_queries"`
	// MaxQueuedQueries is how many more may wait, each for at most
	// QueueTimeout.
	MaxQueuedQueries int           `yaml:"max_queued_queries"`
	QueueTimeout     time.Duration `yaml:"queue_timeout"`
	// MaxFilterBytes bounds the service, team and environment filters of
	// one request, together.
	MaxFilterBytes int `yaml:"max_filter_bytes"`
	// ReadTimeout and IdleTimeout bound a client's request and an idle
	// keep-alive connection; the write timeout follows from the query and
	// queue timeouts.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// DORALevels is one table of DORA performance clusters: the bounds of
// elite, high and medium (deployment frequency in successful deployments
// per day, at least; lead and recovery time, below), and the typical
// change failure rate of elite, high, medium and low.
type DORALevels struct {
	DeploysPerDay     [3]float64       `yaml:"deploys_per_day"`
	LeadTime          [3]time.Duration `yaml:"lead_time"`
	RecoveryTime      [3]time.Duration `yaml:"recovery_time"`
	ChangeFailureRate [4]float64       `yaml:"change_failure_rate"`
}

// Kafka secures the connections to the brokers.
type Kafka struct {
	// TLS turns TLS on; CAFile verifies the brokers (default: the system's
	// roots); CertFile and KeyFile are a client certificate.
	TLS                bool   `yaml:"tls"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none).
	SASLMechanism string `yaml:"sasl_mechanism"`
	SASLUsername  string `yaml:"sasl_username"`
	// SASLPassword is secret: set it with OPSMETRICS_KAFKA_SASL_PASSWORD(_FILE).
	SASLPassword string `yaml:"sasl_password"`
}

// Topics are the Kafka topics opsmetrics reads and writes.
type Topics struct {
	Deployments string `yaml:"deployments"`
	Incidents   string `yaml:"incidents"`
	Patches     string `yaml:"patches"`
	Changes     string `yaml:"changes"`
	DeadLetter  string `yaml:"deadletter"`
}

// Inputs are the topics ingestion consumes.
func (t Topics) Inputs() []string {
	return []string{t.Deployments, t.Incidents, t.Patches, t.Changes}
}

// Ingest tunes ingestion.
type Ingest struct {
	// BatchSize is the most messages written to ClickHouse in one insert.
	BatchSize int `yaml:"batch_size"`
	// BatchMaxLatency is the longest a fetched message waits to be written.
	BatchMaxLatency time.Duration `yaml:"batch_max_latency"`
	// MaxMessageBytes is the largest accepted payload; larger ones are
	// dead-lettered. It also bounds the memory of a batch.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxFutureSkew is how far in the future a timestamp may be.
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	// DeadLetterUnused dead-letters valid CDEvents of types opsmetrics does
	// not store (reason unused_type) instead of skipping and counting them.
	DeadLetterUnused bool `yaml:"dead_letter_unused"`
	// EnvironmentAliases maps environment names onto the environment they
	// stand for (prod: production), applied as events are ingested. Names
	// are compared without regard to case.
	EnvironmentAliases map[string]string `yaml:"environment_aliases"`
	// RetryMaxBackoff caps the backoff between retries of a failed write.
	RetryMaxBackoff time.Duration `yaml:"retry_max_backoff"`
	// ShutdownTimeout bounds the final flush on SIGINT or SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// SessionTimeout is the consumer group session timeout: how long a
	// crashed ingester holds its partitions before the group reassigns them.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// MemoryBudgetBytes bounds what an ingester holds: fetched, queued,
	// decoded and batched messages (docs/ingestion.md).
	MemoryBudgetBytes int64 `yaml:"memory_budget_bytes"`
	// DeadLetterMaxBytes bounds a dead letter when the dead-letter topic's
	// max.message.bytes cannot be read from Kafka.
	DeadLetterMaxBytes int `yaml:"dead_letter_max_bytes"`
}

// Log configures logging.
type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn or error
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Group: "opsmetrics",
		Topics: Topics{
			Deployments: "ops.deployments",
			Incidents:   "ops.incidents",
			Patches:     "ops.patches",
			Changes:     "ops.changes",
			DeadLetter:  "ops.deadletter",
		},
		Ingest: Ingest{
			BatchSize:       10000,
			BatchMaxLatency: time.Second,
			MaxMessageBytes: 1 << 20,
			MaxFutureSkew:   time.Hour,
			RetryMaxBackoff: 30 * time.Second,
			ShutdownTimeout: 30 * time.Second,
			SessionTimeout:  30 * time.Second,

			MemoryBudgetBytes:  256 << 20,
			DeadLetterMaxBytes: 1048588,
		},
		API: API{
			MaxRange:             3 * 366 * 24 * time.Hour,
			MaxBuckets:           100,
			QueryTimeout:         30 * time.Second,
			MaxConcurrentQueries: 4,
			MaxQueuedQueries:     64,
			QueueTimeout:         10 * time.Second,
			MaxFilterBytes:       64 << 10,
			ReadTimeout:          30 * time.Second,
			IdleTimeout:          60 * time.Second,
		},
		Log: Log{Format: "text", Level: "info"},
		Baselines: Baselines{
			Training:        8 * 7 * 24 * time.Hour,
			Steps:           []string{"day", "hour"},
			Alpha:           0.002,
			MinHistory:      14,
			MinCount:        3,
			RelearnInterval: 24 * time.Hour,
		},
		Anomaly: Anomaly{EvaluationInterval: 5 * time.Minute},
		Alerting: Alerting{
			ResendInterval: time.Minute,
			DashboardURL:   "http://localhost:3000/d/opsmetrics-anomalies",
		},
		KPI: KPI{
			Production:       []string{"production"},
			DORAReport:       "2024",
			MaxGap:           24 * time.Hour,
			LeadTimeLookback: 90 * 24 * time.Hour,
			MaxLabelBytes:    128,
			MaxLabelValues:   1000,
		},
	}
}

// Setting names, used to choose which settings a subcommand binds as flags.
const (
	SetClickHouse  = "clickhouse"
	SetBrokers     = "brokers"
	SetGroup       = "group"
	SetTopics      = "topics"
	SetIngest      = "ingest"
	SetMetricsAddr = "metrics-addr"
	SetAlerting    = "alerting"
	SetAPI         = "api"
)

type setting struct {
	group, flag, usage string
	value              flag.Value
}

func (c *Config) settings() []setting {
	return []setting{
		{SetClickHouse, "clickhouse", "ClickHouse DSN clickhouse://user:pass@host:port/db", (*stringValue)(&c.ClickHouse)},
		{SetBrokers, "brokers", "comma-separated Kafka seed brokers host:port", (*listValue)(&c.Brokers)},
		{SetBrokers, "kafka-tls", "connect to the brokers with TLS", (*boolValue)(&c.Kafka.TLS)},
		{SetBrokers, "kafka-ca-file", "PEM CA bundle that verifies the brokers (default: system roots)", (*stringValue)(&c.Kafka.CAFile)},
		{SetBrokers, "kafka-cert-file", "PEM client certificate for TLS", (*stringValue)(&c.Kafka.CertFile)},
		{SetBrokers, "kafka-key-file", "PEM key of the client certificate", (*stringValue)(&c.Kafka.KeyFile)},
		{SetBrokers, "kafka-insecure-skip-verify", "do not verify the brokers' certificates (testing only)", (*boolValue)(&c.Kafka.InsecureSkipVerify)},
		{SetBrokers, "kafka-sasl-mechanism", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none)", (*stringValue)(&c.Kafka.SASLMechanism)},
		{SetBrokers, "kafka-sasl-username", "SASL user name", (*stringValue)(&c.Kafka.SASLUsername)},
		{SetBrokers, "kafka-sasl-password", "SASL password; prefer OPSMETRICS_KAFKA_SASL_PASSWORD_FILE", (*stringValue)(&c.Kafka.SASLPassword)},
		{SetGroup, "group", "Kafka consumer group", (*stringValue)(&c.Group)},
		{SetTopics, "topic-deployments", "topic of deployment events", (*stringValue)(&c.Topics.Deployments)},
		{SetTopics, "topic-incidents", "topic of incident events", (*stringValue)(&c.Topics.Incidents)},
		{SetTopics, "topic-patches", "topic of patch events", (*stringValue)(&c.Topics.Patches)},
		{SetTopics, "topic-changes", "topic of change events", (*stringValue)(&c.Topics.Changes)},
		{SetTopics, "topic-deadletter", "dead-letter topic for rejected messages", (*stringValue)(&c.Topics.DeadLetter)},
		{SetIngest, "batch-size", "most messages per ClickHouse insert", (*intValue)(&c.Ingest.BatchSize)},
		{SetIngest, "batch-max-latency", "longest a message waits before its batch is written", (*durationValue)(&c.Ingest.BatchMaxLatency)},
		{SetIngest, "max-message-bytes", "largest accepted message; larger ones are dead-lettered", (*intValue)(&c.Ingest.MaxMessageBytes)},
		{SetIngest, "max-future-skew", "how far in the future an event timestamp may be", (*durationValue)(&c.Ingest.MaxFutureSkew)},
		{SetIngest, "dead-letter-unused", "dead-letter valid CDEvents of types opsmetrics does not store instead of skipping them", (*boolValue)(&c.Ingest.DeadLetterUnused)},
		{SetIngest, "environment-aliases", "environment aliases applied at ingest, comma-separated alias=environment (prod=production)", (*mapValue)(&c.Ingest.EnvironmentAliases)},
		{SetIngest, "retry-max-backoff", "cap of the backoff between retries of a failed write", (*durationValue)(&c.Ingest.RetryMaxBackoff)},
		{SetIngest, "shutdown-timeout", "bound on the final flush at shutdown", (*durationValue)(&c.Ingest.ShutdownTimeout)},
		{SetIngest, "session-timeout", "consumer group session timeout; a crashed ingester's partitions move after it", (*durationValue)(&c.Ingest.SessionTimeout)},
		{SetIngest, "memory-budget", "bytes an ingester may hold: fetched, queued, decoded and batched messages (256MiB, 1GiB or a number)", (*bytesValue)(&c.Ingest.MemoryBudgetBytes)},
		{SetIngest, "dead-letter-max-bytes", "bound of a dead letter when the dead-letter topic's max.message.bytes cannot be read", (*intValue)(&c.Ingest.DeadLetterMaxBytes)},
		{SetAPI, "api-max-range", "longest range of one KPI request", (*durationValue)(&c.API.MaxRange)},
		{SetAPI, "api-max-buckets", "most buckets (days, weeks or months) of one KPI request", (*intValue)(&c.API.MaxBuckets)},
		{SetAPI, "api-query-timeout", "bound on the ClickHouse work of one KPI request", (*durationValue)(&c.API.QueryTimeout)},
		{SetAPI, "api-max-concurrent-queries", "KPI requests that run at once", (*intValue)(&c.API.MaxConcurrentQueries)},
		{SetAPI, "api-max-queued-queries", "KPI requests that may wait for a turn", (*intValue)(&c.API.MaxQueuedQueries)},
		{SetAPI, "api-queue-timeout", "longest a KPI request waits for a turn", (*durationValue)(&c.API.QueueTimeout)},
		{SetAlerting, "alertmanager", "Alertmanager base URL alerts are sent to (empty: none)", (*stringValue)(&c.Alerting.Alertmanager)},
		{SetMetricsAddr, "metrics-addr", "listen address of the Prometheus /metrics endpoint (empty: off)", (*stringValue)(&c.MetricsAddr)},
		{"", "log-format", "log format: text or json", (*stringValue)(&c.Log.Format)},
		{"", "log-level", "log level: debug, info, warn or error", (*stringValue)(&c.Log.Level)},
	}
}

// EnvName is the environment variable that sets a flag.
func EnvName(flagName string) string {
	return "OPSMETRICS_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// Bind registers --config and the flags of the named setting groups (the log
// flags are always bound) on fs, and returns a function that parses args and
// returns the resulting configuration, validated.
func Bind(fs *flag.FlagSet, groups ...string) func(args []string) (*Config, error) {
	c := Default()
	want := map[string]bool{"": true}
	for _, g := range groups {
		want[g] = true
	}
	var bound []setting
	for _, s := range c.settings() {
		if want[s.group] {
			bound = append(bound, s)
			fs.Var(s.value, s.flag, s.usage+" (env "+EnvName(s.flag)+")")
		}
	}
	var file string
	fs.StringVar(&file, "config", "", "YAML configuration file (env OPSMETRICS_CONFIG)")
	return func(args []string) (*Config, error) {
		// The file is read before the flags are parsed, so that flags win:
		// find --config first.
		file = os.Getenv("OPSMETRICS_CONFIG")
		if f, ok := findFlag(args, "config"); ok {
			file = f
		}
		if file != "" {
			if err := c.loadFile(file); err != nil {
				return nil, err
			}
		}
		// Every flag of the subcommand, bound here or defined by the
		// subcommand itself, also reads OPSMETRICS_<FLAG> (or its _FILE).
		boundNames := map[string]bool{"config": true}
		for _, s := range bound {
			boundNames[s.flag] = true
		}
		var envErr error
		set := func(flagName string, value flag.Value) {
			if envErr != nil {
				return
			}
			v, ok, err := fromEnv(EnvName(flagName))
			if err == nil && ok {
				if err = value.Set(v); err != nil {
					err = fmt.Errorf("config: %s: %w", EnvName(flagName), redactErr(flagName, err))
				}
			}
			envErr = err
		}
		for _, s := range bound {
			set(s.flag, s.value)
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !boundNames[f.Name] {
				f.Usage += " (env " + EnvName(f.Name) + ")"
				set(f.Name, f.Value)
			}
		})
		if envErr != nil {
			return nil, envErr
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return &c, nil
	}
}

func findFlag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// Validate checks every setting that has a value; Require checks presence.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{field}, args...)...))
	}
	if c.ClickHouse != "" {
		u, err := url.Parse(c.ClickHouse)
		if err != nil || u.Scheme != "clickhouse" || u.Host == "" {
			bad("clickhouse", "want clickhouse://user:pass@host:port/db, got %q", redactDSN(c.ClickHouse))
		}
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			bad("brokers", "want host:port, got %q", b)
		}
	}
	if c.Group == "" {
		bad("group", "must not be empty")
	}
	switch c.Kafka.SASLMechanism {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		bad("kafka.sasl_mechanism", "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", c.Kafka.SASLMechanism)
	}
	if c.Kafka.SASLMechanism != "" && (c.Kafka.SASLUsername == "" || c.Kafka.SASLPassword == "") {
		bad("kafka.sasl_username", "SASL %s needs a user name and a password", c.Kafka.SASLMechanism)
	}
	if (c.Kafka.CertFile == "") != (c.Kafka.KeyFile == "") {
		bad("kafka.cert_file", "a client certificate needs both cert_file and key_file")
	}
	for name, t := range map[string]string{"topics.deployments": c.Topics.Deployments, "topics.incidents": c.Topics.Incidents,
		"topics.patches": c.Topics.Patches, "topics.changes": c.Topics.Changes, "topics.deadletter": c.Topics.DeadLetter} {
		if t == "" {
			bad(name, "must not be empty")
		}
	}
	for _, in := range c.Topics.Inputs() {
		if in == c.Topics.DeadLetter {
			bad("topics.deadletter", "must differ from the input topics, got %q", in)
		}
	}
	if c.Ingest.BatchSize <= 0 {
		bad("ingest.batch_size", "must be > 0, got %d", c.Ingest.BatchSize)
	}
	if c.Ingest.BatchMaxLatency <= 0 {
		bad("ingest.batch_max_latency", "must be > 0, got %v", c.Ingest.BatchMaxLatency)
	}
	if c.Ingest.MaxMessageBytes <= 0 {
		bad("ingest.max_message_bytes", "must be > 0, got %d", c.Ingest.MaxMessageBytes)
	}
	if c.Ingest.MaxFutureSkew < 0 {
		bad("ingest.max_future_skew", "must be >= 0, got %v", c.Ingest.MaxFutureSkew)
	}
	errs = append(errs, c.validateEnvironments()...)
	if c.Ingest.RetryMaxBackoff <= 0 {
		bad("ingest.retry_max_backoff", "must be > 0, got %v", c.Ingest.RetryMaxBackoff)
	}
	if c.Ingest.ShutdownTimeout <= 0 {
		bad("ingest.shutdown_timeout", "must be > 0, got %v", c.Ingest.ShutdownTimeout)
	}
	if c.Ingest.SessionTimeout < time.Second {
		bad("ingest.session_timeout", "must be >= 1s, got %v", c.Ingest.SessionTimeout)
	}
	if c.Ingest.MemoryBudgetBytes < 128<<20 {
		bad("ingest.memory_budget_bytes", "must be at least 128 MiB (134217728), got %d", c.Ingest.MemoryBudgetBytes)
	}
	if c.Ingest.DeadLetterMaxBytes < 4096 {
		bad("ingest.dead_letter_max_bytes", "must be at least 4096, got %d", c.Ingest.DeadLetterMaxBytes)
	}
	errs = append(errs, c.API.validate()...)
	errs = append(errs, c.KPI.validate()...)
	errs = append(errs, c.validateAnomaly()...)
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "want text or json, got %q", c.Log.Format)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		bad("log.level", "%v", err)
	}
	return errors.Join(errs...)
}

// Require reports an error for each named setting that is empty.
func (c *Config) Require(names ...string) error {
	var errs []error
	for _, n := range names {
		empty := false
		switch n {
		case SetClickHouse:
			empty = c.ClickHouse == ""
		case SetBrokers:
			empty = len(c.Brokers) == 0
		}
		if empty {
			errs = append(errs, fmt.Errorf("config: %s: required (--%s or %s)", n, n, EnvName(n)))
		}
	}
	return errors.Join(errs...)
}

func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "<unparseable>"
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	if err != nil {
		return l, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// Logger builds the logger the configuration asks for, writing to stderr.
func (c *Config) Logger() *slog.Logger {
	level, _ := parseLevel(c.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }

type intValue int

func (v *intValue) String() string { return fmt.Sprint(int(*v)) }
func (v *intValue) Set(s string) error {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		return fmt.Errorf("want an integer, got %q", s)
	}
	*v = intValue(n)
	return nil
}

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration like 500ms or 2m, got %q", s)
	}
	*v = durationValue(d)
	return nil
}

// bytesValue is a size in bytes: a number, or one with a unit (KiB, MiB,
// GiB, or KB, MB, GB).
type bytesValue int64

func (v *bytesValue) String() string { return fmt.Sprint(int64(*v)) }
func (v *bytesValue) Set(s string) error {
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(num, &n); err != nil || n < 0 || strings.ContainsAny(num, " .") {
		return fmt.Errorf("want a size like 268435456, 256MiB or 1GiB, got %q", s)
	}
	*v = bytesValue(n * mult)
	return nil
}

type boolValue bool

func (v *boolValue) String() string   { return fmt.Sprint(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }
func (v *boolValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes":
		*v = true
	case "0", "f", "false", "no", "":
		*v = false
	default:
		return fmt.Errorf("want true or false, got %q", s)
	}
	return nil
}

type mapValue map[string]string

func (v *mapValue) String() string {
	keys := make([]string, 0, len(*v))
	for k := range *v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + (*v)[k]
	}
	return strings.Join(keys, ",")
}

func (v *mapValue) Set(s string) error {
	m := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("want alias=environment pairs separated by commas, got %q", p)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	*v = m
	return nil
}

type listValue []string

func (v *listValue) String() string { return strings.Join(*v, ",") }
func (v *listValue) Set(s string) error {
	*v = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*v = append(*v, p)
		}
	}
	return nil
}

func (k KPI) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: kpi.%s: "+format, append([]any{field}, args...)...))
	}
	if len(k.Production) == 0 {
		bad("production", "must name at least one environment")
	}
	for _, e := range k.Production {
		if strings.TrimSpace(e) == "" {
			bad("production", "empty environment name")
		}
	}
	if _, ok := k.DORALevels[k.DORAReport]; !ok && k.DORAReport != "2023" && k.DORAReport != "2024" {
		bad("dora_report", "want 2023, 2024 or a table of kpi.dora_levels, got %q", k.DORAReport)
	}
	for name, t := range k.DORALevels {
		f := "dora_levels." + name
		for i := range 3 {
			if t.DeploysPerDay[i] <= 0 || (i > 0 && t.DeploysPerDay[i] >= t.DeploysPerDay[i-1]) {
				bad(f+".deploys_per_day", "want three positive, falling bounds (elite, high, medium), got %v", t.DeploysPerDay)
				break
			}
		}
		for field, ds := range map[string][3]time.Duration{"lead_time": t.LeadTime, "recovery_time": t.RecoveryTime} {
			for i := range 3 {
				if ds[i] <= 0 || (i > 0 && ds[i] < ds[i-1]) {
					bad(f+"."+field, "want three positive, non-decreasing bounds (elite, high, medium), got %v", ds)
					break
				}
			}
		}
		for _, r := range t.ChangeFailureRate {
			if r < 0 || r > 1 {
				bad(f+".change_failure_rate", "want four ratios in [0, 1] (elite, high, medium, low), got %v", t.ChangeFailureRate)
				break
			}
		}
	}
	const century = 100 * 365 * 24 * time.Hour
	if k.MaxGap < 0 || k.MaxGap > century {
		bad("max_gap", "want a duration up to %dh, or 0 for no bound, got %v", int64(century/time.Hour), k.MaxGap)
	}
	if k.LeadTimeLookback <= 0 {
		bad("lead_time_lookback", "must be > 0, got %v", k.LeadTimeLookback)
	}
	if k.MaxLabelBytes < 16 {
		bad("max_label_bytes", "must be >= 16, got %d", k.MaxLabelBytes)
	}
	if k.MaxLabelValues < 1 {
		bad("max_label_values", "must be >= 1, got %d", k.MaxLabelValues)
	}
	for sev, d := range k.PatchDeadlines {
		switch sev {
		case "critical", "high", "medium", "low", "unknown":
		default:
			bad("patch_deadlines", "unknown severity %q: want critical, high, medium, low or unknown", sev)
		}
		if d <= 0 || d > century {
			bad("patch_deadlines."+sev, "want a duration in (0, %dh], got %v", int64(century/time.Hour), d)
		}
	}
	return errs
}

func (a API) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: api.%s: "+format, append([]any{field}, args...)...))
	}
	if a.MaxRange < 24*time.Hour {
		bad("max_range", "must be at least 24h, got %v", a.MaxRange)
	}
	if a.MaxBuckets < 1 {
		bad("max_buckets", "must be >= 1, got %d", a.MaxBuckets)
	}
	if a.QueryTimeout < time.Second {
		bad("query_timeout", "must be at least 1s, got %v", a.QueryTimeout)
	}
	if a.MaxConcurrentQueries < 1 {
		bad("max_concurrent_queries", "must be >= 1, got %d", a.MaxConcurrentQueries)
	}
	if a.MaxQueuedQueries < 0 {
		bad("max_queued_queries", "must be >= 0, got %d", a.MaxQueuedQueries)
	}
	if a.QueueTimeout < 0 {
		bad("queue_timeout", "must be >= 0, got %v", a.QueueTimeout)
	}
	if a.MaxFilterBytes < 1024 {
		bad("max_filter_bytes", "must be >= 1024, got %d", a.MaxFilterBytes)
	}
	if a.ReadTimeout < time.Second {
		bad("read_timeout", "must be at least 1s, got %v", a.ReadTimeout)
	}
	if a.IdleTimeout < time.Second {
		bad("idle_timeout", "must be at least 1s, got %v", a.IdleTimeout)
	}
	return errs
}

func (c *Config) validateAnomaly() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{field}, args...)...))
	}
	b := c.Baselines
	if b.Training < 7*24*time.Hour {
		bad("baselines.training", "must be at least 168h (a week), got %v", b.Training)
	}
	if len(b.Steps) == 0 {
		bad("baselines.steps", "name day, hour or both")
	}
	for _, s := range b.Steps {
		if s != "day" && s != "hour" {
			bad("baselines.steps", "want day or hour, got %q", s)
		}
	}
	if b.Alpha <= 0 || b.Alpha >= 0.5 {
		bad("baselines.alpha", "want a probability in (0, 0.5), got %v", b.Alpha)
	}
	if b.MinHistory < 1 {
		bad("baselines.min_history", "must be >= 1, got %d", b.MinHistory)
	}
	if b.MinCount < 0 {
		bad("baselines.min_count", "must be >= 0, got %v", b.MinCount)
	}
	if b.RelearnInterval < time.Minute {
		bad("baselines.relearn_interval", "must be at least 1m, got %v", b.RelearnInterval)
	}
	for i, m := range b.Maintenance {
		if !m.From.Before(m.To) {
			bad(fmt.Sprintf("baselines.maintenance[%d]", i), "from %s is not before to %s", m.From.Format(time.RFC3339), m.To.Format(time.RFC3339))
		}
	}
	if c.Anomaly.EvaluationInterval < time.Second {
		bad("anomaly.evaluation_interval", "must be at least 1s, got %v", c.Anomaly.EvaluationInterval)
	}
	for step, p := range c.Anomaly.Persistence {
		if step != "day" && step != "hour" {
			bad("anomaly.persistence", "want day or hour keys, got %q", step)
		}
		if p.N < 1 || p.M < p.N {
			bad("anomaly.persistence."+step, "want 1 <= n <= m, got n=%d m=%d", p.N, p.M)
		}
	}
	a := c.Alerting
	if a.Alertmanager != "" {
		if u, err := url.Parse(a.Alertmanager); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("alerting.alertmanager", "want an http(s) URL like http://alertmanager:9093, got %q", a.Alertmanager)
		}
	}
	if a.ResendInterval < time.Second {
		bad("alerting.resend_interval", "must be at least 1s, got %v", a.ResendInterval)
	}
	names := map[string]bool{}
	for i, t := range a.Thresholds {
		f := fmt.Sprintf("alerting.thresholds[%d]", i)
		if t.Name == "" {
			bad(f+".name", "required")
		} else if names[t.Name] {
			bad(f+".name", "duplicate rule name %q", t.Name)
		}
		names[t.Name] = true
		if t.KPI == "" {
			bad(f+".kpi", "required")
		}
		if t.Above == "" && t.Below == "" {
			bad(f, "give above, below or both")
		}
		if t.Window < 0 {
			bad(f+".window", "must be >= 0, got %v", t.Window)
		}
	}
	return errs
}

// redactErr keeps the value of a secret setting out of an error.
func redactErr(flag string, err error) error {
	if flag == "clickhouse" || flag == "kafka-sasl-password" {
		return errors.New("invalid value (not shown: it may hold a password)")
	}
	return err
}

// fromEnv reads the variable name, or the file its name_FILE names (a
// secret, or any setting). Setting both is an error; the file's content is
// never shown.
func fromEnv(name string) (string, bool, error) {
	v, ok := os.LookupEnv(name)
	path, isFile := os.LookupEnv(name + "_FILE")
	if !isFile {
		return v, ok, nil
	}
	if ok {
		return "", false, fmt.Errorf("config: both %s and %s_FILE are set; set one", name, name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("config: %s_FILE: %w", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), true, nil
}

// Aliases returns ingest.environment_aliases with lower-cased names, as
// the decoder compares them.
func (in Ingest) Aliases() map[string]string {
	if len(in.EnvironmentAliases) == 0 {
		return nil
	}
	out := make(map[string]string, len(in.EnvironmentAliases))
	for k, v := range in.EnvironmentAliases {
		out[strings.ToLower(strings.TrimSpace(k))] = strings.ToLower(strings.TrimSpace(v))
	}
	return out
}

// validateEnvironments checks the alias list and the production
// environments against each other: aliases map a name onto a canonical
// one (no chains, nothing onto unknown), and production names canonical
// environments other than unknown.
func (c *Config) validateEnvironments() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{field}, args...)...))
	}
	aliases := c.Ingest.Aliases()
	seen := map[string]string{}
	keys := make([]string, 0, len(c.Ingest.EnvironmentAliases))
	for k := range c.Ingest.EnvironmentAliases {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.Ingest.EnvironmentAliases[k]
		key, to := strings.ToLower(strings.TrimSpace(k)), strings.ToLower(strings.TrimSpace(v))
		f := "ingest.environment_aliases." + k
		switch {
		case key == "" || to == "":
			bad("ingest.environment_aliases", "alias %q maps onto %q: both must be non-empty", k, v)
		case event.CheckIdentifier(key) != nil:
			bad(f, "the alias %v", event.CheckIdentifier(key))
		case event.CheckIdentifier(to) != nil:
			bad(f, "the environment %v", event.CheckIdentifier(to))
		case key == to:
			bad(f, "maps %q onto itself", k)
		case to == event.UnknownEnvironment || key == event.UnknownEnvironment:
			bad(f, "%q is the placeholder of deployments without an environment; it cannot be aliased", event.UnknownEnvironment)
		case seen[key] != "":
			bad(f, "%q and %q are the same alias (names are compared without regard to case)", seen[key], k)
		default:
			if _, chained := aliases[to]; chained {
				bad(f, "maps %q onto %q, which is itself an alias; map it onto %q directly", k, v, aliases[to])
			}
		}
		seen[key] = k
	}
	for _, p := range c.KPI.Production {
		name := strings.ToLower(strings.TrimSpace(p))
		if name == event.UnknownEnvironment {
			bad("kpi.production", "%q is the placeholder of deployments without an environment and is never production", p)
		}
		if to, ok := aliases[name]; ok {
			bad("kpi.production", "%q is an alias of %q (ingest.environment_aliases), and events are stored under %q: name that", p, to, to)
		}
	}
	return errs
}
