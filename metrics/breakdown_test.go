package metrics_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// actorMigration is the migration the breakdown assumes: deployments
// carry who or what triggered them, and the pipeline (docs/alerting.md
// proposes it with the view it changes).
const actorMigration = `ALTER TABLE deployment_events ADD COLUMN actor String AFTER fixes_incident, ADD COLUMN pipeline String AFTER actor`

// rawDeployment is one message about a deployment, written to
// deployment_events with the assumed columns.
type rawDeployment struct {
	eventID, id, service, team, env, status, version, actor, pipeline string
	eventTime, finished                                               time.Time
	unplanned                                                         bool
}

func insertDeployments(t *testing.T, st *store.Store, ds []rawDeployment) {
	t.Helper()
	ctx := context.Background()
	if err := st.Conn().Exec(ctx, actorMigration); err != nil {
		t.Fatalf("the proposed migration: %v", err)
	}
	b, err := st.Conn().PrepareBatch(ctx, `INSERT INTO deployment_events (event_id, event_time, encoding, deployment_id, service, team,
		environment, started_at, finished_at, status, version, artifact, unplanned, fixes_incident, actor, pipeline, changes,
		source_topic, source_partition, source_offset, ingested_at)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		u := uint8(0)
		if d.unplanned {
			u = 1
		}
		if err := b.Append(d.eventID, d.eventTime, "native", d.id, d.service, d.team, d.env, d.finished.Add(-10*time.Minute), d.finished,
			d.status, d.version, "", u, "", d.actor, d.pipeline, []string{}, "t", int32(0), int64(i), time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

var breakdownDay = time.Date(2026, 5, 12, 0, 0, 0, 0, time.UTC)

// TestDeploymentBreakdown checks the breakdown's rows against the
// deployments written, folded by hand (the latest message wins), and its
// totals against Summaries over the same range.
func TestDeploymentBreakdown(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	r := rand.New(rand.NewPCG(16, 5))
	var msgs []rawDeployment
	type want struct {
		vals                           []string
		deployments, failed, unplanned uint64
	}
	latest := map[string]rawDeployment{}
	for i := range 240 {
		s := r.IntN(6)
		d := rawDeployment{eventID: fmt.Sprintf("e-%d", i), id: fmt.Sprintf("d-%d", i), service: fmt.Sprintf("svc-%d", s),
			team: fmt.Sprintf("team-%d", s%3), env: []string{"production", "production", "production", "staging"}[r.IntN(4)],
			status: "success", version: fmt.Sprintf("2.%d.0", r.IntN(4)), actor: []string{"ana", "bo", "ci-bot", "dee", ""}[r.IntN(5)],
			pipeline: []string{"build-main", "hotfix", "nightly"}[r.IntN(3)], unplanned: r.IntN(10) == 0,
			finished: breakdownDay.Add(time.Duration(r.IntN(36*60)-6*60) * time.Minute)}
		switch r.IntN(12) {
		case 0:
			d.status = "failure"
		case 1:
			d.status = "rolled_back"
		}
		d.eventTime = d.finished
		if r.IntN(5) == 0 { // an earlier message, with another status and actor, that the later one replaces
			early := d
			early.eventID, early.eventTime, early.status, early.actor = d.eventID+"-early", d.finished.Add(-time.Minute), "failure", "someone-else"
			msgs = append(msgs, early)
		}
		msgs = append(msgs, d)
		latest[d.id] = d
	}
	insertDeployments(t, st, msgs)
	// Incidents naming their cause blame successful production deployments.
	blamed := map[string]bool{}
	var incidents []*event.Event
	for i := range 240 {
		d := latest[fmt.Sprintf("d-%d", i)]
		if d.status == "success" && d.env == "production" && !d.finished.Before(breakdownDay) &&
			d.finished.Before(breakdownDay.Add(24*time.Hour)) && len(blamed) < 12 {
			blamed[d.id] = true
			incidents = append(incidents, inc("INC-"+d.id, d.service, "production", d.finished.Add(time.Hour), d.id, ""))
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
		if d.env != "production" || d.finished.Before(q.From) || !d.finished.Before(q.To) {
			continue
		}
		vals := []string{d.service, d.team, d.version, d.actor, d.pipeline}
		k := strings.Join(vals, "|")
		if exp[k] == nil {
			exp[k] = &want{vals: vals}
		}
		exp[k].deployments++
		if d.status != "success" || blamed[d.id] {
			exp[k].failed++
		}
		if d.unplanned {
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

// TestBreakdownExplainsAFailureBurst runs the chain an alert will run: a
// day in which a new hire's deployments fail, read back by
// DeploymentBreakdown, explained by anomaly.ContributingFactors.
func TestBreakdownExplainsAFailureBurst(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	r := rand.New(rand.NewPCG(16, 7))
	var ds []rawDeployment
	for i := range 100 {
		s := r.IntN(8)
		d := rawDeployment{eventID: fmt.Sprintf("e-%d", i), id: fmt.Sprintf("d-%d", i), service: fmt.Sprintf("svc-%d", s),
			team: fmt.Sprintf("team-%d", s%4), env: "production", status: "success", version: fmt.Sprintf("5.%d.0", r.IntN(3)),
			actor: fmt.Sprintf("dev-%d", r.IntN(6)), pipeline: "main", finished: breakdownDay.Add(time.Duration(r.IntN(24*60)) * time.Minute)}
		if i < 8 {
			d.actor = "new-hire"
			if i < 7 {
				d.status = "failure"
			}
		} else if i == 40 || i == 41 {
			d.status = "failure"
		}
		d.eventTime = d.finished
		ds = append(ds, d)
	}
	insertDeployments(t, st, ds)
	rows, err := metrics.DeploymentBreakdown(context.Background(), st.Conn(), metrics.Query{From: breakdownDay, To: breakdownDay.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	in := anomaly.FactorInput{Kind: baselines.Rate, Direction: "up", Expected: 0.03, Dimensions: metrics.DeploymentDimensions,
		Words: anomaly.FactorWordsFor("change_failure_rate", "up", 0)}
	for _, row := range rows {
		in.Rows = append(in.Rows, anomaly.FactorRow{Values: row.Values, Num: float64(row.Failed), Den: float64(row.Deployments)})
	}
	f := anomaly.ContributingFactors(in, anomaly.FactorOptions{})
	if want := "7 of the 9 failed deployments were by actor new-hire, who made 8 deployments in total."; f.Summary != want {
		t.Errorf("summary %q\nwant    %q", f.Summary, want)
	}
	dims := make([]string, len(f.Dimensions))
	for i, d := range f.Dimensions {
		dims[i] = d.Dimension
	}
	if !reflect.DeepEqual(dims, metrics.DeploymentDimensions) {
		t.Errorf("dimensions %v", dims)
	}
}
