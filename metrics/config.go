package metrics

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the configuration file's kpi section: the settings of the KPI
// definitions (docs/kpis.md). The flags of `opsmetrics kpi` and the API's
// parameters override them per query (Params.Defaults: Config.Defaults).
type Config struct {
	// Production lists the environments that count as production.
	Production []string `yaml:"production"`
	// DORAReport names the active level table: 2023, 2024 or a key of
	// DORALevels.
	DORAReport string `yaml:"dora_report"`
	// DORALevels adds level tables, or replaces the built-in 2023 and 2024.
	DORALevels map[string]LevelTable `yaml:"dora_levels"`
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
	// RollupInterval is how often serve rebuilds the KPI rollup when rows
	// were stored since the last build; 0 never does.
	RollupInterval time.Duration `yaml:"rollup_interval"`
	// RollupMaxAge is how old a rollup of other rows than the stored ones
	// may be and still be read; older, KPIs are read from the raw rows
	// until the next build. It bounds how long a stored event can be
	// missing from a figure.
	RollupMaxAge time.Duration `yaml:"rollup_max_age"`
	// RollupCacheBytes bounds the memory serve keeps the answers of
	// rollup reads in (RollupCache), for the next identical read; 0 keeps
	// none.
	RollupCacheBytes int64 `yaml:"rollup_cache_bytes"`
}

// DefaultConfig is the kpi section of the default configuration.
func DefaultConfig() Config {
	return Config{Production: []string{"production"}, DORAReport: DefaultLevelTable, MaxGap: DefaultMaxGap,
		LeadTimeLookback: DefaultLeadTimeLookback, MaxLabelBytes: 128, MaxLabelValues: 1000,
		RollupInterval: DefaultRollupInterval, RollupMaxAge: DefaultRollupMaxAge, RollupCacheBytes: DefaultRollupCacheBytes}
}

// Defaults is the section as the defaults of a query: what an absent flag
// or parameter means.
func (c Config) Defaults() Query {
	q := Query{Production: c.Production, Levels: c.DORAReport, MaxGap: c.MaxGap,
		LeadTimeLookback: c.LeadTimeLookback, PatchDeadlines: c.PatchDeadlines, RollupMaxAge: c.RollupMaxAge}
	if c.MaxGap == 0 {
		q.MaxGap = Unbounded // kpi.max_gap: 0 is no bound
	}
	if len(c.DORALevels) > 0 {
		q.LevelTables = map[string]LevelTable{}
		for name, t := range c.DORALevels {
			t.Name = name
			q.LevelTables[name] = t
		}
	}
	return q
}

// Validate checks the section; each error names its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if len(c.Production) == 0 {
		bad("production", "must name at least one environment")
	}
	for _, e := range c.Production {
		if strings.TrimSpace(e) == "" {
			bad("production", "empty environment name")
		}
	}
	if _, ok := c.DORALevels[c.DORAReport]; !ok && c.DORAReport != "2023" && c.DORAReport != "2024" {
		bad("dora_report", "want 2023, 2024 or a table of kpi.dora_levels, got %q", c.DORAReport)
	}
	for name, t := range c.DORALevels {
		f := "dora_levels." + name
		for i := range 3 {
			if t.DeploysPerDay[i] <= 0 || (i > 0 && t.DeploysPerDay[i] >= t.DeploysPerDay[i-1]) {
				bad(f+".deploys_per_day", "want three positive, falling bounds (elite, high, medium), got %v", t.DeploysPerDay)
				break
			}
		}
		for field, ds := range map[string][3]time.Duration{"lead_time": t.LeadTime, "recovery_time": t.Recovery} {
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
	if c.MaxGap < 0 || c.MaxGap > MaxBoundedGap {
		bad("max_gap", "want a duration up to %dh, or 0 for no bound, got %v", int64(MaxBoundedGap/time.Hour), c.MaxGap)
	}
	if c.LeadTimeLookback <= 0 {
		bad("lead_time_lookback", "must be > 0, got %v", c.LeadTimeLookback)
	}
	if c.RollupInterval < 0 {
		bad("rollup_interval", "must be >= 0 (0: never rebuild), got %v", c.RollupInterval)
	}
	if c.RollupMaxAge <= 0 {
		bad("rollup_max_age", "must be > 0, got %v", c.RollupMaxAge)
	}
	if c.RollupCacheBytes < 0 {
		bad("rollup_cache_bytes", "must be >= 0 (0: no cache), got %d", c.RollupCacheBytes)
	}
	if c.MaxLabelBytes < 16 {
		bad("max_label_bytes", "must be >= 16, got %d", c.MaxLabelBytes)
	}
	if c.MaxLabelValues < 1 {
		bad("max_label_values", "must be >= 1, got %d", c.MaxLabelValues)
	}
	for sev, d := range c.PatchDeadlines {
		switch sev {
		case "critical", "high", "medium", "low", "unknown":
		default:
			bad("patch_deadlines", "unknown severity %q: want critical, high, medium, low or unknown", sev)
		}
		if d <= 0 || d > MaxBoundedGap {
			bad("patch_deadlines."+sev, "want a duration in (0, %dh], got %v", int64(MaxBoundedGap/time.Hour), d)
		}
	}
	return errors.Join(errs...)
}
