package api

import (
	"errors"
	"fmt"
	"time"
)

// Config is the configuration file's api section: the limits of each
// request, and the HTTP timeouts of a client's connection.
type Config struct {
	Limits `yaml:",inline"`
	// ReadTimeout and IdleTimeout bound a client's request and an idle
	// keep-alive connection; the write timeout follows from the query and
	// queue timeouts (Limits.WriteTimeout).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// DefaultConfig is the api section of the default configuration.
func DefaultConfig() Config {
	return Config{Limits: DefaultLimits, ReadTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
}

// Validate checks the api section; each error names its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.MaxRange < 24*time.Hour {
		bad("max_range", "must be at least 24h, got %v", c.MaxRange)
	}
	if c.MaxBuckets < 1 {
		bad("max_buckets", "must be >= 1, got %d", c.MaxBuckets)
	}
	if c.QueryTimeout < time.Second {
		bad("query_timeout", "must be at least 1s, got %v", c.QueryTimeout)
	}
	if c.MaxConcurrent < 1 {
		bad("max_concurrent_queries", "must be >= 1, got %d", c.MaxConcurrent)
	}
	if c.MaxQueued < 0 {
		bad("max_queued_queries", "must be >= 0, got %d", c.MaxQueued)
	}
	if c.QueueTimeout < 0 {
		bad("queue_timeout", "must be >= 0, got %v", c.QueueTimeout)
	}
	if c.MaxRows < 1 {
		bad("max_rows", "must be >= 1, got %d", c.MaxRows)
	}
	if c.MaxFilterBytes < 1024 {
		bad("max_filter_bytes", "must be >= 1024, got %d", c.MaxFilterBytes)
	}
	if c.ReadTimeout < time.Second {
		bad("read_timeout", "must be at least 1s, got %v", c.ReadTimeout)
	}
	if c.IdleTimeout < time.Second {
		bad("idle_timeout", "must be at least 1s, got %v", c.IdleTimeout)
	}
	return errors.Join(errs...)
}
