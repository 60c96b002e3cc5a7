package bus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

// secureCluster runs a 3-broker cluster with a 4-partition bus topic and the
// given TLS and SASL.
func secureCluster(t *testing.T, tlsCfg *tls.Config, user *kafkatest.SASLUser) *kafkatest.Cluster {
	t.Helper()
	return kafkatest.Start(t, kafkatest.Options{Brokers: 3, Partitions: 4, Topics: []string{testTopic}, TLS: tlsCfg, SASL: user})
}

func secureConfig(t *testing.T, c *kafkatest.Cluster, group string, tlsArg *kafkaconn.TLS, saslArg *kafkaconn.SASL) Config {
	t.Helper()
	sec, err := kafkaconn.Load(tlsArg, saslArg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(c, group)
	cfg.Security = sec
	return cfg
}

// roundTrip checks that Partitions sees the topic, that a producer's events
// reach a consumer and that the consumer commits them: every connection of
// the bus (writer, group coordinator, readers, offset lookups) got through.
func roundTrip(t *testing.T, c *kafkatest.Cluster, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := Partitions(ctx, cfg)
	if err != nil || n != 4 {
		t.Fatalf("Partitions = %d, %v; want 4", n, err)
	}
	p := newProducer(t, cfg)
	const events = 12
	for i := range events {
		emit(t, p, event(fmt.Sprintf("host-%d", i%6), i))
	}
	// The topic may hold records of earlier subtests: a new group
	// processes them all.
	ends, err := c.EndOffsets(ctx, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range ends {
		total += e
	}
	r := newRecorder()
	rc := runConsumer(t, fastConsumer(t, cfg, "secure"), r)
	waitFor(t, 20*time.Second, "every record processed", func() bool { return int64(r.count("process")) == total })
	waitCommitted(t, c, cfg.Group)
	rc.stop(t)
}

// refused checks that a bus the brokers refuse (or that refuses them) says
// so instead of retrying forever: Partitions fails, the consumer's Run ends
// with the error, Emit fails (without asking the sender to retry when
// emitClear). Each error contains want and none contains secret.
//
// kfake closes the connection on a failed SaslAuthenticate where Kafka
// answers error 58 first; kafka-go's Transport (the producer's) then sees
// "unexpected EOF", which looks like a broker restart, so against kfake a
// producer with a wrong password answers 503 (TestSecurityErrorsAreFinal
// checks what it does with Kafka's answer).
func refused(t *testing.T, cfg Config, want, secret string, emitClear bool) {
	t.Helper()
	check := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: got %v, want an error containing %q", what, err, want)
		}
		if secret != "" && strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: error repeats the password: %v", what, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Partitions(ctx, cfg)
	check("Partitions", err)
	if ctx.Err() != nil {
		t.Fatal("Partitions retried until its deadline instead of failing")
	}

	p := newProducer(t, cfg)
	out, err := p.Emit(ctx, testSource, []engine.Entry{event("h", 1)})
	if emitClear {
		if _, backlog := engine.IsBacklog(err); backlog {
			t.Fatalf("Emit: got %v, a retry the sender cannot fix", err)
		}
		check("Emit", err)
	} else if err == nil {
		t.Fatalf("Emit accepted %v on a bus that refuses this client", out)
	} else if secret != "" && strings.Contains(err.Error(), secret) {
		t.Fatalf("Emit: error repeats the password: %v", err)
	}

	c, err := NewConsumer(fastConsumer(t, cfg, "refused"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(int) (PartitionHandler, error) { return nil, fmt.Errorf("no partition may be assigned") })
	}()
	select {
	case err := <-done:
		check("consumer Run", err)
	case <-time.After(20 * time.Second):
		cancel()
		<-done
		t.Fatal("consumer Run kept retrying")
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := secureCluster(t, nil, &kafkatest.SASLUser{Mechanism: mech, Username: "rulebook", Password: "right-pw"})
			t.Run("right password", func(t *testing.T) {
				roundTrip(t, c, secureConfig(t, c, "sasl", nil,
					&kafkaconn.SASL{Mechanism: strings.ToLower(mech), Username: "rulebook", Password: "right-pw"}))
			})
			t.Run("wrong password", func(t *testing.T) {
				refused(t, secureConfig(t, c, "sasl-wrong", nil,
					&kafkaconn.SASL{Mechanism: strings.ToLower(mech), Username: "rulebook", Password: "wrong-pw-s3cret"}),
					"SASL Authentication Failed", "wrong-pw-s3cret", false)
			})
		})
	}
}

// TestTLS runs the bus over TLS, with SASL on top as production clusters
// (SASL_SSL) do.
func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	user := &kafkatest.SASLUser{Mechanism: "SCRAM-SHA-512", Username: "rulebook", Password: "right-pw"}
	c := secureCluster(t, &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.VerifyClientCertIfGiven, // a client certificate, when sent, must chain to the CA
		ClientCAs:    pki.pool,
		MinVersion:   tls.VersionTLS12,
	}, user)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pki.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pki.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pki.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	right := &kafkaconn.SASL{Mechanism: "scram-sha-512", Username: "rulebook", Password: "right-pw"}

	t.Run("trusted CA and client certificate", func(t *testing.T) {
		roundTrip(t, c, secureConfig(t, c, "tls", &kafkaconn.TLS{CA: caFile, Cert: certFile, Key: keyFile}, right))
	})
	t.Run("insecure skip verify", func(t *testing.T) {
		roundTrip(t, c, secureConfig(t, c, "tls-insecure", &kafkaconn.TLS{InsecureSkipVerify: true}, right))
	})
	t.Run("wrong password over TLS", func(t *testing.T) {
		refused(t, secureConfig(t, c, "tls-wrong", &kafkaconn.TLS{CA: caFile},
			&kafkaconn.SASL{Mechanism: "scram-sha-512", Username: "rulebook", Password: "wrong-pw-s3cret"}),
			"SASL Authentication Failed", "wrong-pw-s3cret", false)
	})
	t.Run("untrusted broker", func(t *testing.T) {
		refused(t, secureConfig(t, c, "tls-untrusted", &kafkaconn.TLS{}, right), "certificate", "", true)
	})
	t.Run("client certificate from another CA", func(t *testing.T) {
		other := newTestPKI(t)
		refused(t, secureConfig(t, c, "tls-other-ca",
			&kafkaconn.TLS{CA: caFile, Cert: string(other.certPEM), Key: string(other.keyPEM)}, right), "tls", "", true)
	})
}

// TestSecurityErrorsAreFinal: what the brokers answer to wrong credentials
// or an untrusted certificate is not retried, neither by the producer (a
// sender retrying cannot fix it) nor by Partitions.
func TestSecurityErrorsAreFinal(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		final bool
	}{
		{"sasl failed", fmt.Errorf("write: %w", kafkago.SASLAuthenticationFailed), true},
		{"unsupported mechanism", kafkago.UnsupportedSASLMechanism, true},
		{"unknown CA", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true},
		{"hostname", x509.HostnameError{Host: "k1"}, true},
		{"broker refused the client certificate", &net.OpError{Op: "remote error", Err: tls.AlertError(42)}, true},
		{"plaintext to a tls listener", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true},
		{"eof", io.ErrUnexpectedEOF, false},
		{"refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{"leader not available", kafkago.LeaderNotAvailable, false},
	}
	if retryable(kafkago.WriteErrors{nil, kafkago.SASLAuthenticationFailed}) {
		t.Error("a batch whose write failed sasl authentication is retryable")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := securityError(tc.err); got != tc.final {
				t.Errorf("securityError(%v) = %v, want %v", tc.err, got, tc.final)
			}
			if got := retryable(tc.err); got == tc.final {
				t.Errorf("retryable(%v) = %v, want %v", tc.err, got, !tc.final)
			}
		})
	}
}

type testPKI struct {
	caPEM, certPEM, keyPEM []byte // client certificate signed by the CA
	server                 tls.Certificate
	pool                   *x509.CertPool
}

// newTestPKI makes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all valid for an hour.
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
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rulebook bus test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) (certPEM, keyPEM []byte) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "rulebook bus test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("CERTIFICATE", der), pemOf("EC PRIVATE KEY", kb)
	}
	srvCert, srvKey := issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	server, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{caPEM: pemOf("CERTIFICATE", caDER), certPEM: cliCert, keyPEM: cliKey, server: server, pool: pool}
}
