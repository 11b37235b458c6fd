package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/opsmetrics/opsmetrics/internal/config"
)

// Secure sets the dialer (the consumer group) and the transport (the
// dead-letter producer, lag and readiness requests) to connect as k says:
// TLS, and SASL PLAIN or SCRAM. With neither, it leaves c alone.
func (c *Config) Secure(k config.Kafka) error {
	d, t, err := Connection(k)
	if err != nil {
		return err
	}
	if d != nil {
		c.Dialer, c.Transport = d, t
	}
	return nil
}

// Connection returns the dialer and transport of k, or nils when k asks for
// neither TLS nor SASL. Errors never include the password.
func Connection(k config.Kafka) (*kafka.Dialer, *kafka.Transport, error) {
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
