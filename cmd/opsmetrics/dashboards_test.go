package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opsmetrics/opsmetrics/dashboards"
)

// grafanaRecorder is a minimal Grafana: nothing exists (every GET is 404),
// every create succeeds, and it records each request with its auth header
// and body.
type grafanaRecorder struct {
	mu       sync.Mutex
	requests []recordedRequest
}

type recordedRequest struct {
	method, path, auth string
	body               map[string]any
}

func (g *grafanaRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &body)
	g.mu.Lock()
	g.requests = append(g.requests, recordedRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), body})
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"not found"}`)
	case r.URL.Path == "/api/folders":
		io.WriteString(w, `{"id":1,"uid":"opsmetrics","title":"opsmetrics","version":1}`)
	case r.URL.Path == "/api/datasources":
		io.WriteString(w, `{"id":2,"message":"Datasource added","name":"x"}`)
	case r.URL.Path == "/api/dashboards/db":
		io.WriteString(w, `{"id":3,"uid":"x","status":"success","version":1}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"no such endpoint"}`)
	}
}

func (g *grafanaRecorder) recorded() []recordedRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]recordedRequest(nil), g.requests...)
}

func TestDashboardsProvision(t *testing.T) {
	boards, err := dashboards.All(dashboards.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"folder opsmetrics created", "datasource opsmetrics-clickhouse created", "datasource opsmetrics-prometheus created"}
	for _, d := range boards {
		want = append(want, fmt.Sprintf("dashboard %s created", *d.Uid))
	}
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "grafana-password")
	if err := os.WriteFile(passwordFile, []byte("admin-pw-3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_CH_PASSWORD", "ch-pw-1")
	for _, tc := range []struct {
		name     string
		env      string // OPSMETRICS_GRAFANA_TOKEN
		flags    []string
		wantAuth string
	}{
		{"token from the environment", "glsa_cli_token", nil, "Bearer glsa_cli_token"},
		{"basic auth", "ignored-when-a-user-is-given", []string{"--grafana-user", "admin", "--grafana-password-file", passwordFile},
			"Basic YWRtaW46YWRtaW4tcHctMw=="}, // admin:admin-pw-3
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(grafanaTokenEnv, tc.env)
			g := &grafanaRecorder{}
			srv := httptest.NewServer(g)
			defer srv.Close()
			args := append([]string{"dashboards", "provision", "--grafana-url", srv.URL,
				"--clickhouse", "clickhouse://grafana@ch.example:9440/opsmetrics?secure=true",
				"--prometheus-url", "http://prometheus:9090", "--password-env", "TEST_CH_PASSWORD"}, tc.flags...)
			out, code := stdout(t, args...)
			if code != 0 {
				t.Fatalf("provision: exit %d\n%s", code, out)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				got = append(got, strings.Join(strings.Fields(l), " "))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("output:\n%s\nwant lines:\n%s", out, strings.Join(want, "\n"))
			}
			reqs := g.recorded()
			if len(reqs) != 2*len(want) {
				t.Errorf("%d requests, want a GET and a POST for each of %d objects", len(reqs), len(want))
			}
			for _, r := range reqs {
				if r.auth != tc.wantAuth {
					t.Errorf("%s %s: Authorization %q, want %q", r.method, r.path, r.auth, tc.wantAuth)
				}
				if r.method == http.MethodPost && r.path == "/api/datasources" && r.body["uid"] == dashboards.ClickHouseUID {
					jd, _ := r.body["jsonData"].(map[string]any)
					secure, _ := r.body["secureJsonData"].(map[string]any)
					if jd["host"] != "ch.example" || jd["port"] != float64(9440) || jd["secure"] != true ||
						jd["defaultDatabase"] != "opsmetrics" || secure["password"] != "ch-pw-1" {
						t.Errorf("clickhouse data source body %v", r.body)
					}
				}
			}
		})
	}
}

func TestDashboardsProvisionRejectsBadInput(t *testing.T) {
	t.Setenv(grafanaTokenEnv, "glsa_cli_token")
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"bad URL", []string{"--grafana-url", "ftp://grafana:3000"}, exitUsage},
		{"URL without a scheme", []string{"--grafana-url", "grafana:3000"}, exitUsage},
		{"no URL", nil, exitUsage},
		{"user without a password file", []string{"--grafana-url", "http://127.0.0.1:1", "--grafana-user", "admin"}, exitUsage},
		{"missing token file", []string{"--grafana-url", "http://127.0.0.1:1", "--grafana-token-file", filepath.Join(t.TempDir(), "none")}, exitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, code := stdout(t, append([]string{"dashboards", "provision"}, tc.args...)...); code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, out)
			}
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		t.Setenv(grafanaTokenEnv, "")
		if _, code := stdout(t, "dashboards", "provision", "--grafana-url", "http://127.0.0.1:1"); code != exitUsage {
			t.Errorf("exit %d, want 2", code)
		}
	})
}
