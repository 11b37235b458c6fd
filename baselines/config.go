package baselines

import (
	"errors"
	"fmt"
	"time"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// DefaultConfig is the baselines section of the default configuration.
func DefaultConfig() Config {
	return Config{Training: DefaultTraining, Steps: []metrics.Step{metrics.StepDay, metrics.StepHour},
		Options: Options{Alpha: DefaultAlpha, MinHistory: 14, MinCount: 3}, RelearnInterval: 24 * time.Hour}
}

// Validate checks the baselines section; each error names its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.Training < 7*24*time.Hour {
		bad("training", "must be at least 168h (a week), got %v", c.Training)
	}
	if len(c.Steps) == 0 {
		bad("steps", "name day, hour or both")
	}
	for _, s := range c.Steps {
		if s != metrics.StepDay && s != metrics.StepHour {
			bad("steps", "want day or hour, got %q", s)
		}
	}
	if c.Alpha <= 0 || c.Alpha >= 0.5 {
		bad("alpha", "want a probability in (0, 0.5), got %v", c.Alpha)
	}
	if c.MinHistory < 1 {
		bad("min_history", "must be >= 1, got %d", c.MinHistory)
	}
	if c.MinCount < 0 {
		bad("min_count", "must be >= 0, got %v", c.MinCount)
	}
	if c.RelearnInterval < time.Minute {
		bad("relearn_interval", "must be at least 1m, got %v", c.RelearnInterval)
	}
	for i, m := range c.Maintenance {
		if !m.From.Before(m.To) {
			bad(fmt.Sprintf("maintenance[%d]", i), "from %s is not before to %s", m.From.Format(time.RFC3339), m.To.Format(time.RFC3339))
		}
	}
	return errors.Join(errs...)
}
