package ingest_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/config"
)

// TestConfigFiles reads the ingest section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	for _, c := range []struct {
		file, want string // want: the error, empty for a good file
	}{
		{"good", ""},
		{"bad-batch-size", "batch_size: must be > 0, got -3"},
		{"bad-memory-budget", "memory_budget_bytes: must be at least 128 MiB"},
		{"bad-alias-chain", `environment_aliases.prd: maps "prd" onto "prod", which is itself an alias`},
		{"bad-unknown-key", "field batchsize not found"},
	} {
		cfg := ingest.DefaultConfig()
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
