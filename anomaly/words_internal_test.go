package anomaly

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestRarity(t *testing.T) {
	cases := []struct {
		tail float64
		step metrics.Step
		want string
	}{
		{0.0012, metrics.StepDay, "about once in 830 days (2 years)"},
		{0.01, metrics.StepDay, "about once in 100 days"},
		{0.0004, metrics.StepDay, "about once in 2,500 days (7 years)"},
		{0.002, metrics.StepHour, "about once in 500 hours (3 weeks)"},
		{1e-9, metrics.StepDay, "less than once in a thousand years"},
		{0.3, metrics.StepDay, "about once in 3 days"},
	}
	for _, c := range cases {
		if got := rarity(c.tail, c.step); got != c.want {
			t.Errorf("rarity(%g, %s) = %q, want %q", c.tail, c.step, got, c.want)
		}
	}
}
