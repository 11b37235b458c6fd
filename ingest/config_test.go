package ingest_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestConfigFiles reads the ingest section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	testenv.ConfigFiles(t, ingest.DefaultConfig, []testenv.ConfigCase{
		{File: "good"},
		{File: "bad-batch-size", Want: "batch_size: must be > 0, got -3"},
		{File: "bad-memory-budget", Want: "memory_budget_bytes: must be at least 128 MiB"},
		{File: "bad-alias-chain", Want: `environment_aliases.prd: maps "prd" onto "prod", which is itself an alias`},
		{File: "bad-unknown-key", Want: "field batchsize not found"},
	})
}
