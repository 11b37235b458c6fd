package anomaly_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestFactorsOfCountsAndDurations injects one cause per team into four
// weeks of ordinary history and explains the anomalous day of each team's
// series as Detect would (anomaly.Explain on the real ClickHouse): the
// injected value comes first, and nothing else is named.
//
//   - alpha's pipeline deploy-eu, half of its deployments, stops: its
//     deployments are low;
//   - beta's release bot deploys 30 times: its deployments are high;
//   - gamma has eight critical incidents: its incidents are high;
//   - delta's service h takes 12 h to resolve what g resolves in 40 to
//     85 min: its MTTR is high against a baseline median of 1 h.
func TestFactorsOfCountsAndDurations(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	var recs []store.Record
	n := 0
	deploy := func(service, team, actor, pipeline string, at time.Time) {
		n++
		id := fmt.Sprintf("d-%d", n)
		recs = append(recs, store.Record{Topic: "t", Offset: int64(n), Event: &event.Event{Kind: event.KindDeployment, ID: "e-" + id, Time: at,
			Deployment: &event.Deployment{ID: id, Service: service, Team: team, Environment: "production", FinishedAt: at,
				Status: event.DeploymentSuccess, Actor: actor, Pipeline: pipeline, Version: id}}})
	}
	incident := func(service, team string, sev event.Severity, at time.Time, took time.Duration) {
		n++
		id := fmt.Sprintf("INC-%d", n)
		recs = append(recs, store.Record{Topic: "t", Offset: int64(n), Event: &event.Event{Kind: event.KindIncident, ID: "e-" + id, Time: at,
			Incident: &event.Incident{ID: id, Service: service, Team: team, Environment: "production", Severity: sev,
				DetectionSource: event.DetectedByMonitoring, ImpactStartedAt: at, DetectedAt: at.Add(5 * time.Minute),
				ResolvedAt: at.Add(5*time.Minute + took)}}})
	}
	pipelines := []string{"deploy-eu", "deploy-us"}
	for d := anomalyDay.Add(-28 * day); !d.After(anomalyDay); d = d.Add(day) {
		today := d.Equal(anomalyDay)
		for i := range 10 {
			at := d.Add(time.Duration(8+i) * time.Hour)
			for _, svc := range []string{"a", "b"} {
				if p := pipelines[i%2]; !today || p != "deploy-eu" {
					deploy(svc, "alpha", fmt.Sprintf("dev-%d", i%3), p, at)
				}
			}
			if i < 5 {
				for _, svc := range []string{"c", "d"} {
					deploy(svc, "beta", fmt.Sprintf("dev-%d", i%3), "deploy-us", at)
				}
			}
		}
		sev := []event.Severity{event.SeverityLow, event.SeverityMedium}[d.YearDay()%2]
		incident([]string{"e", "f"}[d.YearDay()%2], "gamma", sev, d.Add(10*time.Hour), time.Hour)
	}
	for i := range 30 {
		deploy("d", "beta", "release-bot", "deploy-us", anomalyDay.Add(time.Duration(i)*20*time.Minute))
	}
	for i := range 8 {
		incident([]string{"e", "f"}[i%2], "gamma", event.SeverityCritical, anomalyDay.Add(time.Duration(i+1)*time.Hour), time.Hour)
	}
	for i := range 20 { // g as usual, half of them beyond the median of 1 h
		at := anomalyDay.Add(time.Duration(i) * time.Hour)
		sev := []event.Severity{event.SeverityLow, event.SeverityHigh}[i%2]
		incident("g", "delta", sev, at, time.Duration(40+(i/2)*5)*time.Minute)
		incident("h", "delta", sev, at, 12*time.Hour)
	}
	if err := st.Write(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}

	checkExplained(t, st, []explainCase{
		{"deployments", "alpha", "down", 20, "pipeline deploy-eu",
			"10 deployments against 20 expected: pipeline deploy-eu had 0 against 10 expected."},
		{"deployments", "beta", "up", 10, "actor release-bot",
			"30 of the 40 deployments were by actor release-bot, where 0.0 were expected."},
		{"incidents", "gamma", "up", 1, "severity critical",
			"8 of the 9 incidents were of severity critical, where 0.0 were expected."},
		{"mttr", "delta", "up", 3600, "service h",
			"20 of the 30 incidents resolved in more than 1.0 h were on service h, which had 20 incidents in total."},
	})
}

// TestFactorsOfLeadTimeAndPatches injects one cause per team into the
// anomalous day and explains each team's series as Detect would
// (anomaly.Explain on the real ClickHouse): the injected value comes
// first, and nothing else is named.
//
//   - eng's changes shipped by actor new-hire took three days to reach
//     production, dev's 30 to 70 min, both through the same pipelines
//     and services: its lead time is high against a baseline median of
//     2 h, and the actor, found through the deployment that shipped each
//     change, explains it;
//   - ops's host-7 was patched 120 days after each release, its other
//     hosts within the hour, with the same severities: its patch
//     compliance is low;
//   - sec's image-a took ten days to patch, its other images an hour:
//     its patch latency is high against a baseline median of a day; and
//     image-a, never patched in the four weeks before, when images b
//     and c had one patch each a day, explains sec's patch count.
func TestFactorsOfLeadTimeAndPatches(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	var recs []store.Record
	n := 0
	add := func(e *event.Event) {
		n++
		e.ID = fmt.Sprintf("e-%d", n)
		recs = append(recs, store.Record{Topic: "t", Offset: int64(n), Event: e})
	}
	for i := range 30 {
		actor, lead := "dev", time.Duration(30+(i%10)*5)*time.Minute
		if i%2 == 1 {
			actor, lead = "new-hire", 72*time.Hour
		}
		svc := []string{"api", "web"}[(i/2)%2]
		at := anomalyDay.Add(time.Duration(i)*20*time.Minute + 4*time.Hour)
		id := fmt.Sprintf("c-%d", i)
		add(&event.Event{Kind: event.KindChange, Time: at.Add(-lead), Change: &event.Change{ID: id, Service: svc, Team: "eng",
			AuthoredAt: at.Add(-lead)}})
		add(&event.Event{Kind: event.KindDeployment, Time: at, Deployment: &event.Deployment{ID: "d-" + id, Service: svc, Team: "eng",
			Environment: "production", FinishedAt: at, Status: event.DeploymentSuccess, Actor: actor,
			Pipeline: []string{"ci", "manual"}[(i/4)%2], Changes: []string{id}}})
	}
	sevs := []event.Severity{event.SeverityHigh, event.SeverityLow}
	patchAt := func(released time.Time, team, target string, sev event.Severity, took time.Duration) {
		add(&event.Event{Kind: event.KindPatch, Time: released.Add(took), Patch: &event.Patch{ID: fmt.Sprintf("CVE-%d", n),
			Target: target, Service: team + "-svc", Team: team, Environment: "production", Severity: sev,
			ReleasedAt: released, AppliedAt: released.Add(took), Outcome: event.PatchApplied}})
	}
	patch := func(team, target string, i int, sev event.Severity, took time.Duration) {
		patchAt(anomalyDay.Add(time.Duration(i)*30*time.Minute), team, target, sev, took)
	}
	for d := anomalyDay.Add(-28 * day); d.Before(anomalyDay); d = d.Add(day) {
		for i, target := range []string{"image-b", "image-c"} {
			patchAt(d.Add(10*time.Hour), "sec", target, sevs[(d.YearDay()+i)%2], time.Hour)
		}
	}
	for i := range 8 {
		patch("ops", "host-7", i, sevs[i%2], 120*day)
	}
	for i := range 16 {
		patch("ops", fmt.Sprintf("host-%d", 1+i%4), i, sevs[(i/4)%2], 30*time.Minute)
	}
	for i := range 28 {
		target, took := "image-a", 10*day
		if i%2 == 1 {
			target, took = []string{"image-b", "image-c"}[(i/2)%2], time.Hour
		}
		patch("sec", target, i, sevs[(i/4)%2], took)
	}
	if err := st.Write(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}

	checkExplained(t, st, []explainCase{
		{"lead_time", "eng", "up", 7200, "actor new-hire",
			"15 of the 15 changes that took more than 2.0 h to reach production were by actor new-hire, who made 15 changes in total."},
		{"patch_compliance", "ops", "down", 0.95, "target host-7",
			"8 of the 8 patches applied late were on target host-7, which had 8 patches due in total."},
		{"patch_latency", "sec", "up", 86400, "target image-a",
			"14 of the 14 patches applied in more than 24.0 h were on target image-a, which had 14 patches in total."},
		{"patches", "sec", "up", 2, "target image-a",
			"14 of the 28 patch advisories were on target image-a, where 0.0 were expected."},
	})
}

// explainCase is an anomaly on the injected day of one team's series and
// the one factor, and summary, that explain it.
type explainCase struct {
	kpi, team, dir string
	expected       float64
	first, summary string
}

// checkExplained explains each case's anomaly from the rows of st and
// wants its factor alone, first, with its summary.
func checkExplained(t *testing.T, st *store.Store, cases []explainCase) {
	t.Helper()
	ctx := context.Background()
	for _, c := range cases {
		iv := &anomaly.Interval{Start: anomalyDay, End: anomalyDay.Add(day), Score: baselines.Score{Test: "interval", Intervals: 1,
			Expected: c.expected, Direction: c.dir, Anomaly: true}}
		e := anomaly.Evaluation{Series: baselines.Series{KPI: c.kpi, Step: metrics.StepDay, Team: c.team}, Firing: true, Latest: iv}
		f, err := anomaly.Explain(ctx, st.Conn(), e, nil)
		if err != nil {
			t.Fatalf("%s %s: %v", c.kpi, c.team, err)
		}
		if f == nil || len(f.Factors) == 0 {
			t.Errorf("%s %s %s: no factor: %+v", c.kpi, c.team, c.dir, f)
			continue
		}
		if got := f.Factors[0].Dimension + " " + f.Factors[0].Value; got != c.first || len(f.Factors) != 1 {
			t.Errorf("%s %s %s: factors %+v, want %s alone", c.kpi, c.team, c.dir, f.Factors, c.first)
		}
		if f.Summary != c.summary {
			t.Errorf("%s %s: summary\n %q\nwant %q", c.kpi, c.team, f.Summary, c.summary)
		}
	}
}
