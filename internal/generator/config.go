package generator

import (
	"fmt"
	"time"
)

// Defaults for the zero fields of a Config.
const (
	DefaultServices = 20
	DefaultTeams    = 5
	DefaultDays     = 90
	DefaultSeed     = 1
)

// DefaultEnvironments are the environments of a Config that names none:
// production, and staging before it.
var DefaultEnvironments = []string{"production", "staging"}

// anomalyDays is how many of the last days hold the injected anomalies, and
// minAnomalyDays how much history must precede them for them to stand out.
const (
	anomalyDays    = 7
	minAnomalyDays = 14
)

// Config describes the organisation and the time range to generate. A zero
// field selects its default, so the zero Config is valid.
type Config struct {
	// Services is the number of services. Zero means DefaultServices.
	Services int
	// Teams is the number of teams; services are assigned to them in turn.
	// Zero means DefaultTeams.
	Teams int
	// Days is the length of the generated range in days. Zero means
	// DefaultDays.
	Days int
	// Seed selects the stream. Zero means DefaultSeed.
	Seed uint64
	// UUIDs makes event ids random-looking UUIDs (version 4 in form,
	// derived from the seed and the event's number) instead of
	// "gen-<seed>-<n>", as producers commonly send them: their order then
	// says nothing of when they arrive.
	UUIDs bool
	// End is the exclusive end of the generated range: no event carries a
	// timestamp at or after it. The zero value means today 00:00 UTC, which
	// differs from day to day; pass End for a reproducible stream.
	End time.Time
	// Environments names the deployment environments. The first is
	// production, where changes ship and incidents happen; every production
	// release is first deployed to the others, from the last to the second.
	// Nil means DefaultEnvironments.
	Environments []string
	// Anomalies injects, in the last seven days, a burst of failed
	// deployments and incidents in one service and a stop of deployments in
	// another. Stats.Anomalies says which.
	Anomalies bool
}

// Validate reports the first invalid field of c, naming it and its value.
// Zero fields are valid: they select defaults.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// resolve returns c with its defaults applied, or the first invalid field.
func (c Config) resolve() (Config, error) {
	if c.Services == 0 {
		c.Services = DefaultServices
	}
	if c.Teams == 0 {
		c.Teams = DefaultTeams
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.End.IsZero() {
		c.End = time.Now().UTC().Truncate(24 * time.Hour)
	}
	if c.Environments == nil {
		c.Environments = DefaultEnvironments
	}

	switch {
	case c.Services < 0:
		return c, fmt.Errorf("generator: services: must be > 0, got %d", c.Services)
	case c.Teams < 0:
		return c, fmt.Errorf("generator: teams: must be > 0, got %d", c.Teams)
	case c.Days < 0:
		return c, fmt.Errorf("generator: days: must be > 0, got %d", c.Days)
	case c.End.Unix() < int64(c.Days)*86400:
		return c, fmt.Errorf("generator: end: must be at least %d days after 1970-01-01, got %s", c.Days, c.End.UTC().Format(time.RFC3339))
	case len(c.Environments) == 0:
		return c, fmt.Errorf("generator: environments: must name at least one environment, got none")
	}
	seen := make(map[string]bool, len(c.Environments))
	for i, env := range c.Environments {
		if env == "" {
			return c, fmt.Errorf("generator: environments[%d]: must not be empty", i)
		}
		if seen[env] {
			return c, fmt.Errorf("generator: environments[%d]: duplicate environment %q", i, env)
		}
		seen[env] = true
	}
	if c.Anomalies {
		if c.Services < 2 {
			return c, fmt.Errorf("generator: services: must be >= 2 when anomalies are injected, got %d", c.Services)
		}
		if c.Days < minAnomalyDays {
			return c, fmt.Errorf("generator: days: must be >= %d when anomalies are injected, got %d", minAnomalyDays, c.Days)
		}
	}
	return c, nil
}
