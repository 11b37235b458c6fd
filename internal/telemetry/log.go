package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// LogConfig is the configuration file's log section.
type LogConfig struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn or error
}

// DefaultLogConfig is the log section of the default configuration.
func DefaultLogConfig() LogConfig { return LogConfig{Format: "text", Level: "info"} }

// Validate checks the log section; each error names its field.
func (c LogConfig) Validate() error {
	var errs []error
	if c.Format != "text" && c.Format != "json" {
		errs = append(errs, fmt.Errorf("format: want text or json, got %q", c.Format))
	}
	if _, err := parseLevel(c.Level); err != nil {
		errs = append(errs, fmt.Errorf("level: %w", err))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// Logger builds the logger the configuration asks for, writing to stderr.
func (c LogConfig) Logger() *slog.Logger {
	level, _ := parseLevel(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
