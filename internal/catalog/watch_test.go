package catalog_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/catalog"
)

func component(name, owner string) string {
	return `apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: ` + name + `}
spec: {type: service, lifecycle: production, owner: ` + owner + `}
`
}

// touch writes a file with a modification time of its own, so that a
// rewrite within one tick of the file system's clock is still seen.
func touch(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	write(t, path, content)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func owner(t *testing.T, w *catalog.Watcher, service string) string {
	t.Helper()
	e, _ := w.Catalog().Lookup(service)
	return e.Owner
}

func TestWatcherReload(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	touch(t, filepath.Join(dir, "checkout", "catalog-info.yaml"), component("checkout", "payments"), base)
	w, err := catalog.NewWatcher(catalog.Config{Path: dir}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := owner(t, w, "checkout"); got != "payments" {
		t.Fatalf("owner %q, want payments", got)
	}
	if changed, err := w.Reload(); changed || err != nil {
		t.Errorf("unchanged files: Reload() = %v, %v; want false, nil", changed, err)
	}

	// A changed owner, then a new file.
	touch(t, filepath.Join(dir, "checkout", "catalog-info.yaml"), component("checkout", "group:default/growth"), base.Add(time.Minute))
	if changed, err := w.Reload(); !changed || err != nil || owner(t, w, "checkout") != "growth" {
		t.Errorf("changed owner: Reload() = %v, %v, owner %q; want true, nil, growth", changed, err, owner(t, w, "checkout"))
	}
	touch(t, filepath.Join(dir, "search", "catalog-info.yml"), component("search-api", "search"), base)
	if changed, err := w.Reload(); !changed || err != nil || owner(t, w, "search-api") != "search" {
		t.Errorf("new file: Reload() = %v, %v, owner %q; want true, nil, search", changed, err, owner(t, w, "search-api"))
	}

	// A broken file keeps the previous catalog and reports why, once.
	before := w.Catalog()
	touch(t, filepath.Join(dir, "search", "catalog-info.yml"), "- {name: search-api}\n", base.Add(2*time.Minute))
	changed, err := w.Reload()
	if changed || err == nil || !strings.Contains(err.Error(), "owner: required") {
		t.Errorf("broken file: Reload() = %v, %v; want false and the owner error", changed, err)
	}
	if w.Catalog() != before || w.Err() == nil {
		t.Errorf("broken file: the catalog changed or Err is nil (%v)", w.Err())
	}
	// Fixed, it loads again; a removed file drops its services.
	touch(t, filepath.Join(dir, "search", "catalog-info.yml"), component("search-api", "discovery"), base.Add(3*time.Minute))
	if changed, err := w.Reload(); !changed || err != nil || owner(t, w, "search-api") != "discovery" || w.Err() != nil {
		t.Errorf("fixed file: Reload() = %v, %v, owner %q, Err %v", changed, err, owner(t, w, "search-api"), w.Err())
	}
	if err := os.Remove(filepath.Join(dir, "search", "catalog-info.yml")); err != nil {
		t.Fatal(err)
	}
	if changed, err := w.Reload(); !changed || err != nil {
		t.Errorf("removed file: Reload() = %v, %v", changed, err)
	}
	if _, ok := w.Catalog().Lookup("search-api"); ok {
		t.Error("removed file: search-api still in the catalog")
	}
}

// TestWatcherRun reads the catalog from many goroutines while Run
// reloads it (run with -race).
func TestWatcherRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.yaml")
	base := time.Now().Add(-time.Hour)
	touch(t, path, "- {name: checkout, owner: payments}\n", base)
	w, err := catalog.NewWatcher(catalog.Config{Path: path, ReloadInterval: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if e, ok := w.Catalog().Lookup("checkout"); !ok || (e.Owner != "payments" && e.Owner != "growth") {
					t.Errorf("read %+v, %v mid-reload", e, ok)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	touch(t, path, "- {name: checkout, owner: growth}\n", base.Add(time.Minute))
	deadline := time.Now().Add(30 * time.Second)
	for owner(t, w, "checkout") != "growth" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := owner(t, w, "checkout"); got != "growth" {
		t.Errorf("Run did not reload within 30s: owner %q", got)
	}
}

func TestNewWatcherFails(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := catalog.NewWatcher(catalog.Config{Path: filepath.Join(t.TempDir(), "missing")}, log); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing path: got %v", err)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	write(t, path, "- {owner: x}\n")
	if _, err := catalog.NewWatcher(catalog.Config{Path: path}, log); err == nil || !strings.Contains(err.Error(), "name: required") {
		t.Errorf("bad catalog: got %v", err)
	}
	if _, err := catalog.NewWatcher(catalog.Config{}, log); err == nil {
		t.Error("no path: no error")
	}
}
