package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func patch(id string, sev event.Severity, released time.Time, applied time.Time, outcome event.PatchOutcome) *event.Event {
	return &event.Event{Kind: event.KindPatch, ID: "e-" + id, Time: released, Patch: &event.Patch{ID: id, Target: "host-1",
		Severity: sev, Environment: "production", ReleasedAt: released, AppliedAt: applied, Outcome: outcome}}
}

// TestPatchKPIs checks latency, compliance against deadlines, failures and
// overdue patches on a hand-computed fixture.
func TestPatchKPIs(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	d := 24 * time.Hour
	write(t, st,
		patch("P1", event.SeverityCritical, t0.Add(-10*d), t0.Add(-5*d), event.PatchApplied),  // 5d: within 7d
		patch("P2", event.SeverityCritical, t0.Add(-10*d), t0.Add(-1*d), event.PatchApplied),  // 9d: late
		patch("P3", event.SeverityHigh, t0.Add(-20*d), time.Time{}, ""),                       // open, 14d passed: overdue
		patch("P4", event.SeverityLow, t0.Add(-1*d), time.Time{}, ""),                         // open, not due yet
		patch("P5", event.SeverityMedium, t0.Add(-3*d), t0.Add(-2*d), event.PatchFailed),      // failed: due, not compliant
		patch("P6", event.SeverityCritical, t0.Add(-60*d), t0.Add(-59*d), event.PatchApplied), // released before the range
	)
	got, err := metrics.Summaries(context.Background(), st.Conn(), metrics.Query{From: t0.Add(-30 * d), To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	s := got[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"released", s.PatchesReleased, uint64(5)},
		{"latency median", *s.PatchLatencyMedianSeconds, (7 * d).Seconds()},
		{"compliance", *s.PatchCompliance, 0.25},
		{"critical compliance", *s.PatchComplianceBySeverity["critical"], 0.5},
		{"high compliance", *s.PatchComplianceBySeverity["high"], 0.0},
		{"failure rate", *s.PatchFailureRate, 1.0 / 3},
		{"overdue", s.PatchesOverdue, uint64(1)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if _, ok := s.PatchComplianceBySeverity["low"]; ok {
		t.Error("low has a compliance though no low patch is due")
	}
	// A shorter critical deadline makes P1 late too.
	got, err = metrics.Summaries(context.Background(), st.Conn(), metrics.Query{From: t0.Add(-30 * d), To: t0.Add(time.Hour),
		PatchDeadlines: map[string]time.Duration{"critical": 2 * d}})
	if err != nil {
		t.Fatal(err)
	}
	if c := *got[0].PatchComplianceBySeverity["critical"]; c != 0 {
		t.Errorf("critical compliance with a 2-day deadline = %v, want 0", c)
	}
}
