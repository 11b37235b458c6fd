package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func write(t *testing.T, st *store.Store, events ...*event.Event) {
	t.Helper()
	var recs []store.Record
	for i, e := range events {
		recs = append(recs, store.Record{Event: e, Topic: "t", Offset: int64(i)})
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
}

func resolved(e *event.Event, after time.Duration) *event.Event {
	e.Incident.ResolvedAt = e.Incident.DetectedAt.Add(after)
	return e
}

// TestSummaries checks the DORA figures on a hand-computed fixture.
func TestSummaries(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	h := time.Hour
	day := 24 * h
	rework := dep("d-fix", "checkout", "production", t0.Add(2*h), event.DeploymentSuccess)
	rework.Deployment.Unplanned = true
	write(t, st,
		// checkout: 4 production deployments on 2 days; d-bad failed, d-2 caused an incident.
		dep("d-1", "checkout", "production", t0.Add(-day), event.DeploymentSuccess, "c-1"),
		dep("d-2", "checkout", "production", t0.Add(-h), event.DeploymentSuccess),
		dep("d-bad", "checkout", "production", t0.Add(-30*time.Minute), event.DeploymentRolledBack),
		rework,
		dep("d-stg", "checkout", "staging", t0, event.DeploymentFailure), // not production
		// search: 1 deployment, no failure.
		dep("s-1", "search", "production", t0, event.DeploymentSuccess),
		resolved(inc("INC-1", "checkout", "production", t0, "", ""), 2*h), // inferred: d-2; MTTR 2h
		resolved(inc("INC-2", "checkout", "production", t0.Add(3*h), "", ""), 4*h),
		inc("INC-3", "checkout", "production", t0.Add(4*h), "", ""), // unresolved
	)
	// Changes: c-1 authored 10h before d-1 ships it; c-2 merged in range, never deployed.
	write(t, st,
		&event.Event{Kind: event.KindChange, ID: "e-c1", Time: t0, Change: &event.Change{ID: "c-1", Service: "checkout",
			AuthoredAt: t0.Add(-day - 10*h), MergedAt: t0.Add(-day - 2*h)}},
		&event.Event{Kind: event.KindChange, ID: "e-c2", Time: t0, Change: &event.Change{ID: "c-2", Service: "checkout",
			MergedAt: t0.Add(-2 * h)}},
		dep("d-stg-c2", "checkout", "staging", t0.Add(-h), event.DeploymentSuccess, "c-2"),
	)
	// Duplicates change nothing.
	write(t, st, dep("d-1", "checkout", "production", t0.Add(-day), event.DeploymentSuccess, "c-1"))

	q := metrics.Query{From: t0.Add(-2 * day), To: t0.Add(2 * day), By: []metrics.Dimension{metrics.Service}}
	got, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d slices, want checkout and search", len(got))
	}
	c, s := got[0], got[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"checkout deployments", c.Deployments, uint64(4)},
		{"checkout successful", c.SuccessfulDeploys, uint64(3)},
		{"checkout per day", c.DeploymentsPerDay, 3.0 / 4},
		{"checkout deployment days", c.DeploymentDays, uint64(2)},
		// d-bad rolled back; d-2 caused INC-1; the fix d-fix is the latest
		// deployment before INC-2 and INC-3, so it is blamed (once).
		{"checkout failed", c.FailedDeployments, uint64(3)},
		{"checkout CFR", *c.ChangeFailureRate, 0.75},
		{"checkout rework", *c.ReworkRate, 0.25},
		{"checkout incidents", c.Incidents, uint64(3)},
		{"checkout unresolved", c.UnresolvedIncidents, uint64(1)},
		{"checkout MTTR median", *c.MTTRMedianSeconds, 3 * 3600.0}, // 2h and 4h
		{"checkout MTTR p90", *c.MTTRP90Seconds, 3.8 * 3600},
		{"checkout MTTD median", *c.MTTDMedianSeconds, 300.0},
		{"checkout MTTR mean", *c.MTTRMeanSeconds, 3 * 3600.0},
		{"checkout MTTR from impact", *c.MTTRFromImpactMedianSeconds, 3*3600.0 + 300},
		{"checkout incidents without severity", c.IncidentsBySeverity["unknown"], uint64(3)},
		// d-bad (rolled back at -30m) recovers at d-fix (+2h): 2.5h. d-2 is
		// blamed for INC-1: impact t0 to resolved t0+5m+2h. d-fix is blamed
		// for INC-2 (impact +3h, resolved +3h5m+4h). Median of 2.5h, 2h5m, 4h5m.
		{"checkout recovery median", *c.RecoveryMedianSeconds, 2.5 * 3600},
		{"checkout unrecovered", c.Unrecovered, uint64(0)},
		{"checkout changes deployed", c.ChangesDeployed, uint64(1)},
		{"checkout changes never deployed (staging does not count)", c.ChangesNotDeployed, uint64(1)},
		{"checkout lead time", *c.LeadTimeMedianSeconds, 10 * 3600.0},
		// 2024 clusters: 0.75 deploys/day is high (≥ weekly), CFR 75% is
		// nearest low (40%), lead 10h elite, recovery 2.5h high.
		{"checkout frequency level", c.Levels["deployment_frequency"], "high"},
		{"checkout CFR level", c.Levels["change_failure_rate"], "low"},
		{"checkout lead level", c.Levels["lead_time"], "elite"},
		{"checkout recovery level", c.Levels["recovery_time"], "high"},
		{"checkout CFR level label", c.LevelLabels["change_failure_rate"], "low (worst of 4)"},
		{"checkout recovery level label", c.LevelLabels["recovery_time"], "high (2nd of 4)"},
		{"search CFR", *s.ChangeFailureRate, 0.0},
		{"search incidents", s.Incidents, uint64(0)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if _, ok := s.Levels["lead_time"]; ok {
		t.Error("search has a lead time level without a lead time")
	}
	if s.MTTRMedianSeconds != nil || s.LeadTimeMedianSeconds != nil || c.MTTAMedianSeconds != nil {
		t.Errorf("search MTTR, search lead time and checkout MTTA must be absent (no samples): %v %v %v",
			s.MTTRMedianSeconds, s.LeadTimeMedianSeconds, c.MTTAMedianSeconds)
	}
}

// TestNoData: zero deployments is zero, a rate without denominator is
// absent, and an unsliced query still has its one summary.
func TestNoData(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	got, err := metrics.Summaries(context.Background(), st.Conn(), metrics.Query{From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d summaries of an unsliced query, want 1", len(got))
	}
	s := got[0]
	if s.Deployments != 0 || s.Incidents != 0 || s.DeploymentsPerDay != 0 {
		t.Errorf("no data gave counts %+v, want zeros", s)
	}
	if s.ChangeFailureRate != nil || s.ReworkRate != nil || s.MTTRMedianSeconds != nil {
		t.Errorf("no data gave rates or durations, want them absent: %+v", s)
	}
}

// TestSlicesSumToTotals: slicing by every dimension and adding up counts
// gives the unsliced totals, on a generated stream.
func TestSlicesSumToTotals(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	var recs []*event.Event
	generatorEvents(t, func(e *event.Event) { recs = append(recs, e) })
	write(t, st, recs...)
	q := metrics.Query{From: t0.Add(-40 * 24 * time.Hour), To: t0, Production: []string{"production", "staging"}}
	total, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil || len(total) != 1 {
		t.Fatalf("total: %v, %d slices", err, len(total))
	}
	q.By = []metrics.Dimension{metrics.Service, metrics.Team, metrics.Environment}
	sliced, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	var deps, failed, incidents uint64
	for _, s := range sliced {
		deps += s.Deployments
		failed += s.FailedDeployments
		incidents += s.Incidents
		for _, r := range []*float64{s.ChangeFailureRate, s.ReworkRate} {
			if r != nil && (*r < 0 || *r > 1) {
				t.Errorf("slice %v: rate %v outside [0, 1]", s.Slice, *r)
			}
		}
		if s.MTTRMedianSeconds != nil && *s.MTTRMedianSeconds < 0 {
			t.Errorf("slice %v: negative MTTR", s.Slice)
		}
	}
	tt := total[0]
	if deps != tt.Deployments || failed != tt.FailedDeployments || incidents != tt.Incidents || tt.Deployments == 0 {
		t.Errorf("slices add up to %d/%d/%d, totals are %d/%d/%d", deps, failed, incidents, tt.Deployments, tt.FailedDeployments, tt.Incidents)
	}
}

// TestInjectionThroughFilters: filter values are bound, never spliced.
func TestInjectionThroughFilters(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	write(t, st, dep("d-1", "checkout", "production", t0, event.DeploymentSuccess))
	for _, evil := range []string{"x') OR 1=1 --", "checkout' OR '1'='1", "'; DROP TABLE deployment_events; --", `\' OR 1 --`} {
		got, err := metrics.Summaries(context.Background(), st.Conn(), metrics.Query{
			From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Services: []string{evil}, Teams: []string{evil}, Environments: []string{evil},
			Production: []string{evil, "production"}})
		if err != nil {
			t.Errorf("%q: %v", evil, err)
			continue
		}
		if len(got) != 1 || got[0].Deployments != 0 {
			t.Errorf("%q matched deployments: %+v", evil, got)
		}
	}
	if n := testenv.Count(t, st, "SELECT count() FROM deployments"); n != 1 {
		t.Errorf("deployments: %d after injection attempts, want 1", n)
	}
	if _, err := metrics.ParseDimension("service; DROP TABLE x"); err == nil {
		t.Error("ParseDimension accepted an unknown dimension")
	}
	if _, err := metrics.Summaries(context.Background(), st.Conn(), metrics.Query{From: t0, To: t0.Add(time.Hour),
		By: []metrics.Dimension{"1; DROP TABLE deployments"}}); err == nil {
		t.Error("Summaries accepted an unknown dimension")
	}
}

// TestLeadTimeLookback: a change counts in the range of its first
// production deployment only if it started within the lookback before the
// range, and a redeployment of a change already in production does not
// count it again.
func TestLeadTimeLookback(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	day := 24 * time.Hour
	change := func(id string, authored time.Time) *event.Event {
		return &event.Event{Kind: event.KindChange, ID: "e-" + id, Time: authored,
			Change: &event.Change{ID: id, Service: "api", AuthoredAt: authored}}
	}
	write(t, st,
		change("old", t0.Add(-120*day)), // 120 days before the deployment
		change("new", t0.Add(-2*day)),
		change("redeployed", t0.Add(-40*day)),
		dep("d-first", "api", "production", t0.Add(-30*day), event.DeploymentSuccess, "redeployed"),
		dep("d-1", "api", "production", t0, event.DeploymentSuccess, "old", "new", "redeployed"),
	)
	for _, c := range []struct {
		lookback time.Duration
		deployed uint64
		median   float64
	}{
		{0, 1, 2 * 86400},                       // default 90 days: "old" started too early
		{200 * day, 2, (2 + 120) * 86400 / 2.0}, // both
		{5 * day, 1, 2 * 86400},                 // "redeployed" first shipped before the range either way
	} {
		q := metrics.Query{From: t0.Add(-day), To: t0.Add(day), LeadTimeLookback: c.lookback}
		got, err := metrics.Summaries(context.Background(), st.Conn(), q)
		if err != nil {
			t.Fatal(err)
		}
		s := got[0]
		if s.ChangesDeployed != c.deployed || s.LeadTimeMedianSeconds == nil || *s.LeadTimeMedianSeconds != c.median {
			t.Errorf("lookback %v: %d changes deployed, median %v; want %d, %v", c.lookback, s.ChangesDeployed,
				s.LeadTimeMedianSeconds, c.deployed, c.median)
		}
	}
}

// TestStepsAddUpToTheRange: per-day series from one Summaries call add up
// to the whole range's counts, slice by slice.
func TestStepsAddUpToTheRange(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	var recs []*event.Event
	generatorEvents(t, func(e *event.Event) { recs = append(recs, e) })
	write(t, st, recs...)
	q := metrics.Query{From: t0.Add(-20 * 24 * time.Hour), To: t0, By: []metrics.Dimension{metrics.Team}}
	whole, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	q.Step = metrics.StepDay
	daily, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	type sums struct{ deps, failed, incidents, patches, due, changes uint64 }
	got := map[string]*sums{}
	for _, s := range daily {
		if s.Bucket == nil || !s.Bucket.Equal(s.Bucket.Truncate(24*time.Hour)) || s.Bucket.Before(q.Step.Truncate(q.From)) || !s.Bucket.Before(q.To) {
			t.Fatalf("slice %v: bucket %v is not a UTC day in range", s.Slice, s.Bucket)
		}
		g := got[s.Slice[metrics.Team]]
		if g == nil {
			g = &sums{}
			got[s.Slice[metrics.Team]] = g
		}
		g.deps += s.Deployments
		g.failed += s.FailedDeployments
		g.incidents += s.Incidents
		g.patches += s.PatchesReleased
		g.due += s.PatchesDue
		g.changes += s.ChangesDeployed
	}
	if len(whole) < 2 {
		t.Fatalf("%d teams, want several", len(whole))
	}
	for _, w := range whole {
		want := sums{w.Deployments, w.FailedDeployments, w.Incidents, w.PatchesReleased, w.PatchesDue, w.ChangesDeployed}
		if g := got[w.Slice[metrics.Team]]; g == nil || *g != want {
			t.Errorf("team %s: days add up to %+v, the range has %+v", w.Slice[metrics.Team], g, want)
		}
	}
}
