package metrics_test

import (
	"context"
	"fmt"
	"math"
	"strings"
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
		case metrics.PanelIncidents:
			v := float64(s.Incidents)
			return &v
		case metrics.PanelMTTR:
			return s.MTTRMedianSeconds
		case metrics.PanelMTTD:
			return s.MTTDMedianSeconds
		case metrics.PanelMTTA:
			return s.MTTAMedianSeconds
		case metrics.PanelPatchLatency:
			return s.PatchLatencyMedianSeconds
		case metrics.PanelPatchCompliance:
			return s.PatchCompliance
		case metrics.PanelPatchesOverdue:
			v := float64(s.PatchesOverdue)
			return &v
		case metrics.KPIDeploymentsOutsideWindow: // no calendar: 0 (window_test.go has one)
			v := float64(s.DeploymentsOutsideWindow)
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
	// Weekly buckets are the CLI's weeks: the same deployments and
	// deployments per day in each, the weeks the range's edges cut (it
	// starts on a Saturday and ends on a Monday at noon) in the partial
	// column, over the days the range covers of them.
	weeks, err := metrics.Run(ctx, st.Conn(), metrics.Query{From: from, To: to}, metrics.Week, time.UTC, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, kpi := range []string{metrics.PanelDeployments, metrics.PanelDeploymentFrequency} {
		sql, err := metrics.PanelSQL(kpi, metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", from.Unix()),
			To: fmt.Sprintf("toDateTime(%d)", to.Unix()), Bucket: "week"})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := st.Conn().Query(ctx, sql)
		if err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
		var got []string
		for rows.Next() {
			var week time.Time
			var full, partial *float64
			if err := rows.Scan(&week, &full, &partial); err != nil {
				t.Fatal(err)
			}
			if week.Weekday() != time.Monday {
				t.Errorf("week bucket %v is not a Monday", week)
			}
			kind, v := "full", full
			if partial != nil {
				kind, v = "partial", partial
			}
			got = append(got, fmt.Sprintf("%s %s %.6f", week.Format(time.DateOnly), kind, deref(v)))
		}
		rows.Close()
		var want []string
		for i, w := range weeks.Summaries {
			if w.Deployments == 0 {
				continue // the panel has no row for a week without deployments
			}
			monday := w.Bucket.AddDate(0, 0, -(int(w.Bucket.Weekday())+6)%7).Truncate(24 * time.Hour)
			kind := "full"
			if i == 0 || i == len(weeks.Summaries)-1 {
				kind = "partial"
			}
			v := float64(w.Deployments)
			if kpi == metrics.PanelDeploymentFrequency {
				v = w.DeploymentsPerDay
			}
			want = append(want, fmt.Sprintf("%s %s %.6f", monday.Format(time.DateOnly), kind, v))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") || len(want) < 4 {
			t.Errorf("%s by week:\n%s\nwant the CLI's weeks:\n%s", kpi, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestPanelGroupsAgreeWithSummaries: grouped by severity, incident counts
// and patch compliance are Summaries' per-severity figures.
func TestPanelGroupsAgreeWithSummaries(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	var recs []*event.Event
	generatorEvents(t, func(e *event.Event) { recs = append(recs, e) })
	write(t, st, recs...)
	from, to := t0.Add(-40*24*time.Hour), t0
	all, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	s := all[0]
	o := metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", from.Unix()), To: fmt.Sprintf("toDateTime(%d)", to.Unix()), GroupBy: "severity"}
	got := func(kpi string) map[string]float64 {
		sql, err := metrics.PanelSQL(kpi, o)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := st.Conn().Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v\n%s", kpi, err, sql)
		}
		defer rows.Close()
		out := map[string]float64{}
		for rows.Next() {
			var k string
			var v *float64
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			if v != nil {
				out[k] = *v
			}
		}
		return out
	}
	incidents := got(metrics.PanelIncidents)
	for sev, n := range s.IncidentsBySeverity {
		if incidents[sev] != float64(n) {
			t.Errorf("%s incidents: panel %v, summary %d", sev, incidents[sev], n)
		}
	}
	if len(incidents) != len(s.IncidentsBySeverity) || len(incidents) == 0 {
		t.Errorf("severities: panel %v, summary %v", incidents, s.IncidentsBySeverity)
	}
	compliance := got(metrics.PanelPatchCompliance)
	for sev, c := range s.PatchComplianceBySeverity {
		if c != nil && math.Abs(compliance[sev]-*c) > 1e-9 {
			t.Errorf("%s compliance: panel %v, summary %v", sev, compliance[sev], *c)
		}
	}
	if len(s.PatchComplianceBySeverity) == 0 {
		t.Error("no patch compliance to compare")
	}
}

// TestPanelTables: the attribution table lists the attributions of the
// range, and the overdue table the patches Summaries counts overdue.
func TestPanelTables(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	var recs []*event.Event
	generatorEvents(t, func(e *event.Event) { recs = append(recs, e) })
	write(t, st, recs...)
	from, to := t0.Add(-40*24*time.Hour), t0
	o := metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", from.Unix()), To: fmt.Sprintf("toDateTime(%d)", to.Unix())}
	count := func(name string) uint64 {
		sql, err := metrics.PanelTableSQL(name, o)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		if err := st.Conn().QueryRow(ctx, "SELECT count() FROM ("+sql+")").Scan(&n); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, sql)
		}
		return n
	}
	attrs, err := metrics.Attributions(ctx, st.Conn(), from, to, 0)
	if err != nil {
		t.Fatal(err)
	}
	production := 0
	for _, a := range attrs {
		if a.Environment == "production" {
			production++
		}
	}
	if n := count(metrics.TableAttributions); n != uint64(production) || n == 0 {
		t.Errorf("attribution table: %d rows, %d production attributions", n, production)
	}
	all, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(metrics.TableOverduePatches); n != all[0].PatchesOverdue {
		t.Errorf("overdue table: %d rows, summary counts %d", n, all[0].PatchesOverdue)
	}
	if n := count(metrics.TablePatchLatencies); n != uint64(all[0].Samples["patch_latency"]) || n == 0 {
		t.Errorf("latency table: %d rows, summary has %d latencies", n, all[0].Samples["patch_latency"])
	}
}

// TestPanelCommitCause: an incident that names the commit a deployment
// shipped makes that deployment failed in the panel as in Summaries.
func TestPanelCommitCause(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	h := time.Hour
	write(t, st,
		dep("d-old", "checkout", "production", t0.Add(-72*h), event.DeploymentSuccess, "abc123"),
		dep("d-new", "checkout", "production", t0.Add(-2*h), event.DeploymentSuccess),
		inc("INC-C", "search", "production", t0, "", "abc123"), // another service: only the commit ties it to d-old
	)
	from, to := t0.Add(-96*h), t0.Add(h)
	sums, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	sql, err := metrics.PanelSQL(metrics.PanelChangeFailureRate, metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", from.Unix()),
		To: fmt.Sprintf("toDateTime(%d)", to.Unix())})
	if err != nil {
		t.Fatal(err)
	}
	var got *float64
	if err := st.Conn().QueryRow(ctx, sql).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := sums[0].ChangeFailureRate; want == nil || *want != 0.5 || got == nil || *got != *want {
		t.Errorf("CFR with a commit cause: panel %v, summary %v, want 0.5", deref(got), deref(want))
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
