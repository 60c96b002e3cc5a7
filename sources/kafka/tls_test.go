package kafka

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/internal/testcerts"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
)

// TLS: a trusted CA (as a file) and a client certificate (as PEM text, as a
// ${file:...} reference resolves to) consume; an untrusted broker ends Run
// with an error instead of retrying forever.
func TestTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "rulebook test CA")
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 2, Partitions: 1, Topics: []string{"in"}, TLS: &tls.Config{
		Certificates: []tls.Certificate{ca.Server(t, "rulebook test").TLS},
		ClientAuth:   tls.VerifyClientCertIfGiven, // a client certificate, when sent, must chain to the CA
		ClientCAs:    ca.Pool,
		MinVersion:   tls.VersionTLS12,
	}})
	caFile := testcerts.WriteFile(t, t.TempDir(), "ca.pem", ca.CertPEM)
	client := ca.Client(t, "rulebook test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Produce(ctx, "in", jsonRecords(0, 0, 2)...); err != nil {
		t.Fatal(err)
	}

	t.Run("trusted with client certificate", func(t *testing.T) {
		rec := newRecorder()
		start(t, "tls", fastArgs(c, map[string]any{"topic": "in", "group_id": "g1",
			"tls": map[string]any{"ca": caFile, "cert": string(client.CertPEM), "key": string(client.KeyPEM)}}), rec)
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
		other := testcerts.NewCA(t, "rulebook test CA").Client(t, "rulebook test")
		r := start(t, "tls", fastArgs(c, map[string]any{"topic": "in", "group_id": "g4",
			"tls": map[string]any{"ca": caFile, "cert": string(other.CertPEM), "key": string(other.KeyPEM)}}), newRecorder())
		err := r.wait(20 * time.Second)
		if err == nil || !strings.Contains(err.Error(), "tls") || strings.Contains(err.Error(), "did not stop") {
			t.Fatalf("Run: got %v, want the broker's TLS refusal", err)
		}
	})
}
