// Package localserver runs private servers as child processes on loopback,
// for the tests and the demo: ClickHouse, Alertmanager and ZooKeeper, each
// in its subpackage, from the binaries of their Debian packages. They share
// Process, which starts a server, waits until it is ready and stops it,
// killing it after a timeout, and FreePorts and Dir for where it runs.
package localserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FreePorts returns n distinct free ports on 127.0.0.1.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Prepare is what a server needs before it starts: its binary installed
// (from the Debian package pkg), its directory (dir, or a new temporary one
// whose name starts with prefix when dir is empty) and n free ports.
func Prepare(binary, pkg, dir, prefix string, n int) (string, []int, error) {
	if _, err := os.Stat(binary); err != nil {
		return "", nil, fmt.Errorf("%s not installed at %s (apt-get install %s): %w", filepath.Base(binary), binary, pkg, err)
	}
	if dir == "" {
		d, err := os.MkdirTemp("", prefix)
		if err != nil {
			return "", nil, err
		}
		dir = d
	}
	ports, err := FreePorts(n)
	return dir, ports, err
}

// Process is a supervised server process. Set its fields, then Start it.
type Process struct {
	Name string   // for errors: "clickhouse-server"
	Path string   // the executable
	Args []string // its arguments
	Dir  string   // its working directory
	Log  string   // the file its standard output and error append to

	// Ready reports whether the server serves; Start polls it every Poll
	// (default 50ms) for at most ReadyTimeout (default 60s).
	Ready        func() bool
	Poll         time.Duration
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before it kills;
	// 0 kills at once.
	StopTimeout time.Duration
	// Tail says what went wrong when the server does not start (default:
	// the end of Log).
	Tail func() string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts the process and waits until it is ready. A process that
// exits first, is not ready in time, or whose ctx ends first is killed,
// with an error that shows the end of its log.
func (p *Process) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is running", p.Name)
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Dir = p.Dir
	out, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a test's Ctrl-C does not stop it half
	// way, and killed with its parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(done) }()
	p.cmd, p.done = cmd, done

	poll, timeout := p.Poll, p.ReadyTimeout
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		if p.Ready() {
			return nil
		}
		select {
		case <-done:
			p.cmd = nil
			return fmt.Errorf("%s exited during start-up; see %s: %s", p.Name, p.Log, p.tail())
		case <-ctx.Done():
			p.kill()
			return ctx.Err()
		case <-time.After(poll):
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("%s not ready within %v: %s", p.Name, timeout, p.tail())
		}
	}
}

func (p *Process) tail() string {
	if p.Tail != nil {
		return p.Tail()
	}
	return TailFile(p.Log)
}

// TailFile is the last 2,000 bytes of the file at path, trimmed.
func TailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// kill stops the process with SIGKILL and waits for it; p.mu is held.
func (p *Process) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// Stop shuts the process down with SIGTERM, and kills it when it has not
// exited within StopTimeout. Stopping a stopped process does nothing.
func (p *Process) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	if p.StopTimeout > 0 {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			p.cmd = nil
			return nil
		case <-time.After(p.StopTimeout):
		}
	}
	p.kill()
	return nil
}

// Kill stops the process with SIGKILL, as a crash would.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kill()
}

// Running reports whether the process is alive.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}
