package ingest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/opsmetrics/opsmetrics/ingest"
	"github.com/opsmetrics/opsmetrics/internal/broker"
	"github.com/opsmetrics/opsmetrics/internal/event"
	"github.com/opsmetrics/opsmetrics/internal/publish"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 and
// returns the server's TLS config and the PEM file that verifies it.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, certPEM, 0o644)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, ca
}

// TestSecureKafka ingests from a broker that requires TLS and SASL, with
// each mechanism, and refuses a wrong password without showing it.
func TestSecureKafka(t *testing.T) {
	serverTLS, ca := selfSigned(t)
	cfg := ingest.DefaultConfig()
	names := broker.DefaultTopics()
	cfg.SetTopics(names)
	topics := append(names.Inputs(), names.DeadLetter)
	for i, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			const user, pass = "opsmetrics", "kafka-Pa55-for-tests"
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, topics...),
				kfake.EnableSASL(), kfake.Superuser(mech, user, pass), kfake.TLS(serverTLS))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			dsn := testenv.Database(t)
			st := testenv.Store(t, dsn)
			k := broker.Config{Brokers: c.ListenAddrs(), Security: broker.Security{TLS: true, CAFile: ca, SASLMechanism: mech,
				SASLUsername: user, SASLPassword: pass}}

			_, transport, err := k.Connection()
			if err != nil {
				t.Fatal(err)
			}
			pub := publish.New(c.ListenAddrs(), publish.TopicsFrom(names), transport)
			defer pub.Close()
			at := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
			e := &event.Event{Kind: event.KindDeployment, ID: "e-sec", Time: at, Deployment: &event.Deployment{ID: "d-sec",
				Service: "checkout", Environment: "production", Status: event.DeploymentSuccess, FinishedAt: at}}
			line, _ := event.MarshalNative(e)
			msg, err := pub.Message(line)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Send(context.Background(), msg); err != nil {
				t.Fatalf("produce over TLS and SASL %s: %v", mech, err)
			}

			icfg := cfg
			icfg.Group = "secure"
			icfg.UntilIdle, icfg.SessionTimeout = 3*time.Second, 6*time.Second
			if err := icfg.SetKafka(k); err != nil {
				t.Fatal(err)
			}
			in, err := ingest.New(icfg, st, testenv.Logger(t), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := in.Run(ctx); err != nil {
				t.Fatalf("ingest over TLS and SASL %s: %v", mech, err)
			}
			if n := testenv.Count(t, st, "SELECT count() FROM deployments"); n != 1 {
				t.Errorf("stored %d deployments, want 1", n)
			}

			if i > 0 { // one wrong-password check is enough
				return
			}
			wrong := icfg
			bad := k
			bad.Security.SASLPassword = "not-" + pass
			if err := wrong.SetKafka(bad); err != nil {
				t.Fatal(err)
			}
			rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer rcancel()
			err = wrong.Reachable(rctx)
			if err == nil {
				t.Fatal("a wrong SASL password reached the broker")
			}
			if strings.Contains(err.Error(), bad.SASLPassword) || strings.Contains(err.Error(), pass) {
				t.Errorf("the error shows the password: %v", err)
			}
			// An ingester refused by the broker waits and retries; it
			// does not end, and it says why it is not ready.
			in, err = ingest.New(wrong, st, testenv.Logger(t), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ictx, icancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() { ran <- in.Run(ictx) }()
			testenv.Eventually(t, 30*time.Second, "not ready, waiting for Kafka", func() (bool, string) {
				err := in.Ready()
				return err != nil && strings.Contains(err.Error(), "waiting for Kafka"), fmt.Sprint(err)
			})
			select {
			case err := <-ran:
				t.Fatalf("the ingester ended on a SASL failure: %v", err)
			case <-time.After(2 * time.Second):
			}
			if err := in.Ready(); strings.Contains(err.Error(), bad.SASLPassword) {
				t.Errorf("readiness shows the password: %v", err)
			}
			icancel()
			if err := <-ran; err != nil {
				t.Errorf("the waiting ingester, cancelled: %v", err)
			}
		})
	}
}
