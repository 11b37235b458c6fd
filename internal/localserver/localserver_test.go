package localserver_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/localserver"
)

// TestProcess supervises /bin/sh scripts as servers: one that becomes
// ready, one that ignores SIGTERM and is killed after the stop timeout,
// and one that exits during start-up, whose log the error shows.
func TestProcess(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "ready")
	ready := func() bool { _, err := os.Stat(flag); return err == nil }

	p := &localserver.Process{Name: "ready-server", Path: "/bin/sh", Args: []string{"-c", "sleep 0.2; touch " + flag + "; exec sleep 30"},
		Dir: dir, Log: filepath.Join(dir, "ready.log"), Ready: ready, StopTimeout: 5 * time.Second}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !p.Running() {
		t.Fatal("not running after a start")
	}
	if err := p.Stop(); err != nil || p.Running() {
		t.Fatalf("stop: %v, running %v", err, p.Running())
	}

	stubborn := &localserver.Process{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", `trap "" TERM; echo up; while :; do sleep 1; done`},
		Dir: dir, Log: filepath.Join(dir, "stubborn.log"), StopTimeout: 300 * time.Millisecond,
		Ready: func() bool { return localserver.TailFile(filepath.Join(dir, "stubborn.log")) == "up" }}
	if err := stubborn.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stubborn.Stop()
	if stubborn.Running() {
		t.Fatal("a server that ignores SIGTERM still runs after Stop")
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("killed after %v, before the stop timeout", took)
	}

	failing := &localserver.Process{Name: "failing", Path: "/bin/sh", Args: []string{"-c", "echo cannot bind the port >&2; exit 3"},
		Dir: dir, Log: filepath.Join(dir, "failing.log"), Ready: func() bool { return false }}
	err := failing.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "failing exited during start-up") || !strings.Contains(err.Error(), "cannot bind the port") {
		t.Errorf("a server that exits: %v", err)
	}

	slow := &localserver.Process{Name: "slow", Path: "/bin/sh", Args: []string{"-c", "exec sleep 30"},
		Dir: dir, Log: filepath.Join(dir, "slow.log"), Ready: func() bool { return false }, ReadyTimeout: 300 * time.Millisecond}
	if err := slow.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "slow not ready within") || slow.Running() {
		t.Errorf("a server never ready: %v, running %v", err, slow.Running())
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := localserver.FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Errorf("ports %v: not four distinct ports", ports)
		}
		seen[p] = true
	}
}
