package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestCA(t *testing.T) {
	ca := NewCA(t, "test ca")
	if !ca.X509.IsCA || ca.X509.Subject.CommonName != "test ca" || ca.X509.SerialNumber.Int64() != 1 {
		t.Fatalf("CA: is CA %v, name %q, serial %v", ca.X509.IsCA, ca.X509.Subject.CommonName, ca.X509.SerialNumber)
	}
	srv := ca.Server(t, "server")
	if _, err := srv.X509.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("server certificate for 127.0.0.1: %v", err)
	}
	if _, err := srv.X509.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the server certificate verifies as a client's")
	}
	cli := ca.Client(t, "alertmanager", "am.example.com")
	if _, err := cli.X509.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if cli.X509.Subject.CommonName != "alertmanager" || len(cli.X509.DNSNames) != 1 || cli.X509.DNSNames[0] != "am.example.com" || len(cli.X509.IPAddresses) != 0 {
		t.Errorf("client names: %q %v %v", cli.X509.Subject.CommonName, cli.X509.DNSNames, cli.X509.IPAddresses)
	}
	if s, c := srv.X509.SerialNumber.Int64(), cli.X509.SerialNumber.Int64(); s != 2 || c != 3 {
		t.Errorf("serials %d, %d, want 2, 3", s, c)
	}
	other := NewCA(t, "other ca").Client(t, "alertmanager")
	if _, err := other.X509.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a certificate of another CA verifies")
	}
	if pair, err := tls.X509KeyPair(cli.CertPEM, cli.KeyPEM); err != nil || !pair.Leaf.Equal(cli.TLS.Leaf) {
		t.Errorf("the PEM pair does not load as the TLS pair: %v", err)
	}
}

func TestSelfSigned(t *testing.T) {
	c := SelfSigned(t, Spec{CommonName: "broker", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CertPEM) {
		t.Fatal("no certificate in CertPEM")
	}
	if _, err := c.X509.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("a self-signed certificate does not verify against itself: %v", err)
	}
}

func TestWriteFiles(t *testing.T) {
	c := NewCA(t, "ca").Client(t, "client")
	dir := t.TempDir()
	certFile, keyFile := c.WriteFiles(t, dir, "client")
	if certFile != dir+"/client.pem" || keyFile != dir+"/client-key.pem" {
		t.Fatalf("paths %q, %q", certFile, keyFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || !pair.Leaf.Equal(c.X509) {
		t.Fatalf("the written files do not load as the pair: %v", err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", st, err)
	}
}
