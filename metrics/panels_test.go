package metrics_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestPanelsAgreeWithSummaries: every panel statement, run as Grafana would
// run it, gives the number Summaries gives for the same range and filter.
func TestPanelsAgreeWithSummaries(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	var recs []*event.Event
	generatorEvents(t, func(e *event.Event) { recs = append(recs, e) })
	write(t, st, recs...)
	from, to := t0.Add(-30*24*time.Hour), t0
	sums, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: from, To: to, By: []metrics.Dimension{metrics.Service}})
	if err != nil {
		t.Fatal(err)
	}
	all, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		filter func(string) string
		want   *metrics.Summary
	}{{"all", nil, all[0]}}
	for _, s := range sums[:2] {
		svc := s.Slice[metrics.Service]
		cases = append(cases, struct {
			name   string
			filter func(string) string
			want   *metrics.Summary
		}{"service " + svc, func(col string) string {
			if col == "service" {
				return "service = '" + svc + "'"
			}
			return "1"
		}, s})
	}
	value := func(s *metrics.Summary, kpi string) *float64 {
		switch kpi {
		case metrics.PanelDeploymentFrequency:
			return &s.DeploymentsPerDay
		case metrics.PanelChangeFailureRate:
			return s.ChangeFailureRate
		case metrics.PanelReworkRate:
			return s.ReworkRate
		case metrics.PanelLeadTime:
			return s.LeadTimeMedianSeconds
		case metrics.PanelRecoveryTime:
			return s.RecoveryMedianSeconds
		case metrics.PanelDeployments:
			v := float64(s.Deployments)
			return &v
		}
		return nil
	}
	present := 0
	for _, c := range cases {
		for _, kpi := range metrics.PanelKPIs {
			sql, err := metrics.PanelSQL(kpi, metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", from.Unix()),
				To: fmt.Sprintf("toDateTime(%d)", to.Unix()), Filter: c.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got *float64
			if err := st.Conn().QueryRow(ctx, sql).Scan(&got); err != nil {
				t.Fatalf("%s %s: %v\n%s", c.name, kpi, err, sql)
			}
			want := value(c.want, kpi)
			switch {
			case (got == nil) != (want == nil):
				t.Errorf("%s %s: panel %v, summary %v", c.name, kpi, got, want)
			case got != nil && math.Abs(*got-*want) > 1e-9*math.Max(1, math.Abs(*want)):
				t.Errorf("%s %s: panel %v, summary %v", c.name, kpi, *got, *want)
			case got != nil:
				present++
			}
		}
	}
	if present < len(cases)*len(metrics.PanelKPIs)/2 {
		t.Errorf("only %d figures had values to compare", present)
	}
	// Weekly buckets: the deployments per week add up to the range's.
	sql, err := metrics.PanelSQL(metrics.PanelDeployments, metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", from.Unix()),
		To: fmt.Sprintf("toDateTime(%d)", to.Unix()), Bucket: "week"})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Conn().Query(ctx, sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	defer rows.Close()
	var total float64
	weeks := 0
	for rows.Next() {
		var week time.Time
		var n *float64
		if err := rows.Scan(&week, &n); err != nil {
			t.Fatal(err)
		}
		if week.Weekday() != time.Monday {
			t.Errorf("week bucket %v is not a Monday", week)
		}
		total += *n
		weeks++
	}
	if weeks < 4 || total != float64(all[0].Deployments) {
		t.Errorf("%d weekly buckets add up to %v deployments, the range has %d", weeks, total, all[0].Deployments)
	}
}
