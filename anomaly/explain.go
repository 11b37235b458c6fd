package anomaly

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// A factorSource reads the breakdown of a KPI's interval: its rows, grouped
// by the dimensions below the series that explain that KPI.
type factorSource struct {
	kind baselines.Kind
	dims []string
	// read returns the rows of q, by dims; threshold is the duration
	// (in seconds) that a duration's events are beyond, in the direction
	// dir.
	read func(ctx context.Context, conn driver.Conn, q metrics.Query, threshold float64, dir string) ([]FactorRow, error)
}

// factorSources are the KPIs whose anomalies name their contributing
// factors:
//
//   - deployment counts, by service, team, actor and pipeline (a version
//     is new every deployment: it explains no count);
//   - change failure and rework rates, over the interval's deployments, by
//     service, team, version, actor and pipeline;
//   - incident counts, by service, team, severity and detection source;
//   - MTTR and MTTD, by the same, counting the incidents beyond the
//     baseline's median (slower for an anomaly up, faster down), of which
//     half are beyond it at the baseline;
//   - lead time, over the changes first deployed to production in the
//     interval, by service, team, and the actor and pipeline of the
//     deployment that shipped each change, counting the changes beyond the
//     median likewise;
//   - the patches released, patch latency (beyond the median likewise) and
//     patch compliance (the due patches applied late), by service, team,
//     environment, target and severity.
var factorSources = map[string]factorSource{
	"deployments": {baselines.Count, pick(metrics.DeploymentDimensions, deploymentCountDims),
		deployments(metrics.DeploymentCounts, deploymentCountDims, func(r metrics.DeploymentRow) (float64, float64) { return float64(r.Deployments), 0 })},
	"change_failure_rate": {baselines.Rate, metrics.DeploymentDimensions,
		deployments(metrics.DeploymentBreakdown, nil, func(r metrics.DeploymentRow) (float64, float64) { return float64(r.Failed), float64(r.Deployments) })},
	"rework_rate": {baselines.Rate, metrics.DeploymentDimensions,
		deployments(metrics.DeploymentCounts, nil, func(r metrics.DeploymentRow) (float64, float64) { return float64(r.Unplanned), float64(r.Deployments) })},
	"incidents": {baselines.Count, metrics.IncidentDimensions, incidents("")},
	"mttr":      {baselines.Duration, metrics.IncidentDimensions, incidents("mttr")},
	"mttd":      {baselines.Duration, metrics.IncidentDimensions, incidents("mttd")},
	"lead_time": {baselines.Duration, metrics.LeadTimeDimensions, leadTimes},
	"patches": {baselines.Count, metrics.PatchDimensions,
		patches(func(r metrics.PatchRow) (float64, float64) { return float64(r.Released), 0 })},
	"patch_latency": {baselines.Duration, metrics.PatchDimensions,
		patches(func(r metrics.PatchRow) (float64, float64) { return float64(r.Beyond), float64(r.Applied) })},
	"patch_compliance": {baselines.Rate, metrics.PatchDimensions,
		patches(func(r metrics.PatchRow) (float64, float64) { return float64(r.Compliant), float64(r.Due) })},
}

// leadTimes reads a lead-time breakdown: the changes whose lead time is
// beyond the threshold among those first deployed in the interval.
func leadTimes(ctx context.Context, conn driver.Conn, q metrics.Query, threshold float64, dir string) ([]FactorRow, error) {
	rows, err := metrics.LeadTimeBreakdown(ctx, conn, q, seconds(threshold), dir == "down")
	var out []FactorRow
	for _, r := range rows {
		if r.Samples > 0 {
			out = append(out, FactorRow{Values: r.Values, Num: float64(r.Beyond), Den: float64(r.Samples)})
		}
	}
	return out, err
}

// patches reads a patch breakdown with the events and trials of each row,
// leaving out the rows with neither (no patch due, none applied).
func patches(figures func(metrics.PatchRow) (num, den float64)) func(context.Context, driver.Conn, metrics.Query, float64, string) ([]FactorRow, error) {
	return func(ctx context.Context, conn driver.Conn, q metrics.Query, threshold float64, dir string) ([]FactorRow, error) {
		rows, err := metrics.PatchBreakdown(ctx, conn, q, seconds(threshold), dir == "down")
		var out []FactorRow
		for _, r := range rows {
			num, den := figures(r)
			if num > 0 || den > 0 {
				out = append(out, FactorRow{Values: r.Values, Num: num, Den: den})
			}
		}
		return out, err
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// deploymentCountDims are the indices in metrics.DeploymentDimensions of
// the dimensions that explain a deployment count: all but the version.
var deploymentCountDims = []int{0, 1, 3, 4}

// deployments reads a deployment breakdown (metrics.DeploymentBreakdown,
// or DeploymentCounts where no failure counts) with the events and trials
// of each row, grouped by the dimensions at indices keep (nil: all).
func deployments(read func(context.Context, driver.Conn, metrics.Query) ([]metrics.DeploymentRow, error), keep []int,
	figures func(metrics.DeploymentRow) (num, den float64)) func(context.Context, driver.Conn, metrics.Query, float64, string) ([]FactorRow, error) {
	return func(ctx context.Context, conn driver.Conn, q metrics.Query, _ float64, _ string) ([]FactorRow, error) {
		rows, err := read(ctx, conn, q)
		at := map[string]int{}
		var out []FactorRow
		for _, r := range rows {
			vals := r.Values
			if keep != nil {
				vals = pick(vals, keep)
			}
			key := fmt.Sprintf("%q", vals)
			i, ok := at[key]
			if !ok {
				i = len(out)
				at[key] = i
				out = append(out, FactorRow{Values: vals})
			}
			num, den := figures(r)
			out[i].Num += num
			out[i].Den += den
		}
		return out, err
	}
}

func pick(xs []string, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}

// incidents reads an incident breakdown: counts when kpi is empty, else
// the incidents whose duration kpi is beyond the threshold among those
// that have one.
func incidents(kpi string) func(context.Context, driver.Conn, metrics.Query, float64, string) ([]FactorRow, error) {
	return func(ctx context.Context, conn driver.Conn, q metrics.Query, threshold float64, dir string) ([]FactorRow, error) {
		d := metrics.IncidentDuration{KPI: kpi, Threshold: time.Duration(threshold * float64(time.Second)), Below: dir == "down"}
		rows, err := metrics.IncidentBreakdown(ctx, conn, q, d)
		var out []FactorRow
		for _, r := range rows {
			if kpi == "" {
				out = append(out, FactorRow{Values: r.Values, Num: float64(r.Incidents)})
			} else if r.Samples > 0 {
				out = append(out, FactorRow{Values: r.Values, Num: float64(r.Beyond), Den: float64(r.Samples)})
			}
		}
		return out, err
	}
}

// referenceIntervals is how many intervals before the one that fired a
// count's reference spans: four weeks of days, one week of hours.
func referenceIntervals(step metrics.Step) int {
	if step == metrics.StepHour {
		return 7 * 24
	}
	return 28
}

// Explain finds the contributing factors of a firing series whose KPI
// names them (factorSources): the breakdown of its slice in the interval,
// or the window, that fired, ranked against the baseline by
// ContributingFactors. A count is compared with the same breakdown over
// the referenceIntervals before the window; a duration with its baseline's
// median. It returns nil for other series.
func Explain(ctx context.Context, conn driver.Conn, e Evaluation, production []string) (*Factors, error) {
	src, ok := factorSources[e.Series.KPI]
	if !ok || !e.Firing || e.Latest == nil {
		return nil, nil
	}
	iv, s := e.Latest, e.Series
	sc := iv.Score
	step := s.Step.Duration()
	from := iv.End.Add(-time.Duration(max(sc.Intervals, 1)) * step)
	q := metrics.Query{From: from, To: iv.End, Production: production}
	for _, f := range []struct {
		dst *[]string
		v   string
	}{{&q.Services, s.Service}, {&q.Teams, s.Team}, {&q.Environments, s.Environment}} {
		if f.v != "" {
			*f.dst = []string{f.v}
		}
	}
	in := FactorInput{Kind: src.kind, Direction: sc.Direction, Expected: sc.Expected, Dimensions: src.dims,
		Words: FactorWordsFor(s.KPI, sc.Direction, sc.Expected)}
	if src.kind == baselines.Duration {
		in.Expected = 0.5 // of the durations are beyond the baseline's median
	}
	var err error
	if in.Rows, err = src.read(ctx, conn, q, sc.Expected, sc.Direction); err != nil {
		return nil, fmt.Errorf("contributing factors of %s %s: %w", s.KPI, s.Slice(), err)
	}
	if src.kind == baselines.Count {
		rq := q
		rq.From, rq.To = from.Add(-time.Duration(referenceIntervals(s.Step))*step), from
		if in.Reference, err = src.read(ctx, conn, rq, 0, ""); err != nil {
			return nil, fmt.Errorf("contributing factors of %s %s: reference: %w", s.KPI, s.Slice(), err)
		}
	}
	f := ContributingFactors(in, FactorOptions{})
	return &f, nil
}
