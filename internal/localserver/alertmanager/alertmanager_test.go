package alertmanager_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/localserver/alertmanager"
)

func TestStartRestartStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := alertmanager.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { s.Stop() })

	wantNoAlerts := func(when string) {
		t.Helper()
		alerts, err := s.Alerts(ctx)
		if err != nil {
			t.Fatalf("%s: list alerts: %v", when, err)
		}
		if len(alerts) != 0 {
			t.Fatalf("%s: got %d alerts %+v, want none", when, len(alerts), alerts)
		}
	}
	wantNoAlerts("after start")

	url := s.URL
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if s.URL != url {
		t.Errorf("URL after restart = %s, want %s", s.URL, url)
	}
	wantNoAlerts("after restart")

	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if resp, err := http.Get(s.URL + "/-/ready"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /-/ready after stop answered %s, want a connection error", resp.Status)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}

	// Restart also brings back a stopped server.
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart after stop: %v", err)
	}
	wantNoAlerts("after restart from stopped")
}
