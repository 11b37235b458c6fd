package api_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/api"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestConfigFiles reads the api section of the configuration files of
// testdata/config onto the defaults and validates it: the good files pass,
// each bad one fails naming its field.
func TestConfigFiles(t *testing.T) {
	testenv.ConfigFiles(t, api.DefaultConfig, []testenv.ConfigCase{
		{File: "good"},
		{File: "bad-query-timeout", Want: "query_timeout: must be at least 1s, got 10ms"},
		{File: "bad-filter-bytes", Want: "max_filter_bytes: must be >= 1024, got 10"},
		{File: "bad-max-rows", Want: "max_rows: must be >= 1, got 0"},
	})
}
