package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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

	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

type testPKI struct {
	caPEM, certPEM, keyPEM []byte // client certificate signed by the CA
	server                 tls.Certificate
	pool                   *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rulebook test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "rulebook test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	keyPEM := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("EC PRIVATE KEY", b)
	}
	srvDER, srvKey := issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	server, err := tls.X509KeyPair(pemOf("CERTIFICATE", srvDER), keyPEM(srvKey))
	if err != nil {
		t.Fatal(err)
	}
	cliDER, cliKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{caPEM: pemOf("CERTIFICATE", caDER), certPEM: pemOf("CERTIFICATE", cliDER), keyPEM: keyPEM(cliKey), server: server, pool: pool}
}

// TLS: a trusted CA (as a file) and a client certificate (as PEM text, as a
// ${file:...} reference resolves to) consume; an untrusted broker ends Run
// with an error instead of retrying forever.
func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 2, Partitions: 1, Topics: []string{"in"}, TLS: &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.VerifyClientCertIfGiven, // a client certificate, when sent, must chain to the CA
		ClientCAs:    pki.pool,
		MinVersion:   tls.VersionTLS12,
	}})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pki.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Produce(ctx, "in", jsonRecords(0, 0, 2)...); err != nil {
		t.Fatal(err)
	}

	t.Run("trusted with client certificate", func(t *testing.T) {
		rec := newRecorder()
		start(t, "tls", fastArgs(c, map[string]any{"topic": "in", "group_id": "g1",
			"tls": map[string]any{"ca": caFile, "cert": string(pki.certPEM), "key": string(pki.keyPEM)}}), rec)
		waitFor(t, 30*time.Second, "two events over TLS", func() bool { return rec.count() >= 2 })
	})
	t.Run("insecure_skip_verify", func(t *testing.T) {
		rec := newRecorder()
		start(t, "tls", fastArgs(c, map[string]any{"topic": "in", "group_id": "g2", "tls": map[string]any{"insecure_skip_verify": true}}), rec)
		waitFor(t, 30*time.Second, "two events over TLS", func() bool { return rec.count() >= 2 })
	})
	t.Run("untrusted broker", func(t *testing.T) {
		r := start(t, "tls", fastArgs(c, map[string]any{"topic": "in", "group_id": "g3", "tls": true}), newRecorder())
		err := r.wait(20 * time.Second)
		if err == nil || !strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "did not stop") {
			t.Fatalf("Run: got %v, want a certificate error", err)
		}
	})
	t.Run("client certificate from another CA", func(t *testing.T) {
		other := newTestPKI(t)
		r := start(t, "tls", fastArgs(c, map[string]any{"topic": "in", "group_id": "g4",
			"tls": map[string]any{"ca": caFile, "cert": string(other.certPEM), "key": string(other.keyPEM)}}), newRecorder())
		err := r.wait(20 * time.Second)
		if err == nil || !strings.Contains(err.Error(), "tls") || strings.Contains(err.Error(), "did not stop") {
			t.Fatalf("Run: got %v, want the broker's TLS refusal", err)
		}
	})
}
