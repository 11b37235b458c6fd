package metrics_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestConfigFiles reads the metrics section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	for _, c := range []struct {
		file, want string // want: the error, empty for a good file
	}{
		{"good", ""},
		{"bad-dora-report", `dora_report: want 2023, 2024 or a table of kpi.dora_levels, got "2019"`},
		{"bad-patch-severity", `patch_deadlines: unknown severity "urgent"`},
		{"bad-label-bytes", "max_label_bytes: must be >= 16, got 8"},
	} {
		cfg := metrics.DefaultConfig()
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
