package metrics

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/opsmetrics/opsmetrics/internal/chsql"
)

// query runs q with its values bound and calls fn with each row, scanned
// into a T by column name (clickhouse-go's ScanStruct and the ch tags of T).
func query[T any](ctx context.Context, conn driver.Conn, q chsql.Expr, fn func(*T)) error {
	text, args, err := chsql.Bind(q)
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, text, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r T
		if err := rows.ScanStruct(&r); err != nil {
			return err
		}
		fn(&r)
	}
	return rows.Err()
}

// dims are the leading columns of a sliced query's rows: the values of
// Query.By and then the step, as d0 to d3 (Query.groupBy).
type dims struct {
	D0 string `ch:"d0"`
	D1 string `ch:"d1"`
	D2 string `ch:"d2"`
	D3 string `ch:"d3"`
}

// values are the first n.
func (d dims) values(n int) []string { return []string{d.D0, d.D1, d.D2, d.D3}[:n] }

// The rows of the summary queries.
type (
	deploymentRow struct {
		dims
		Deployments uint64    `ch:"v_deployments"`
		Successful  uint64    `ch:"v_successful"`
		Days        uint64    `ch:"v_days"`
		Failed      uint64    `ch:"v_failed"`
		Rework      uint64    `ch:"v_rework"`
		Durations   []float64 `ch:"v_durations"`
	}
	incidentRow struct {
		dims
		Incidents      uint64    `ch:"v_incidents"`
		Unresolved     uint64    `ch:"v_unresolved"`
		MTTR           []float64 `ch:"v_mttr"`
		MTTD           []float64 `ch:"v_mttd"`
		MTTA           []float64 `ch:"v_mtta"`
		MTTRFromImpact []float64 `ch:"v_mttr_impact"`
		Severities     []string  `ch:"v_severities"`
	}
	recoveryRow struct {
		dims
		ID       string    `ch:"v_id"`
		Finished time.Time `ch:"v_finished"`
		Next     time.Time `ch:"v_next"`
	}
	leadTimeRow struct {
		dims
		Leads       []float64   `ch:"v_leads"`
		Starts      []time.Time `ch:"v_starts"`
		NotDeployed uint64      `ch:"v_not_deployed"`
	}
)

// queryRange is a query with the range its statement is built for: q's
// times for Summaries, the panel's expressions for PanelSQL.
type queryRange struct {
	Query
	from, to chsql.Time
}

// rangeOf is q over its own range.
func (q Query) rangeOf() queryRange { return queryRange{Query: q, from: at(q.From), to: at(q.To)} }
