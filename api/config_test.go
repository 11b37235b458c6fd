package api_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/api"
	"github.com/opsmetrics/opsmetrics/internal/config"
)

// TestConfigFiles reads the api section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	for _, c := range []struct {
		file, want string // want: the error, empty for a good file
	}{
		{"good", ""},
		{"bad-query-timeout", "query_timeout: must be at least 1s, got 10ms"},
		{"bad-filter-bytes", "max_filter_bytes: must be >= 1024, got 10"},
	} {
		cfg := api.DefaultConfig()
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
