package anomaly_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// TestAlertNamesTheActor: eight ordinary weeks, then a Monday on which
// search fails 8 of its 20 deployments, 7 of them by a new hire who made 8
// of the 20 (the others by four people, through the pipeline they all
// use). The change failure rate alert that reaches the real Alertmanager
// names the new hire in its factors annotation and its description, and
// the recorded anomaly holds the same words; the actor and pipeline went
// through the store's own writer.
func TestAlertNamesTheActor(t *testing.T) {
	ctx := context.Background()
	h := &history{r: rand.New(rand.NewPCG(1, 1))}
	for d := start; d.Before(anomalyDay); d = d.Add(day) {
		h.ordinary(d)
	}
	for i := range 20 {
		at := anomalyDay.Add(time.Duration(i)*time.Hour + 30*time.Minute)
		actor, status := fmt.Sprintf("dev-%d", i%4), event.DeploymentSuccess
		if i%5 == 2 || i%5 == 4 { // 8 of the 20
			actor = "new-hire"
		}
		if actor == "new-hire" && i != 19 || i == 0 { // 7 of the new hire's, and one other
			status = event.DeploymentFailure
		}
		h.n++
		id := fmt.Sprintf("search-%d", h.n)
		h.recs = append(h.recs, store.Record{Topic: "t", Offset: int64(h.n), Event: &event.Event{Kind: event.KindDeployment,
			ID: "e-" + id, Time: at, Deployment: &event.Deployment{ID: id, Service: "search", Team: "discovery", Environment: "production",
				StartedAt: at.Add(-10 * time.Minute), FinishedAt: at, Status: status, Actor: actor, Pipeline: "deploy-prod"}}})
	}
	st, log := learnDays(t, h)
	ev, err := anomaly.Evaluate(ctx, st.Conn(), anomaly.Config{Steps: []metrics.Step{metrics.StepDay}}, nil, anomaly.DefaultAlertingConfig().AlertConfig,
		anomalyDay.Add(day+time.Hour), log)
	if err != nil {
		t.Fatal(err)
	}
	var cfr *anomaly.Alert
	for i, a := range ev.Fire {
		if a.Labels["kpi"] == "change_failure_rate" && a.Labels["service"] == "search" {
			cfr = &ev.Fire[i]
		}
	}
	if cfr == nil {
		t.Fatalf("search's change failure rate does not fire; firing: %d alerts", len(ev.Fire))
	}
	want := "7 of the 8 failed deployments were by actor new-hire, who made 8 deployments in total."
	if got := cfr.Annotations["factors"]; got != want {
		t.Errorf("factors %q\nwant    %q", got, want)
	}

	if got := testenv.Rows(t, st, `SELECT factors FROM anomalies FINAL WHERE kpi = 'change_failure_rate' AND service = 'search'
		AND step = 'day' AND interval_start = ? AND firing = 1`, anomalyDay); len(got) != 1 || got[0] != want {
		t.Errorf("the recorded anomaly's factors: %q", got)
	}
	recs, err := anomaly.Records(ctx, st.Conn(), anomalyDay, anomalyDay.Add(day))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Series.KPI != "change_failure_rate" || r.Series.Service != "search" || r.Series.Step != metrics.StepDay || !r.Firing {
			continue
		}
		found = true
		if len(r.FactorList) != 1 {
			t.Fatalf("the recorded anomaly's factor list: %+v, want the new hire's alone", r.FactorList)
		}
		if got := r.FactorList[0]; got.Dimension != "actor" || got.Value != "new-hire" || got.Observed != 7 || got.Trials != 8 || got.Of != 8 ||
			got.Share <= 0.3 || got.Excess <= 0 {
			t.Errorf("the recorded factor %+v, want actor new-hire, 7 of 8 failed deployments, of 8", got)
		}
	}
	if !found {
		t.Error("no firing anomaly of search's change failure rate recorded")
	}
	// The factors listed in SQL, as docs/schema.md lists them.
	if got := testenv.Rows(t, st, `SELECT d, v FROM anomalies FINAL ARRAY JOIN factor_dimensions AS d, factor_values AS v
		WHERE firing = 1 AND kpi = 'change_failure_rate' AND service = 'search' AND step = 'day'`); len(got) != 1 || got[0] != "actor | new-hire" {
		t.Errorf("the factors by ARRAY JOIN: %q, want actor new-hire", got)
	}
	am := deliver(t, log, *cfr)
	testenv.Eventually(t, 20*time.Second, "the alert with its factors in Alertmanager", func() (bool, string) {
		alerts, err := am.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["service"] == "search" && a.Annotations["factors"] == want && strings.HasSuffix(a.Annotations["description"], want) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d alerts: %v", len(alerts), alerts)
	})
}
