package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go/sasl/plain"

	"github.com/rulebook-dev/rulebook/internal/testcerts"
	"github.com/rulebook-dev/rulebook/test/kafkatest"
	"github.com/rulebook-dev/rulebook/test/rbtest"
)

const busTestPassword = "pw-9f3b-s3cret"

func TestBusSecurityFlags(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, _ := selfSignedBroker(t)
	caFile := filepath.Join(dir, "ca.pem")
	pwFile := filepath.Join(dir, "pw")
	notPEM := filepath.Join(dir, "not.pem")
	for name, data := range map[string][]byte{caFile: certPEM, pwFile: []byte(busTestPassword + "\n"), notPEM: []byte("hello")} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("RB_TEST_BUS_PW", busTestPassword)
	t.Setenv("RB_TEST_BUS_KEY", string(keyPEM))
	const bus = "--bus=kafka://127.0.0.1:9092/t"
	sasl := []string{bus, "--bus-sasl-mechanism", "PLAIN", "--bus-sasl-username", "rb"}
	tests := []struct {
		name     string
		args     []string
		err      string // "" when valid
		tls      bool
		password string // the resolved password of a valid PLAIN setting
	}{
		{name: "nothing", args: nil},
		{name: "bus alone", args: []string{bus}},
		{name: "tls without bus", args: []string{"--bus-tls"}, err: "--bus-tls needs --bus"},
		{name: "ca without bus", args: []string{"--bus-tls-ca", caFile}, err: "--bus-tls-ca needs --bus"},
		{name: "password without bus", args: []string{"--bus-sasl-password", busTestPassword}, err: "--bus-sasl-password needs --bus"},
		{name: "username without bus", args: []string{"--bus-sasl-username", "rb"}, err: "--bus-sasl-username needs --bus"},
		{name: "tls with system CAs", args: []string{bus, "--bus-tls"}, tls: true},
		{name: "ca implies tls", args: []string{bus, "--bus-tls-ca", caFile}, tls: true},
		{name: "ca as a file reference", args: []string{bus, "--bus-tls-ca", "${file:" + caFile + "}"}, tls: true},
		{name: "client certificate, key from env", args: []string{bus, "--bus-tls-cert", string(certPEM), "--bus-tls-key", "${env:RB_TEST_BUS_KEY}"}, tls: true},
		{name: "insecure", args: []string{bus, "--bus-tls-insecure-skip-verify"}, tls: true},
		{name: "cert without key", args: []string{bus, "--bus-tls-cert", caFile}, err: "--bus-tls-cert needs --bus-tls-key"},
		{name: "key without cert", args: []string{bus, "--bus-tls-key", caFile}, err: "--bus-tls-key needs --bus-tls-cert"},
		{name: "insecure with ca", args: []string{bus, "--bus-tls-ca", caFile, "--bus-tls-insecure-skip-verify"}, err: "--bus-tls-insecure-skip-verify: not with --bus-tls-ca"},
		{name: "missing ca file", args: []string{bus, "--bus-tls-ca", filepath.Join(dir, "nope.pem")}, err: "--bus-tls-ca: read"},
		{name: "ca not pem", args: []string{bus, "--bus-tls-ca", notPEM}, err: "--bus-tls-ca: no certificate found"},
		{name: "key not matching", args: []string{bus, "--bus-tls-cert", caFile, "--bus-tls-key", caFile}, err: "--bus-tls-cert: tls:"},
		{name: "ca reference unset", args: []string{bus, "--bus-tls-ca", "${env:RB_TEST_UNSET_CA}"}, err: `--bus-tls-ca: secret ${env:RB_TEST_UNSET_CA}: environment variable "RB_TEST_UNSET_CA" is not set`},
		{name: "password from env", args: append(sasl, "--bus-sasl-password", "${env:RB_TEST_BUS_PW}"), password: busTestPassword},
		{name: "password from file", args: append(sasl, "--bus-sasl-password", "${file:"+pwFile+"}"), password: busTestPassword},
		{name: "literal password", args: append(sasl, "--bus-sasl-password", busTestPassword), password: busTestPassword},
		{name: "mechanism lower case", args: []string{bus, "--bus-sasl-mechanism", "scram-sha-512", "--bus-sasl-username", "rb", "--bus-sasl-password", busTestPassword}},
		{name: "sasl over tls", args: append([]string{"--bus-tls-ca", caFile}, append(sasl, "--bus-sasl-password", "${env:RB_TEST_BUS_PW}")...), tls: true, password: busTestPassword},
		{name: "unknown mechanism", args: []string{bus, "--bus-sasl-mechanism", "GSSAPI", "--bus-sasl-username", "rb", "--bus-sasl-password", busTestPassword}, err: `--bus-sasl-mechanism: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not "GSSAPI"`},
		{name: "no mechanism", args: []string{bus, "--bus-sasl-username", "rb", "--bus-sasl-password", busTestPassword}, err: "--bus-sasl-mechanism is required"},
		{name: "no username", args: []string{bus, "--bus-sasl-mechanism", "PLAIN", "--bus-sasl-password", busTestPassword}, err: "--bus-sasl-username is required"},
		{name: "no password", args: sasl, err: "--bus-sasl-password is required"},
		{name: "password reference unset", args: append(sasl, "--bus-sasl-password", "${env:RB_TEST_UNSET_PW}"), err: `--bus-sasl-password: secret ${env:RB_TEST_UNSET_PW}: environment variable "RB_TEST_UNSET_PW" is not set`},
		{name: "password file missing", args: append(sasl, "--bus-sasl-password", "${file:"+filepath.Join(dir, "nope")+"}"), err: "--bus-sasl-password: secret ${file:"},
		{name: "password empty", args: append(sasl, "--bus-sasl-password", "${file:"+os.DevNull+"}"), err: "--bus-sasl-password: resolves to an empty value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("run", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			rf := addRunFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			sec, err := rf.busSec.load(rf.busURL != "")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				if strings.Contains(err.Error(), busTestPassword) {
					t.Fatalf("the error holds the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sec.TLS != nil; got != tc.tls {
				t.Errorf("tls = %v, want %v", got, tc.tls)
			}
			if tc.password != "" {
				m, ok := sec.SASL.(plain.Mechanism)
				if !ok || m.Username != "rb" || m.Password != tc.password {
					t.Errorf("sasl = %#v, want PLAIN rb with the resolved password", sec.SASL)
				}
			}
		})
	}
}

// TestBusSecurityFlagWithoutBus: the whole command refuses a bus flag
// without --bus, before it opens anything.
func TestBusSecurityFlagWithoutBus(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "run", filepath.Join(dir, "missing.yml"), "--data-dir", filepath.Join(dir, "data"),
		"--bus-sasl-password", busTestPassword)
	if code == 0 || !strings.Contains(stderr, "--bus-sasl-password needs --bus") {
		t.Fatalf("exit %d, stderr %q; want the flag named", code, stderr)
	}
	if strings.Contains(stderr, busTestPassword) {
		t.Fatalf("stderr holds the password: %q", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Fatal("the data directory was created before the flags were checked")
	}
}

// TestBusSecurityRun runs a rulebook on a bus that requires TLS and
// SCRAM-SHA-512, with the password given as ${env:...}: a wrong password
// stops the start with an error naming the flags, the right one carries
// events from a source through the bus to the rules. Neither the error nor
// any log line holds a password.
func TestBusSecurityRun(t *testing.T) {
	certPEM, _, server := selfSignedBroker(t)
	c := kafkatest.Start(t, kafkatest.Options{Brokers: 2, Partitions: 2, Topics: []string{"rb-bus"},
		TLS:  &tls.Config{Certificates: []tls.Certificate{server}, MinVersion: tls.VersionTLS12},
		SASL: &kafkatest.SASLUser{Mechanism: "SCRAM-SHA-512", Username: "rulebook", Password: busTestPassword}})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	rb := filepath.Join(dir, "rb.yml")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rb, []byte(`- name: secure
  sources:
    - name: numbers
      range: {limit: 3}
  rules:
    - name: show
      condition: event.i >= 0
      action:
        print_event: {}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	busURL := "kafka://" + c.Bootstrap() + "/rb-bus?group=secure"
	args := func(data, pwEnv string) []string {
		return []string{"--data-dir", filepath.Join(dir, data), "--bus", busURL, "--bus-tls-ca", caFile,
			"--bus-sasl-mechanism", "SCRAM-SHA-512", "--bus-sasl-username", "rulebook", "--bus-sasl-password", "${env:" + pwEnv + "}"}
	}
	t.Setenv("RB_TEST_BUS_PW", busTestPassword)
	t.Setenv("RB_TEST_BUS_WRONG_PW", "wrong-"+busTestPassword)

	t.Run("no tls or sasl flags", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := runWith(ctx, t, rb, []string{"--data-dir", filepath.Join(dir, "plain"), "--bus", busURL}, &rbtest.Buffer{}, &rbtest.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "--bus-tls") {
			t.Fatalf("got %v, want a hint at --bus-tls", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		var logs rbtest.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := runWith(ctx, t, rb, args("wrong", "RB_TEST_BUS_WRONG_PW"), &rbtest.Buffer{}, &logs)
		if ctx.Err() != nil {
			t.Fatal("the run did not stop on a wrong password")
		}
		if err == nil || !strings.Contains(err.Error(), "--bus: ") || !strings.Contains(err.Error(), "SASL Authentication Failed") ||
			!strings.Contains(err.Error(), "--bus-sasl-password") {
			t.Fatalf("got %v, want the bus's SASL failure pointing at the flags", err)
		}
		for what, s := range map[string]string{"error": err.Error(), "log": logs.String()} {
			if strings.Contains(s, busTestPassword) {
				t.Fatalf("the %s holds the password:\n%s", what, s)
			}
		}
	})

	t.Run("right password", func(t *testing.T) {
		var logs, stdout rbtest.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- runWith(ctx, t, rb, args("right", "RB_TEST_BUS_PW"), &stdout, &logs) }()
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(stdout.String(), `"i"`) < 3 {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("run ended early: %v\nlogs:\n%s", err, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("the three events did not come through the bus within 30s; stdout:\n%s\nlogs:\n%s", stdout.String(), logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("run did not stop within 30s of its context ending")
		}
		l := logs.String()
		if !strings.Contains(l, `"tls":true`) || !strings.Contains(l, `"sasl_mechanism":"SCRAM-SHA-512"`) {
			t.Errorf("the start log does not say tls and sasl are on:\n%s", l)
		}
		if strings.Contains(l+stdout.String(), busTestPassword) {
			t.Fatalf("the output holds the password:\n%s", l)
		}
	})
}

// runWith parses run flags as the command does and runs the rulebook with
// debug logs (kafka-go's included) in logs.
func runWith(ctx context.Context, t *testing.T, rb string, args []string, stdout, logs io.Writer) error {
	t.Helper()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rf := addRunFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return runRulebook(ctx, rb, rf, stdout, zerolog.New(logs).Level(zerolog.DebugLevel))
}

// selfSignedBroker returns a self-signed certificate for 127.0.0.1 (its
// own CA) and its key, as PEM and as a tls.Certificate.
func selfSignedBroker(t *testing.T) (certPEM, keyPEM []byte, cert tls.Certificate) {
	t.Helper()
	c := testcerts.SelfSigned(t, testcerts.Spec{
		CommonName: "rulebook bus test broker", IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	return c.CertPEM, c.KeyPEM, c.TLS
}
