package anomaly

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/opsmetrics/opsmetrics/metrics"
)

// DefaultConfig is the anomaly section of the default configuration.
func DefaultConfig() Config {
	return Config{EvaluationInterval: 5 * time.Minute, Backfill: DefaultBackfill}
}

// DefaultBackfill is how far back serve judges intervals never judged.
const DefaultBackfill = 30 * 24 * time.Hour

// Validate checks the anomaly section; each error names its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.EvaluationInterval < time.Second {
		bad("evaluation_interval", "must be at least 1s, got %v", c.EvaluationInterval)
	}
	if c.Backfill < 0 {
		bad("backfill", "must be >= 0 (0 turns it off), got %v", c.Backfill)
	}
	for step, p := range c.Persistence {
		if step != metrics.StepDay && step != metrics.StepHour {
			bad("persistence", "want day or hour keys, got %q", step)
		}
		if p.N < 1 || p.M < p.N {
			bad("persistence."+string(step), "want 1 <= n <= m, got n=%d m=%d", p.N, p.M)
		}
	}
	return errors.Join(errs...)
}

// AlertingConfig is the configuration file's alerting section: where alerts
// go, what they link to, and the threshold rules, parsed as the file is
// read.
type AlertingConfig struct {
	// Alertmanager is the base URL of Alertmanager; empty sends nothing.
	Alertmanager string `yaml:"alertmanager"`
	// ResendInterval is how often active alerts are re-sent.
	ResendInterval time.Duration `yaml:"resend_interval"`
	AlertConfig    `yaml:",inline"`
	// Thresholds are the KPI target rules.
	Thresholds []ThresholdRule `yaml:"thresholds"`
}

// DefaultAlertingConfig is the alerting section of the default
// configuration.
func DefaultAlertingConfig() AlertingConfig {
	return AlertingConfig{ResendInterval: time.Minute,
		AlertConfig: AlertConfig{DashboardURL: "http://localhost:3000/d/opsmetrics-anomalies", Tiers: Tiers{Levels: slices.Clone(DefaultTiers.Levels)}}}
}

// Notifier is the configuration of the Notifier that serve runs.
func (c AlertingConfig) Notifier() NotifierConfig {
	return NotifierConfig{URL: c.Alertmanager, ResendInterval: c.ResendInterval}
}

// Validate checks the alerting section; each error names its field.
func (c AlertingConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.Alertmanager != "" {
		if u, err := url.Parse(c.Alertmanager); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("alertmanager", "want an http(s) URL like http://alertmanager:9093, got %q", c.Alertmanager)
		}
	}
	if c.ResendInterval < time.Second {
		bad("resend_interval", "must be at least 1s, got %v", c.ResendInterval)
	}
	if c.WindowAlertFor < 0 || (c.WindowAlertFor > 0 && c.WindowAlertFor < time.Minute) {
		bad("window_alert_for", "want at least 1m, or 0 for %v, got %v", DefaultWindowAlertFor, c.WindowAlertFor)
	}
	if c.WindowAlertLate < 0 {
		bad("window_alert_late", "want a duration >= 0 (0 for %v), got %v", DefaultWindowAlertLate, c.WindowAlertLate)
	}
	if err := c.Tiers.Validate(); err != nil {
		errs = append(errs, err)
	}
	names := map[string]bool{}
	for i, r := range c.Thresholds {
		f := fmt.Sprintf("thresholds[%d]", i)
		switch {
		case r.Name == "":
			bad(f+".name", "required")
		case names[r.Name]:
			bad(f+".name", "duplicate rule name %q", r.Name)
		}
		names[r.Name] = true
		if r.KPI == "" {
			bad(f+".kpi", "required")
		}
		if r.Window < 0 {
			bad(f+".window", "must be >= 0, got %v", r.Window)
		}
		if r.Name != "" && r.KPI != "" {
			if err := r.Validate(); err != nil {
				bad(f, "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// thresholdRuleFile is a threshold rule as the configuration file writes
// it: its bounds in the KPI's unit ("15%", "4h", "3").
type thresholdRuleFile struct {
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
	SetAt        time.Time     `yaml:"set_at"`
}

// UnmarshalYAML reads a rule of the configuration file, parsing its bounds
// in the unit of its KPI and its dimensions; an unknown key is an error,
// as everywhere in the file.
func (r *ThresholdRule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		known := map[string]bool{"name": true, "kpi": true, "above": true, "below": true, "window": true, "by": true,
			"services": true, "teams": true, "environments": true, "severity": true, "runbook": true, "set_at": true}
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i]; !known[k.Value] {
				return fmt.Errorf("line %d: field %s not found in a threshold rule", k.Line, k.Value)
			}
		}
	}
	var f thresholdRuleFile
	if err := n.Decode(&f); err != nil {
		return err
	}
	*r = ThresholdRule{Name: f.Name, KPI: f.KPI, Window: f.Window, Services: f.Services, Teams: f.Teams,
		Environments: f.Environments, Severity: f.Severity, Runbook: f.Runbook, SetAt: f.SetAt}
	for _, b := range f.By {
		d, err := metrics.ParseDimension(b)
		if err != nil {
			return fmt.Errorf("line %d: threshold rule %q: by: %w", n.Line, f.Name, err)
		}
		r.By = append(r.By, d)
	}
	if f.Above == "" && f.Below == "" {
		return fmt.Errorf("line %d: threshold rule %q: give above, below or both", n.Line, f.Name)
	}
	if f.KPI == "" {
		return nil // Validate says it is required
	}
	for _, bound := range []struct {
		name, s string
		dst     **float64
	}{{"above", f.Above, &r.Above}, {"below", f.Below, &r.Below}} {
		if bound.s == "" {
			continue
		}
		v, err := ParseTarget(f.KPI, bound.s)
		if err != nil {
			return fmt.Errorf("line %d: threshold rule %q: %s: %w", n.Line, f.Name, bound.name, err)
		}
		*bound.dst = &v
	}
	return nil
}
