package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/generator"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

// oracleQueries are the queries the rollup is checked on: slicings, steps,
// production sets, gaps, lookbacks, the merge variant, filters, deadlines,
// whole days and ranges cut at any second (which read the raw rows), over
// the stream's last weeks and into the days after it. end is the
// generated stream's end.
func oracleQueries(t *testing.T, end time.Time) map[string]metrics.Query {
	t.Helper()
	cat, err := catalog.Parse("catalog.yaml", []byte(`
- {name: checkout, owner: payments, system: shop, tier: tier-1}
- {name: payments-api, owner: payments, system: money, tier: tier-1}
- {name: cart, owner: storefront, system: shop, tier: tier-2}
- {name: catalog, owner: storefront, system: shop}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	from := end.AddDate(0, 0, -30)
	all := []metrics.Dimension{metrics.Service, metrics.Team, metrics.Environment}
	return map[string]metrics.Query{
		"whole":              {From: from, To: end},
		"by service":         {From: from, To: end, By: []metrics.Dimension{metrics.Service}},
		"by all, two prods":  {From: from, To: end, By: all, Production: []string{"production", "staging"}},
		"staging only":       {From: from, To: end, By: []metrics.Dimension{metrics.Team}, Production: []string{"staging"}},
		"unaligned":          {From: from.Add(7*time.Hour + 13*time.Minute + 5*time.Second), To: end.Add(-3*time.Hour - time.Second), By: []metrics.Dimension{metrics.Team}},
		"daily":              {From: end.AddDate(0, 0, -10), To: end, By: []metrics.Dimension{metrics.Team}, Step: metrics.StepDay},
		"hourly":             {From: end.Add(-36 * time.Hour), To: end.Add(12 * time.Hour), Step: metrics.StepHour},
		"a year":             {From: end.AddDate(-1, 0, 0), To: end.AddDate(0, 0, 3), By: []metrics.Dimension{metrics.Service}},
		"one day":            {From: end.AddDate(0, 0, -3), To: end.AddDate(0, 0, -2), By: all},
		"gap 2h":             {From: from, To: end, By: []metrics.Dimension{metrics.Service}, MaxGap: 2 * time.Hour},
		"gap unbounded":      {From: from, To: end, By: []metrics.Dimension{metrics.Service}, MaxGap: metrics.Unbounded},
		"lookback 2d, merge": {From: from, To: end, By: []metrics.Dimension{metrics.Team}, LeadTimeLookback: 48 * time.Hour, LeadTimeFromMerge: true},
		"filtered":           {From: from, To: end, By: []metrics.Dimension{metrics.Environment}, Services: []string{"checkout", "search"}, Environments: []string{"Production"}},
		"patch deadlines":    {From: from, To: end, PatchDeadlines: map[string]time.Duration{"critical": time.Hour, "low": 400 * time.Hour}},
		"by system and tier": {From: from, To: end, By: []metrics.Dimension{metrics.System, metrics.Tier}, Catalog: cat},
		"tier filter, daily": {From: end.AddDate(0, 0, -10), To: end, Step: metrics.StepDay, Tiers: []string{"tier-1"}, Catalog: cat},
		"change calendar":    {From: from, To: end, By: []metrics.Dimension{metrics.Team}, Calendar: windowCalendar(t)},
		"calendar, tiers, daily": metrics.Query{From: end.AddDate(0, 0, -10), To: end, By: []metrics.Dimension{metrics.Service}, Step: metrics.StepDay,
			Calendar: windowCalendar(t)}.WithCatalog(cat),
		"calendar by tier": metrics.Query{From: from, To: end, By: []metrics.Dimension{metrics.Tier}, Calendar: windowCalendar(t)}.WithCatalog(cat),
	}
}

// sameSummaries compares two results as JSON (every figure, slice and
// bucket), and the samples behind the medians.
func sameSummaries(t *testing.T, name string, got, want []*metrics.Summary) {
	t.Helper()
	// Summaries orders slices, not the buckets within one.
	for _, l := range [][]*metrics.Summary{got, want} {
		sort.SliceStable(l, func(i, j int) bool { return summaryKey(l[i]) < summaryKey(l[j]) })
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s: rollup and oracle differ: %s", name, firstDiff(got, want))
		return
	}
	for i := range got {
		if fmt.Sprint(got[i].Samples) != fmt.Sprint(want[i].Samples) {
			t.Errorf("%s: slice %v: samples %v, oracle %v", name, got[i].Slice, got[i].Samples, want[i].Samples)
		}
	}
}

// firstDiff names the first slice whose figures differ, and the figures.
func firstDiff(got, want []*metrics.Summary) string {
	if len(got) != len(want) {
		var gk, wk []string
		for _, s := range got {
			gk = append(gk, summaryKey(s))
		}
		for _, s := range want {
			wk = append(wk, summaryKey(s))
		}
		return fmt.Sprintf("%d slices, oracle %d\nrollup: %v\noracle: %v", len(got), len(want), gk, wk)
	}
	for i := range got {
		var g, w map[string]any
		gj, _ := json.Marshal(got[i])
		wj, _ := json.Marshal(want[i])
		_ = json.Unmarshal(gj, &g)
		_ = json.Unmarshal(wj, &w)
		var diffs []string
		for k, v := range w {
			if fmt.Sprint(v) != fmt.Sprint(g[k]) {
				diffs = append(diffs, fmt.Sprintf("%s: rollup %v, oracle %v", k, g[k], v))
			}
		}
		if len(diffs) > 0 {
			sort.Strings(diffs)
			return "slice " + summaryKey(want[i]) + ": " + strings.Join(diffs, "; ")
		}
	}
	return "the same figures in another order"
}

func summaryKey(s *metrics.Summary) string {
	k := fmt.Sprint(s.Slice)
	if s.Bucket != nil {
		k += s.Bucket.Format(time.RFC3339)
	}
	return k
}

// compareWithOracle refreshes the rollup for each query of oracleQueries
// named (all when none), reads it through the rollup and compares it with
// the raw-row SQL, and returns the rollup's answers as JSON. A query of
// whole days must have been read from the rollup; every query must have
// data when all are asked.
func compareWithOracle(t *testing.T, st *store.Store, end time.Time, names ...string) string {
	t.Helper()
	ctx := context.Background()
	full := len(names) == 0
	if full {
		for name := range oracleQueries(t, end) {
			names = append(names, name)
		}
		sort.Strings(names)
	}
	var all []byte
	for _, name := range names {
		q := oracleQueries(t, end)[name]
		if _, _, err := metrics.RefreshRollup(ctx, st.Conn(), q); err != nil {
			t.Fatalf("%s: refresh: %v", name, err)
		}
		raw := q
		raw.RollupMaxAge = -1
		want, err := metrics.Summaries(ctx, st.Conn(), raw)
		if err != nil {
			t.Fatalf("%s: oracle: %v", name, err)
		}
		got, err := metrics.Summaries(ctx, st.Conn(), q)
		if err != nil {
			t.Fatalf("%s: rollup: %v", name, err)
		}
		if full && len(want) == 0 {
			t.Errorf("%s: the oracle has no slice: the case checks nothing", name)
		}
		// Whole UTC days that ended before today, the day the rollup was
		// built in, are read from it; the others from the raw rows.
		today := time.Now().UTC().Truncate(24 * time.Hour)
		wholeDays := q.From.Equal(q.From.Truncate(24*time.Hour)) && q.To.Equal(q.To.Truncate(24*time.Hour)) &&
			q.Step != metrics.StepHour && !q.To.After(today)
		for _, s := range got {
			if (s.AsOf != nil) != wholeDays {
				t.Fatalf("%s: read from the rollup: %v, want %v", name, s.AsOf != nil, wholeDays)
			}
			s.AsOf = nil
		}
		sameSummaries(t, name, got, want)
		j, _ := json.Marshal(got)
		all = append(all, j...)
	}
	return string(all)
}

// oracleStream is a generated stream cut into batches in time order, then
// disordered and extended the way real streams are: a tenth of the
// messages arrive one to three batches late; one in twenty is stored twice
// in its batch; some deployments later change status (same finish), others
// report a finish 20 hours later (a range holding one finish only folds
// the message in it); some
// incidents are resolved days later, by a message that comes in the last
// batch; some changes are merged after their deployment (the merge comes
// later, in its own message), and some were authored months before; and
// some new incidents name a failed deployment as their cause, late.
func oracleStream(t *testing.T, seed uint64, end time.Time, batches int) [][]*event.Event {
	t.Helper()
	var evs []*event.Event
	if _, err := generator.Generate(generator.Config{Services: 6, Teams: 3, Days: 45, Seed: seed, End: end}, func(e *event.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][]*event.Event, batches)
	mut := 0
	extra := func(b int, e *event.Event) {
		mut++
		e.ID = fmt.Sprintf("mut-%d-%d", seed, mut)
		out[min(b, batches-1)] = append(out[min(b, batches-1)], e)
	}
	var failed []*event.Event
	for i, e := range evs {
		b := i * batches / len(evs)
		switch {
		case e.Kind == event.KindDeployment && e.Deployment.Status == event.DeploymentSuccess && rng.Float64() < 0.05:
			d := *e.Deployment
			d.Status = event.DeploymentRolledBack
			extra(b+1+rng.IntN(2), &event.Event{Kind: event.KindDeployment, Time: e.Time.Add(2 * time.Hour), Deployment: &d})
		case e.Kind == event.KindDeployment && e.Deployment.Status == event.DeploymentSuccess && rng.Float64() < 0.04:
			d := *e.Deployment
			d.FinishedAt = d.FinishedAt.Add(20 * time.Hour)
			extra(b+1+rng.IntN(2), &event.Event{Kind: event.KindDeployment, Time: e.Time.Add(20 * time.Hour), Deployment: &d})
		case e.Kind == event.KindDeployment && e.Deployment.Status != event.DeploymentSuccess:
			failed = append(failed, e)
		case e.Kind == event.KindIncident && !e.Incident.ResolvedAt.IsZero() && rng.Float64() < 0.3:
			in := *e.Incident
			in.ResolvedAt = in.ResolvedAt.Add(time.Duration(1+rng.IntN(4)) * 24 * time.Hour)
			extra(batches-1, &event.Event{Kind: event.KindIncident, Time: in.ResolvedAt, Incident: &in})
			continue // the original resolution never comes
		case e.Kind == event.KindChange && !e.Change.MergedAt.IsZero() && rng.Float64() < 0.1:
			c := *e.Change
			c.MergedAt = time.Time{}
			e = &event.Event{Kind: e.Kind, ID: e.ID, Time: e.Time, Encoding: e.Encoding, Change: &c}
			late := *e.Change
			late.AuthoredAt, late.MergedAt = time.Time{}, c.AuthoredAt.Add(time.Duration(2+rng.IntN(72))*time.Hour)
			extra(b+1+rng.IntN(3), &event.Event{Kind: event.KindChange, Time: late.MergedAt, Change: &late})
		}
		if e.Kind == event.KindChange && !e.Change.AuthoredAt.IsZero() && rng.Float64() < 0.03 {
			// A change from a stale branch, authored months before.
			c := *e.Change
			c.AuthoredAt = c.AuthoredAt.AddDate(0, 0, -95-rng.IntN(60))
			e = &event.Event{Kind: e.Kind, ID: e.ID, Time: e.Time, Encoding: e.Encoding, Change: &c}
		}
		if rng.Float64() < 0.1 {
			b += 1 + rng.IntN(3)
		}
		b = min(b, batches-1)
		out[b] = append(out[b], e)
		if rng.Float64() < 0.05 {
			out[b] = append(out[b], e)
		}
	}
	for i := 0; i < len(failed); i += 7 {
		d := failed[i].Deployment
		impact := d.FinishedAt.Add(30 * time.Minute)
		extra(batches-1-rng.IntN(2), &event.Event{Kind: event.KindIncident, Time: impact.Add(time.Hour), Incident: &event.Incident{
			ID: fmt.Sprintf("INC-named-%d-%d", seed, i), Service: d.Service, Team: d.Team, Environment: d.Environment,
			Severity: event.SeverityHigh, ImpactStartedAt: impact, DetectedAt: impact.Add(10 * time.Minute),
			ResolvedAt: impact.Add(3 * time.Hour), CauseDeployment: d.ID}})
	}
	for _, b := range out {
		rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	}
	return out
}

func writeEvents(t *testing.T, st *store.Store, evs []*event.Event) {
	t.Helper()
	recs := make([]store.Record, len(evs))
	for i, e := range evs {
		recs[i] = store.Record{Event: e, Topic: "t", Offset: int64(i)}
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
}

// TestRollupMatchesOracle stores a disordered stream batch by batch,
// storing every third batch again after it (a replay after a crash), and
// compares queries of oracleQueries read through the rollup with the
// raw-row SQL after each, and all of them at the end; then after
// ClickHouse merged the raw tables, and after a replay.
func TestRollupMatchesOracle(t *testing.T) {
	// The stream ends today: its ranges end before the day the rollups are
	// built in, except "a year", which reaches three days past it.
	end := time.Now().UTC().Truncate(24 * time.Hour)
	const batches = 6
	for _, seed := range []uint64{11, 12} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ctx := context.Background()
			st := testenv.Store(t, testenv.Database(t))
			stream := oracleStream(t, seed, end, batches)
			for i, b := range stream {
				writeEvents(t, st, b)
				if i%3 == 2 {
					writeEvents(t, st, stream[i-1])
					writeEvents(t, st, b)
				}
				compareWithOracle(t, st, end, "whole", "daily", "by all, two prods")
			}
			before := compareWithOracle(t, st, end)
			for _, table := range []string{"deployment_events", "incident_events", "patch_events", "change_events"} {
				if err := st.Conn().Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
					t.Fatal(err)
				}
			}
			if after := compareWithOracle(t, st, end); after != before {
				t.Error("merges changed a figure")
			}
			writeEvents(t, st, stream[0])
			writeEvents(t, st, stream[batches-1])
			if after := compareWithOracle(t, st, end); after != before {
				t.Error("a replay changed a figure")
			}
		})
	}
}

// TestRollupLeadSplit: a build keeps the lead times of changes that
// started within its lookback before their day as near, which reads with
// at least that lookback count without their starts, and the others
// (stale branches, merges after the deployment's day) as far. Reads with
// lookbacks shorter than, equal to and longer than the build's equal the
// raw rows, with changes counted from their authoring and from their
// merge.
func TestRollupLeadSplit(t *testing.T) {
	ctx := context.Background()
	end := time.Now().UTC().Truncate(24 * time.Hour)
	st := testenv.Store(t, testenv.Database(t))
	for _, b := range oracleStream(t, 13, end, 3) {
		writeEvents(t, st, b)
	}
	const day = 24 * time.Hour
	// Changes that started about the build's lookback (20 days) before
	// their deployment's day: either side of a read's bound on the first
	// day of its range with that lookback.
	deployed := end.AddDate(0, 0, -5).Add(15 * time.Hour)
	var edge []*event.Event
	var ids []string
	for i, before := range []time.Duration{20*day - time.Hour, 20*day + 15*time.Hour - time.Second, 20*day + 15*time.Hour + time.Second, 21*day + time.Hour} {
		id := fmt.Sprintf("edge-change-%d", i)
		ids = append(ids, id)
		edge = append(edge, &event.Event{ID: "ev-" + id, Kind: event.KindChange, Time: deployed.Add(-before),
			Change: &event.Change{ID: id, Service: "edge", Team: "edge", AuthoredAt: deployed.Add(-before), MergedAt: deployed.Add(-before)}})
	}
	edge = append(edge, &event.Event{ID: "ev-edge-deploy", Kind: event.KindDeployment, Time: deployed, Deployment: &event.Deployment{
		ID: "edge-deploy", Service: "edge", Team: "edge", Environment: "production", StartedAt: deployed.Add(-10 * time.Minute),
		FinishedAt: deployed, Status: event.DeploymentSuccess, Changes: ids}})
	writeEvents(t, st, edge)
	for _, merge := range []bool{false, true} {
		build := metrics.Query{LeadTimeLookback: 20 * day, LeadTimeFromMerge: merge}
		r, built, err := metrics.RefreshRollup(ctx, st.Conn(), build)
		if err != nil || !built || r.LeadSplit != 20*day {
			t.Fatalf("merge %v: build %+v, built %v, %v; want one with a split of 20 days", merge, r, built, err)
		}
		near := testenv.Count(t, st, fmt.Sprintf("SELECT sum(length(leads)) FROM kpi_daily WHERE generation = %d", r.Generation))
		far := testenv.Count(t, st, fmt.Sprintf("SELECT sum(length(leads_far)) FROM kpi_daily WHERE generation = %d", r.Generation))
		if near == 0 || far == 0 {
			t.Fatalf("merge %v: %d near and %d far lead times: the case checks nothing", merge, near, far)
		}
		var reads []metrics.Query
		for _, lookback := range []time.Duration{2 * day, 20 * day, 90 * day, 200 * day} {
			for _, by := range [][]metrics.Dimension{nil, {metrics.Service}} {
				reads = append(reads, metrics.Query{From: end.AddDate(0, 0, -25), To: end.AddDate(0, 0, -1), By: by,
					LeadTimeLookback: lookback, LeadTimeFromMerge: merge})
			}
		}
		for _, from := range []int{-5, -4} { // the edge deployment's day first, then the day after
			reads = append(reads, metrics.Query{From: end.AddDate(0, 0, from), To: end.AddDate(0, 0, -1), By: []metrics.Dimension{metrics.Service},
				LeadTimeLookback: 20 * day, LeadTimeFromMerge: merge})
		}
		for _, q := range reads {
			raw := q
			raw.RollupMaxAge = -1
			want, err := metrics.Summaries(ctx, st.Conn(), raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := metrics.Summaries(ctx, st.Conn(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[0].AsOf == nil {
				t.Fatalf("merge %v, %v from %v, lookback %v: not read from the rollup", merge, q.By, q.From, q.LeadTimeLookback)
			}
			for _, s := range got {
				s.AsOf = nil
			}
			name := fmt.Sprintf("merge %v, %v from %s, lookback %v", merge, q.By, q.From.Format(time.DateOnly), q.LeadTimeLookback)
			sameSummaries(t, name, got, want)
		}
	}
}

// TestRollupRefresherRuns: the scheduled refresh builds a rollup at once,
// builds again at a tick only when rows were stored since, and returns
// when its context ends.
func TestRollupRefresherRuns(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	end := time.Now().UTC().Truncate(24 * time.Hour)
	for _, b := range oracleStream(t, 3, end, 2) {
		writeEvents(t, st, b)
	}
	// Merged now, so that no background merge changes the raw tables'
	// fingerprint while the test waits.
	for _, table := range []string{"deployment_events", "incident_events", "patch_events", "change_events"} {
		if err := st.Conn().Exec(context.Background(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- metrics.RollupRefresher{Conn: st.Conn(), Interval: 200 * time.Millisecond, Log: testenv.Logger(t)}.Run(ctx)
	}()
	builds := func() int { return int(testenv.Count(t, st, "SELECT count() FROM kpi_rollups")) }
	wait := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); builds() < n && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait(1)
	time.Sleep(time.Second) // five ticks with nothing stored
	if n := builds(); n != 1 {
		t.Errorf("%d builds with nothing stored after the first, want 1", n)
	}
	writeEvents(t, st, []*event.Event{{Kind: event.KindDeployment, ID: "late-1", Time: end.AddDate(0, 0, -2), Deployment: &event.Deployment{
		ID: "late-1", Service: "checkout", Environment: "production", Status: event.DeploymentSuccess, FinishedAt: end.AddDate(0, 0, -2)}}})
	wait(2)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := builds(); n < 2 {
		t.Errorf("%d builds after a row was stored, want 2", n)
	}
}

// TestRollupAttributions: the incident attributions read from the rollup
// (the reports' incident lists) equal the raw-row attribution for whole-day
// ranges and two gaps on a disordered stream with late causes, and an
// incident stored after the build appears in them with the next build.
func TestRollupAttributions(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	for _, b := range oracleStream(t, 11, end, 3) {
		writeEvents(t, st, b)
	}
	checked := 0
	for _, gap := range []time.Duration{0, 2 * time.Hour} {
		if _, _, err := metrics.RefreshRollup(ctx, st.Conn(), metrics.Query{MaxGap: gap}); err != nil {
			t.Fatal(err)
		}
		for _, days := range [][2]int{{-30, 0}, {-3, -2}, {-365, 1}} {
			q := metrics.Query{From: end.AddDate(0, 0, days[0]), To: end.AddDate(0, 0, days[1]), MaxGap: gap}
			got, err := metrics.AttributionsOf(ctx, st.Conn(), q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := metrics.Attributions(ctx, st.Conn(), q.From, q.To, gap)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("gap %v, days %v: rollup %d attributions, raw rows %d:\nrollup %v\nraw    %v", gap, days, len(got), len(want), got, want)
			}
			checked += len(want)
		}
	}
	if checked == 0 {
		t.Fatal("no incident attributed: the test checks nothing")
	}
	// A late incident stored after the build: the rollup (fresh by age)
	// lists it only after the next build.
	impact := end.AddDate(0, 0, -5).Add(3 * time.Hour)
	writeEvents(t, st, []*event.Event{{Kind: event.KindIncident, ID: "late-incident-msg", Time: impact, Incident: &event.Incident{
		ID: "late-incident", Service: "checkout", Environment: "production", ImpactStartedAt: impact, DetectedAt: impact.Add(time.Minute)}}})
	q := metrics.Query{From: end.AddDate(0, 0, -30), To: end, MaxGap: 2 * time.Hour}
	has := func() bool {
		attrs, err := metrics.AttributionsOf(ctx, st.Conn(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range attrs {
			if a.IncidentID == "late-incident" {
				return true
			}
		}
		return false
	}
	if has() {
		t.Fatal("the incident stored after the build is listed: the list was not read from the rollup")
	}
	if _, _, err := metrics.RefreshRollup(ctx, st.Conn(), q); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Fatal("the incident stored before the second build is not listed")
	}
}

// TestRollupDailyReport: a report's buckets (days, weeks, months, the
// whole range) and the ranges they are compared with, read from the rollup
// in one query, equal each range's summary from the raw rows (lookback,
// patch deadlines, rates per day and the families of a summary without
// slices judged per range), with and without slices, filters and a change
// calendar.
func TestRollupDailyReport(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	for _, b := range oracleStream(t, 13, end, 3) {
		writeEvents(t, st, b)
	}
	cases := map[string]metrics.Query{
		"whole":               {From: end.AddDate(0, 0, -20), To: end},
		"by team":             {From: end.AddDate(0, 0, -20), To: end, By: []metrics.Dimension{metrics.Team}},
		"lookback 2d":         {From: end.AddDate(0, 0, -10), To: end.AddDate(0, 0, 2), By: []metrics.Dimension{metrics.Service}, LeadTimeLookback: 48 * time.Hour},
		"deadlines, calendar": {From: end.AddDate(0, 0, -15), To: end, PatchDeadlines: map[string]time.Duration{"critical": time.Hour, "low": 100 * time.Hour}, Calendar: windowCalendar(t)},
		"filtered":            {From: end.AddDate(0, 0, -20), To: end, By: []metrics.Dimension{metrics.Environment}, Services: []string{"checkout", "search"}},
		"calendar, built without": {From: end.AddDate(0, 0, -15), To: end, By: []metrics.Dimension{metrics.Team}, Calendar: windowCalendar(t),
			Production: []string{"production", "staging"}},
	}
	// The rollup of a case is built for it, but this one's without its
	// calendar: its calendar figures come from the raw rows, range by range.
	builtWithout := cases["calendar, built without"]
	builtWithout.Calendar = nil
	buckets := []struct {
		b       metrics.Bucket
		compare bool
	}{{metrics.Day, false}, {metrics.Day, true}, {metrics.Week, false}, {metrics.Week, true}, {metrics.Month, true}, {metrics.Whole, true}}
	for name, q := range cases {
		bq := q
		if name == "calendar, built without" {
			bq = builtWithout
		}
		if _, _, err := metrics.RefreshRollup(ctx, st.Conn(), bq); err != nil {
			t.Fatal(err)
		}
		for _, bc := range buckets {
			name := fmt.Sprintf("%s, %s buckets, compare %v", name, bc.b, bc.compare)
			got, err := metrics.Run(ctx, st.Conn(), q, bc.b, time.UTC, bc.compare)
			if err != nil {
				t.Fatal(err)
			}
			raw := q
			raw.RollupMaxAge = -1
			want, err := metrics.Run(ctx, st.Conn(), raw, bc.b, time.UTC, bc.compare)
			if err != nil {
				t.Fatal(err)
			}
			fromRollup := 0
			for _, s := range got.Summaries {
				if s.AsOf != nil {
					fromRollup++
				}
				s.AsOf = nil
				if s.Previous != nil {
					if s.Previous.AsOf != nil {
						fromRollup++
					}
					s.Previous.AsOf = nil
				}
			}
			if fromRollup == 0 {
				t.Errorf("%s: no bucket read from the rollup", name)
			}
			if len(want.Summaries) == 0 {
				t.Errorf("%s: no summary: the case checks nothing", name)
			}
			sameSummaries(t, name, got.Summaries, want.Summaries)
		}
	}
}

// windowStream is a store holding the oracle stream of seed 5 to today's
// midnight (end), and a catalog that puts two of its services in tier-1,
// for the change calendar's tests.
func windowStream(t *testing.T) (*store.Store, time.Time, *catalog.Catalog) {
	t.Helper()
	st := testenv.Store(t, testenv.Database(t))
	end := time.Now().UTC().Truncate(24 * time.Hour)
	for _, b := range oracleStream(t, 5, end, 2) {
		writeEvents(t, st, b)
	}
	cat, err := catalog.Parse("catalog.yaml", []byte("- {name: checkout, owner: payments, tier: tier-1}\n- {name: cart, owner: storefront, tier: tier-1}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	return st, end, cat
}

// TestRollupWindowCounts: a rollup built with a change calendar holds its
// counts, and calendar figures are read from them (a row added to them
// shows); a query judging by other tiers reads the raw rows, and a refresh
// for those tiers builds again although no row was stored.
func TestRollupWindowCounts(t *testing.T) {
	ctx := context.Background()
	st, end, cat := windowStream(t)
	q := metrics.Query{From: end.AddDate(0, 0, -20), To: end, By: []metrics.Dimension{metrics.Service}, Calendar: windowCalendar(t)}.WithCatalog(cat)
	r, built, err := metrics.RefreshRollup(ctx, st.Conn(), q)
	if err != nil || !built || r.WindowKey == "" {
		t.Fatalf("RefreshRollup with a calendar: %+v, %v, %v", r, built, err)
	}
	raw := q
	raw.RollupMaxAge = -1
	want, err := metrics.Summaries(ctx, st.Conn(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var outside uint64
	for _, s := range want {
		outside += s.DeploymentsOutsideWindow
	}
	if outside == 0 {
		t.Fatal("no deployment outside the calendar: the test proves nothing")
	}
	got, err := metrics.Summaries(ctx, st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		s.AsOf = nil
	}
	sameSummaries(t, "calendar from the rollup", got, want)
	// Through a cache, twice: the same, the second from the cache.
	qc := q
	qc.Cache = metrics.NewRollupCache(1 << 20)
	for i := range 2 {
		cached, err := metrics.Summaries(ctx, st.Conn(), qc)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range cached {
			s.AsOf = nil
		}
		sameSummaries(t, fmt.Sprintf("calendar from the rollup, cached, read %d", i+1), cached, want)
	}
	if s := qc.Cache.Stats(); s.Hits < 2 {
		t.Errorf("cache stats %+v: the second read did not hit for the rollup and its calendar counts", s)
	}
	// One more deployment outside, in the rollup only: the read shows it.
	if err := st.Conn().Exec(ctx, `INSERT INTO kpi_window_daily (generation, day, service, team, environment, deployments, outside, in_freeze, fixes)
		SELECT toUInt64(?), toDate(?), 'checkout', 'payments', 'production', 1, 1, 0, 0`, r.Generation, end.AddDate(0, 0, -3)); err != nil {
		t.Fatal(err)
	}
	got, err = metrics.Summaries(ctx, st.Conn(), q)
	if err != nil {
		t.Fatal(err)
	}
	var seen uint64
	for _, s := range got {
		seen += s.DeploymentsOutsideWindow
	}
	if seen != outside+1 {
		t.Errorf("%d deployments outside after one was added to the rollup's counts, want %d: the counts are not read from it", seen, outside+1)
	}
	// Other tiers: the raw rows decide, until a build for them.
	other, err := catalog.Parse("catalog.yaml", []byte("- {name: search, owner: discovery, tier: tier-1}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	q2 := q.WithCatalog(other)
	raw2 := q2
	raw2.RollupMaxAge = -1
	want2, err := metrics.Summaries(ctx, st.Conn(), raw2)
	if err != nil {
		t.Fatal(err)
	}
	got2, err := metrics.Summaries(ctx, st.Conn(), q2)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got2 {
		if s.AsOf == nil {
			t.Fatalf("slice %v not read from the rollup", s.Slice)
		}
		s.AsOf = nil
	}
	sameSummaries(t, "calendar with other tiers", got2, want2)
	if _, built, err := metrics.RefreshRollup(ctx, st.Conn(), q2); err != nil || !built {
		t.Errorf("RefreshRollup for other tiers, nothing stored since: built %v, %v; want a build", built, err)
	}
	if _, built, err := metrics.RefreshRollup(ctx, st.Conn(), metrics.Query{}); err != nil || built {
		t.Errorf("RefreshRollup without a calendar after one with: built %v, %v; want none", built, err)
	}
}
