package e2e_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
