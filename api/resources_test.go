package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/opsmetrics/opsmetrics/anomaly"
	"github.com/opsmetrics/opsmetrics/api"
	"github.com/opsmetrics/opsmetrics/baselines"
	"github.com/opsmetrics/opsmetrics/internal/catalog"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

const day = 24 * time.Hour

// start is a Monday; eight ordinary weeks run up to anomalyDay, a Monday on
// which checkout does not deploy and search fails 8 of its 20
// deployments, all by a new hire who made no other; the day after is ordinary but for one search incident.
var (
	start      = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	anomalyDay = start.Add(56 * day)
)

var (
	historyOnce sync.Once
	historyDSN  string
	historyErr  error
)

// history is a database of that history, written through the store, with
// baselines learnt as of anomalyDay and the detection of the day after
// recorded: shared by the tests of this file, which only read it.
func history(t *testing.T) *store.Store {
	t.Helper()
	historyOnce.Do(func() {
		historyDSN = testenv.Database(t)
		historyErr = writeHistory(historyDSN, testenv.Logger(t))
	})
	if historyErr != nil {
		t.Fatal(historyErr)
	}
	return testenv.Store(t, historyDSN)
}

func writeHistory(dsn string, log *slog.Logger) error {
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	r := rand.New(rand.NewPCG(15, 1))
	var recs []store.Record
	deploy := func(service, team, actor string, at time.Time, s event.DeploymentStatus) {
		id := fmt.Sprintf("%s-%d", service, len(recs))
		recs = append(recs, store.Record{Topic: "t", Offset: int64(len(recs)), Event: &event.Event{Kind: event.KindDeployment,
			ID: "e-" + id, Time: at, Deployment: &event.Deployment{ID: id, Service: service, Team: team, Environment: "production",
				StartedAt: at.Add(-10 * time.Minute), FinishedAt: at, Status: s, Actor: actor}}})
	}
	for d := start; d.Before(anomalyDay.Add(2 * day)); d = d.Add(day) {
		checkout, failures := 0, r.IntN(2)
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			checkout = 6 + r.IntN(3)
		}
		if d.Equal(anomalyDay) {
			checkout, failures = 0, 8
		}
		for i := range checkout {
			deploy("checkout", "payments", "ci", d.Add(time.Duration(9+i)*time.Hour), event.DeploymentSuccess)
		}
		for i := range 20 {
			s, actor := event.DeploymentSuccess, fmt.Sprintf("dev-%d", i%4)
			if i < failures {
				s = event.DeploymentFailure
			}
			if d.Equal(anomalyDay) && i < failures {
				actor = "new-hire"
			}
			deploy("search", "discovery", actor, d.Add(time.Duration(i)*time.Hour+30*time.Minute), s)
		}
	}
	next := anomalyDay.Add(day)
	recs = append(recs, store.Record{Topic: "t", Offset: int64(len(recs)), Event: &event.Event{Kind: event.KindIncident, ID: "e-INC-15",
		Time: next.Add(13 * time.Hour), Incident: &event.Incident{ID: "INC-15", Service: "search", Team: "discovery", Environment: "production",
			Severity: "high", ImpactStartedAt: next.Add(10*time.Hour + 50*time.Minute), DetectedAt: next.Add(11 * time.Hour),
			AcknowledgedAt: next.Add(11*time.Hour + 5*time.Minute), ResolvedAt: next.Add(13 * time.Hour)}}})
	if err := st.Write(ctx, recs, nil); err != nil {
		return err
	}
	steps := []metrics.Step{metrics.StepDay}
	if _, err := anomaly.Relearn(ctx, st.Conn(), baselines.Config{Steps: steps}, anomalyDay, log); err != nil {
		return err
	}
	_, err = anomaly.Detect(ctx, st.Conn(), anomaly.Config{Steps: steps}, anomalyDay.Add(day+time.Hour), log)
	return err
}

// getJSON gets path from srv with the token and decodes a 200's body
// into v.
func getJSON(t *testing.T, srv *httptest.Server, token, path string, v any) {
	t.Helper()
	code, body := get(t, srv, token, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func get(t *testing.T, srv *httptest.Server, token, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func ptr(v float64) *float64 { return &v }

func eq(a, b *float64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func show(v *float64) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(*v)
}

// TestSeries: the series are metrics' report by bucket, value for value,
// with the zeros and partial buckets it leaves implicit.
func TestSeries(t *testing.T) {
	st := history(t)
	srv := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Log: testenv.Logger(t)}))
	defer srv.Close()
	ctx := context.Background()
	for _, c := range []struct {
		name, kpi, step string
		from, to        time.Time
		by              []metrics.Dimension
	}{
		{"CFR per service and day, the last day cut", "change_failure_rate", "day", anomalyDay.Add(-3 * day), anomalyDay.Add(day + 12*time.Hour),
			[]metrics.Dimension{metrics.Service}},
		{"deployments per service and week, the first week cut", "deployments", "week", anomalyDay.Add(-12 * day), anomalyDay.Add(2 * day),
			[]metrics.Dimension{metrics.Service}},
		{"MTTR of all by day", "mttr", "day", anomalyDay, anomalyDay.Add(2 * day), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var by []string
			for _, d := range c.by {
				by = append(by, string(d))
			}
			var doc api.SeriesDoc
			getJSON(t, srv, "", fmt.Sprintf("/api/v1/kpis/%s/series?from=%s&to=%s&step=%s&by=%s", c.kpi, c.from.Format(time.RFC3339),
				c.to.Format(time.RFC3339), c.step, strings.Join(by, ",")), &doc)
			b, _ := metrics.ParseBucket(c.step)
			rep, err := metrics.Run(ctx, st.Conn(), metrics.Query{From: c.from, To: c.to, By: c.by}, b, time.UTC, false)
			if err != nil {
				t.Fatal(err)
			}
			buckets := metrics.Ranges(c.from, c.to, b, time.UTC)
			k, _ := metrics.LookupKPI(c.kpi)
			if doc.KPI.Name != c.kpi || doc.KPI.Unit != k.Unit || doc.Step != b {
				t.Errorf("header: %+v", doc)
			}
			found := 0
			for _, ser := range doc.Series {
				if len(ser.Points) != len(buckets) {
					t.Fatalf("%v: %d points, want %d buckets", ser.Slice, len(ser.Points), len(buckets))
				}
				for i, p := range ser.Points {
					if !p.Start.Equal(buckets[i][0]) || !p.End.Equal(buckets[i][1]) {
						t.Errorf("%v point %d: [%v, %v), want %v", ser.Slice, i, p.Start, p.End, buckets[i])
					}
					var want *float64
					if k.Kind == metrics.KindCount {
						want = ptr(0)
					}
					for _, s := range rep.Summaries {
						if s.Bucket.Equal(p.Start) && s.Slice[metrics.Service] == ser.Slice[metrics.Service] {
							want = summaryValue(c.kpi, s)
							found++
						}
					}
					if !eq(p.Value, want) {
						t.Errorf("%v at %v: %s, metrics says %s", ser.Slice, p.Start, show(p.Value), show(want))
					}
				}
			}
			if found != len(rep.Summaries) {
				t.Errorf("%d of metrics' %d summaries in the series", found, len(rep.Summaries))
			}
		})
	}

	// What the history makes known, whatever metrics computes.
	var doc api.SeriesDoc
	getJSON(t, srv, "", fmt.Sprintf("/api/v1/kpis/change_failure_rate/series?from=%s&to=%s&step=day&by=service",
		anomalyDay.Format(time.DateOnly), anomalyDay.Add(day+12*time.Hour).Format(time.RFC3339)), &doc)
	got := map[string][]api.Point{}
	for _, s := range doc.Series {
		got[s.Slice[metrics.Service]] = s.Points
	}
	if p := got["search"]; len(p) != 2 || !eq(p[0].Value, ptr(0.4)) || p[0].Partial || !p[1].Partial {
		t.Errorf("search's CFR from the anomalous Monday: %+v; want 8 of 20 failed, the second day partial", p)
	}
	if p := got["checkout"]; len(p) != 2 || p[0].Value != nil {
		t.Errorf("checkout's CFR on a day without deployments: %+v, want null", p)
	}
	getJSON(t, srv, "", fmt.Sprintf("/api/v1/kpis/deployments/series?from=%s&to=%s&by=service",
		anomalyDay.Format(time.DateOnly), anomalyDay.Add(day).Format(time.DateOnly)), &doc)
	for _, s := range doc.Series {
		if want := map[string]float64{"checkout": 0, "search": 20}[s.Slice[metrics.Service]]; len(s.Points) != 1 || !eq(s.Points[0].Value, &want) {
			t.Errorf("%v deployments on the anomalous Monday (default step day): %+v, want %v", s.Slice, s.Points, want)
		}
	}
}

// summaryValue is the figure of a KPI in a summary, as the test knows it.
func summaryValue(kpi string, s *metrics.Summary) *float64 {
	switch kpi {
	case "change_failure_rate":
		return s.ChangeFailureRate
	case "deployments":
		return ptr(float64(s.Deployments))
	case "mttr":
		return s.MTTRMedianSeconds
	}
	panic(kpi)
}

// TestBaselines: the current baselines are those baselines.Current reads,
// with their bands per slot; checkout's weekday and weekend bands differ.
func TestBaselines(t *testing.T) {
	st := history(t)
	srv := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Log: testenv.Logger(t)}))
	defer srv.Close()
	cur, err := baselines.Current(context.Background(), st.Conn(), metrics.StepDay)
	if err != nil {
		t.Fatal(err)
	}
	var doc api.BaselinesDoc
	sunday := anomalyDay.Add(-day)
	getJSON(t, srv, "", "/api/v1/kpis/deployments/baselines?step=day&service=checkout&at="+sunday.Format(time.RFC3339), &doc)
	var want []baselines.Stored
	for _, c := range cur {
		if c.Series.KPI == "deployments" && c.Series.Service == "checkout" {
			want = append(want, c)
		}
	}
	if len(doc.Baselines) != len(want) || len(want) != 1 {
		t.Fatalf("%d baselines, want %d (of %d current)", len(doc.Baselines), len(want), len(cur))
	}
	b, m := doc.Baselines[0], want[0].Model
	if doc.Generation != want[0].Generation || b.Series.Team != "payments" || b.Series.Environment != "production" ||
		b.Status != string(m.Status) || b.Family != m.Family || b.Samples != m.Samples || len(b.Slots) != 7 {
		t.Errorf("baseline %+v, want the model %+v", b, m)
	}
	for slot, got := range b.Slots {
		e, lo, hi := m.Band(slot)
		if got.Slot != slot || !eq(got.Expected, &e) || !eq(got.Lower, &lo) || !eq(got.Upper, &hi) {
			t.Errorf("slot %d: %s %s–%s, want %v %v–%v", slot, show(got.Expected), show(got.Lower), show(got.Upper), e, lo, hi)
		}
	}
	if b.Now.Slot != 6 || *b.Slots[0].Expected < 5 || *b.Slots[6].Expected > 1 {
		t.Errorf("Sunday is slot %d, want 6; Monday expects %s, Sunday %s: want 6–8 and about 0", b.Now.Slot,
			show(b.Slots[0].Expected), show(b.Slots[6].Expected))
	}
	// Without filters: every series of the KPI, of both steps.
	getJSON(t, srv, "", "/api/v1/kpis/change_failure_rate/baselines", &doc)
	n := 0
	for _, c := range cur {
		if c.Series.KPI == "change_failure_rate" {
			n++
		}
	}
	if len(doc.Baselines) != n || n < 4 {
		t.Errorf("%d change failure rate baselines, want %d (all, both teams, both services)", len(doc.Baselines), n)
	}
}

// TestForecast: the forecast of checkout's deployments from anomalyDay,
// a Monday, expects its six to eight a weekday and none at weekends, and
// is the document baselines.Forecasts makes of the current baselines.
func TestForecast(t *testing.T) {
	st := history(t)
	srv := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Log: testenv.Logger(t)}))
	defer srv.Close()
	var doc baselines.ForecastReport
	getJSON(t, srv, "", "/api/v1/kpis/deployments/forecast?service=checkout&horizon=7d&at="+anomalyDay.Format(time.RFC3339), &doc)
	if len(doc.Series) != 1 || doc.Series[0].Service != "checkout" || len(doc.Series[0].Intervals) != 7 || !doc.From.Equal(anomalyDay) {
		t.Fatalf("forecast of checkout: %+v, want one series of 7 days from %s", doc, anomalyDay)
	}
	for _, iv := range doc.Series[0].Intervals {
		weekend := iv.Start.Weekday() == time.Saturday || iv.Start.Weekday() == time.Sunday
		if weekend && iv.Expected > 1 || !weekend && (iv.Expected < 6 || iv.Expected > 8 || iv.Lower > 6 || iv.Upper < 8) {
			t.Errorf("checkout on %s: %v in [%v, %v], want about 0 at weekends, 6–8 inside the band on weekdays",
				iv.Start.Format("Mon"), iv.Expected, iv.Lower, iv.Upper)
		}
	}
	cur, err := baselines.Current(context.Background(), st.Conn(), metrics.StepDay)
	if err != nil {
		t.Fatal(err)
	}
	want, err := baselines.Forecasts(cur, baselines.ForecastQuery{KPI: "deployments", Services: []string{"checkout"}, At: anomalyDay,
		Horizon: 7 * day})
	if err != nil {
		t.Fatal(err)
	}
	var got, wanted bytes.Buffer
	json.NewEncoder(&got).Encode(doc)
	json.NewEncoder(&wanted).Encode(want)
	if got.String() != wanted.String() {
		t.Errorf("the API's forecast differs from baselines.Forecasts:\n%s\n%s", got.String(), wanted.String())
	}
}

// TestAnomalies: the anomalies are those anomaly.Records reads, filtered
// and limited; search's failing Monday is among them.
func TestAnomalies(t *testing.T) {
	st := history(t)
	srv := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Log: testenv.Logger(t)}))
	defer srv.Close()
	recs, err := anomaly.Records(context.Background(), st.Conn(), anomalyDay, anomalyDay.Add(day))
	if err != nil {
		t.Fatal(err)
	}
	rng := "from=" + anomalyDay.Format(time.DateOnly) + "&to=" + anomalyDay.Add(day).Format(time.DateOnly)
	var doc api.AnomaliesDoc
	getJSON(t, srv, "", "/api/v1/anomalies?"+rng, &doc)
	if doc.Total != len(recs) || len(doc.Anomalies) != len(recs) || doc.Truncated || len(recs) < 2 {
		t.Fatalf("%d anomalies (total %d), anomaly.Records reads %d", len(doc.Anomalies), doc.Total, len(recs))
	}
	for i, a := range doc.Anomalies {
		r := recs[i]
		if a.Series.KPI != r.Series.KPI || a.Series.Service != r.Series.Service || a.Series.Team != r.Series.Team ||
			!a.Start.Equal(r.Start) || !eq(a.Observed, &r.Observed) || !eq(a.Upper, &r.Upper) || a.Direction != r.Direction ||
			a.Severity != r.Severity || a.Firing != r.Firing {
			t.Errorf("anomaly %d: %+v, recorded %+v", i, a, r)
		}
	}
	getJSON(t, srv, "", "/api/v1/anomalies?"+rng+"&kpi=change_failure_rate&service=search&step=day", &doc)
	if len(doc.Anomalies) != 1 || !eq(doc.Anomalies[0].Observed, ptr(0.4)) || doc.Anomalies[0].Direction != "up" ||
		!doc.Anomalies[0].Firing || doc.Anomalies[0].Series.Team != "discovery" {
		t.Errorf("search's change failure rate: %+v, want one firing anomaly of 40%% up", doc.Anomalies)
	}
	// Its factors, in words and one by one: the new hire's 8 deployments,
	// all failed, where the baseline expects a fraction of one.
	a := doc.Anomalies[0]
	if a.Factors != "8 of the 8 failed deployments were by actor new-hire, who made 8 deployments in total." || len(a.FactorList) != 1 {
		t.Fatalf("search's factors: %q %+v, want the new hire's alone", a.Factors, a.FactorList)
	}
	if f := a.FactorList[0]; f.Dimension != "actor" || f.Value != "new-hire" || f.Observed != 8 || f.Total != 8 || f.Share != 1 ||
		f.Of != 8 || f.Expected <= 0 || f.Expected >= 1 || math.Abs(f.Excess-(8-f.Expected)) > 1e-9 {
		t.Errorf("search's factor %+v, want actor new-hire: 8 observed of 8, share 1, of 8, excess 8 − expected (0 < expected < 1)", f)
	}
	if a.Owner != "discovery" || a.Tier != anomaly.NoTier {
		t.Errorf("without a catalog, owner %q and tier %q, want the team discovery and %s", a.Owner, a.Tier, anomaly.NoTier)
	}
	// With a catalog, the owner and tier labels its alert carries.
	cat, err := catalog.Parse("c.yaml", []byte("- {name: search, owner: group:default/search-squad, tier: \"1\"}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	withCatalog := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Log: testenv.Logger(t), Catalog: func() *catalog.Catalog { return cat }}))
	defer withCatalog.Close()
	var catDoc api.AnomaliesDoc
	getJSON(t, withCatalog, "", "/api/v1/anomalies?"+rng+"&kpi=change_failure_rate&service=search&step=day", &catDoc)
	if len(catDoc.Anomalies) != 1 || catDoc.Anomalies[0].Owner != "search-squad" || catDoc.Anomalies[0].Tier != "tier-1" {
		t.Errorf("with a catalog: %+v, want owner search-squad, tier tier-1", catDoc.Anomalies)
	}
	getJSON(t, srv, "", "/api/v1/anomalies?"+rng+"&limit=1", &doc)
	if len(doc.Anomalies) != 1 || doc.Total != len(recs) || !doc.Truncated {
		t.Errorf("limit 1: %d anomalies, total %d, truncated %v", len(doc.Anomalies), doc.Total, doc.Truncated)
	}
	getJSON(t, srv, "", "/api/v1/anomalies?"+rng+"&step=hour", &doc)
	if len(doc.Anomalies) != 0 || doc.Total != 0 {
		t.Errorf("hourly anomalies where only days were judged: %+v", doc)
	}
}

// TestExplain: the rows behind a figure are metrics.Explain's, cut to the
// limit.
func TestExplain(t *testing.T) {
	st := history(t)
	srv := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Log: testenv.Logger(t)}))
	defer srv.Close()
	for _, c := range []struct {
		kpi           string
		from          time.Time
		limit, rows   int
		failedOrBlame string // a cell some row must hold
	}{
		{"change_failure_rate", anomalyDay, 0, 20, "failure"},
		{"change_failure_rate", anomalyDay, 5, 5, "failure"},
		{"mttr", anomalyDay.Add(day), 0, 1, "INC-15"},
	} {
		path := fmt.Sprintf("/api/v1/kpis/%s/explain?from=%s&to=%s&service=search", c.kpi, c.from.Format(time.DateOnly),
			c.from.Add(day).Format(time.DateOnly))
		if c.limit > 0 {
			path += fmt.Sprintf("&limit=%d", c.limit)
		}
		var doc api.ExplanationDoc
		getJSON(t, srv, "", path, &doc)
		e, err := metrics.Explain(context.Background(), st.Conn(), c.kpi, metrics.Query{From: c.from, To: c.from.Add(day), Services: []string{"search"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(doc.Rows) != c.rows || doc.Total != len(e.Rows) || doc.Truncated != (c.rows < len(e.Rows)) || doc.Formula != e.Formula ||
			!slices.Equal(doc.Columns, e.Columns) {
			t.Errorf("%s: %d rows of %d (truncated %v), metrics explains %d; want %d", path, len(doc.Rows), doc.Total, doc.Truncated,
				len(e.Rows), c.rows)
			continue
		}
		var cells []string
		for i, r := range doc.Rows {
			if !slices.Equal(r, e.Rows[i]) {
				t.Errorf("%s row %d: %q, metrics says %q", path, i, r, e.Rows[i])
			}
			cells = append(cells, r...)
		}
		if !slices.Contains(cells, c.failedOrBlame) {
			t.Errorf("%s: no row holds %q: %q", path, c.failedOrBlame, doc.Rows)
		}
	}
	var doc api.ExplanationDoc
	getJSON(t, srv, "", "/api/v1/kpis/change_failure_rate/explain?service=search&from="+anomalyDay.Format(time.DateOnly)+"&to="+
		anomalyDay.Add(day).Format(time.DateOnly), &doc)
	failed := 0
	for _, r := range doc.Rows {
		if r[len(r)-1] == "yes" {
			failed++
		}
	}
	if failed != 8 {
		t.Errorf("search failed %d deployments on the anomalous Monday, want 8", failed)
	}
}

// TestOpenAPI checks the served OpenAPI document against the handlers: it
// is a valid OpenAPI 3 document; every request below is routed by it to a
// documented operation, those meant to succeed are valid requests by it,
// and every response, errors included, is valid by its schemas; and every
// response code it documents for an operation is reached.
func TestOpenAPI(t *testing.T) {
	const token = "api-t0ken"
	st := history(t)
	var unavailable error
	newServer := func(st *store.Store) *httptest.Server {
		s := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Token: token, Available: func() error { return unavailable },
			Log: testenv.Logger(t)}))
		t.Cleanup(s.Close)
		return s
	}
	srv := newServer(st)
	// A database whose tables lack the columns the queries read: every
	// query fails with a ClickHouse error that is no outage.
	broken := testenv.Store(t, testenv.Database(t))
	for _, table := range []string{"deployment_events", "incident_events", "current_baselines", "anomalies"} {
		for _, stmt := range []string{"DROP TABLE " + table, "CREATE TABLE " + table + " (x UInt8) ENGINE = Memory"} {
			if err := broken.Conn().Exec(context.Background(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	brokenSrv := newServer(broken)

	code, raw := get(t, srv, token, "/api/v1/openapi.json")
	if code != 200 {
		t.Fatalf("openapi.json: %d %s", code, raw)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("the served document is no valid OpenAPI 3: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: srv.URL}, {URL: brokenSrv.URL}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	d := func(t time.Time) string { return t.Format(time.DateOnly) }
	week := "from=" + d(anomalyDay.Add(-7*day)) + "&to=" + d(anomalyDay.Add(2*day))
	monday := "from=" + d(anomalyDay) + "&to=" + d(anomalyDay.Add(day))
	reached := map[string]bool{} // "path code"
	type call struct {
		name, path string
		broken     bool   // against the broken database
		down       bool   // the schema not available
		auth       string // "" sends the token, "none" nothing
		want       int
	}
	calls := []call{
		{"kpis", "/api/v1/kpis?" + week + "&by=service&bucket=week&compare=true", false, false, "", 200},
		{"kpis, bad dimension", "/api/v1/kpis?by=region", false, false, "", 400},
		{"series by day", "/api/v1/kpis/change_failure_rate/series?" + week + "&by=service,team", false, false, "", 200},
		{"series by month in Berlin", "/api/v1/kpis/lead_time/series?" + week + "&step=month&tz=Europe/Berlin", false, false, "", 200},
		{"series with an unbounded gap", "/api/v1/kpis/recovery_time/series?" + week + "&max_gap=unbounded", false, false, "", 200},
		{"series by hour", "/api/v1/kpis/deployments/series?step=hour", false, false, "", 400},
		{"series over too many buckets", "/api/v1/kpis/deployments/series?from=2024-01-01&to=2026-01-01&step=day", false, false, "", 400},
		{"series of no KPI", "/api/v1/kpis/happiness/series", false, false, "", 404},
		{"baselines", "/api/v1/kpis/deployments/baselines?step=day&team=payments,discovery", false, false, "", 200},
		{"baselines at a date", "/api/v1/kpis/mttr/baselines?at=2026-03-01", false, false, "", 200},
		{"baselines of a week step", "/api/v1/kpis/deployments/baselines?step=week", false, false, "", 400},
		{"baselines of an unbaselined KPI", "/api/v1/kpis/mtta/baselines", false, false, "", 404},
		{"forecast", "/api/v1/kpis/incidents/forecast?by=team&horizon=2w&at=" + d(anomalyDay), false, false, "", 200},
		{"forecast of a rate", "/api/v1/kpis/change_failure_rate/forecast?horizon=36h&level=0.5&service=search", false, false, "", 200},
		{"forecast per hour, none learnt", "/api/v1/kpis/incidents/forecast?step=hour", false, false, "", 404},
		{"forecast of a duration", "/api/v1/kpis/mttr/forecast", false, false, "", 200},
		{"forecast over a year", "/api/v1/kpis/deployments/forecast?horizon=365d", false, false, "", 400},
		{"forecast by team and environment", "/api/v1/kpis/deployments/forecast?by=team,environment", false, false, "", 400},
		{"forecast of an unbaselined KPI", "/api/v1/kpis/mtta/forecast", false, false, "", 404},
		{"anomalies", "/api/v1/anomalies?" + monday + "&service=search,checkout", false, false, "", 200},
		{"anomalies by default", "/api/v1/anomalies", false, false, "", 200},
		{"anomalies of no KPI", "/api/v1/anomalies?kpi=happiness", false, false, "", 400},
		{"anomalies over four years", "/api/v1/anomalies?from=2022-01-01&to=2026-01-01", false, false, "", 400},
		{"explain", "/api/v1/kpis/lead_time/explain?" + week + "&limit=3", false, false, "", 200},
		{"explain incidents", "/api/v1/kpis/mtta/explain?" + week + "&team=discovery", false, false, "", 200},
		{"explain the change calendar", "/api/v1/kpis/deployments_outside_window/explain?" + week, false, false, "", 200},
		{"explain, no limit", "/api/v1/kpis/rework_rate/explain?limit=0", false, false, "", 400},
		{"explain, over api.max_rows", "/api/v1/kpis/rework_rate/explain?limit=10001", false, false, "", 400},
		{"explain of an unexplainable KPI", "/api/v1/kpis/patches_overdue/explain", false, false, "", 404},
		{"openapi.json", "/api/v1/openapi.json", false, false, "", 200},
	}
	// Every resource without the token or with a wrong one, and the data
	// resources with a broken database and before the schema is migrated.
	for _, p := range []string{"/api/v1/kpis", "/api/v1/kpis/deployments/series", "/api/v1/kpis/deployments/baselines", "/api/v1/kpis/deployments/forecast",
		"/api/v1/anomalies", "/api/v1/kpis/change_failure_rate/explain", "/api/v1/openapi.json"} {
		calls = append(calls, call{"no token: " + p, p, false, false, "none", 401}, call{"wrong token: " + p, p, false, false, "Bearer x", 401})
		if !strings.HasSuffix(p, "openapi.json") {
			calls = append(calls, call{"broken database: " + p, p, true, false, "", 500}, call{"schema not migrated: " + p, p, false, true, "", 503})
		}
	}
	for _, c := range calls {
		s := srv
		if c.broken {
			s = brokenSrv
		}
		unavailable = nil
		if c.down {
			unavailable = errors.New("clickhouse: migrating the schema")
		}
		req, _ := http.NewRequest(http.MethodGet, s.URL+c.path, nil)
		switch c.auth {
		case "":
			req.Header.Set("Authorization", "Bearer "+token)
		case "none":
		default:
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: GET %s: %d %.300s, want %d", c.name, c.path, resp.StatusCode, body, c.want)
			continue
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s: GET %s is no documented route: %v", c.name, c.path, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}}
		if c.want == 200 {
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s: a request the server serves is invalid by the document: %v", c.name, err)
			}
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(body))}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s: the response %d is invalid by the document: %v\n%.500s", c.name, resp.StatusCode, err, body)
		}
		reached[fmt.Sprintf("%s %d", route.Path, resp.StatusCode)] = true
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				if !reached[path+" "+code] {
					t.Errorf("%s %s: documented response %s never reached", method, path, code)
				}
			}
		}
	}
}

// TestMethodsAndUnknownPaths: every resource answers only GET, and a path
// under /api/ that names none gets a 404 in the API's error shape.
func TestMethodsAndUnknownPaths(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Options{Conn: testenv.Store(t, testenv.Database(t)).Conn(), Log: testenv.Logger(t)}))
	defer srv.Close()
	for _, path := range []string{"/api/v1/kpis", "/api/v1/kpis/mttr/series", "/api/v1/kpis/mttr/baselines", "/api/v1/kpis/mttr/explain",
		"/api/v1/anomalies", "/api/v1/openapi.json"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" || !strings.Contains(e.Error, "use GET") {
			t.Errorf("POST %s: %d, Allow %q, %q; want 405 naming GET", path, resp.StatusCode, resp.Header.Get("Allow"), e.Error)
		}
	}
	for _, path := range []string{"/api/v1/kpi", "/api/v1/kpis/", "/api/v1/kpis/mttr", "/api/v1/kpis/mttr/series/extra", "/api/v2/kpis"} {
		code, body := get(t, srv, "", path)
		var e struct{ Error string }
		if json.Unmarshal(body, &e); code != http.StatusNotFound || !strings.Contains(e.Error, "/api/v1/openapi.json") {
			t.Errorf("GET %s: %d %s; want a 404 pointing at the document", path, code, body)
		}
	}
}
