package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/api"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
	"github.com/opsmetrics/opsmetrics/metrics"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestKPIs(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	var recs []store.Record
	for i, s := range []event.DeploymentStatus{event.DeploymentSuccess, event.DeploymentFailure} {
		id := []string{"d1", "d2"}[i]
		recs = append(recs, store.Record{Offset: int64(i), Event: &event.Event{Kind: event.KindDeployment, ID: id, Time: t0,
			Deployment: &event.Deployment{ID: id, Service: "checkout", Team: "payments", Environment: "production", Status: s, FinishedAt: t0}}})
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Defaults: metrics.Query{Production: []string{"production"}}, Log: testenv.Logger(t)}))
	defer srv.Close()
	get := func(params string) (int, string) {
		resp, err := http.Get(srv.URL + "/api/v1/kpis?" + params)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := get("from=2026-03-01&to=2026-03-03&by=service,team")
	if code != 200 {
		t.Fatalf("GET: %d %s", code, body)
	}
	// The same document as the command line's JSON.
	p := metrics.Params{From: "2026-03-01", To: "2026-03-03", By: "service,team", Production: "production"}
	req, err := p.Parse(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := metrics.Run(context.Background(), st.Conn(), req.Query, req.Bucket, req.Location, req.Compare)
	if err != nil {
		t.Fatal(err)
	}
	// The CLI indents it; the API does not.
	var indented, want bytes.Buffer
	rep.WriteJSON(&indented)
	if err := json.Compact(&want, indented.Bytes()); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(body) != want.String() {
		t.Errorf("API and CLI documents differ:\n%s\n%s", body, want.String())
	}
	var doc struct {
		Summaries []struct {
			CFR float64 `json:"change_failure_rate"`
		} `json:"summaries"`
	}
	if json.Unmarshal([]byte(body), &doc); len(doc.Summaries) != 1 || doc.Summaries[0].CFR != 0.5 {
		t.Errorf("summary: %s", body)
	}
	// Built, the KPI rollup answers with the same figures, and says when it
	// was built.
	if _, _, err := metrics.RefreshRollup(context.Background(), st.Conn(), metrics.Query{Production: []string{"production"}}); err != nil {
		t.Fatal(err)
	}
	code, rolled := get("from=2026-03-01&to=2026-03-03&by=service,team")
	var before, after struct {
		Summaries []map[string]any `json:"summaries"`
	}
	if err := json.Unmarshal([]byte(body), &before); err != nil || code != 200 {
		t.Fatalf("GET: %d %s", code, rolled)
	}
	if err := json.Unmarshal([]byte(rolled), &after); err != nil || len(after.Summaries) != 1 {
		t.Fatalf("GET from the rollup: %s", rolled)
	}
	if _, ok := after.Summaries[0]["as_of"].(string); !ok {
		t.Errorf("a summary read from the KPI rollup has no as_of: %s", rolled)
	}
	delete(after.Summaries[0], "as_of")
	if a, b := fmt.Sprint(after.Summaries), fmt.Sprint(before.Summaries); a != b {
		t.Errorf("the KPI rollup's summary differs from the raw rows':\n%s\n%s", a, b)
	}

	for _, c := range []struct{ params, mention string }{
		{"from=yesterday", "from"},
		{"by=region", "by"},
		{"bucket=hour", "bucket"},
		{"tz=Mars/Olympus", "tz"},
		{"compare=perhaps", "compare"},
		{"dora_report=1999", "dora_report"},
		{"max_gap=-1h", "max_gap"},
		{"lead_time_lookback=soon", "lead_time_lookback"},
		{"from=2026-03-03&to=2026-03-01", "from"},
		{"frm=2026-03-01", "frm"},
		{"service=a&service=b", "once"},
	} {
		code, body := get(c.params)
		if code != 400 || !strings.Contains(body, c.mention) {
			t.Errorf("%s: %d %s; want 400 naming %s", c.params, code, body, c.mention)
		}
	}
	// Injection attempts are values, not SQL.
	for _, evil := range []string{"checkout' OR '1'='1", "x') OR 1=1 --", "'; DROP TABLE deployment_events; --"} {
		code, body := get("from=2026-03-01&to=2026-03-03&service=" + url.QueryEscape(evil) + "&team=" + url.QueryEscape(evil))
		if code != 200 || !strings.Contains(body, `"deployments":0`) {
			t.Errorf("service=%q: %d %s", evil, code, body)
		}
	}
	if n := testenv.Count(t, st, "SELECT count() FROM deployments"); n != 2 {
		t.Errorf("deployments after injection attempts: %d", n)
	}
	resp, err := http.Post(srv.URL+"/api/v1/kpis", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

// TestTokenAndProbes: with a token configured, /api/ needs it and a failed
// attempt is logged without it; the probes need none; /readyz reports what
// is not ready.
func TestTokenAndProbes(t *testing.T) {
	st := testenv.Store(t, testenv.Database(t))
	const token = "s3cr3t-t0ken-value"
	var logs bytes.Buffer
	var notReady error
	srv := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Token: token,
		Ready: func(context.Context) error { return notReady },
		Log:   slog.New(slog.NewTextHandler(&logs, nil))}))
	defer srv.Close()
	get := func(path, auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	kpis := "/api/v1/kpis?from=2026-03-01&to=2026-03-03"
	for _, c := range []struct {
		name, path, auth string
		want             int
	}{
		{"no token", kpis, "", http.StatusUnauthorized},
		{"wrong token", kpis, "Bearer not-" + token, http.StatusUnauthorized},
		{"basic instead of bearer", kpis, "Basic " + token, http.StatusUnauthorized},
		{"right token", kpis, "Bearer " + token, http.StatusOK},
		{"liveness needs no token", "/healthz", "", http.StatusOK},
		{"readiness needs no token", "/readyz", "", http.StatusOK},
	} {
		if code, body := get(c.path, c.auth); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "API authentication failed") {
		t.Errorf("failed authentication was not logged:\n%s", logs.String())
	}
	notReady = errors.New("clickhouse: schema version 3, want 4")
	if code, body := get("/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "schema version 3") {
		t.Errorf("not ready: %d %s", code, body)
	}
}

// TestLimits: requests over a bound get a 400 or a 503 that names the
// bound, and filters just under the bound still run.
func TestLimits(t *testing.T) {
	srv := testenv.OwnClickHouse(t)
	dsn := testenv.MigratedDatabase(t, srv)
	st := testenv.Store(t, dsn)
	var logs bytes.Buffer
	var unavailable error
	handler := func(l api.Limits) *httptest.Server {
		s := httptest.NewServer(api.New(api.Options{Conn: st.Conn(), Defaults: metrics.Query{Production: []string{"production"}},
			Available: func() error { return unavailable }, Limits: l, Log: slog.New(slog.NewTextHandler(&logs, nil))}))
		t.Cleanup(s.Close)
		return s
	}
	get := func(s *httptest.Server, params string) (int, string) {
		resp, err := http.Get(s.URL + "/api/v1/kpis?" + params)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	def := handler(api.Limits{})
	names := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			fmt.Fprintf(&b, "service-%d,", b.Len())
		}
		return b.String()[:n]
	}
	for _, c := range []struct {
		name, params string
		code         int
		mention      string
	}{
		{"year 9999", "from=9999-01-01&to=9999-02-01", 400, "outside the times ClickHouse stores"},
		{"from 9999 only", "from=9999-01-01", 400, "from: 9999-01-01"},
		{"before 1970", "from=1969-12-01&to=1970-02-01", 400, "outside the times ClickHouse stores"},
		{"comparison before 1970", "from=1970-01-02&to=1970-03-01&compare=true", 400, "previous period"},
		{"300 KB of filters", "from=2026-01-01&to=2026-02-01&service=" + names(300<<10), 400, "api.max_filter_bytes"},
		{"filters just under the bound", "from=2026-01-01&to=2026-02-01&service=" + names(30<<10) + "&team=" + names(30<<10), 200, `"summaries"`},
		{"three years weekly", "from=2023-03-06&to=2026-01-05&bucket=week", 400, "api.max_buckets"},
		{"four years", "from=2022-01-01&to=2026-01-01", 400, "api.max_range"},
	} {
		code, body := get(def, c.params)
		if code != c.code || !strings.Contains(body, c.mention) {
			t.Errorf("%s: %d %.300s; want %d mentioning %q", c.name, code, body, c.code, c.mention)
		}
	}
	few := handler(api.Limits{MaxBuckets: 10})
	if code, body := get(few, "from=2026-01-01&to=2026-01-11&bucket=day"); code != 200 {
		t.Errorf("ten daily buckets of ten: %d %s", code, body)
	}
	if code, body := get(few, "from=2026-01-01&to=2026-01-12&bucket=day"); code != 400 || !strings.Contains(body, "11 day buckets, more than 10 (api.max_buckets)") {
		t.Errorf("eleven daily buckets of ten: %d %s", code, body)
	}
	// Every resource is bounded by the query timeout.
	slow := handler(api.Limits{QueryTimeout: time.Nanosecond})
	month := "?from=2026-01-01&to=2026-02-01"
	for _, path := range []string{"/api/v1/kpis" + month, "/api/v1/kpis/mttr/series" + month, "/api/v1/kpis/mttr/baselines",
		"/api/v1/kpis/mttr/explain" + month, "/api/v1/anomalies" + month} {
		resp, err := http.Get(slow.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(body), "api.query_timeout") {
			t.Errorf("%s: query timeout: %d %s", path, resp.StatusCode, body)
		}
	}
	unavailable = errors.New("clickhouse: migrating the schema")
	if code, body := get(def, "from=2026-01-01&to=2026-02-01"); code != 503 || !strings.Contains(body, "migrating the schema") {
		t.Errorf("schema not ready: %d %s", code, body)
	}
	unavailable = nil
	srv.Stop()
	if code, body := get(def, "from=2026-01-01&to=2026-02-01"); code != 503 || !strings.Contains(body, "ClickHouse is unavailable") {
		t.Errorf("ClickHouse down: %d %s", code, body)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 4096 {
			t.Errorf("a log line of %d bytes: %.200s", len(line), line)
		}
	}
}

// TestFailedAuthenticationThrottled: a flood of bad tokens is logged once
// per period, the next line counting what was left out.
func TestFailedAuthenticationThrottled(t *testing.T) {
	var logs bytes.Buffer
	srv := httptest.NewServer(api.New(api.Options{Conn: testenv.Store(t, testenv.Database(t)).Conn(), Token: "t0ken",
		Log: slog.New(slog.NewTextHandler(&logs, nil))}))
	defer srv.Close()
	for range 50 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/kpis", nil)
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token: %d", resp.StatusCode)
		}
	}
	if n := strings.Count(logs.String(), "API authentication failed"); n != 1 {
		t.Errorf("50 failures logged %d times, want once per 10s:\n%s", n, logs.String())
	}
}
