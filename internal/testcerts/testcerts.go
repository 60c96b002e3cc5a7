// Package testcerts makes throwaway certificate authorities and
// certificates for tests. Every key is ECDSA P-256 (PEM type "EC PRIVATE
// KEY") and every certificate is valid from an hour ago to an hour from now.
package testcerts

import (
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
	"sync/atomic"
	"testing"
	"time"
)

// Cert is a certificate and its private key.
type Cert struct {
	X509    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte          // the certificate, PEM "CERTIFICATE"
	KeyPEM  []byte          // the key, PEM "EC PRIVATE KEY"
	TLS     tls.Certificate // the pair, for a tls.Config
}

// WriteFiles writes the certificate to dir/name.pem and the key to
// dir/name-key.pem, and returns their paths.
func (c Cert) WriteFiles(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	return WriteFile(t, dir, name+".pem", c.CertPEM), WriteFile(t, dir, name+"-key.pem", c.KeyPEM)
}

// CA is a certificate authority. Its own certificate has serial 1; the
// certificates it issues have serials 2, 3, ... in the order issued.
type CA struct {
	Cert
	Pool   *x509.CertPool // holds the CA certificate alone
	serial atomic.Int64
}

// Spec is what a certificate names and may be used for.
type Spec struct {
	CommonName  string
	DNSNames    []string
	IPs         []net.IP
	ExtKeyUsage []x509.ExtKeyUsage
}

// NewCA makes a certificate authority named cn.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	ca := &CA{Cert: create(t, template(1, Spec{CommonName: cn}, true, x509.KeyUsageCertSign), nil, nil)}
	ca.Pool = x509.NewCertPool()
	ca.Pool.AddCert(ca.X509)
	ca.serial.Store(1)
	return ca
}

// Server issues a server certificate named cn for 127.0.0.1.
func (ca *CA) Server(t testing.TB, cn string) Cert {
	t.Helper()
	return ca.issue(t, Spec{CommonName: cn, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
}

// Client issues a client certificate named cn, with dnsNames as its DNS
// names.
func (ca *CA) Client(t testing.TB, cn string, dnsNames ...string) Cert {
	t.Helper()
	return ca.issue(t, Spec{CommonName: cn, DNSNames: dnsNames, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

func (ca *CA) issue(t testing.TB, s Spec) Cert {
	t.Helper()
	return create(t, template(ca.serial.Add(1), s, false, x509.KeyUsageDigitalSignature), ca.X509, ca.Key)
}

// SelfSigned makes a certificate that is its own CA (serial 1), so one
// PEM serves as the trusted CA and as the certificate of a server or
// client.
func SelfSigned(t testing.TB, s Spec) Cert {
	t.Helper()
	return create(t, template(1, s, true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature), nil, nil)
}

// WriteFile writes data to dir/name, readable by its owner only, and
// returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func template(serial int64, s Spec, isCA bool, usage x509.KeyUsage) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: s.CommonName},
		DNSNames: s.DNSNames, IPAddresses: s.IPs,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: isCA,
		KeyUsage: usage, ExtKeyUsage: s.ExtKeyUsage,
	}
}

// create makes a key and a certificate of tmpl for it, signed by parent
// with parentKey, or self-signed when parent is nil.
func create(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Cert{
		X509: cert, Key: key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
	}
}
