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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
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

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a server in dir (a new temporary directory when empty) on a
// free port, and waits until it reports ready.
func Start(ctx context.Context, dir string) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("alertmanager not installed at %s (apt-get install prometheus-alertmanager): %w", Binary, err)
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "opsmetrics-alertmanager-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
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
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) configFile() string { return filepath.Join(s.Dir, "am.yml") }
func (s *Server) logFile() string    { return filepath.Join(s.Dir, "alertmanager.log") }

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(Binary,
		"--config.file="+s.configFile(),
		"--storage.path="+s.StorageDir,
		"--web.listen-address="+net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		"--cluster.listen-address=", // empty: no gossip, no cluster port
	)
	cmd.Dir = s.Dir
	out, err := os.OpenFile(s.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a test's Ctrl-C does not stop it half way.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start alertmanager: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(done) }()
	s.cmd, s.done = cmd, done

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ready(client, s.URL+"/-/ready") {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("alertmanager exited during start-up; see %s: %s", s.logFile(), s.tailLog())
		case <-ctx.Done():
			s.kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("alertmanager not ready on %s within 30s: %s", s.URL, s.tailLog())
		}
	}
}

func ready(c *http.Client, url string) bool {
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *Server) tailLog() string {
	b, _ := os.ReadFile(s.logFile())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// kill stops the process with SIGKILL; s.mu must be held.
func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Stop shuts the server down, keeping its directory. Alertmanager holds alerts
// in memory only, so they are gone when it comes back; silences and the
// notification log in StorageDir survive.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.kill()
	}
	s.cmd = nil
	return nil
}

// Restart stops the server if it is running and starts it again on the same
// port and storage directory.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx)
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
