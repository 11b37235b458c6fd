package metrics_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestConfigFiles reads the metrics section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	testenv.ConfigFiles(t, metrics.DefaultConfig, []testenv.ConfigCase{
		{File: "good"},
		{File: "bad-dora-report", Want: `dora_report: want 2023, 2024 or a table of kpi.dora_levels, got "2019"`},
		{File: "bad-patch-severity", Want: `patch_deadlines: unknown severity "urgent"`},
		{File: "bad-label-bytes", Want: "max_label_bytes: must be >= 16, got 8"},
	})
}
