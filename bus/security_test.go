package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/testcerts"
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
	ca := testcerts.NewCA(t, "rulebook bus test CA")
	user := &kafkatest.SASLUser{Mechanism: "SCRAM-SHA-512", Username: "rulebook", Password: "right-pw"}
	c := secureCluster(t, &tls.Config{
		Certificates: []tls.Certificate{ca.Server(t, "rulebook bus test").TLS},
		ClientAuth:   tls.VerifyClientCertIfGiven, // a client certificate, when sent, must chain to the CA
		ClientCAs:    ca.Pool,
		MinVersion:   tls.VersionTLS12,
	}, user)
	dir := t.TempDir()
	caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	certFile, keyFile := ca.Client(t, "rulebook bus test").WriteFiles(t, dir, "client")
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
		other := testcerts.NewCA(t, "rulebook bus test CA").Client(t, "rulebook bus test")
		refused(t, secureConfig(t, c, "tls-other-ca",
			&kafkaconn.TLS{CA: caFile, Cert: string(other.CertPEM), Key: string(other.KeyPEM)}, right), "tls", "", true)
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
			if got := kafkaconn.SecurityError(tc.err); got != tc.final {
				t.Errorf("kafkaconn.SecurityError(%v) = %v, want %v", tc.err, got, tc.final)
			}
			if got := retryable(tc.err); got == tc.final {
				t.Errorf("retryable(%v) = %v, want %v", tc.err, got, !tc.final)
			}
		})
	}
}
