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

	for _, c := range []struct {
		kpi, team, dir string
		expected       float64
		first, summary string
	}{
		{"deployments", "alpha", "down", 20, "pipeline deploy-eu",
			"10 deployments against 20 expected: pipeline deploy-eu had 0 against 10 expected."},
		{"deployments", "beta", "up", 10, "actor release-bot",
			"30 of the 40 deployments were by actor release-bot, where 0.0 were expected."},
		{"incidents", "gamma", "up", 1, "severity critical",
			"8 of the 9 incidents were of severity critical, where 0.0 were expected."},
		{"mttr", "delta", "up", 3600, "service h",
			"20 of the 30 incidents resolved in more than 1.0 h were on service h, which had 20 incidents in total."},
	} {
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
