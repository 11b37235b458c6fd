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

// TestLeadTimeBreakdown checks the lead-time rows (the actor and pipeline
// of the first successful production deployment of each change, the lead
// times beyond six hours) against the changes written, and their samples
// against Summaries' lead time.
func TestLeadTimeBreakdown(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	r := rand.New(rand.NewPCG(16, 7))
	from, to := breakdownDay, breakdownDay.Add(24*time.Hour)
	type want struct{ samples, beyond uint64 }
	exp := map[string]*want{}
	var events []*event.Event
	for i := range 240 {
		s := r.IntN(4)
		id := fmt.Sprintf("c-%d", i)
		authored := breakdownDay.Add(time.Duration(r.IntN(40*60)-30*60) * time.Minute)
		events = append(events, &event.Event{Kind: event.KindChange, ID: "e-" + id, Time: authored, Change: &event.Change{ID: id,
			Service: fmt.Sprintf("svc-%d", s), Team: fmt.Sprintf("team-%d", s%2), AuthoredAt: authored}})
		// Up to three deployments ship it: staging, a failed one, and
		// successful production ones; the first of these counts.
		var first *event.Deployment
		for j := range r.IntN(4) {
			d := &event.Deployment{ID: fmt.Sprintf("d-%d-%d", i, j), Service: fmt.Sprintf("svc-%d", s), Team: fmt.Sprintf("team-%d", s%2),
				Environment: []string{"production", "production", "staging"}[r.IntN(3)], Status: event.DeploymentSuccess,
				FinishedAt: authored.Add(time.Duration(r.IntN(16*60)) * time.Minute), Changes: []string{id},
				Actor: []string{"ana", "bo", "ci-bot"}[r.IntN(3)], Pipeline: []string{"main", "hotfix"}[r.IntN(2)]}
			if r.IntN(6) == 0 {
				d.Status = event.DeploymentFailure
			}
			events = append(events, &event.Event{Kind: event.KindDeployment, ID: "e-" + d.ID, Time: d.FinishedAt, Deployment: d})
			if d.Environment == "production" && d.Status == event.DeploymentSuccess && (first == nil || d.FinishedAt.Before(first.FinishedAt)) {
				first = d
			}
		}
		if first == nil || first.FinishedAt.Before(from) || !first.FinishedAt.Before(to) {
			continue
		}
		k := strings.Join([]string{fmt.Sprintf("svc-%d", s), fmt.Sprintf("team-%d", s%2), first.Actor, first.Pipeline}, "|")
		if exp[k] == nil {
			exp[k] = &want{}
		}
		exp[k].samples++
		if first.FinishedAt.Sub(authored) > 6*time.Hour {
			exp[k].beyond++
		}
	}
	write(t, st, events...)
	q := metrics.Query{From: from, To: to}
	rows, err := metrics.LeadTimeBreakdown(context.Background(), st.Conn(), q, 6*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	var samples, beyond uint64
	for _, row := range rows {
		k := strings.Join(row.Values, "|")
		if w := exp[k]; w == nil || *w != (want{row.Samples, row.Beyond}) {
			t.Errorf("row %s: %+v, want %+v", k, row, w)
		}
		delete(exp, k)
		samples, beyond = samples+row.Samples, beyond+row.Beyond
	}
	for k := range exp {
		t.Errorf("row %s missing", k)
	}
	sums, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	if s := sums[0]; int(samples) != s.Samples["lead_time"] {
		t.Errorf("%d lead-time samples; Summaries has %d", samples, s.Samples["lead_time"])
	}
	if samples < 40 || beyond < 10 || beyond > samples-10 {
		t.Errorf("%d samples, %d beyond: the fixture tests little", samples, beyond)
	}
}

// TestPatchBreakdown checks the patch rows' totals (released, due,
// compliant, applied) against Summaries' patch figures over the same
// range, which judge by the same deadlines, and the latencies beyond two
// days against the patches written.
func TestPatchBreakdown(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	r := rand.New(rand.NewPCG(16, 8))
	from, to := breakdownDay, breakdownDay.Add(24*time.Hour)
	var events []*event.Event
	wantBeyond := map[string]uint64{}
	for i := range 160 {
		released := breakdownDay.Add(time.Duration(r.IntN(30*60)-3*60) * time.Minute)
		p := &event.Patch{ID: fmt.Sprintf("CVE-%d", i), Target: fmt.Sprintf("host-%d", r.IntN(6)), Service: fmt.Sprintf("svc-%d", r.IntN(3)),
			Environment: []string{"production", "production", "staging"}[r.IntN(3)],
			Severity:    []event.Severity{"critical", "high", "medium", "low", ""}[r.IntN(5)], ReleasedAt: released}
		p.Team = "team-" + p.Service[4:]
		took := time.Duration(r.IntN(20*24)) * time.Hour
		switch r.IntN(5) {
		case 0: // open
		case 1:
			p.Outcome = event.PatchFailed
		default:
			p.Outcome, p.AppliedAt = event.PatchApplied, released.Add(took)
		}
		events = append(events, &event.Event{Kind: event.KindPatch, ID: fmt.Sprintf("e-%d", i), Time: released, Patch: p})
		sev := string(p.Severity)
		if sev == "" {
			sev = "unknown"
		}
		if p.Environment == "production" && !released.Before(from) && released.Before(to) && p.Outcome == event.PatchApplied && took > 48*time.Hour {
			wantBeyond[strings.Join([]string{p.Service, p.Team, p.Environment, p.Target, sev}, "|")]++
		}
	}
	write(t, st, events...)
	q := metrics.Query{From: from, To: to}
	rows, err := metrics.PatchBreakdown(context.Background(), st.Conn(), q, 48*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	var got metrics.PatchRow
	for _, row := range rows {
		k := strings.Join(row.Values, "|")
		if row.Beyond != wantBeyond[k] {
			t.Errorf("row %s: %d beyond two days, want %d", k, row.Beyond, wantBeyond[k])
		}
		delete(wantBeyond, k)
		got.Released, got.Due, got.Compliant, got.Applied = got.Released+row.Released, got.Due+row.Due, got.Compliant+row.Compliant, got.Applied+row.Applied
	}
	for k := range wantBeyond {
		t.Errorf("row %s missing", k)
	}
	sums, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	s := sums[0]
	if got.Released != s.PatchesReleased || got.Due != s.PatchesDue || got.Compliant != s.PatchesCompliant || int(got.Applied) != s.Samples["patch_latency"] {
		t.Errorf("totals %+v; Summaries has %d released, %d due, %d compliant, %d latencies", got, s.PatchesReleased, s.PatchesDue,
			s.PatchesCompliant, s.Samples["patch_latency"])
	}
	if got.Due < 30 || got.Compliant == 0 || got.Compliant == got.Due {
		t.Errorf("totals %+v: the fixture tests little", got)
	}
}
