package anomaly_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestConfigFiles reads the anomaly section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	testenv.ConfigFiles(t, anomaly.DefaultConfig, []testenv.ConfigCase{
		{File: "good"},
		{File: "bad-persistence", Want: "persistence.hour: want 1 <= n <= m, got n=3 m=2"},
		{File: "bad-evaluation-interval", Want: "evaluation_interval: must be at least 1s"},
		{File: "bad-backfill", Want: "backfill: must be >= 0 (0 turns it off), got -1h0m0s"},
	})
}

// TestAlertingConfigFiles reads the alerting section's tiers onto the
// defaults: a mapping of one's own replaces the default levels, and a bad
// one fails naming its field.
func TestAlertingConfigFiles(t *testing.T) {
	testenv.ConfigFiles(t, anomaly.DefaultAlertingConfig, []testenv.ConfigCase{
		{File: "alerting-tiers"},
		{File: "bad-alerting-tiers", Want: `tiers.levels[0].severity: want critical, warning, info or detected, got "page"`},
	})
	if err := anomaly.DefaultAlertingConfig().Validate(); err != nil {
		t.Errorf("the default alerting section: %v", err)
	}
}
