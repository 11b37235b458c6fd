package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func dep(id, service, env string, finished time.Time, status event.DeploymentStatus, changes ...string) *event.Event {
	return &event.Event{Kind: event.KindDeployment, ID: "e-" + id, Time: finished, Deployment: &event.Deployment{
		ID: id, Service: service, Environment: env, FinishedAt: finished, Status: status, Changes: changes}}
}

func inc(id, service, env string, impact time.Time, cause, commit string) *event.Event {
	return &event.Event{Kind: event.KindIncident, ID: "e-" + id, Time: impact, Incident: &event.Incident{
		ID: id, Service: service, Environment: env, ImpactStartedAt: impact, DetectedAt: impact.Add(5 * time.Minute),
		CauseDeployment: cause, CauseCommit: commit}}
}

// TestAttribution checks each rule of the attribution on hand-made data,
// with every event stored twice to show duplicates change nothing.
func TestAttribution(t *testing.T) {
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	h := time.Hour
	events := []*event.Event{
		dep("d-old", "checkout", "production", t0.Add(-30*h), event.DeploymentSuccess),
		dep("d-1", "checkout", "production", t0.Add(-3*h), event.DeploymentSuccess, "c0ffee"),
		dep("d-2", "checkout", "production", t0.Add(-1*h), event.DeploymentSuccess),
		dep("d-failed", "checkout", "production", t0.Add(-30*time.Minute), event.DeploymentFailure),
		dep("d-staging", "checkout", "staging", t0.Add(-10*time.Minute), event.DeploymentSuccess),
		dep("d-tie-b", "search", "production", t0.Add(-2*h), event.DeploymentSuccess),
		dep("d-tie-a", "search", "production", t0.Add(-2*h), event.DeploymentSuccess),
		inc("INC-inferred", "checkout", "production", t0, "", ""),            // latest earlier success: d-2
		inc("INC-explicit", "checkout", "production", t0, "d-old", ""),       // named cause wins
		inc("INC-commit", "checkout", "production", t0.Add(h), "", "c0ffee"), // commit shipped by d-1
		inc("INC-gap", "checkout", "production", t0.Add(40*h), "", ""),       // d-2 is 41h before: too old
		inc("INC-other-env", "checkout", "canary", t0, "", ""),               // nothing deployed to canary
		inc("INC-before", "checkout", "production", t0.Add(-31*h), "", ""),   // before any deployment
		inc("INC-tie", "search", "production", t0, "", ""),                   // same finish: higher id wins
		inc("INC-outside", "checkout", "production", t0.Add(-100*h), "", ""), // outside [from, to)
	}
	var recs []store.Record
	for i, e := range append(events, events...) {
		recs = append(recs, store.Record{Event: e, Topic: "t", Offset: int64(i)})
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	got, err := metrics.Attributions(context.Background(), st.Conn(), t0.Add(-48*h), t0.Add(48*h), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"INC-inferred":  "d-2 inferred",
		"INC-explicit":  "d-old explicit",
		"INC-commit":    "d-1 explicit",
		"INC-gap":       " unattributed",
		"INC-other-env": " unattributed",
		"INC-before":    " unattributed",
		"INC-tie":       "d-tie-b inferred",
	}
	seen := map[string]bool{}
	for _, a := range got {
		seen[a.IncidentID] = true
		if w, ok := want[a.IncidentID]; !ok {
			t.Errorf("%s attributed but outside the range or unknown", a.IncidentID)
		} else if g := fmt.Sprintf("%s %s", a.DeploymentID, a.Method); g != w {
			t.Errorf("%s: got %q, want %q", a.IncidentID, g, w)
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s missing from the attributions", id)
		}
	}
	// The same data gives the same answer with the default gap, run twice.
	again, err := metrics.Attributions(context.Background(), st.Conn(), t0.Add(-48*h), t0.Add(48*h), metrics.DefaultMaxGap)
	if err != nil || fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("second run differs: %v %v", err, again)
	}
}
