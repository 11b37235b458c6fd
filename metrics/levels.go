package metrics

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// LevelTable is one DORA report's performance clusters. Frequencies are
// lower bounds (higher is better); durations are upper bounds; change
// failure rate is classified by the nearest cluster value, because the 2024
// report's medium cluster (10%) sits below its high one (20%).
//
// In the configuration file (kpi.dora_levels) a table is named by its key.
type LevelTable struct {
	Name string `yaml:"-"`
	// DeploysPerDay: at least this many successful deployments per day for
	// elite, high, medium; anything less is low.
	DeploysPerDay [3]float64 `yaml:"deploys_per_day"`
	// LeadTime and Recovery: below these for elite, high, medium.
	LeadTime [3]time.Duration `yaml:"lead_time"`
	Recovery [3]time.Duration `yaml:"recovery_time"`
	// ChangeFailureRate: the typical value of elite, high, medium, low.
	ChangeFailureRate [4]float64 `yaml:"change_failure_rate"`
}

const (
	day   = 24 * time.Hour
	week  = 7 * day
	month = 30 * day
)

// LevelTables are the published clusters, by report year.
var LevelTables = map[string]LevelTable{
	"2023": {
		Name:              "2023",
		DeploysPerDay:     [3]float64{1, 1.0 / 7, 1.0 / 30},
		LeadTime:          [3]time.Duration{day, week, month},
		Recovery:          [3]time.Duration{time.Hour, day, week},
		ChangeFailureRate: [4]float64{0.05, 0.10, 0.15, 0.64},
	},
	"2024": {
		Name:              "2024",
		DeploysPerDay:     [3]float64{1, 1.0 / 7, 1.0 / 30},
		LeadTime:          [3]time.Duration{day, week, month},
		Recovery:          [3]time.Duration{time.Hour, day, day},
		ChangeFailureRate: [4]float64{0.05, 0.20, 0.10, 0.40},
	},
}

// DefaultLevelTable is the report used when none is chosen.
const DefaultLevelTable = "2024"

var levelNames = [4]string{"elite", "high", "medium", "low"}

// Levels classifies the DORA metrics of s. A metric with no value has no
// level.
func (t LevelTable) Levels(s *Summary) map[string]string {
	out := map[string]string{}
	if s.Deployments > 0 || s.SuccessfulDeploys > 0 {
		out["deployment_frequency"] = levelNames[3]
		for i, min := range t.DeploysPerDay {
			if s.DeploymentsPerDay >= min {
				out["deployment_frequency"] = levelNames[i]
				break
			}
		}
	}
	below := func(v *float64, bounds [3]time.Duration) (string, bool) {
		if v == nil {
			return "", false
		}
		for i, b := range bounds {
			if *v < b.Seconds() {
				return levelNames[i], true
			}
		}
		return levelNames[3], true
	}
	if l, ok := below(s.LeadTimeMedianSeconds, t.LeadTime); ok {
		out["lead_time"] = l
	}
	if l, ok := below(s.RecoveryMedianSeconds, t.Recovery); ok {
		out["recovery_time"] = l
	}
	if s.ChangeFailureRate != nil {
		best, dist := 0, math.Inf(1)
		for i, c := range t.ChangeFailureRate {
			if d := math.Abs(*s.ChangeFailureRate - c); d < dist {
				best, dist = i, d
			}
		}
		out["change_failure_rate"] = levelNames[best]
	}
	return out
}

// LookupLevelTable returns the built-in table of a report year.
func LookupLevelTable(name string) (LevelTable, error) {
	return Query{Levels: name}.levelTable()
}

func (q Query) levelTable() (LevelTable, error) {
	name := q.Levels
	if name == "" {
		name = DefaultLevelTable
	}
	if t, ok := q.LevelTables[name]; ok {
		t.Name = name
		return t, nil
	}
	t, ok := LevelTables[name]
	if !ok {
		names := []string{"2023", "2024"}
		for n := range q.LevelTables {
			names = append(names, n)
		}
		return LevelTable{}, fmt.Errorf("no DORA level table %q: want one of %s", name, strings.Join(names, ", "))
	}
	return t, nil
}
