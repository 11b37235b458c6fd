// Package clickhouse runs private ClickHouse servers from the installed
// clickhouse-server binary (Debian's package), each on free loopback ports
// with its own temporary directory. Tests, benchmarks and the demo use it so
// that they always talk to a real server and never to a shared one.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/localserver"
)

// PasswordUser is a second user of every server, with Password, for tests
// of password authentication (and that passwords stay out of logs).
const (
	PasswordUser = "opsmetrics"
	Password     = "ch-Pa55word-for-tests"
)

// Binary is the path of the clickhouse-server executable.
var Binary = "/usr/sbin/clickhouse-server"

// Server is one running private ClickHouse server.
type Server struct {
	Dir      string // working directory: config, data and logs
	TCPPort  int    // native protocol port on 127.0.0.1
	HTTPPort int
	// TLSPort is the native protocol over TLS, when the server has a
	// certificate (StartTLS); 0 otherwise.
	TLSPort int

	proc *localserver.Process

	cluster, zookeeper string
	certFile, keyFile  string
}

// StartTLS starts a plain server that also serves the native protocol over
// TLS on TLSPort, with the PEM certificate and key given.
func StartTLS(ctx context.Context, dir, certFile, keyFile string) (*Server, error) {
	return start(ctx, dir, "", "", certFile, keyFile)
}

// Start starts a server in dir (a new temporary directory when empty) on free
// ports, and waits until it accepts native connections.
func Start(ctx context.Context, dir string) (*Server, error) { return StartCluster(ctx, dir, "", "") }

// StartCluster starts a server that is the single node (shard 1, replica
// r1) of the cluster named cluster, with its replication and distributed
// DDL in the ZooKeeper at zookeeper (host:port). Empty names start a plain
// server, as Start.
func StartCluster(ctx context.Context, dir, cluster, zookeeper string) (*Server, error) {
	return start(ctx, dir, cluster, zookeeper, "", "")
}

func start(ctx context.Context, dir, cluster, zookeeper, certFile, keyFile string) (*Server, error) {
	dir, ports, err := localserver.Prepare(Binary, "clickhouse-server", dir, "opsmetrics-clickhouse-", 4)
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, TCPPort: ports[0], HTTPPort: ports[1], cluster: cluster, zookeeper: zookeeper,
		certFile: certFile, keyFile: keyFile}
	if certFile != "" {
		s.TLSPort = ports[3]
	}
	if err := s.writeConfig(ports[2]); err != nil {
		return nil, err
	}
	// Ready when every port it serves accepts connections: the TLS port
	// may open after the plain one.
	addrs := []string{s.Addr()}
	if s.TLSPort != 0 {
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.TLSPort)))
	}
	s.proc = &localserver.Process{Name: "clickhouse-server", Path: Binary, Args: []string{"--config-file=" + filepath.Join(dir, "config.xml")},
		Dir: dir, Log: filepath.Join(dir, "log", "stdout.log"), Tail: s.tailLog, StopTimeout: 30 * time.Second,
		Ready: func() bool {
			for _, a := range addrs {
				c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
				if err != nil {
					return false
				}
				c.Close()
			}
			return true
		}}
	if err := s.proc.Start(ctx); err != nil {
		return nil, err
	}
	if cluster != "" {
		// ClickHouse 18.16 can crash (a NULL dereference in
		// zkutil::ZooKeeper::createImpl) when a query and the distributed
		// DDL worker open the ZooKeeper session at the same moment: let the
		// worker, which starts with the server, open it first.
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

// Addr is the native protocol address, host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.TCPPort)) }

// DSN returns a clickhouse:// DSN for database db.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("clickhouse://default@%s/%s", s.Addr(), db)
}

func (s *Server) writeConfig(interserverPort int) error {
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return err
		}
	}
	config := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>%[1]s/log/server.log</log>
    <errorlog>%[1]s/log/error.log</errorlog>
    <size>100M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <http_port>%[3]d</http_port>
  <interserver_http_port>%[4]d</interserver_http_port>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
%[5]s</yandex>
`, s.Dir, s.TCPPort, s.HTTPPort, interserverPort, s.clusterConfig()+s.tlsConfig())
	users := `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>10000000000</max_memory_usage></default></profiles>
  <users>
    <` + PasswordUser + `>
      <password>` + Password + `</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </` + PasswordUser + `>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
	if err := os.WriteFile(filepath.Join(s.Dir, "config.xml"), []byte(config), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, "users.xml"), []byte(users), 0o644)
}

func (s *Server) tailLog() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log", "error.log"))
	if len(b) == 0 {
		b, _ = os.ReadFile(filepath.Join(s.Dir, "log", "stdout.log"))
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Stop shuts the server down, gracefully when it can, keeping its directory.
func (s *Server) Stop() error { return s.proc.Stop() }

// Kill stops the server with SIGKILL, as a crash would, keeping its directory.
func (s *Server) Kill() { s.proc.Kill() }

// Restart starts a stopped server again on the same ports and data.
func (s *Server) Restart(ctx context.Context) error {
	if s.Running() {
		return errors.New("clickhouse server is running")
	}
	return s.proc.Start(ctx)
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool { return s.proc.Running() }

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	s.Stop()
	return os.RemoveAll(s.Dir)
}

// clusterConfig is the configuration of a one-node cluster, or nothing.
func (s *Server) clusterConfig() string {
	if s.cluster == "" {
		return ""
	}
	host, port, _ := net.SplitHostPort(s.zookeeper)
	return fmt.Sprintf(`  <zookeeper><node><host>%s</host><port>%s</port></node></zookeeper>
  <remote_servers><%s><shard><internal_replication>true</internal_replication><replica><host>127.0.0.1</host><port>%d</port></replica></shard></%s></remote_servers>
  <macros><shard>1</shard><replica>r1</replica></macros>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
`, host, port, s.cluster, s.TCPPort, s.cluster)
}

// tlsConfig serves the native protocol over TLS, or nothing.
func (s *Server) tlsConfig() string {
	if s.certFile == "" {
		return ""
	}
	return fmt.Sprintf(`  <tcp_port_secure>%d</tcp_port_secure>
  <openSSL><server>
    <certificateFile>%s</certificateFile><privateKeyFile>%s</privateKeyFile>
    <verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile>
    <cacheSessions>true</cacheSessions><disableProtocols>sslv2,sslv3</disableProtocols><preferServerCiphers>true</preferServerCiphers>
  </server></openSSL>
`, s.TLSPort, s.certFile, s.keyFile)
}
