package metrics_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

var breakdownDay = time.Date(2026, 5, 12, 0, 0, 0, 0, time.UTC)

// TestDeploymentBreakdown checks the breakdown's rows against the
// deployments written, folded by hand (the latest message wins), and its
// totals against Summaries over the same range.
func TestDeploymentBreakdown(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	r := rand.New(rand.NewPCG(16, 5))
	var msgs []testenv.RawDeployment
	type want struct {
		vals                           []string
		deployments, failed, unplanned uint64
	}
	latest := map[string]testenv.RawDeployment{}
	for i := range 240 {
		s := r.IntN(6)
		d := testenv.RawDeployment{EventID: fmt.Sprintf("e-%d", i), ID: fmt.Sprintf("d-%d", i), Service: fmt.Sprintf("svc-%d", s),
			Team: fmt.Sprintf("team-%d", s%3), Env: []string{"production", "production", "production", "staging"}[r.IntN(4)],
			Status: "success", Version: fmt.Sprintf("2.%d.0", r.IntN(4)), Actor: []string{"ana", "bo", "ci-bot", "dee", ""}[r.IntN(5)],
			Pipeline: []string{"build-main", "hotfix", "nightly"}[r.IntN(3)], Unplanned: r.IntN(10) == 0,
			Finished: breakdownDay.Add(time.Duration(r.IntN(36*60)-6*60) * time.Minute)}
		switch r.IntN(12) {
		case 0:
			d.Status = "failure"
		case 1:
			d.Status = "rolled_back"
		}
		d.EventTime = d.Finished
		if r.IntN(5) == 0 { // an earlier message, with another status and actor, that the later one replaces
			early := d
			early.EventID, early.EventTime, early.Status, early.Actor = d.EventID+"-early", d.Finished.Add(-time.Minute), "failure", "someone-else"
			msgs = append(msgs, early)
		}
		msgs = append(msgs, d)
		latest[d.ID] = d
	}
	testenv.InsertRawDeployments(t, st, msgs)
	// Incidents naming their cause blame successful production deployments.
	blamed := map[string]bool{}
	var incidents []*event.Event
	for i := range 240 {
		d := latest[fmt.Sprintf("d-%d", i)]
		if d.Status == "success" && d.Env == "production" && !d.Finished.Before(breakdownDay) &&
			d.Finished.Before(breakdownDay.Add(24*time.Hour)) && len(blamed) < 12 {
			blamed[d.ID] = true
			incidents = append(incidents, inc("INC-"+d.ID, d.Service, "production", d.Finished.Add(time.Hour), d.ID, ""))
		}
	}
	write(t, st, incidents...)

	q := metrics.Query{From: breakdownDay, To: breakdownDay.Add(24 * time.Hour)}
	rows, err := metrics.DeploymentBreakdown(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	exp := map[string]*want{}
	for _, d := range latest {
		if d.Env != "production" || d.Finished.Before(q.From) || !d.Finished.Before(q.To) {
			continue
		}
		vals := []string{d.Service, d.Team, d.Version, d.Actor, d.Pipeline}
		k := strings.Join(vals, "|")
		if exp[k] == nil {
			exp[k] = &want{vals: vals}
		}
		exp[k].deployments++
		if d.Status != "success" || blamed[d.ID] {
			exp[k].failed++
		}
		if d.Unplanned {
			exp[k].unplanned++
		}
	}
	var total, failed, unplanned uint64
	for _, row := range rows {
		k := strings.Join(row.Values, "|")
		w := exp[k]
		if w == nil || row.Deployments != w.deployments || row.Failed != w.failed || row.Unplanned != w.unplanned {
			t.Errorf("row %s: %d deployments, %d failed, %d unplanned; want %+v", k, row.Deployments, row.Failed, row.Unplanned, w)
		}
		delete(exp, k)
		total, failed, unplanned = total+row.Deployments, failed+row.Failed, unplanned+row.Unplanned
	}
	for k := range exp {
		t.Errorf("row %s missing", k)
	}
	sums, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	if s := sums[0]; total != s.Deployments || failed != s.FailedDeployments || unplanned != s.ReworkDeployments {
		t.Errorf("totals %d deployments, %d failed, %d unplanned; Summaries has %d, %d, %d",
			total, failed, unplanned, s.Deployments, s.FailedDeployments, s.ReworkDeployments)
	}
	if failed < 25 || len(blamed) < 12 || len(rows) < 50 {
		t.Errorf("only %d failures (%d blamed) in %d rows: the fixture tests little", failed, len(blamed), len(rows))
	}
	t.Logf("%d deployments, %d failed (%d blamed), %d unplanned, in %d rows", total, failed, len(blamed), unplanned, len(rows))

	// A slice: one service's rows only.
	q.Services = []string{"svc-2"}
	rows, err = metrics.DeploymentBreakdown(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if row.Values[0] != "svc-2" {
			t.Errorf("slice of svc-2 has a row of %s", row.Values[0])
		}
	}
}

// TestIncidentBreakdown checks the incidents' rows, with the MTTR samples
// beyond four hours, against the incidents written and against Summaries.
func TestIncidentBreakdown(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	r := rand.New(rand.NewPCG(16, 6))
	type want struct{ incidents, samples, beyond uint64 }
	exp := map[string]*want{}
	from, to := breakdownDay, breakdownDay.Add(24*time.Hour)
	var events []*event.Event
	for i := range 120 {
		s := r.IntN(5)
		impact := breakdownDay.Add(time.Duration(r.IntN(30*60)-3*60) * time.Minute)
		e := inc(fmt.Sprintf("INC-%d", i), fmt.Sprintf("svc-%d", s), []string{"production", "production", "staging"}[r.IntN(3)], impact, "", "")
		e.Incident.Team = fmt.Sprintf("team-%d", s%2)
		e.Incident.Severity = []event.Severity{"critical", "high", "low", ""}[r.IntN(4)]
		e.Incident.DetectionSource = []event.DetectionSource{"monitoring", "customer", ""}[r.IntN(3)]
		e.Incident.DetectedAt = impact.Add(time.Duration(1+r.IntN(60)) * time.Minute)
		if r.IntN(6) == 0 { // only a detection time: the incident starts at it
			e.Incident.ImpactStartedAt = time.Time{}
			impact = e.Incident.DetectedAt
		}
		var mttr time.Duration
		if r.IntN(10) < 7 {
			mttr = time.Duration(10+r.IntN(600)) * time.Minute
			e.Incident.ResolvedAt = e.Incident.DetectedAt.Add(mttr)
		}
		events = append(events, e)
		if e.Incident.Environment != "production" || impact.Before(from) || !impact.Before(to) {
			continue
		}
		sev := string(e.Incident.Severity)
		if sev == "" {
			sev = "unknown"
		}
		k := strings.Join([]string{e.Incident.Service, e.Incident.Team, sev, string(e.Incident.DetectionSource)}, "|")
		if exp[k] == nil {
			exp[k] = &want{}
		}
		exp[k].incidents++
		if mttr > 0 {
			exp[k].samples++
			if mttr > 4*time.Hour {
				exp[k].beyond++
			}
		}
	}
	write(t, st, events...)
	q := metrics.Query{From: from, To: to}
	rows, err := metrics.IncidentBreakdown(context.Background(), st.Conn(), q, metrics.IncidentDuration{KPI: "mttr", Threshold: 4 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var total, samples uint64
	for _, row := range rows {
		k := strings.Join(row.Values, "|")
		if w := exp[k]; w == nil || *w != (want{row.Incidents, row.Samples, row.Beyond}) {
			t.Errorf("row %s: %+v, want %+v", k, row, w)
		}
		delete(exp, k)
		total, samples = total+row.Incidents, samples+row.Samples
	}
	for k := range exp {
		t.Errorf("row %s missing", k)
	}
	sums, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	if s := sums[0]; total != s.Incidents || int(samples) != s.Samples["mttr"] {
		t.Errorf("totals %d incidents, %d MTTR samples; Summaries has %d, %d", total, samples, s.Incidents, s.Samples["mttr"])
	}
	if _, _, err := metrics.IncidentBreakdownSQL(q, metrics.IncidentDuration{KPI: "lead_time"}); err == nil {
		t.Error("an unknown duration gave no error")
	}
}
