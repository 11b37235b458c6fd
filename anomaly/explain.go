package anomaly

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// deploymentRates are the KPIs whose anomalies name their contributing
// factors, with the harmful events of a breakdown row: rates over the
// deployments of the interval. Counts (which need the breakdown of a
// reference period) and durations (which need the share beyond the band
// at the baseline) do not yet.
var deploymentRates = map[string]func(metrics.DeploymentRow) float64{
	"change_failure_rate": func(r metrics.DeploymentRow) float64 { return float64(r.Failed) },
	"rework_rate":         func(r metrics.DeploymentRow) float64 { return float64(r.Unplanned) },
}

// Explain finds the contributing factors of a firing series whose KPI is a
// rate over deployments (change failure rate, rework rate): the
// deployments of its slice in the interval, or the window, that fired,
// grouped by metrics.DeploymentDimensions and ranked against the
// baseline's ratio (ContributingFactors). It returns nil for other series.
func Explain(ctx context.Context, conn driver.Conn, e Evaluation, production []string) (*Factors, error) {
	harm, ok := deploymentRates[e.Series.KPI]
	if !ok || !e.Firing || e.Latest == nil {
		return nil, nil
	}
	iv, s := e.Latest, e.Series
	q := metrics.Query{From: iv.End.Add(-time.Duration(max(iv.Score.Intervals, 1)) * s.Step.Duration()), To: iv.End,
		Production: production}
	for _, f := range []struct {
		dst *[]string
		v   string
	}{{&q.Services, s.Service}, {&q.Teams, s.Team}, {&q.Environments, s.Environment}} {
		if f.v != "" {
			*f.dst = []string{f.v}
		}
	}
	rows, err := metrics.DeploymentBreakdown(ctx, conn, q)
	if err != nil {
		return nil, fmt.Errorf("contributing factors of %s %s: %w", s.KPI, s.Slice(), err)
	}
	in := FactorInput{Kind: baselines.Rate, Direction: iv.Score.Direction, Expected: iv.Score.Expected,
		Dimensions: metrics.DeploymentDimensions, Words: FactorWordsFor(s.KPI, iv.Score.Direction, 0)}
	for _, r := range rows {
		in.Rows = append(in.Rows, FactorRow{Values: r.Values, Num: harm(r), Den: float64(r.Deployments)})
	}
	f := ContributingFactors(in, FactorOptions{})
	return &f, nil
}
