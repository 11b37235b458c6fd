package catalog

import (
	"fmt"
	"regexp"
	"time"
)

// DefaultTierAnnotation is the annotation that holds a component's tier:
//
//	metadata:
//	  annotations:
//	    opsmetrics.dev/tier: tier-1
const DefaultTierAnnotation = "opsmetrics.dev/tier"

// DefaultReloadInterval is how often Watcher looks for changed files.
const DefaultReloadInterval = 30 * time.Second

// Config configures the catalog, under the configuration's catalog key.
// An empty Path means no catalog.
type Config struct {
	// Path is a catalog file, or a directory read recursively.
	Path string `yaml:"path"`
	// ReloadInterval is how often the files are checked for changes
	// (default 30s, at least 1s).
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// TierAnnotation is the annotation (or label) holding the tier
	// (default opsmetrics.dev/tier).
	TierAnnotation string `yaml:"tier_annotation"`
}

// Enabled reports whether a catalog is configured.
func (c Config) Enabled() bool { return c.Path != "" }

// WithDefaults fills the unset fields.
func (c Config) WithDefaults() Config {
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultReloadInterval
	}
	if c.TierAnnotation == "" {
		c.TierAnnotation = DefaultTierAnnotation
	}
	return c
}

// annotationKey is Backstage's rule for annotation and label keys: an
// optional lower-case DNS prefix and a slash, then a name of
// [a-zA-Z0-9] runs separated by [-_.], at most 63 characters.
var annotationKey = regexp.MustCompile(`^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*$`)

// Validate checks the configuration; errors name the field and the bad
// value.
func (c Config) Validate() error {
	if c.ReloadInterval < 0 || (c.ReloadInterval > 0 && c.ReloadInterval < time.Second) {
		return fmt.Errorf("catalog.reload_interval: must be at least 1s, got %s", c.ReloadInterval)
	}
	if k := c.TierAnnotation; k != "" {
		if len(k) > 253+1+63 || len(lastPart(k)) > 63 || !annotationKey.MatchString(k) {
			return fmt.Errorf("catalog.tier_annotation: want an annotation key like opsmetrics.dev/tier, got %q", k)
		}
	}
	if !c.Enabled() && (c.ReloadInterval != 0 || c.TierAnnotation != "") {
		return fmt.Errorf("catalog.path: required when catalog.reload_interval or catalog.tier_annotation is set")
	}
	return nil
}

func lastPart(k string) string {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '/' {
			return k[i+1:]
		}
	}
	return k
}
