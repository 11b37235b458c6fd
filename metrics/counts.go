package metrics

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// countRow is a row of the counts' reads.
type countRow struct {
	dims
	N uint64 `ch:"v_n"`
}

// Counts is, for each slice of q.By (and bucket of q.Step) with at least
// one production deployment finished or incident started in q's range,
// those two counts exactly as Summaries counts them (Summary.Deployments
// and Summary.Incidents, with Slice and Bucket), and nothing else: no
// other figure is set and none is finished. It reads the deployments'
// and the incidents' folds of the raw rows once each, without the
// attributions, lead times, recoveries and patch folds a summary needs:
// the hourly baselines (baselines.Load), which learn only these two
// counts, read it. It never reads the rollup, which has no hours, so it
// is as fresh as the stored rows.
func Counts(ctx context.Context, conn driver.Conn, q Query) ([]*Summary, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	n := q.dims()
	out, get := keyedSummaries(q)
	// The rows of collect's deployment and incident queries, counted only.
	cols, group := q.groupBy("finished_at")
	dq := chsql.SQL(`SELECT ?count() AS v_n FROM ??`, cols, q.deploymentRows("finished_at"), group)
	if err := query(ctx, conn, dq, func(r *countRow) { get(r.values(n)).Deployments = r.N }); err != nil {
		return nil, fmt.Errorf("deployment counts: %w", err)
	}
	cols, group = q.groupBy(incidentImpact)
	iq := chsql.SQL(`SELECT ?count() AS v_n FROM ??`, cols, q.incidentRows("impact_started_at", "detected_at"), group)
	if err := query(ctx, conn, iq, func(r *countRow) { get(r.values(n)).Incidents = r.N }); err != nil {
		return nil, fmt.Errorf("incident counts: %w", err)
	}
	ss := make([]*Summary, 0, len(out))
	for _, s := range out {
		ss = append(ss, s)
	}
	if q.Step != "" { // by bucket within a slice
		start := func(s *Summary) time.Time {
			if s.Bucket == nil {
				return time.Time{}
			}
			return *s.Bucket
		}
		slices.SortFunc(ss, func(a, b *Summary) int { return start(a).Compare(start(b)) })
	}
	sortBySlice(ss, q.By)
	return ss, nil
}
