// Package alertmanager runs private Alertmanager servers from the installed
// prometheus-alertmanager binary (Debian's package), each on a free loopback
// port with its own temporary directory and clustering turned off. Tests use
// it so that the alert notifier always talks to a real Alertmanager.
package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/localserver"
)

// Binary is the path of the Alertmanager executable.
var Binary = "/usr/bin/prometheus-alertmanager"

// config routes every alert to a receiver with no integrations, and groups
// quickly so that tests do not wait for notifications to be "sent".
const config = `route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
`

// Server is one running private Alertmanager.
type Server struct {
	URL        string // base URL, http://127.0.0.1:PORT
	Dir        string // working directory: am.yml, the storage directory and the log
	StorageDir string // --storage.path (silences and the notification log)
	Port       int

	proc *localserver.Process
}

// Start starts a server in dir (a new temporary directory when empty) on a
// free port, and waits until it reports ready.
func Start(ctx context.Context, dir string) (*Server, error) {
	dir, ports, err := localserver.Prepare(Binary, "prometheus-alertmanager", dir, "opsmetrics-alertmanager-", 1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	s := &Server{
		URL:        "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:        dir,
		StorageDir: filepath.Join(dir, "data"),
		Port:       port,
	}
	if err := os.MkdirAll(s.StorageDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.configFile(), []byte(config), 0o644); err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: time.Second}
	s.proc = &localserver.Process{Name: "alertmanager", Path: Binary, Dir: dir, Log: s.logFile(), ReadyTimeout: 30 * time.Second,
		StopTimeout: 30 * time.Second, Ready: func() bool { return ready(client, s.URL+"/-/ready") },
		Args: []string{
			"--config.file=" + s.configFile(),
			"--storage.path=" + s.StorageDir,
			"--web.listen-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
			"--cluster.listen-address=", // empty: no gossip, no cluster port
		}}
	if err := s.proc.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) configFile() string { return filepath.Join(s.Dir, "am.yml") }
func (s *Server) logFile() string    { return filepath.Join(s.Dir, "alertmanager.log") }

func ready(c *http.Client, url string) bool {
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop shuts the server down, keeping its directory. Alertmanager holds alerts
// in memory only, so they are gone when it comes back; silences and the
// notification log in StorageDir survive.
func (s *Server) Stop() error { return s.proc.Stop() }

// Restart stops the server if it is running and starts it again on the same
// port and storage directory.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.proc.Start(ctx)
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	s.Stop()
	return os.RemoveAll(s.Dir)
}

// Alert is an alert as GET /api/v2/alerts lists it.
type Alert struct {
	Labels      map[string]string
	Annotations map[string]string
	StartsAt    time.Time
	EndsAt      time.Time
	State       string // status.state: active, suppressed or unprocessed
}

// Alerts lists the server's alerts with the API's default filters, which
// leave out resolved alerts (those whose endsAt has passed).
func (s *Server) Alerts(ctx context.Context) ([]Alert, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v2/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list alerts: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var raw []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
		Status      struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("list alerts: decode: %w", err)
	}
	alerts := make([]Alert, len(raw))
	for i, r := range raw {
		alerts[i] = Alert{Labels: r.Labels, Annotations: r.Annotations, StartsAt: r.StartsAt, EndsAt: r.EndsAt, State: r.Status.State}
	}
	return alerts, nil
}
