package anomaly_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestReviewRules reviews rules on a quarter of hand-made deployments:
// service steady deploys 20 times a day and fails exactly 2 of them
// (10%); service shifting fails 1 in 20 until six weeks before the end
// and 6 in 20 since, when its rule was set; service young deploys 20 a
// day for the last four weeks only. Each rule is made for one finding.
func TestReviewRules(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	now := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	end := now.Truncate(day)
	set := end.Add(-42 * day)
	h := &history{}
	for d := end.Add(-anomaly.ReviewPeriod); d.Before(end); d = d.Add(day) {
		shifted := 1
		if !d.Before(set) {
			shifted = 6
		}
		for i := range 20 {
			at := d.Add(time.Duration(i)*time.Hour + 30*time.Minute)
			h.deploy("steady", "core", at, map[bool]event.DeploymentStatus{true: event.DeploymentFailure, false: event.DeploymentSuccess}[i < 2])
			h.deploy("shifting", "edge", at, map[bool]event.DeploymentStatus{true: event.DeploymentFailure, false: event.DeploymentSuccess}[i < shifted])
			if !d.Before(end.Add(-28 * day)) {
				h.deploy("young", "edge", at, event.DeploymentSuccess)
			}
		}
	}
	if err := st.Write(ctx, h.recs, nil); err != nil {
		t.Fatal(err)
	}
	cfr := func(name, service, above string, setAt time.Time) anomaly.ThresholdRule {
		return anomaly.ThresholdRule{Name: name, KPI: "change_failure_rate", Above: target(t, "change_failure_rate", above),
			Services: []string{service}, SetAt: setAt}
	}
	monthly := cfr("monthly", "steady", "15%", time.Time{})
	monthly.Window = 30 * day
	rules := []anomaly.ThresholdRule{
		cfr("holds", "steady", "15%", time.Time{}),
		cfr("stale", "steady", "60%", time.Time{}),
		cfr("never-met", "steady", "5%", time.Time{}),
		cfr("shifted", "shifting", "35%", set),
		{Name: "stale-count", KPI: "deployments_per_day", Below: target(t, "deployments_per_day", "5"), Services: []string{"steady"}},
		monthly,
		{Name: "young", KPI: "deployments_per_day", Below: target(t, "deployments_per_day", "5"), Services: []string{"young"}},
	}
	rr, err := anomaly.ReviewRules(ctx, st.Conn(), rules, nil, now, anomaly.ReviewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rr.To.Equal(end) || !rr.From.Equal(end.Add(-91*day)) || len(rr.Reviews) != len(rules) {
		t.Fatalf("review of %s to %s with %d reviews, want %s to %s and one per rule", rr.From, rr.To, len(rr.Reviews), end.Add(-91*day), end)
	}
	for i, c := range []struct {
		points, met int
		findings    []string
		suggested   float64 // the suggested bound, 0: none
	}{
		{13, 13, nil, 0.13},
		{13, 13, []string{anomaly.TargetStale}, 0.13},
		{13, 0, []string{anomaly.TargetNeverMet}, 0.13},
		{13, 13, []string{anomaly.TargetShifted}, 0.36},
		{13, 13, []string{anomaly.TargetStale}, 9.7}, // 18 successful a day
		{3, 0, nil, 0},
		{4, 0, nil, 0}, // four weeks old: the weeks before had not started, no zeros
	} {
		r := rr.Reviews[i]
		got := 0.0
		if b := r.SuggestedAbove; b != nil {
			got = *b
		} else if b := r.SuggestedBelow; b != nil {
			got = *b
		}
		if r.Points != c.points || r.Met != c.met || !slices.Equal(r.Findings, c.findings) || (c.suggested == 0) != (got == 0) ||
			got < c.suggested*0.8 || got > c.suggested*1.25 {
			t.Errorf("%s: %d values, %d met, findings %v, suggested %v; want %d, %d, %v, about %v\n%s", r.Target.Name, r.Points, r.Met,
				r.Findings, got, c.points, c.met, c.findings, c.suggested, r.Summary)
		}
	}
	if r := rr.Reviews[3]; r.ShiftDirection != "up" || !r.SplitAt.Equal(set) || r.Beyond != 6 {
		t.Errorf("shifted: %s from %s, %d beyond; want up from %s, all 6 windows since", r.ShiftDirection, r.SplitAt, r.Beyond, set)
	}

	var out bytes.Buffer
	if err := rr.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"targets review: 2026-07-02 00:00 to 2026-10-01 00:00", "too few values", "never_met", "on service shifting:",
		"7 targets reviewed over 2026-07-02 to 2026-10-01: 2 stale, 1 never met, 1 shifted", "The values changed on " + set.Format(time.DateOnly)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the review's table has no %q:\n%s", want, out.String())
		}
	}
}
