package metrics_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/metrics"
)

func f(v float64) *float64 { return &v }

func TestLevels(t *testing.T) {
	const h = 3600.0
	cases := []struct {
		table string
		s     metrics.Summary
		want  map[string]string
	}{
		{"2024", metrics.Summary{Deployments: 40, DeploymentsPerDay: 2, ChangeFailureRate: f(0.04), LeadTimeMedianSeconds: f(3 * h), RecoveryMedianSeconds: f(0.5 * h)},
			map[string]string{"deployment_frequency": "elite", "change_failure_rate": "elite", "lead_time": "elite", "recovery_time": "elite"}},
		{"2024", metrics.Summary{Deployments: 3, DeploymentsPerDay: 0.1, ChangeFailureRate: f(0.11), LeadTimeMedianSeconds: f(10 * 24 * h), RecoveryMedianSeconds: f(30 * h)},
			map[string]string{"deployment_frequency": "medium", "change_failure_rate": "medium", "lead_time": "medium", "recovery_time": "low"}},
		{"2023", metrics.Summary{Deployments: 3, DeploymentsPerDay: 0.1, ChangeFailureRate: f(0.11), LeadTimeMedianSeconds: f(10 * 24 * h), RecoveryMedianSeconds: f(30 * h)},
			map[string]string{"deployment_frequency": "medium", "change_failure_rate": "high", "lead_time": "medium", "recovery_time": "medium"}},
		{"2024", metrics.Summary{Deployments: 1, DeploymentsPerDay: 0.01, ChangeFailureRate: f(0.19)},
			map[string]string{"deployment_frequency": "low", "change_failure_rate": "high"}},
		{"2024", metrics.Summary{}, map[string]string{}}, // nothing measured, no level
	}
	for i, c := range cases {
		table, err := metrics.LookupLevelTable(c.table)
		if err != nil {
			t.Fatal(err)
		}
		got := table.Levels(&c.s)
		if len(got) != len(c.want) {
			t.Errorf("case %d (%s): levels %v, want %v", i, c.table, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("case %d (%s): %s = %q, want %q", i, c.table, k, got[k], v)
			}
		}
	}
	if _, err := metrics.LookupLevelTable("2019"); err == nil {
		t.Error("unknown report year accepted")
	}
}
