package anomaly_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/config"
)

// TestConfigFiles reads the anomaly section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	for _, c := range []struct {
		file, want string // want: the error, empty for a good file
	}{
		{"good", ""},
		{"bad-persistence", "persistence.hour: want 1 <= n <= m, got n=3 m=2"},
		{"bad-evaluation-interval", "evaluation_interval: must be at least 1s"},
	} {
		cfg := anomaly.DefaultConfig()
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
