package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestRanges(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	from := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC) // Saturday; DST starts 8 March in New York
	to := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	days := metrics.Ranges(from, to, metrics.Day, ny)
	want := []string{
		"2026-03-07T12:00:00Z 2026-03-08T05:00:00Z", // clipped start; midnight EST is 05:00Z
		"2026-03-08T05:00:00Z 2026-03-09T04:00:00Z", // a 23-hour day
		"2026-03-09T04:00:00Z 2026-03-10T00:00:00Z", // clipped end
	}
	if len(days) != len(want) {
		t.Fatalf("%d day ranges, want %d: %v", len(days), len(want), days)
	}
	for i, r := range days {
		if got := r[0].Format(time.RFC3339) + " " + r[1].Format(time.RFC3339); got != want[i] {
			t.Errorf("day %d: %s, want %s", i, got, want[i])
		}
	}
	weeks := metrics.Ranges(from, to, metrics.Week, time.UTC)
	if len(weeks) != 2 || weeks[1][0] != time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC) {
		t.Errorf("weeks %v: want a split on Monday 9 March", weeks)
	}
	months := metrics.Ranges(time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), metrics.Month, time.UTC)
	if len(months) != 3 || months[1][0] != time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC) {
		t.Errorf("months %v", months)
	}
}

// TestBucketsAndComparison: a deployment at 23:30 UTC falls on the next day
// in Berlin, and the comparison period holds the previous day's figures.
func TestBucketsAndComparison(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	berlin, _ := time.LoadLocation("Europe/Berlin")
	mar1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	write(t, st,
		dep("a", "checkout", "production", mar1.Add(10*time.Hour), event.DeploymentSuccess),
		dep("b", "checkout", "production", mar1.Add(23*time.Hour+30*time.Minute), event.DeploymentSuccess), // 2 March in Berlin
		dep("c", "checkout", "production", mar1.Add(30*time.Hour), event.DeploymentFailure),
	)
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, berlin)
	to := time.Date(2026, 3, 3, 0, 0, 0, 0, berlin)
	r, err := metrics.Run(context.Background(), st.Conn(), metrics.Query{From: from, To: to}, metrics.Day, berlin, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.Summaries {
		got = append(got, fmt.Sprintf("%s:%d(prev %d)", s.Bucket.In(berlin).Format(time.DateOnly), s.Deployments, s.Previous.Deployments))
	}
	want := "[2026-03-01:1(prev 0) 2026-03-02:2(prev 1)]"
	if fmt.Sprint(got) != want {
		t.Errorf("buckets %v, want %s", got, want)
	}
	if r.Summaries[0].Previous.ChangeFailureRate != nil {
		t.Error("the empty previous day has a failure rate")
	}
	if *r.Summaries[1].ChangeFailureRate != 0.5 || *r.Summaries[1].Previous.ChangeFailureRate != 0 {
		t.Errorf("CFR %v after %v, want 0.5 after 0", *r.Summaries[1].ChangeFailureRate, *r.Summaries[1].Previous.ChangeFailureRate)
	}
}

// TestExplain lists the rows behind the change failure rate and MTTR.
func TestExplain(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	write(t, st,
		dep("d-ok", "checkout", "production", t0.Add(-2*time.Hour), event.DeploymentSuccess),
		dep("d-bad", "checkout", "production", t0.Add(-time.Hour), event.DeploymentFailure),
		resolved(inc("INC-1", "checkout", "production", t0, "", ""), time.Hour),
	)
	q := metrics.Query{From: t0.Add(-24 * time.Hour), To: t0.Add(24 * time.Hour), Services: []string{"checkout"}}
	e, err := metrics.Explain(context.Background(), st.Conn(), "change_failure_rate", q)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(e.Rows)
	want := "[[d-ok checkout production 2026-03-02 10:00 success no INC-1 (inferred) yes] [d-bad checkout production 2026-03-02 11:00 failure no  yes]]"
	if got != want {
		t.Errorf("explain CFR:\n got %s\nwant %s", got, want)
	}
	e, err = metrics.Explain(context.Background(), st.Conn(), "mttr", q)
	if err != nil || len(e.Rows) != 1 || e.Rows[0][7] != "d-ok" || e.Rows[0][6] != "2026-03-02 13:05" {
		t.Errorf("explain MTTR: %v %v", err, e)
	}
	if _, err := metrics.Explain(context.Background(), st.Conn(), "vibes", q); err == nil {
		t.Error("unknown KPI explained")
	}
}

// TestExplainRecovery lists the recovery times the median ranks, shortest
// first, with the median and its level, and agrees with the summary.
func TestExplainRecovery(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	write(t, st,
		dep("r1", "cart", "production", t0.Add(-10*time.Hour), event.DeploymentFailure),
		dep("r2", "cart", "production", t0.Add(-7*time.Hour), event.DeploymentSuccess), // r1 recovers in 3h
		dep("r3", "cart", "production", t0.Add(-5*time.Hour), event.DeploymentFailure),
		dep("r4", "cart", "production", t0.Add(-270*time.Minute), event.DeploymentSuccess), // r3 recovers in 30m
		dep("r5", "cart", "production", t0.Add(-time.Hour), event.DeploymentRolledBack),    // not recovered
	)
	q := metrics.Query{From: t0.Add(-24 * time.Hour), To: t0, Services: []string{"cart"}}
	e, err := metrics.Explain(context.Background(), st.Conn(), "recovery_time", q)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range e.Rows {
		got = append(got, r[0]+" "+r[len(r)-1])
	}
	if want := "[r3 30 min r1 3.0 h r5 not recovered]"; fmt.Sprint(got) != want {
		t.Errorf("explain recovery rows %v, want %s\n%v", got, want, e.Rows)
	}
	sums, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	if m := sums[0].RecoveryMedianSeconds; m == nil || *m != 6300 || sums[0].Unrecovered != 1 {
		t.Errorf("summary recovery median %v, unrecovered %d; want 6300 s (1.75h) and 1", deref(m), sums[0].Unrecovered)
	}
	want := "median of the 2 recovered: 1.8 h; DORA 2024 level: high (2nd of 4); 1 not recovered yet, left out"
	if len(e.Notes) != 1 || e.Notes[0] != want {
		t.Errorf("explain recovery notes %q, want %q", e.Notes, want)
	}
}
