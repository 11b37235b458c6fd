package baselines_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/config"
)

// TestConfigFiles reads the baselines section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	for _, c := range []struct {
		file, want string // want: the error, empty for a good file
	}{
		{"good", ""},
		{"bad-training", "training: must be at least 168h (a week), got 24h0m0s"},
		{"bad-alpha", "alpha: want a probability in (0, 0.5), got 0.7"},
		{"bad-maintenance", "maintenance[0]: from 2026-02-02T00:00:00Z is not before to 2026-02-01T00:00:00Z"},
		{"bad-unknown-key", "field min_trials not found"},
	} {
		cfg := baselines.DefaultConfig()
		err := config.LoadFile(filepath.Join("testdata", "config", c.file+".yaml"), &cfg)
		if err == nil {
			err = cfg.Validate()
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.file, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.file, err, c.want)
		}
	}
}
