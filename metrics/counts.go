package metrics

import (
	"context"
	"fmt"
	"strings"
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
	out := map[string]*Summary{}
	get := func(vals []string) *Summary {
		key := strings.Join(vals, "\x00")
		s, ok := out[key]
		if !ok {
			s = &Summary{Slice: map[Dimension]string{}}
			for i, d := range q.By {
				s.Slice[d] = vals[i]
			}
			if q.Step != "" {
				if b, err := time.ParseInLocation(time.DateTime, vals[len(q.By)], time.UTC); err == nil {
					s.Bucket = &b
				}
			}
			out[key] = s
		}
		return s
	}
	// The sources and conditions of collect's deployment and incident
	// queries, counted only.
	cols, group := q.groupBy("finished_at")
	dq := chsql.SQL(`SELECT ?count() AS v_n FROM ? WHERE ??`, cols,
		deploymentsFinished(at(q.From), at(q.To), dimsAnd("finished_at"), chsql.Expr{}), q.where("finished_at"), group)
	if err := query(ctx, conn, dq, func(r *countRow) { get(r.values(n)).Deployments = r.N }); err != nil {
		return nil, fmt.Errorf("deployment counts: %w", err)
	}
	impact := "assumeNotNull(ifNull(impact_started_at, detected_at))"
	cols, group = q.groupBy(impact)
	iq := chsql.SQL(`SELECT ?count() AS v_n FROM ? WHERE isNotNull(ifNull(impact_started_at, detected_at)) AND ??`, cols,
		incidentsStarted(at(q.From), at(q.To), dimsAnd("impact_started_at", "detected_at")...), q.where(impact), group)
	if err := query(ctx, conn, iq, func(r *countRow) { get(r.values(n)).Incidents = r.N }); err != nil {
		return nil, fmt.Errorf("incident counts: %w", err)
	}
	ss := make([]*Summary, 0, len(out))
	for _, s := range out {
		ss = append(ss, s)
	}
	sortBySlice(ss, q.By)
	return ss, nil
}
