package baselines_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestConfigFiles reads the baselines section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	testenv.ConfigFiles(t, baselines.DefaultConfig, []testenv.ConfigCase{
		{File: "good"},
		{File: "bad-training", Want: "training: must be at least 168h (a week), got 24h0m0s"},
		{File: "bad-alpha", Want: "alpha: want a probability in (0, 0.5), got 0.7"},
		{File: "bad-maintenance", Want: "maintenance[0]: from 2026-02-02T00:00:00Z is not before to 2026-02-01T00:00:00Z"},
		{File: "bad-unknown-key", Want: "field min_trials not found"},
	})
}
