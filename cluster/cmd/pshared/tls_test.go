package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/processshared/processshared/cluster/internal/etcdtest"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// TestTLS: against an etcd that serves clients over TLS and wants their
// certificates, --cacert with --cert and --key gets in; no client
// certificate, or no CA to check the server's against, is status 3.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil)
	newCert(t, dir, "server", ca, caKey)
	newCert(t, dir, "client", ca, caKey)

	ms, initial, err := etcdtest.Members(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	ms[0].Client = strings.Replace(ms[0].Client, "http://", "https://", 1)
	cfg, err := ms[0].Config(initial, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile:       filepath.Join(dir, "server.pem"),
		KeyFile:        filepath.Join(dir, "server-key.pem"),
		TrustedCAFile:  filepath.Join(dir, "ca.pem"),
		ClientCertAuth: true,
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd with TLS not ready")
	}

	env := []string{"ETCD=" + ms[0].Client, "D=" + dir}
	run := t.TempDir()
	r := sh(t, run, env, `pshared lock --etcd "$ETCD" --cacert "$D/ca.pem" --cert "$D/client.pem" --key "$D/client-key.pem" L -- echo in`)
	r.want(t, "--cacert --cert --key", 0, "^$")
	if r.stdout != "in\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	sh(t, run, env, `pshared lock --etcd "$ETCD" --insecure-skip-tls-verify --cert "$D/client.pem" --key "$D/client-key.pem" L -- true`).
		want(t, "--insecure-skip-tls-verify", 0, "^$")
	// Refused: the client's gRPC retries the failed handshakes until the
	// dial timeout, so the error says only that the lease grant timed out.
	for what, flags := range map[string]string{
		"no client certificate": `--cacert "$D/ca.pem"`,
		"no CA":                 `--cert "$D/client.pem" --key "$D/client-key.pem"`,
	} {
		r := sh(t, run, env, `pshared lock --etcd "$ETCD" --dial-timeout 3 `+flags+` L -- echo in`)
		r.want(t, what, 3, "grant lease")
		if r.stdout != "" {
			t.Errorf("%s: the command ran", what)
		}
	}
}

// newCert writes NAME.pem and NAME-key.pem to dir: a CA if parent is nil,
// else a certificate for 127.0.0.1 signed by parent.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+"-key.pem", "EC PRIVATE KEY", kder)
	return cert, key
}
