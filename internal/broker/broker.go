// Package broker is how opsmetrics reaches Kafka: the seed brokers and the
// TLS and SASL settings of the connections (Config, with the kafka-go
// Dialer and Transport built from it), and the names of the topics the
// pipeline reads and writes (Topics). Ingestion, the producer and the
// readiness checks all connect through it. (It is not named kafka, the name
// of the kafka-go package its users import beside it.)
package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Config is where the brokers are and how to connect to them: the file's
// top-level brokers and its kafka section.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// Security is the kafka section: TLS and SASL.
	Security `yaml:"kafka"`
}

// Security secures the connections to the brokers.
type Security struct {
	// TLS turns TLS on; CAFile verifies the brokers (default: the system's
	// roots); CertFile and KeyFile are a client certificate.
	TLS                bool   `yaml:"tls"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none).
	SASLMechanism string `yaml:"sasl_mechanism"`
	SASLUsername  string `yaml:"sasl_username"`
	// SASLPassword is secret: set it with OPSMETRICS_KAFKA_SASL_PASSWORD(_FILE).
	SASLPassword string `yaml:"sasl_password"`
}

// Validate checks every setting that has a value; an empty broker list is
// valid (a command that needs brokers requires them).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			bad("brokers", "want host:port, got %q", b)
		}
	}
	s := c.Security
	switch s.SASLMechanism {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		bad("kafka.sasl_mechanism", "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", s.SASLMechanism)
	}
	if s.SASLMechanism != "" && (s.SASLUsername == "" || s.SASLPassword == "") {
		bad("kafka.sasl_username", "SASL %s needs a user name and a password", s.SASLMechanism)
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		bad("kafka.cert_file", "a client certificate needs both cert_file and key_file")
	}
	return errors.Join(errs...)
}

// Connection returns the dialer (consumer groups) and transport (producers,
// admin requests) that connect as c says, or nils when c asks for neither
// TLS nor SASL. Errors never include the password.
func (c Config) Connection() (*kafka.Dialer, *kafka.Transport, error) {
	k := c.Security
	if !k.TLS && k.SASLMechanism == "" {
		return nil, nil, nil
	}
	var tlsCfg *tls.Config
	if k.TLS {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: k.InsecureSkipVerify} //nolint:gosec // opt-in, for tests
		if k.CAFile != "" {
			pem, err := os.ReadFile(k.CAFile)
			if err != nil {
				return nil, nil, fmt.Errorf("kafka CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("kafka CA file %s: no PEM certificate in it", k.CAFile)
			}
			tlsCfg.RootCAs = pool
		}
		if k.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(k.CertFile, k.KeyFile)
			if err != nil {
				return nil, nil, fmt.Errorf("kafka client certificate: %w", err)
			}
			tlsCfg.Certificates = []tls.Certificate{cert}
		}
	}
	var mech sasl.Mechanism
	switch k.SASLMechanism {
	case "":
	case "PLAIN":
		mech = plain.Mechanism{Username: k.SASLUsername, Password: k.SASLPassword}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		algo := scram.SHA256
		if k.SASLMechanism == "SCRAM-SHA-512" {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, k.SASLUsername, k.SASLPassword)
		if err != nil {
			return nil, nil, fmt.Errorf("kafka SASL %s: %w", k.SASLMechanism, err)
		}
		mech = m
	default:
		return nil, nil, fmt.Errorf("kafka SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", k.SASLMechanism)
	}
	d := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: tlsCfg, SASLMechanism: mech}
	t := &kafka.Transport{TLS: tlsCfg, SASL: mech, DialTimeout: 10 * time.Second}
	return d, t, nil
}

// RoundTripper is the transport of Connection for a kafka-go Writer or
// Client: nil, kafka-go's default, when c asks for neither TLS nor SASL.
func (c Config) RoundTripper() (kafka.RoundTripper, error) {
	_, t, err := c.Connection()
	if err != nil || t == nil {
		return nil, err // a nil *kafka.Transport in the interface would not be nil
	}
	return t, nil
}

// Topics are the Kafka topics opsmetrics reads and writes.
type Topics struct {
	Deployments string `yaml:"deployments"`
	Incidents   string `yaml:"incidents"`
	Patches     string `yaml:"patches"`
	Changes     string `yaml:"changes"`
	DeadLetter  string `yaml:"deadletter"`
}

// DefaultTopics are the topics of the default configuration.
func DefaultTopics() Topics {
	return Topics{Deployments: "ops.deployments", Incidents: "ops.incidents", Patches: "ops.patches", Changes: "ops.changes",
		DeadLetter: "ops.deadletter"}
}

// Inputs are the topics ingestion consumes.
func (t Topics) Inputs() []string {
	return []string{t.Deployments, t.Incidents, t.Patches, t.Changes}
}

// Validate checks that every topic is named and the dead-letter topic is
// none of the inputs.
func (t Topics) Validate() error {
	var errs []error
	for _, f := range []struct{ name, topic string }{{"deployments", t.Deployments}, {"incidents", t.Incidents},
		{"patches", t.Patches}, {"changes", t.Changes}, {"deadletter", t.DeadLetter}} {
		if f.topic == "" {
			errs = append(errs, fmt.Errorf("%s: must not be empty", f.name))
		}
	}
	for _, in := range t.Inputs() {
		if in == t.DeadLetter {
			errs = append(errs, fmt.Errorf("deadletter: must differ from the input topics, got %q", in))
		}
	}
	return errors.Join(errs...)
}
