package metrics

import (
	"fmt"
	"math"
	"time"
)

// The KPI catalogue: every KPI opsmetrics computes, baselines, alerts on,
// draws or reports, with its name, how people read it and which way hurts.
// Packages baselines, anomaly, dashboards and report take these from here
// and spell none of them again.

// Kind is how a KPI's value comes about, which decides how it is modelled
// and worded.
type Kind string

// The kinds.
const (
	KindCount    Kind = "count"    // events per interval: deployments, incidents, patches
	KindRate     Kind = "rate"     // successes of trials: change failure rate, rework, compliance
	KindDuration Kind = "duration" // a median time: MTTR, MTTD, lead time, latency
)

// KPI is one entry of the catalogue.
type KPI struct {
	// Name is the KPI's identity in configuration, flags, storage, labels
	// and panels.
	Name string
	// Title is its name for people, in alerts, dashboards and the report.
	Title string
	// Unit is what its values count: count, ratio, seconds, or per_day.
	Unit string
	Kind Kind
	// Harm is the direction that hurts: up, down or both. Anomalies the
	// other way (a shorter MTTR) are recorded but do not alert.
	Harm string
	// Hourly KPIs are also baselined per hour; the baselined ones are all
	// baselined per day.
	Hourly bool
	// Formula is the KPI's formula in a line, as `opsmetrics kpi explain`
	// heads its rows; Doc is the anchor of the formula and its edge cases in
	// docs/kpis.md.
	Formula string
	Doc     string
}

// Harmful reports whether an anomaly in direction dir (up or down) hurts.
func (k KPI) Harmful(dir string) bool { return k.Harm == "both" || k.Harm == dir }

// Format writes v in the KPI's unit: a count, a percentage, or a duration
// in seconds, minutes, hours or days.
func (k KPI) Format(v float64) string { return FormatValue(k.Unit, v) }

// FormatValue writes v in unit (count, ratio or seconds) as people read it.
func FormatValue(unit string, v float64) string {
	switch unit {
	case "ratio":
		return fmt.Sprintf("%.1f%%", 100*v)
	case "seconds":
		return formatDuration(time.Duration(v * float64(time.Second)))
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%.0f min", d.Minutes())
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}

const kpisDoc = "docs/kpis.md#dora-and-incident-summary-metricssummaries"

// Catalog is every KPI, DORA's first.
var Catalog = []KPI{
	{Name: PanelDeploymentFrequency, Title: "Deployment frequency (per day)", Unit: "per_day", Kind: KindCount, Harm: "down",
		Formula: "successful production deployments ÷ days in range", Doc: kpisDoc},
	{Name: PanelLeadTime, Title: "Change lead time (median)", Unit: "seconds", Kind: KindDuration, Harm: "up",
		Formula: "change commit (or merge; the merge when the commit is later) → finish of the first successful production deployment shipping it, or 0 when that finished before", Doc: kpisDoc},
	{Name: PanelChangeFailureRate, Title: "Change failure rate", Unit: "ratio", Kind: KindRate, Harm: "up",
		Formula: "deployments failed (status, or blamed for an incident) ÷ deployments", Doc: kpisDoc},
	{Name: PanelRecoveryTime, Title: "Failed-deployment recovery time (median)", Unit: "seconds", Kind: KindDuration, Harm: "up",
		Formula: "failed deployment → its incident's resolution, or → the next successful deployment", Doc: kpisDoc},
	{Name: PanelReworkRate, Title: "Rework rate", Unit: "ratio", Kind: KindRate, Harm: "up",
		Formula: "unplanned deployments ÷ deployments", Doc: kpisDoc},
	{Name: PanelDeployments, Title: "Deployments", Unit: "count", Kind: KindCount, Harm: "down", Hourly: true, Doc: kpisDoc},
	{Name: PanelIncidents, Title: "Incidents", Unit: "count", Kind: KindCount, Harm: "up", Hourly: true, Doc: kpisDoc},
	{Name: PanelMTTR, Title: "MTTR (median)", Unit: "seconds", Kind: KindDuration, Harm: "up",
		Formula: "detected → resolved, over resolved production incidents", Doc: kpisDoc},
	{Name: PanelMTTD, Title: "MTTD (median)", Unit: "seconds", Kind: KindDuration, Harm: "up",
		Formula: "impact start → detected", Doc: kpisDoc},
	{Name: PanelMTTA, Title: "MTTA (median)", Unit: "seconds", Kind: KindDuration, Harm: "up",
		Formula: "detected → acknowledged", Doc: kpisDoc},
	{Name: KPIPatches, Title: "Patches released", Unit: "count", Kind: KindCount, Harm: "up", Doc: patchDoc},
	{Name: PanelPatchLatency, Title: "Patch latency (median)", Unit: "seconds", Kind: KindDuration, Harm: "up", Doc: patchDoc},
	{Name: PanelPatchCompliance, Title: "Patch compliance", Unit: "ratio", Kind: KindRate, Harm: "down", Doc: patchDoc},
	{Name: PanelPatchesOverdue, Title: "Patches overdue", Unit: "count", Kind: KindCount, Harm: "up", Doc: patchDoc},
	{Name: KPIDeploymentsOutsideWindow, Title: "Deployments outside change windows", Unit: "count", Kind: KindCount, Harm: "up",
		Formula: "production deployments started outside their change windows or in a freeze; unplanned fixes for an open incident counted apart",
		Doc:     "docs/kpis.md#deployments-outside-change-windows"},
}

const patchDoc = "docs/kpis.md#patch-management"

// KPIPatches is the patch advisories released: a baselined count with no
// panel of its own.
const KPIPatches = "patches"

// LookupKPI returns the catalogue's KPI of that name.
func LookupKPI(name string) (KPI, bool) {
	for _, k := range Catalog {
		if k.Name == name {
			return k, true
		}
	}
	return KPI{}, false
}

// Title is the title of the KPI of that name, or the name when the
// catalogue has none.
func Title(name string) string {
	if k, ok := LookupKPI(name); ok {
		return k.Title
	}
	return name
}

// values are the KPIs' figures in a summary: the one place that says which
// field of Summary holds which KPI. A rate with no trials or a median with
// no sample has none.
var values = map[string]func(s *Summary) (float64, bool){
	PanelDeploymentFrequency:    func(s *Summary) (float64, bool) { return s.DeploymentsPerDay, true },
	PanelLeadTime:               func(s *Summary) (float64, bool) { return optional(s.LeadTimeMedianSeconds) },
	PanelChangeFailureRate:      func(s *Summary) (float64, bool) { return optional(s.ChangeFailureRate) },
	PanelRecoveryTime:           func(s *Summary) (float64, bool) { return optional(s.RecoveryMedianSeconds) },
	PanelReworkRate:             func(s *Summary) (float64, bool) { return optional(s.ReworkRate) },
	PanelDeployments:            func(s *Summary) (float64, bool) { return float64(s.Deployments), true },
	PanelIncidents:              func(s *Summary) (float64, bool) { return float64(s.Incidents), true },
	PanelMTTR:                   func(s *Summary) (float64, bool) { return optional(s.MTTRMedianSeconds) },
	PanelMTTD:                   func(s *Summary) (float64, bool) { return optional(s.MTTDMedianSeconds) },
	PanelMTTA:                   func(s *Summary) (float64, bool) { return optional(s.MTTAMedianSeconds) },
	KPIPatches:                  func(s *Summary) (float64, bool) { return float64(s.PatchAdvisories), true },
	PanelPatchLatency:           func(s *Summary) (float64, bool) { return optional(s.PatchLatencyMedianSeconds) },
	PanelPatchCompliance:        func(s *Summary) (float64, bool) { return optional(s.PatchCompliance) },
	PanelPatchesOverdue:         func(s *Summary) (float64, bool) { return float64(s.PatchesOverdue), true },
	KPIDeploymentsOutsideWindow: func(s *Summary) (float64, bool) { return float64(s.DeploymentsOutsideWindow), true },
}

// trials are the successes and trials each rate KPI is the ratio of.
var trials = map[string]func(s *Summary) (num, den uint64){
	PanelChangeFailureRate: func(s *Summary) (uint64, uint64) { return s.FailedDeployments, s.Deployments },
	PanelReworkRate:        func(s *Summary) (uint64, uint64) { return s.ReworkDeployments, s.Deployments },
	PanelPatchCompliance:   func(s *Summary) (uint64, uint64) { return s.PatchesCompliant, s.PatchesDue },
}

func optional(v *float64) (float64, bool) {
	if v == nil {
		return 0, false
	}
	return *v, true
}

// Value is the KPI's figure in s, in its unit; false when s has none (a
// rate with no trials, a median with no sample). Every KPI of the
// catalogue has one.
func (k KPI) Value(s *Summary) (float64, bool) {
	if f, ok := values[k.Name]; ok {
		return f(s)
	}
	return 0, false
}

// Trials are the numerator and denominator of a rate KPI (KindRate) in s:
// failed deployments of deployments, compliant patches of patches due.
// Other kinds have none (0, 0).
func (k KPI) Trials(s *Summary) (num, den uint64) {
	if f, ok := trials[k.Name]; ok {
		return f(s)
	}
	return 0, 0
}

// ValueOf is the Value of the catalogue's KPI of that name. It panics when
// the catalogue has no such KPI: the tables that call it at start-up name
// KPIs in code.
func ValueOf(name string) func(s *Summary) (float64, bool) {
	k, ok := LookupKPI(name)
	if !ok {
		panic("metrics: no KPI " + name + " in the catalogue")
	}
	return k.Value
}

// PointerOf is ValueOf as Summary's optional fields are: nil when there is
// no figure.
func PointerOf(name string) func(s *Summary) *float64 {
	value := ValueOf(name)
	return func(s *Summary) *float64 {
		if v, ok := value(s); ok {
			return &v
		}
		return nil
	}
}
