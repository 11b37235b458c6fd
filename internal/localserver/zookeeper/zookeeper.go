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

	"github.com/opsmetrics/opsmetrics/internal/localserver"
)

// JarDir holds the ZooKeeper jars and their dependencies.
var JarDir = "/usr/share/java"

// Server is one running ZooKeeper.
type Server struct {
	Addr string // host:port of the client port
	proc *localserver.Process
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
	ports, err := localserver.FreePorts(1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "zoo.cfg")
	conf := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n",
		filepath.Join(dir, "data"), port)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	s.proc = &localserver.Process{Name: "zookeeper", Path: java, Dir: dir, Log: filepath.Join(dir, "zookeeper.log"),
		Args:  []string{"-Xmx256m", "-cp", strings.Join(jars, ":"), "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg},
		Ready: s.ruok, Poll: 200 * time.Millisecond, ReadyTimeout: 60 * time.Second}
	if err := s.proc.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
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
func (s *Server) Stop() { s.proc.Stop() }
