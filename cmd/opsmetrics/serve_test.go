package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/publish"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startOpsmetrics starts the opsmetrics binary with args and, besides the
// test's environment, env; it is killed when the test ends. done receives
// its exit.
func startOpsmetrics(t *testing.T, env []string, args ...string) (*exec.Cmd, <-chan error, *testenv.Buffer) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Env = append(append(os.Environ(), "OPSMETRICS_CONFIG="), env...)
	logs := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, done, logs
}

// TestServeSecretsAndProbes runs `opsmetrics serve` with every component,
// the ClickHouse DSN (with a password) and the API token from files. It
// ingests, answers the probes, refuses the API without the token, and shuts
// down gracefully on SIGTERM; and neither its logs nor /metrics hold the
// password or the token.
func TestServeSecretsAndProbes(t *testing.T) {
	srv := testenv.ClickHouse(t)
	u, _ := url.Parse(testenv.Database(t))
	dsn := fmt.Sprintf("clickhouse://%s:%s@%s%s", clickhouse.PasswordUser, clickhouse.Password, u.Host, u.Path)
	_ = srv
	topics := broker.DefaultTopics()
	_, brokers := testenv.Kafka(t, 3, append(topics.Inputs(), topics.DeadLetter)...)
	const token = "api-T0ken-for-tests"
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "dsn"), []byte(dsn+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600)

	listen, metricsAddr := freeAddr(t), freeAddr(t)
	cmd, done, logs := startOpsmetrics(t, []string{"OPSMETRICS_CLICKHOUSE_FILE=" + filepath.Join(dir, "dsn"),
		"OPSMETRICS_API_TOKEN_FILE=" + filepath.Join(dir, "token")},
		"serve", "--brokers", strings.Join(brokers, ","), "--listen", listen,
		"--metrics-addr", metricsAddr, "--log-level", "debug", "--session-timeout", "6s", "--shutdown-timeout", "10s")

	get := func(addr, path, auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testenv.Eventually(t, 60*time.Second, "serve ready", func() (bool, string) {
		code, body := get(listen, "/readyz", "")
		return code == http.StatusOK, fmt.Sprintf("%d %s\n%s", code, body, logs.String())
	})
	// Ingestion runs inside serve.
	pub := publish.New(brokers, publish.TopicsFrom(topics), nil)
	defer pub.Close()
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	e := &event.Event{Kind: event.KindDeployment, ID: "e-serve-1", Time: t0, Deployment: &event.Deployment{ID: "d-serve-1",
		Service: "checkout", Environment: "production", Status: event.DeploymentSuccess, FinishedAt: t0}}
	line, err := event.MarshalNative(e)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := pub.Message(line)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	st := testenv.Store(t, dsn)
	testenv.Eventually(t, 60*time.Second, "the event ingested by serve", func() (bool, string) {
		n := testenv.Count(t, st, "SELECT count() FROM deployments WHERE deployment_id = 'd-serve-1'")
		return n == 1, fmt.Sprint(n)
	})

	kpis := "/api/v1/kpis?from=" + t0.Add(-time.Hour).Format(time.RFC3339) + "&to=" + t0.Add(time.Hour).Format(time.RFC3339)
	if code, _ := get(listen, kpis, ""); code != http.StatusUnauthorized {
		t.Errorf("API without a token: %d, want 401", code)
	}
	if code, _ := get(listen, kpis, "Bearer wrong"); code != http.StatusUnauthorized {
		t.Errorf("API with a wrong token: %d, want 401", code)
	}
	if code, body := get(listen, kpis, "Bearer "+token); code != http.StatusOK || !strings.Contains(body, `"deployments":1`) {
		t.Errorf("API with the token: %d %s", code, body)
	}
	if code, _ := get(listen, "/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	code, metrics := get(metricsAddr, "/metrics", "")
	if code != http.StatusOK || !strings.Contains(metrics, "opsmetrics_ingest_events_stored_total") {
		t.Errorf("/metrics: %d, %d bytes", code, len(metrics))
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want 0\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
	for _, secret := range []string{clickhouse.Password, token} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs hold a secret %q", secret)
		}
		if strings.Contains(metrics, secret) {
			t.Errorf("/metrics holds a secret %q", secret)
		}
	}
	if !strings.Contains(logs.String(), "API authentication failed") {
		t.Errorf("failed authentication not logged:\n%s", logs.String())
	}
}

func TestServeRejectsBadComponents(t *testing.T) {
	if _, code := stdout(t, "serve", "--clickhouse", "clickhouse://default@127.0.0.1:1/x", "--components", "ingest,vibes"); code != exitUsage {
		t.Errorf("unknown component: exit %d, want 2", code)
	}
	if _, code := stdout(t, "serve", "--clickhouse", "clickhouse://default@127.0.0.1:1/x", "--components", "ingest"); code != exitUsage {
		t.Errorf("ingest without --brokers: exit %d, want 2", code)
	}
	// A catalog that does not load is a configuration error at start.
	dir := t.TempDir()
	cat, file := filepath.Join(dir, "catalog.yaml"), filepath.Join(dir, "c.yaml")
	os.WriteFile(cat, []byte("- {name: checkout}\n"), 0o644)
	os.WriteFile(file, []byte("catalog:\n  path: "+cat+"\n"), 0o644)
	if _, code := stdout(t, "serve", "--clickhouse", "clickhouse://default@127.0.0.1:1/x", "--components", "anomaly",
		"--config", file, "--listen", freeAddr(t)); code != 1 {
		t.Errorf("a catalog without owners: exit %d, want 1", code)
	}
}

// TestServeOutlivesDependencies starts `opsmetrics serve` with ClickHouse
// stopped and no Kafka broker, brings them up, takes each away again and
// back: serve never exits, /healthz stays up, /readyz and the API say 503
// with the reason while a dependency is missing, and events land once it is
// back.
func TestServeOutlivesDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs serve through outages of Kafka and ClickHouse")
	}
	ch := testenv.OwnClickHouse(t)
	ch.Stop()
	dsn := ch.DSN("t_" + testenv.RandomName())
	topics := broker.DefaultTopics()
	kafkaAddr := freeAddr(t)
	_, portText, _ := net.SplitHostPort(kafkaAddr)
	port, _ := strconv.Atoi(portText)
	kafkaDir := t.TempDir()
	var broker *kfake.Cluster
	startKafka := func() {
		t.Helper()
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(kafkaDir),
			kfake.SeedTopics(3, append(topics.Inputs(), topics.DeadLetter)...))
		if err != nil {
			t.Fatalf("start kafka on %s: %v", kafkaAddr, err)
		}
		broker = c
	}
	t.Cleanup(func() {
		if broker != nil {
			broker.Close()
		}
	})

	listen := freeAddr(t)
	cmd, done, logs := startOpsmetrics(t, nil, "serve", "--components", "ingest,api", "--clickhouse", dsn, "--brokers", kafkaAddr,
		"--listen", listen, "--log-level", "debug", "--session-timeout", "6s", "--retry-max-backoff", "1s", "--batch-max-latency", "100ms")
	alive := func(what string) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("serve exited %s: %v\n%s", what, err, logs.String())
		default:
		}
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + listen + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	expect := func(what, path string, code int, mention string) {
		t.Helper()
		testenv.Eventually(t, 90*time.Second, what, func() (bool, string) {
			alive(what)
			c, body := get(path)
			return c == code && strings.Contains(body, mention), fmt.Sprintf("%d %s", c, body)
		})
	}
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	kpis := "/api/v1/kpis?from=" + t0.Add(-time.Hour).Format(time.RFC3339) + "&to=" + t0.Add(2*time.Hour).Format(time.RFC3339)
	var st *store.Store
	sent := 0
	land := func(what string) {
		t.Helper()
		sent++
		pub := publish.New([]string{kafkaAddr}, publish.TopicsFrom(topics), nil)
		defer pub.Close()
		id := fmt.Sprintf("d-outage-%d", sent)
		line, _ := event.MarshalNative(&event.Event{Kind: event.KindDeployment, ID: "e-" + id, Time: t0, Deployment: &event.Deployment{
			ID: id, Service: "checkout", Environment: "production", Status: event.DeploymentSuccess, FinishedAt: t0}})
		msg, _ := pub.Message(line)
		if err := pub.Send(context.Background(), msg); err != nil {
			t.Fatalf("%s: produce: %v", what, err)
		}
		testenv.Eventually(t, 90*time.Second, what, func() (bool, string) {
			alive(what)
			n := testenv.Count(t, st, "SELECT count() FROM deployments WHERE deployment_id = ?", id)
			return n == 1, fmt.Sprint(n)
		})
	}

	// Nothing is up.
	expect("/healthz with nothing up", "/healthz", 200, "ok")
	expect("/readyz says ClickHouse", "/readyz", 503, "clickhouse")
	expect("the API says the schema is not there", kpis, 503, "schema not migrated")

	// ClickHouse comes; Kafka is still missing.
	if err := ch.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect("/readyz waits for Kafka", "/readyz", 503, "waiting for Kafka")
	expect("the API answers without Kafka", kpis, 200, `"deployments":0`)
	st = testenv.Store(t, dsn) // migrated by serve by now

	// Kafka comes.
	startKafka()
	land("the first event, once Kafka is up")
	expect("ready", "/readyz", 200, "ready")

	// Kafka goes away, then comes back with its data.
	broker.Close()
	expect("/readyz says Kafka is failing", "/readyz", 503, "Kafka")
	expect("the API answers while Kafka is away", kpis, 200, `"deployments":1`)
	expect("/healthz while Kafka is away", "/healthz", 200, "ok")
	startKafka()
	land("an event after Kafka came back")
	expect("ready again", "/readyz", 200, "ready")

	// ClickHouse goes away under the running serve.
	ch.Stop()
	expect("the API says ClickHouse is unavailable", kpis, 503, "ClickHouse is unavailable")
	expect("/readyz says ClickHouse is unreachable", "/readyz", 503, "clickhouse unreachable")
	if err := ch.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	land("an event after ClickHouse came back")
	expect("the API after ClickHouse came back", kpis, 200, `"deployments":3`)

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop within 60s of SIGTERM")
	}
}

// TestServeFollowsCatalog runs `opsmetrics serve` with the API and the
// KPI gauges over a service catalog and a change calendar whose only
// window is tier-1's (every day but today): the API's tier slices, its
// tier filter and its deployments_outside_window, and the gauges' count,
// follow the catalog file when it changes, without a restart.
func TestServeFollowsCatalog(t *testing.T) {
	dsn := testenv.Database(t)
	st := testenv.Store(t, dsn)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var recs []store.Record
	for i, svc := range []string{"checkout", "checkout", "search"} {
		id := fmt.Sprintf("d-%d", i)
		recs = append(recs, store.Record{Topic: "t", Offset: int64(i), Event: &event.Event{Kind: event.KindDeployment, ID: "e-" + id, Time: t0,
			Deployment: &event.Deployment{ID: id, Service: svc, Environment: "production", Status: event.DeploymentSuccess, StartedAt: t0, FinishedAt: t0}}})
	}
	if err := st.Write(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	var days []string
	for d := time.Monday; d <= time.Saturday+1; d++ {
		if wd := time.Weekday(d % 7); wd != t0.Weekday() {
			days = append(days, strings.ToLower(wd.String()[:3]))
		}
	}
	dir := t.TempDir()
	catalogDir := filepath.Join(dir, "catalog")
	os.Mkdir(catalogDir, 0o755)
	writeCatalog := func(tier1 string) {
		var b strings.Builder
		for _, svc := range []string{"checkout", "search"} {
			tier := "tier-2"
			if svc == tier1 {
				tier = "tier-1"
			}
			fmt.Fprintf(&b, "- {name: %s, owner: team-%s, tier: %s}\n", svc, svc, tier)
		}
		if err := os.WriteFile(filepath.Join(catalogDir, "services.yaml"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCatalog("checkout")
	config := filepath.Join(dir, "opsmetrics.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`clickhouse: %s
catalog:
  path: %s
  reload_interval: 1s
change_calendar:
  windows:
    - name: tier-1-not-today
      environments: [production]
      tiers: [tier-1]
      days: [%s]
      from: "00:00"
      to: "24:00"
`, dsn, catalogDir, strings.Join(days, ", "))), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, metricsAddr := freeAddr(t), freeAddr(t)
	_, _, logs := startOpsmetrics(t, nil, "serve", "--config", config, "--components", "api,kpi", "--listen", listen,
		"--metrics-addr", metricsAddr, "--kpi-refresh", "1s")
	get := func(addr, path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	rng := "from=" + t0.Add(-time.Hour).Format(time.RFC3339) + "&to=" + t0.Add(time.Hour).Format(time.RFC3339)
	// tiers is "tier deployments outside" of each tier slice, sorted.
	tiers := func() string {
		code, body := get(listen, "/api/v1/kpis?by=tier&"+url.PathEscape(rng))
		if code != http.StatusOK {
			return fmt.Sprintf("%d %.200s", code, body)
		}
		var doc struct {
			Summaries []struct {
				Slice       map[string]string `json:"slice"`
				Deployments uint64            `json:"deployments"`
				Outside     uint64            `json:"deployments_outside_window"`
			} `json:"summaries"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			return err.Error()
		}
		var out []string
		for _, s := range doc.Summaries {
			out = append(out, fmt.Sprintf("%s %d %d", s.Slice["tier"], s.Deployments, s.Outside))
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	gauge := func() string {
		_, body := get(metricsAddr, "/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, `opsmetrics_kpi_org_deployments_outside_window{window="7d"}`) {
				return strings.Fields(line)[1]
			}
		}
		return "none"
	}
	// stored is the catalog serve stored for the dashboards: "service tier" of each.
	stored := func() string {
		var out []string
		rows, err := st.Conn().Query(context.Background(), "SELECT service, tier FROM current_service_catalog ORDER BY service")
		if err != nil {
			return err.Error()
		}
		defer rows.Close()
		for rows.Next() {
			var svc, tier string
			if err := rows.Scan(&svc, &tier); err != nil {
				return err.Error()
			}
			out = append(out, svc+" "+tier)
		}
		return strings.Join(out, ", ")
	}
	follow := func(want, wantGauge, wantStored string) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, "the API's tiers "+want+", the gauge "+wantGauge+" and the stored catalog "+wantStored, func() (bool, string) {
			got, g, c := tiers(), gauge(), stored()
			return got == want && g == wantGauge && c == wantStored, fmt.Sprintf("tiers %q, gauge %s, stored %q\n%s", got, g, c, logs.String())
		})
	}
	follow("tier-1 2 2, tier-2 1 0", "2", "checkout tier-1, search tier-2")
	if code, body := get(listen, "/api/v1/kpis?tier=tier-1&"+url.PathEscape(rng)); code != http.StatusOK || !strings.Contains(body, `"deployments":2`) {
		t.Errorf("tier=tier-1: %d %.300s", code, body)
	}
	// search becomes tier-1 and checkout tier-2.
	writeCatalog("search")
	follow("tier-1 1 1, tier-2 2 0", "1", "checkout tier-2, search tier-1")
	if code, body := get(listen, "/api/v1/kpis?tier=tier-1&"+url.PathEscape(rng)); code != http.StatusOK || !strings.Contains(body, `"deployments":1`) {
		t.Errorf("tier=tier-1 after the change: %d %.300s", code, body)
	}
}
