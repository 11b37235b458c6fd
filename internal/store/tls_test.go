package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opsmetrics/opsmetrics/internal/localserver/clickhouse"
	"github.com/opsmetrics/opsmetrics/internal/store"
	"github.com/opsmetrics/opsmetrics/internal/testenv"
)

// TestClickHouseTLS connects over TLS with a user and password, as a DSN
// with secure=true asks, and migrates and writes through it.
func TestClickHouseTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	cert, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	srv, err := clickhouse.StartTLS(context.Background(), filepath.Join(dir, "ch"), cert, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	dsn := fmt.Sprintf("clickhouse://%s:%s@127.0.0.1:%d/tls_db?secure=true&skip_verify=true", clickhouse.PasswordUser, clickhouse.Password, srv.TLSPort)
	if _, err := store.Migrate(context.Background(), dsn, testenv.Logger(t)); err != nil {
		t.Fatalf("migrate over TLS: %v", err)
	}
	st := testenv.Store(t, dsn)
	if v, err := st.SchemaVersion(context.Background()); err != nil || v != store.LatestVersion() {
		t.Errorf("schema version over TLS: %d, %v", v, err)
	}
	plain := fmt.Sprintf("clickhouse://%s:%s@127.0.0.1:%d/tls_db?dial_timeout=2s", clickhouse.PasswordUser, clickhouse.Password, srv.TLSPort)
	if _, err := store.Open(context.Background(), plain); err == nil {
		t.Error("a plain connection to the TLS port succeeded")
	}
}
