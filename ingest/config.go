package ingest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/event"
)

// DefaultConfig is the ingest section of the default configuration.
func DefaultConfig() Config {
	return Config{
		BatchSize:          50000,
		BatchMaxLatency:    time.Second,
		MaxMessageBytes:    1 << 20,
		MaxFutureSkew:      time.Hour,
		RetryMaxBackoff:    30 * time.Second,
		ShutdownTimeout:    30 * time.Second,
		SessionTimeout:     defaultSessionTimeout,
		MemoryBudget:       DefaultMemoryBudget,
		DeadLetterMaxBytes: DefaultDeadLetterMaxBytes,
	}
}

// SetKafka makes the ingester consume from k's brokers, connecting with
// TLS and SASL when k asks for them.
func (c *Config) SetKafka(k broker.Config) error {
	d, t, err := k.Connection()
	if err != nil {
		return err
	}
	c.Brokers = k.Brokers
	if d != nil {
		c.Dialer, c.Transport = d, t
	}
	return nil
}

// SetTopics makes the ingester consume t's input topics and dead-letter
// to its dead-letter topic.
func (c *Config) SetTopics(t broker.Topics) {
	c.Topics, c.DeadLetterTopic = t.Inputs(), t.DeadLetter
}

// Validate checks the ingest section; each error names its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.BatchSize <= 0 {
		bad("batch_size", "must be > 0, got %d", c.BatchSize)
	}
	if c.BatchMaxLatency <= 0 {
		bad("batch_max_latency", "must be > 0, got %v", c.BatchMaxLatency)
	}
	if c.MaxMessageBytes <= 0 {
		bad("max_message_bytes", "must be > 0, got %d", c.MaxMessageBytes)
	}
	if c.MaxFutureSkew < 0 {
		bad("max_future_skew", "must be >= 0, got %v", c.MaxFutureSkew)
	}
	errs = append(errs, c.validateAliases()...)
	if c.RetryMaxBackoff <= 0 {
		bad("retry_max_backoff", "must be > 0, got %v", c.RetryMaxBackoff)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be > 0, got %v", c.ShutdownTimeout)
	}
	if c.SessionTimeout < time.Second {
		bad("session_timeout", "must be >= 1s, got %v", c.SessionTimeout)
	}
	if c.MemoryBudget < MinMemoryBudget {
		bad("memory_budget_bytes", "must be at least 128 MiB (134217728), got %d", c.MemoryBudget)
	}
	if c.DeadLetterMaxBytes < 4096 {
		bad("dead_letter_max_bytes", "must be at least 4096, got %d", c.DeadLetterMaxBytes)
	}
	return errors.Join(errs...)
}

// Aliases is EnvironmentAliases with lower-cased names, as the decoder
// compares them.
func (c Config) Aliases() map[string]string {
	if len(c.EnvironmentAliases) == 0 {
		return nil
	}
	out := make(map[string]string, len(c.EnvironmentAliases))
	for k, v := range c.EnvironmentAliases {
		out[strings.ToLower(strings.TrimSpace(k))] = strings.ToLower(strings.TrimSpace(v))
	}
	return out
}

// validateAliases checks that aliases map a name onto a canonical one: no
// chains, nothing onto unknown.
func (c Config) validateAliases() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	aliases := c.Aliases()
	seen := map[string]string{}
	keys := make([]string, 0, len(c.EnvironmentAliases))
	for k := range c.EnvironmentAliases {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.EnvironmentAliases[k]
		key, to := strings.ToLower(strings.TrimSpace(k)), strings.ToLower(strings.TrimSpace(v))
		f := "environment_aliases." + k
		switch {
		case key == "" || to == "":
			bad("environment_aliases", "alias %q maps onto %q: both must be non-empty", k, v)
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
	return errs
}

// CheckProduction checks the environments that count as production (the
// kpi section's production) against what ingestion stores: canonical
// names, never an alias or the placeholder unknown. Each error names the
// field production.
func (c Config) CheckProduction(production []string) error {
	var errs []error
	aliases := c.Aliases()
	for _, p := range production {
		name := strings.ToLower(strings.TrimSpace(p))
		if name == event.UnknownEnvironment {
			errs = append(errs, fmt.Errorf("production: %q is the placeholder of deployments without an environment and is never production", p))
		}
		if to, ok := aliases[name]; ok {
			errs = append(errs, fmt.Errorf("production: %q is an alias of %q (ingest.environment_aliases), and events are stored under %q: name that", p, to, to))
		}
	}
	return errors.Join(errs...)
}
