// Package zookeeper runs a private ZooKeeper from Debian's zookeeper package
// (its jars under /usr/share/java, run with the system Java) on a free
// loopback port, for tests of ClickHouse replication and distributed DDL.
package zookeeper

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// JarDir holds the ZooKeeper jars and their dependencies.
var JarDir = "/usr/share/java"

// Server is one running ZooKeeper.
type Server struct {
	Addr string // host:port of the client port
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts ZooKeeper with its data in dir and waits until it answers.
func Start(ctx context.Context, dir string) (*Server, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("java not found (apt-get install zookeeper): %w", err)
	}
	jars, _ := filepath.Glob(filepath.Join(JarDir, "*.jar"))
	found := false
	for _, j := range jars {
		if strings.Contains(filepath.Base(j), "zookeeper") {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("no zookeeper jar in %s (apt-get install zookeeper)", JarDir)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "zoo.cfg")
	conf := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n",
		filepath.Join(dir, "data"), port)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "zookeeper.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(java, "-Xmx256m", "-cp", strings.Join(jars, ":"), "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s.ruok() {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("zookeeper exited; see %s", log.Name())
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("zookeeper not answering on %s after 60s", s.Addr)
		}
	}
}

func (s *Server) ruok() bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return false
	}
	b, _ := io.ReadAll(c)
	return string(b) == "imok"
}

// Stop kills the server and waits for it.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	<-s.done
}
