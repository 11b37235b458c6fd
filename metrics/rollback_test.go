package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestRolledBackSuccessRecoversNothing checks that deployments are folded
// over their messages before their status is read: a deployment reported
// successful and then, by a later message, rolled back is neither the
// success a failed deployment recovers at nor an incident's inferred
// cause.
func TestRolledBackSuccessRecoversNothing(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	h := time.Hour
	rolledBack := dep("d-rb", "checkout", "production", t0.Add(h), event.DeploymentRolledBack)
	rolledBack.ID, rolledBack.Time = "e-d-rb-2", t0.Add(h+5*time.Minute)
	write(t, st,
		dep("d-early", "checkout", "production", t0.Add(-2*h), event.DeploymentSuccess),
		dep("d-fail", "checkout", "production", t0, event.DeploymentFailure),
		dep("d-rb", "checkout", "production", t0.Add(h), event.DeploymentSuccess), // first message
		rolledBack, // the later one: the deployment was rolled back
		dep("d-ok", "checkout", "production", t0.Add(3*h), event.DeploymentSuccess),
		inc("INC-1", "checkout", "production", t0.Add(90*time.Minute), "", ""),
	)
	ctx := context.Background()
	attrs, err := metrics.Attributions(ctx, st.Conn(), t0.Add(-24*h), t0.Add(24*h), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(attrs) != 1 || attrs[0].DeploymentID != "d-early" || attrs[0].Method != "inferred" {
		t.Errorf("attributions %+v: want INC-1 inferred to d-early (d-rb was rolled back)", attrs)
	}
	sums, err := metrics.Summaries(ctx, st.Conn(), metrics.Query{From: t0.Add(-12 * h), To: t0.Add(12 * h)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 {
		t.Fatalf("%d summaries, want 1", len(sums))
	}
	s := sums[0]
	// d-fail recovers at d-ok, 3 h later; d-rb is failed (rolled back) and
	// recovers at d-ok, 2 h later. Median of {2 h, 3 h} = 2.5 h. With the
	// rolled-back message ignored, d-fail would recover at d-rb after 1 h.
	if s.RecoveryMedianSeconds == nil || *s.RecoveryMedianSeconds != 2.5*3600 {
		t.Errorf("recovery median %v s, want %v", deref(s.RecoveryMedianSeconds), 2.5*3600)
	}
}
