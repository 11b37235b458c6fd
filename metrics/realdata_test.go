package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// The cases of real CI and Git data that clean generated data never has,
// each sent through the real decoder as a CI or Git tool would send it
// (native JSON written by hand), stored in the real ClickHouse and measured.

// ingestJSON decodes each line with dec, as the ingester does, and stores
// the events.
func ingestJSON(t *testing.T, st *store.Store, dec *event.Decoder, lines ...string) {
	t.Helper()
	var recs []store.Record
	for i, l := range lines {
		e, err := dec.Decode(event.Message{Value: []byte(l)})
		if err != nil {
			t.Fatalf("line %d: %v\n%s", i+1, err, l)
		}
		recs = append(recs, store.Record{Event: e, Topic: "t", Offset: int64(i)})
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
}

func at(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// summary is the one summary of q over all slices.
func summary(t *testing.T, st *store.Store, q metrics.Query) *metrics.Summary {
	t.Helper()
	sums, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 {
		t.Fatalf("%d summaries, want 1", len(sums))
	}
	return sums[0]
}

func secs(p *float64) string {
	if p == nil {
		return "absent"
	}
	return (time.Duration(*p) * time.Second).String()
}

// TestLeadTimeOfSkewedAndBranchDeployedChanges: a commit authored after its
// merge (a rebase, a skewed clock) is stored and measured from its merge;
// a change whose only production deployment finished before its merge
// (deployed from a branch) has lead time zero, never a negative one.
func TestLeadTimeOfSkewedAndBranchDeployedChanges(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	dec := &event.Decoder{Now: func() time.Time { return t0.Add(time.Hour) }}
	h := time.Hour
	change := func(id string, authored, merged time.Time) string {
		return fmt.Sprintf(`{"kind":"change","event_id":"git-%s","change_id":"%s","service":"checkout","authored_at":"%s","merged_at":"%s"}`,
			id, id, at(authored), at(merged))
	}
	deploy := func(id string, finished time.Time, changes string) string {
		return fmt.Sprintf(`{"kind":"deployment","event_id":"ci-%s","deployment_id":"%s","service":"checkout","environment":"production","status":"success","finished_at":"%s","changes":[%s]}`,
			id, id, at(finished), changes)
	}
	ingestJSON(t, st, dec,
		// skew: authored 2h after its merge, deployed 5h after the merge.
		change("skew", t0.Add(-8*h), t0.Add(-10*h)),
		deploy("d-skew", t0.Add(-5*h), `"skew"`),
		// branch: authored 6h before the merge, deployed from its branch 1h
		// before the merge, never deployed again.
		change("branch", t0.Add(-9*h), t0.Add(-3*h)),
		deploy("d-branch", t0.Add(-4*h), `"branch"`),
	)
	if n := testenv.Count(t, st, "SELECT count() FROM changes WHERE change_id = 'skew' AND authored_at > merged_at"); n != 1 {
		t.Fatalf("the skewed change is not stored as sent (%d rows)", n)
	}
	q := metrics.Query{From: t0.Add(-24 * h), To: t0, Services: []string{"checkout"}}
	// From the commit: skew starts at its merge (5h); branch at its commit
	// (9h − 4h = 5h). Median 5h.
	s := summary(t, st, q)
	if s.ChangesDeployed != 2 || secs(s.LeadTimeMedianSeconds) != "5h0m0s" {
		t.Errorf("lead time from commit: %d changes, median %s; want 2 and 5h0m0s", s.ChangesDeployed, secs(s.LeadTimeMedianSeconds))
	}
	// From the merge: skew 5h, branch −1h → 0. Median 2.5h, p90 4.5h.
	q.LeadTimeFromMerge = true
	s = summary(t, st, q)
	if s.ChangesDeployed != 2 || secs(s.LeadTimeMedianSeconds) != "2h30m0s" || secs(s.LeadTimeP90Seconds) != "4h30m0s" {
		t.Errorf("lead time from merge: %d changes, median %s, p90 %s; want 2, 2h30m0s, 4h30m0s",
			s.ChangesDeployed, secs(s.LeadTimeMedianSeconds), secs(s.LeadTimeP90Seconds))
	}
	// The dashboards' panel computes the same.
	sql, err := metrics.PanelSQL(metrics.PanelLeadTime, metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", q.From.Unix()),
		To: fmt.Sprintf("toDateTime(%d)", q.To.Unix())})
	if err != nil {
		t.Fatal(err)
	}
	var panel *float64
	if err := st.Conn().QueryRow(context.Background(), sql).Scan(&panel); err != nil {
		t.Fatal(err)
	}
	if secs(panel) != "5h0m0s" {
		t.Errorf("lead time panel (from commit): %s, want 5h0m0s", secs(panel))
	}
}

// TestHugeAndUnboundedGap: a gap longer than an incident's distance from
// 1970 once made ClickHouse's date arithmetic wrap, and every incident lost
// its deployment. Now a huge gap, and no bound at all, attribute as they
// should, and absurd gaps are refused with a reason.
func TestHugeAndUnboundedGap(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	dec := &event.Decoder{Now: func() time.Time { return t0.Add(time.Hour) }}
	deploy := func(id string, finished time.Time) string {
		return fmt.Sprintf(`{"kind":"deployment","event_id":"ci-%s","deployment_id":"%s","service":"search","environment":"production","status":"success","finished_at":"%s"}`,
			id, id, at(finished))
	}
	incident := func(id string, impact time.Time) string {
		return fmt.Sprintf(`{"kind":"incident","event_id":"pd-%s","incident_id":"%s","service":"search","environment":"production","impact_started_at":"%s","detected_at":"%s","resolved_at":"%s"}`,
			id, id, at(impact), at(impact.Add(5*time.Minute)), at(impact.Add(time.Hour)))
	}
	years := func(n int) time.Duration { return time.Duration(n) * 365 * 24 * time.Hour }
	ingestJSON(t, st, dec,
		deploy("d-1986", t0.Add(-years(40))),
		incident("INC-recent", t0.Add(-2*time.Hour)), // 40 years after the only deployment
	)
	for _, c := range []struct {
		gap  string
		want string
	}{
		{"24h", "unattributed"},
		{"350400h", "d-1986 inferred"},   // 40 years: more than the deployment's distance
		{"525600h", "d-1986 inferred"},   // 60 years: more than the incident's distance from 1970
		{"unbounded", "d-1986 inferred"}, // no bound
		{"0", "d-1986 inferred"},
	} {
		gap, err := metrics.ParseGap(c.gap)
		if err != nil {
			t.Fatalf("%s: %v", c.gap, err)
		}
		attrs, err := metrics.Attributions(context.Background(), st.Conn(), t0.Add(-24*time.Hour), t0, gap)
		if err != nil {
			t.Fatalf("gap %s: %v", c.gap, err)
		}
		got := "none"
		if len(attrs) == 1 {
			got = strings.TrimSpace(attrs[0].DeploymentID + " " + string(attrs[0].Method))
		}
		if got != c.want {
			t.Errorf("gap %s: %s, want %s", c.gap, got, c.want)
		}
		// The summary and the dashboards' change failure rate agree: the
		// deployment of 1986 is blamed within the gap.
		q := metrics.Query{From: t0.Add(-years(41)), To: t0, MaxGap: gap}
		s := summary(t, st, q)
		wantFailed := uint64(1)
		if c.want == "unattributed" {
			wantFailed = 0
		}
		if s.FailedDeployments != wantFailed || s.Incidents != 1 {
			t.Errorf("gap %s: %d failed deployments, %d incidents; want %d and 1", c.gap, s.FailedDeployments, s.Incidents, wantFailed)
		}
		sql, err := metrics.PanelSQL(metrics.PanelChangeFailureRate, metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", q.From.Unix()),
			To: fmt.Sprintf("toDateTime(%d)", q.To.Unix()), MaxGap: gap})
		if err != nil {
			t.Fatal(err)
		}
		var cfr *float64
		if err := st.Conn().QueryRow(context.Background(), sql).Scan(&cfr); err != nil {
			t.Fatalf("gap %s: panel: %v", c.gap, err)
		}
		if cfr == nil || *cfr != float64(wantFailed) {
			t.Errorf("gap %s: change failure rate panel %v, want %d", c.gap, cfr, wantFailed)
		}
	}
	for _, bad := range []string{"-1h", "1000000h", "forever", "99999999999h"} {
		if _, err := metrics.ParseGap(bad); err == nil {
			t.Errorf("gap %q accepted", bad)
		}
		if _, err := (metrics.Params{MaxGap: bad}).Parse(t0); err == nil || !strings.Contains(err.Error(), "max_gap") {
			t.Errorf("max_gap=%s: %v; want an error naming max_gap", bad, err)
		}
	}
}

// TestEnvironmentsAsToolsName them: a deployment without an environment is
// stored under "unknown", which is never production; production is found
// whatever the case, and aliases map names onto one environment, the same in
// the summaries, the panels and by environment.
func TestEnvironmentsAsToolsNameThem(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	dec := &event.Decoder{Now: func() time.Time { return t0.Add(time.Hour) }, EnvironmentAliases: map[string]string{"prod": "production"}}
	deploy := func(id, env string) string {
		if env != "" {
			env = `,"environment":"` + env + `"`
		}
		return fmt.Sprintf(`{"kind":"deployment","event_id":"ci-%s","deployment_id":"%s","service":"cart","status":"success","finished_at":"%s"%s}`,
			id, id, at(t0.Add(-time.Hour)), env)
	}
	ingestJSON(t, st, dec, deploy("d-1", "PRODUCTION"), deploy("d-2", "Production"), deploy("d-3", "prod"), deploy("d-4", "production"),
		deploy("d-5", ""), deploy("d-6", "Staging"))
	envs := testenv.Rows(t, st, "SELECT environment, count() FROM deployments GROUP BY environment ORDER BY environment")
	if fmt.Sprint(envs) != "[production | 4 staging | 1 unknown | 1]" {
		t.Errorf("stored environments %v, want production 4, staging 1, unknown 1", envs)
	}
	q := metrics.Query{From: t0.Add(-24 * time.Hour), To: t0, Production: []string{"Production"}}
	if s := summary(t, st, q); s.Deployments != 4 {
		t.Errorf("production deployments: %d, want 4", s.Deployments)
	}
	q.By = []metrics.Dimension{metrics.Environment}
	q.Production = []string{"production", "staging", "unknown"}
	sums, err := metrics.Summaries(context.Background(), st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	var slices []string
	for _, s := range sums {
		slices = append(slices, fmt.Sprintf("%s=%d", s.Slice[metrics.Environment], s.Deployments))
	}
	if fmt.Sprint(slices) != "[production=4 staging=1 unknown=1]" {
		t.Errorf("by environment: %v", slices)
	}
	sql, err := metrics.PanelSQL(metrics.PanelDeployments, metrics.PanelOptions{From: fmt.Sprintf("toDateTime(%d)", q.From.Unix()),
		To: fmt.Sprintf("toDateTime(%d)", q.To.Unix()), Production: []string{"PRODUCTION"}})
	if err != nil {
		t.Fatal(err)
	}
	var n *float64
	if err := st.Conn().QueryRow(context.Background(), sql).Scan(&n); err != nil || n == nil || *n != 4 {
		t.Errorf("deployments panel: %v, %v; want 4", n, err)
	}
}
