package metrics_test

import (
	"testing"

	"github.com/opsmetrics/opsmetrics/metrics"
)

func f(v float64) *float64 { return &v }

func TestLevels(t *testing.T) {
	const h = 3600.0
	cases := []struct {
		name, table string
		s           metrics.Summary
		want        map[string]string
	}{
		{"elite everywhere", "2024", metrics.Summary{Deployments: 40, DeploymentsPerDay: 2, ChangeFailureRate: f(0.04), LeadTimeMedianSeconds: f(3 * h), RecoveryMedianSeconds: f(0.5 * h)},
			map[string]string{"deployment_frequency": "elite", "change_failure_rate": "elite", "lead_time": "elite", "recovery_time": "elite"}},
		// 2024: 11% is nearest the second lowest rate (the medium cluster's
		// 10%), graded high; a day and a half of recovery falls between the
		// report's medium (under a day) and low (one week to one month).
		{"2024 middle", "2024", metrics.Summary{Deployments: 3, DeploymentsPerDay: 0.1, ChangeFailureRate: f(0.11), LeadTimeMedianSeconds: f(10 * 24 * h), RecoveryMedianSeconds: f(30 * h)},
			map[string]string{"deployment_frequency": "medium", "change_failure_rate": "high", "lead_time": "medium", "recovery_time": "medium"}},
		{"2024 recovery of a week is low", "2024", metrics.Summary{RecoveryMedianSeconds: f(8 * 24 * h)},
			map[string]string{"recovery_time": "low"}},
		{"2023 middle", "2023", metrics.Summary{Deployments: 3, DeploymentsPerDay: 0.1, ChangeFailureRate: f(0.11), LeadTimeMedianSeconds: f(10 * 24 * h), RecoveryMedianSeconds: f(30 * h)},
			map[string]string{"deployment_frequency": "medium", "change_failure_rate": "high", "lead_time": "medium", "recovery_time": "medium"}},
		// 2024: 19% is nearest the high cluster's 20%, the third lowest.
		{"2024 low frequency", "2024", metrics.Summary{Deployments: 1, DeploymentsPerDay: 0.01, ChangeFailureRate: f(0.19)},
			map[string]string{"deployment_frequency": "low", "change_failure_rate": "medium"}},
		{"2024 CFR 32.8% is the worst", "2024", metrics.Summary{ChangeFailureRate: f(0.328)}, map[string]string{"change_failure_rate": "low"}},
		{"nothing measured, no level", "2024", metrics.Summary{}, map[string]string{}},
	}
	for _, c := range cases {
		table, err := metrics.LookupLevelTable(c.table)
		if err != nil {
			t.Fatal(err)
		}
		got := table.Levels(&c.s)
		if len(got) != len(c.want) {
			t.Errorf("%s (%s): levels %v, want %v", c.name, c.table, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s (%s): %s = %q, want %q", c.name, c.table, k, got[k], v)
			}
		}
	}
	if _, err := metrics.LookupLevelTable("2019"); err == nil {
		t.Error("unknown report year accepted")
	}
}

// TestLevelsMonotonic: in every built-in table a worse figure never gets a
// better level, and each of the four levels is reached.
func TestLevelsMonotonic(t *testing.T) {
	rank := map[string]int{"elite": 0, "high": 1, "medium": 2, "low": 3}
	for name, table := range metrics.LevelTables {
		for _, kpi := range []struct {
			name  string
			set   func(*metrics.Summary, float64)
			worse float64 // the factor a worse figure is of the previous one
		}{
			{"change_failure_rate", func(s *metrics.Summary, v float64) { s.ChangeFailureRate = f(v) }, 1.01},
			{"recovery_time", func(s *metrics.Summary, v float64) { s.RecoveryMedianSeconds = f(v) }, 1.01},
			{"lead_time", func(s *metrics.Summary, v float64) { s.LeadTimeMedianSeconds = f(v) }, 1.01},
			{"deployment_frequency", func(s *metrics.Summary, v float64) { s.Deployments, s.DeploymentsPerDay = 1, v }, 1 / 1.01},
		} {
			start := map[bool]float64{true: 0.001, false: 100}[kpi.worse > 1]
			if kpi.name == "recovery_time" || kpi.name == "lead_time" {
				start = 60
			}
			seen, prev := map[string]bool{}, -1
			for v, i := start, 0; i < 2000; v, i = v*kpi.worse, i+1 {
				var s metrics.Summary
				kpi.set(&s, v)
				l := table.Levels(&s)[kpi.name]
				if rank[l] < prev {
					t.Errorf("%s %s: %g graded %s, better than a better figure", name, kpi.name, v, l)
				}
				prev = rank[l]
				seen[l] = true
			}
			if len(seen) != 4 {
				t.Errorf("%s %s: levels reached %v, want all four", name, kpi.name, seen)
			}
		}
	}
}

func TestLevelLabel(t *testing.T) {
	for in, want := range map[string]string{"elite": "elite (best of 4)", "high": "high (2nd of 4)",
		"medium": "medium (3rd of 4)", "low": "low (worst of 4)", "": ""} {
		if got := metrics.LevelLabel(in); got != want {
			t.Errorf("LevelLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
