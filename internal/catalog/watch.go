package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Watcher holds the current catalog and reloads it when its files
// change: Run polls the files' sizes and modification times every
// ReloadInterval (cheap, and it works on every file system, network and
// ConfigMap mounts included) and reloads when any differs, a file appears
// or one goes. A reload that fails keeps the previous catalog: it is
// logged once, and Err reports it until a reload succeeds.
type Watcher struct {
	cfg Config
	log *slog.Logger
	cur atomic.Pointer[Catalog]

	mu          sync.Mutex // serialises reloads
	fingerprint string     // of the files the current catalog, or the last failure, was read from
	err         error
}

// NewWatcher loads the catalog once: a catalog that does not load is a
// configuration error at start.
func NewWatcher(cfg Config, log *slog.Logger) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("catalog.path: required")
	}
	w := &Watcher{cfg: cfg.WithDefaults(), log: log}
	if _, err := w.Reload(); err != nil {
		return nil, err
	}
	return w, nil
}

// Catalog returns the current snapshot; it never changes once returned.
func (w *Watcher) Catalog() *Catalog { return w.cur.Load() }

// Err is the error of the last reload, nil once one succeeds.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Reload reads the catalog again if its files changed since the last
// load, and reports whether it did. On failure the current catalog stays.
func (w *Watcher) Reload() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	files, err := catalogFiles(w.cfg.Path)
	fp := ""
	if err == nil {
		fp = fingerprint(files)
		if fp == w.fingerprint && w.cur.Load() != nil {
			return false, w.err
		}
		var c *Catalog
		if c, err = Load(w.cfg.Path, w.cfg.TierAnnotation); err == nil {
			w.cur.Store(c)
			w.fingerprint, w.err = fp, nil
			return true, nil
		}
	}
	w.fingerprint, w.err = fp, err
	return false, err
}

// Run reloads every ReloadInterval until ctx is done.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		before := w.Err()
		changed, err := w.Reload()
		switch {
		case err != nil && (before == nil || before.Error() != err.Error()):
			w.log.Error("catalog reload failed; keeping the previous catalog", "path", w.cfg.Path, "err", err)
		case changed:
			s := w.Catalog().Stats()
			w.log.Info("catalog reloaded", "path", w.cfg.Path, "files", s.Files, "components", s.Components)
		}
	}
}

func fingerprint(files []catalogFile) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s\x00%d\x00%d\n", f.path, f.info.Size(), f.info.ModTime().UnixNano())
	}
	return b.String()
}
