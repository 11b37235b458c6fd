package metrics

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// LevelTable is one DORA report's performance clusters. Frequencies are
// lower bounds (higher is better); durations are upper bounds. A change
// failure rate takes the level of its place among the clusters' typical
// rates sorted from lowest: nearest the lowest is elite, nearest the
// highest low. The 2024 report's medium cluster (10%) sits below its high
// one (20%); grading by cluster would call the lower rate worse, and the
// level would not rise with the rate.
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
	// ChangeFailureRate: the typical value of elite, high, medium, low, as
	// the report gives them; Levels grades by their order from lowest.
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
		Name:          "2024",
		DeploysPerDay: [3]float64{1, 1.0 / 7, 1.0 / 30},
		LeadTime:      [3]time.Duration{day, week, month},
		// The report gives medium the same "less than one day" as high and
		// low "between one week and one month": medium is the gap between.
		Recovery:          [3]time.Duration{time.Hour, day, week},
		ChangeFailureRate: [4]float64{0.05, 0.20, 0.10, 0.40},
	},
}

// DefaultLevelTable is the report used when none is chosen.
const DefaultLevelTable = "2024"

// LevelNames are the DORA reports' names of their four performance
// clusters, best first.
var LevelNames = [4]string{"elite", "high", "medium", "low"}

// levelOrder is each level's place, best to worst, as its label says it.
var levelOrder = [4]string{"best of 4", "2nd of 4", "3rd of 4", "worst of 4"}

// LevelLabel is a level with its place in the best-to-worst order, so that
// "low", the worst cluster, never reads as a good figure: "elite (best of
// 4)", "high (2nd of 4)", "medium (3rd of 4)", "low (worst of 4)". Any other
// name is returned as it is.
func LevelLabel(name string) string {
	for i, n := range LevelNames {
		if n == name {
			return n + " (" + levelOrder[i] + ")"
		}
	}
	return name
}

// LevelLabels is LevelLabel of each level of levels.
func LevelLabels(levels map[string]string) map[string]string {
	out := make(map[string]string, len(levels))
	for k, v := range levels {
		out[k] = LevelLabel(v)
	}
	return out
}

// Levels classifies the DORA metrics of s. A metric with no value has no
// level.
func (t LevelTable) Levels(s *Summary) map[string]string {
	out := map[string]string{}
	if s.Deployments > 0 || s.SuccessfulDeploys > 0 {
		out["deployment_frequency"] = LevelNames[3]
		for i, min := range t.DeploysPerDay {
			if s.DeploymentsPerDay >= min {
				out["deployment_frequency"] = LevelNames[i]
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
				return LevelNames[i], true
			}
		}
		return LevelNames[3], true
	}
	if l, ok := below(s.LeadTimeMedianSeconds, t.LeadTime); ok {
		out["lead_time"] = l
	}
	if l, ok := below(s.RecoveryMedianSeconds, t.Recovery); ok {
		out["recovery_time"] = l
	}
	if s.ChangeFailureRate != nil {
		out["change_failure_rate"] = LevelNames[3]
		for i, b := range t.ChangeFailureRateBounds() {
			if *s.ChangeFailureRate < b {
				out["change_failure_rate"] = LevelNames[i]
				break
			}
		}
	}
	return out
}

// ChangeFailureRateBounds are the rates below which a change failure rate
// is elite, high and medium: half way between the clusters' typical rates
// sorted from lowest, so that a rate takes the level of the nearest.
func (t LevelTable) ChangeFailureRateBounds() [3]float64 {
	rates := t.ChangeFailureRate
	sort.Float64s(rates[:])
	var out [3]float64
	for i := range out {
		out[i] = (rates[i] + rates[i+1]) / 2
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
