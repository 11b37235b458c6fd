package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/api"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/dashboards"
	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/calendar"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/telemetry"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// fileConfig is the whole configuration, as the YAML file writes it
// (docs/configuration.md): each section is the type of the package that
// owns it, which validates it. Each subcommand binds the settings it uses
// as flags (settings); the file may hold any of them.
type fileConfig struct {
	ClickHouse  string                 `yaml:"clickhouse"`
	Kafka       broker.Config          `yaml:",inline"` // brokers, kafka
	Group       string                 `yaml:"group"`
	Topics      broker.Topics          `yaml:"topics"`
	Ingest      ingest.Config          `yaml:"ingest"`
	Log         telemetry.LogConfig    `yaml:"log"`
	MetricsAddr string                 `yaml:"metrics_addr"`
	KPI         metrics.Config         `yaml:"kpi"`
	API         api.Config             `yaml:"api"`
	Baselines   baselines.Config       `yaml:"baselines"`
	Anomaly     anomaly.Config         `yaml:"anomaly"`
	Alerting    anomaly.AlertingConfig `yaml:"alerting"`
	Catalog     catalog.Config         `yaml:"catalog"`
	Calendar    calendar.Config        `yaml:"change_calendar"`
}

// defaultConfig is the configuration before the file, the environment and
// the flags.
func defaultConfig() fileConfig {
	return fileConfig{Group: "opsmetrics", Topics: broker.DefaultTopics(), Ingest: ingest.DefaultConfig(),
		Log: telemetry.DefaultLogConfig(), KPI: metrics.DefaultConfig(), API: api.DefaultConfig(),
		Baselines: baselines.DefaultConfig(), Anomaly: anomaly.DefaultConfig(), Alerting: anomaly.DefaultAlertingConfig()}
}

// Validate checks every setting that has a value; require checks presence.
func (c *fileConfig) Validate() error {
	var errs []error
	if c.ClickHouse != "" {
		errs = append(errs, config.Section("", wrapField("clickhouse", store.ValidateDSN(c.ClickHouse))))
	}
	if c.Group == "" {
		errs = append(errs, config.Section("", errors.New("group: must not be empty")))
	}
	return errors.Join(append(errs,
		config.Section("", c.Kafka.Validate()),
		config.Section("topics", c.Topics.Validate()),
		config.Section("ingest", c.Ingest.Validate()),
		config.Section("api", c.API.Validate()),
		config.Section("kpi", c.KPI.Validate()),
		config.Section("kpi", c.Ingest.CheckProduction(c.KPI.Production)),
		config.Section("baselines", c.Baselines.Validate()),
		config.Section("anomaly", c.Anomaly.Validate()),
		config.Section("alerting", c.Alerting.Validate()),
		config.Section("", c.Catalog.Validate()),
		config.Section("", c.Calendar.Validate()),
		config.Section("log", c.Log.Validate()),
	)...)
}

func wrapField(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// require reports a usage error for each named setting that is empty.
func (c *fileConfig) require(names ...string) error {
	var errs []error
	for _, n := range names {
		empty := false
		switch n {
		case setClickHouse:
			empty = c.ClickHouse == ""
		case setBrokers:
			empty = len(c.Kafka.Brokers) == 0
		}
		if empty {
			errs = append(errs, fmt.Errorf("config: %s: required (--%s or %s)", n, n, config.EnvName(n)))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return usageError{errors.Join(errs...)}
}

// openStore requires --clickhouse and opens the store, whose schema must be
// this build's: only migrate (and serve and ingest at start-up) change the
// schema, and every other command fails with a store.SchemaError that says
// to run `opsmetrics migrate`.
func (c *fileConfig) openStore(ctx context.Context) (*store.Store, error) {
	if err := c.require(setClickHouse); err != nil {
		return nil, err
	}
	return store.OpenCurrent(ctx, c.ClickHouse)
}

// kpiDefaults is the kpi section as the defaults of a query (what an
// absent flag or parameter means), with the change calendar, when one is
// configured, and the services' tiers from the catalog, loaded once.
func (c *fileConfig) kpiDefaults() (metrics.Query, error) {
	q := c.KPI.Defaults()
	cat, err := c.services()
	if err != nil {
		return q, err
	}
	if q.Calendar, err = c.calendar(); err != nil {
		return q, err
	}
	return q.WithCatalog(cat), nil
}

// dashboardOptions are the dashboards' settings of the configuration: the
// change calendar, the alerts' tiers, and the KPI definitions, whose
// rollup (serve's) the KPI panels read; with kpi.rollup_interval 0 no
// rollup is kept (as on a cluster), and they read the raw rows with the
// same definitions.
func (c *fileConfig) dashboardOptions() (dashboards.Options, error) {
	cal, err := c.calendar()
	o := dashboards.Options{Calendar: cal, Tiers: c.Alerting.Tiers}
	q := c.KPI.Defaults()
	if c.KPI.RollupInterval > 0 {
		o.KPI = &q
	} else {
		o.Definitions = &q
	}
	return o, err
}

// calendar is the compiled change calendar; nil when change_calendar
// names no window and no freeze.
func (c *fileConfig) calendar() (*calendar.Calendar, error) {
	if len(c.Calendar.Windows)+len(c.Calendar.Freezes) == 0 {
		return nil, nil
	}
	return calendar.New(c.Calendar)
}

// ingestConfig is the ingester's configuration: the ingest section with the
// brokers, group and topics of the top level.
func (c *fileConfig) ingestConfig() (ingest.Config, error) {
	ic := c.Ingest
	ic.Group = c.Group
	ic.SetTopics(c.Topics)
	return ic, ic.SetKafka(c.Kafka)
}

// services loads the service catalog once, nil when none is configured.
func (c *fileConfig) services() (*catalog.Catalog, error) {
	if !c.Catalog.Enabled() {
		return nil, nil
	}
	return catalog.Load(c.Catalog.Path, c.Catalog.WithDefaults().TierAnnotation)
}

// baselinesConfig is the baselines section, learning the kpi section's
// production environments.
func (c *fileConfig) baselinesConfig() baselines.Config {
	b := c.Baselines
	b.Production = c.KPI.Production
	return b
}

// anomalyConfig is the anomaly section, detecting at the baselines'
// steps in the kpi section's production environments.
func (c *fileConfig) anomalyConfig() anomaly.Config {
	a := c.Anomaly
	a.Steps, a.Production = c.Baselines.Steps, c.KPI.Production
	return a
}

// Setting groups: which settings a subcommand binds as flags.
const (
	setClickHouse  = "clickhouse"
	setBrokers     = "brokers"
	setGroup       = "group"
	setTopics      = "topics"
	setIngest      = "ingest"
	setIngestFlush = "ingest-flush" // --shutdown-timeout, which serve has of its own
	setMetricsAddr = "metrics-addr"
	setAlerting    = "alerting"
	setAPI         = "api"
)

type setting struct {
	group, flag, usage string
	value              flag.Value
}

// settings are the flags of the configuration, by group; every one also
// reads OPSMETRICS_<FLAG> (config.EnvName).
func (c *fileConfig) settings() []setting {
	k, in, a := &c.Kafka.Security, &c.Ingest, &c.API
	return []setting{
		{setClickHouse, "clickhouse", "ClickHouse DSN clickhouse://user:pass@host:port/db", config.String(&c.ClickHouse)},
		{setBrokers, "brokers", "comma-separated Kafka seed brokers host:port", config.List(&c.Kafka.Brokers)},
		{setBrokers, "kafka-tls", "connect to the brokers with TLS", config.Bool(&k.TLS)},
		{setBrokers, "kafka-ca-file", "PEM CA bundle that verifies the brokers (default: system roots)", config.String(&k.CAFile)},
		{setBrokers, "kafka-cert-file", "PEM client certificate for TLS", config.String(&k.CertFile)},
		{setBrokers, "kafka-key-file", "PEM key of the client certificate", config.String(&k.KeyFile)},
		{setBrokers, "kafka-insecure-skip-verify", "do not verify the brokers' certificates (testing only)", config.Bool(&k.InsecureSkipVerify)},
		{setBrokers, "kafka-sasl-mechanism", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none)", config.String(&k.SASLMechanism)},
		{setBrokers, "kafka-sasl-username", "SASL user name", config.String(&k.SASLUsername)},
		{setBrokers, "kafka-sasl-password", "SASL password; prefer OPSMETRICS_KAFKA_SASL_PASSWORD_FILE", config.String(&k.SASLPassword)},
		{setGroup, "group", "Kafka consumer group", config.String(&c.Group)},
		{setTopics, "topic-deployments", "topic of deployment events", config.String(&c.Topics.Deployments)},
		{setTopics, "topic-incidents", "topic of incident events", config.String(&c.Topics.Incidents)},
		{setTopics, "topic-patches", "topic of patch events", config.String(&c.Topics.Patches)},
		{setTopics, "topic-changes", "topic of change events", config.String(&c.Topics.Changes)},
		{setTopics, "topic-deadletter", "dead-letter topic for rejected messages", config.String(&c.Topics.DeadLetter)},
		{setIngest, "batch-size", "most messages per ClickHouse insert", config.Int(&in.BatchSize)},
		{setIngest, "batch-max-latency", "longest a message waits before its batch is written", config.Duration(&in.BatchMaxLatency)},
		{setIngest, "max-message-bytes", "largest accepted message; larger ones are dead-lettered", config.Int(&in.MaxMessageBytes)},
		{setIngest, "max-future-skew", "how far in the future an event timestamp may be", config.Duration(&in.MaxFutureSkew)},
		{setIngest, "dead-letter-unused", "dead-letter valid CDEvents of types opsmetrics does not store instead of skipping them", config.Bool(&in.DeadLetterUnused)},
		{setIngest, "environment-aliases", "environment aliases applied at ingest, comma-separated alias=environment (prod=production)", config.Map(&in.EnvironmentAliases)},
		{setIngest, "retry-max-backoff", "cap of the backoff between retries of a failed write", config.Duration(&in.RetryMaxBackoff)},
		{setIngestFlush, "shutdown-timeout", "bound on the final flush at shutdown", config.Duration(&in.ShutdownTimeout)},
		{setIngest, "session-timeout", "consumer group session timeout; a crashed ingester's partitions move after it", config.Duration(&in.SessionTimeout)},
		{setIngest, "memory-budget", "bytes an ingester may hold: fetched, queued, decoded and batched messages (256MiB, 1GiB or a number)", config.Bytes(&in.MemoryBudget)},
		{setIngest, "dead-letter-max-bytes", "bound of a dead letter when the dead-letter topic's max.message.bytes cannot be read", config.Int(&in.DeadLetterMaxBytes)},
		{setAPI, "api-max-range", "longest range of one KPI request", config.Duration(&a.MaxRange)},
		{setAPI, "api-max-buckets", "most buckets (days, weeks or months) of one KPI request", config.Int(&a.MaxBuckets)},
		{setAPI, "api-query-timeout", "bound on the ClickHouse work of one KPI request", config.Duration(&a.QueryTimeout)},
		{setAPI, "api-max-concurrent-queries", "KPI requests that run at once", config.Int(&a.MaxConcurrent)},
		{setAPI, "api-max-queued-queries", "KPI requests that may wait for a turn", config.Int(&a.MaxQueued)},
		{setAPI, "api-queue-timeout", "longest a KPI request waits for a turn", config.Duration(&a.QueueTimeout)},
		{setAlerting, "alertmanager", "Alertmanager base URL alerts are sent to (empty: none)", config.String(&c.Alerting.Alertmanager)},
		{setMetricsAddr, "metrics-addr", "listen address of the Prometheus /metrics endpoint (empty: off)", config.String(&c.MetricsAddr)},
		{"", "log-format", "log format: text or json", config.String(&c.Log.Format)},
		{"", "log-level", "log level: debug, info, warn or error", config.String(&c.Log.Level)},
	}
}

// bind registers --config and the flags of the named setting groups (the
// log flags are always bound) on fs, and returns a function that parses
// args and returns the resulting configuration, validated; its errors are
// usage errors, and name the flag or variable that set a bad value.
func bind(fs *flag.FlagSet, groups ...string) func(args []string) (*fileConfig, error) {
	c := defaultConfig()
	b := config.New(fs, &c)
	b.Secret("clickhouse", "kafka-sasl-password")
	want := map[string]bool{"": true}
	for _, g := range groups {
		want[g] = true
	}
	for _, s := range c.settings() {
		if want[s.group] {
			b.Var(s.value, s.flag, s.usage)
		}
	}
	return func(args []string) (*fileConfig, error) {
		// Every error of the configuration, from the command line, the
		// environment or the file, is a usage error: the command cannot
		// run as configured (docs/cli.md, exit codes).
		if err := b.Parse(args); err != nil {
			return nil, usageError{err}
		}
		if fs.NArg() > 0 {
			return nil, usagef("unexpected argument %q: every setting is a --flag", fs.Arg(0))
		}
		if err := c.Validate(); err != nil {
			return nil, usageError{b.Attribute(err)}
		}
		return &c, nil
	}
}
