package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/chserver"
	"github.com/opsmetrics/opsmetrics/internal/config"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/publish"
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

// TestServeSecretsAndProbes runs `opsmetrics serve` with every component,
// the ClickHouse DSN (with a password) and the API token from files. It
// ingests, answers the probes, refuses the API without the token, and shuts
// down gracefully on SIGTERM; and neither its logs nor /metrics hold the
// password or the token.
func TestServeSecretsAndProbes(t *testing.T) {
	srv := testenv.ClickHouse(t)
	u, _ := url.Parse(testenv.Database(t))
	dsn := fmt.Sprintf("clickhouse://%s:%s@%s%s", chserver.PasswordUser, chserver.Password, u.Host, u.Path)
	_ = srv
	topics := config.Default().Topics
	_, brokers := testenv.Kafka(t, 3, append(topics.Inputs(), topics.DeadLetter)...)
	const token = "api-T0ken-for-tests"
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "dsn"), []byte(dsn+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600)

	listen, metricsAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(testenv.Binary(t), "serve", "--brokers", strings.Join(brokers, ","), "--listen", listen,
		"--metrics-addr", metricsAddr, "--log-level", "debug", "--session-timeout", "6s", "--shutdown-timeout", "10s")
	cmd.Env = append(os.Environ(), "OPSMETRICS_CLICKHOUSE_FILE="+filepath.Join(dir, "dsn"),
		"OPSMETRICS_API_TOKEN_FILE="+filepath.Join(dir, "token"), "OPSMETRICS_CONFIG=")
	logs := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

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
	if code, body := get(listen, kpis, "Bearer "+token); code != http.StatusOK || !strings.Contains(body, `"deployments": 1`) {
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
	for _, secret := range []string{chserver.Password, token} {
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
	if _, code := stdout(t, "serve", "--clickhouse", "clickhouse://default@127.0.0.1:1/x", "--components", "ingest,vibes"); code != 1 {
		t.Errorf("unknown component: exit %d, want 1", code)
	}
	if _, code := stdout(t, "serve", "--clickhouse", "clickhouse://default@127.0.0.1:1/x", "--components", "ingest"); code != 1 {
		t.Errorf("ingest without --brokers: exit %d, want 1", code)
	}
}
