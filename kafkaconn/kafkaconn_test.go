package kafkaconn

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go/sasl/plain"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/testcerts"
	"github.com/rulebook-dev/rulebook/test/rbtest"
)

func secretRef(s string) bool { return engine.HasSecretRef(s) }
func never(string) bool       { return false }

// wantArgErr checks err against a wanted ArgError path ("" for no error)
// and message fragment.
func wantArgErr(t *testing.T, err error, key, msg string) {
	t.Helper()
	if key == "" {
		if err != nil {
			t.Fatalf("want no error, got %v", err)
		}
		return
	}
	var ae *engine.ArgError
	if !errors.As(err, &ae) {
		t.Fatalf("want *engine.ArgError at %q, got %v", key, err)
	}
	if got := strings.Join(ae.Path, "."); got != key {
		t.Errorf("path: got %q, want %q (%v)", got, key, err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("message %q does not contain %q", err.Error(), msg)
	}
}

func TestParseBrokers(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		later   func(string) bool
		want    []string
		wantKey string
		wantMsg string
	}{
		{"one", "a:1", never, []string{"a:1"}, "", ""},
		{"comma-separated with blanks", " a:1, ,b:2 ", never, []string{"a:1", "b:2"}, "", ""},
		{"list", []any{"a:1", " b:2"}, never, []string{"a:1", "b:2"}, "", ""},
		{"string slice", []string{"a:1"}, never, []string{"a:1"}, "", ""},
		{"secret reference unchecked", "${env:B}", secretRef, []string{"${env:B}"}, "", ""},
		{"secret reference checked once resolved", "kafka", secretRef, nil, "brokers", `broker "kafka" needs a port`},
		{"nil", nil, never, nil, "brokers", "at least one broker is required"},
		{"only blanks", " , ", never, nil, "brokers", "at least one broker is required"},
		{"empty list", []any{}, never, nil, "brokers", "at least one broker is required"},
		{"no port", "a:1,localhost", never, nil, "brokers", `broker "localhost" needs a port (host:port)`},
		{"wrong type", 9092, never, nil, "brokers", "must be a list of strings or a comma-separated string"},
		{"item wrong type", []any{"a:1", 2}, never, nil, "brokers.1", "must be a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBrokers(tc.in, tc.later)
			wantArgErr(t, err, tc.wantKey, tc.wantMsg)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseTLS(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    *TLS
		wantKey string
		wantMsg string
	}{
		{"absent", nil, nil, "", ""},
		{"false", false, nil, "", ""},
		{"true", true, &TLS{}, "", ""},
		{"empty mapping", map[string]any{}, &TLS{}, "", ""},
		{"everything", map[string]any{"ca": "/ca", "cert": "/c", "key": "/k", "insecure_skip_verify": true},
			&TLS{CA: "/ca", Cert: "/c", Key: "/k", InsecureSkipVerify: true}, "", ""},
		{"not a mapping", "yes", nil, "tls", "must be a mapping or true"},
		{"unknown key", map[string]any{"cafile": "x"}, nil, "tls.cafile", `unknown key "cafile"`},
		{"ca not a string", map[string]any{"ca": 1}, nil, "tls.ca", "must be a string (a PEM file path or PEM text)"},
		{"skip verify not a bool", map[string]any{"insecure_skip_verify": "yes"}, nil, "tls.insecure_skip_verify", "must be true or false"},
		{"cert without key", map[string]any{"cert": "/c"}, nil, "tls.cert", "cert and key go together"},
		{"key without cert", map[string]any{"key": "/k"}, nil, "tls.cert", "cert and key go together"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTLS(tc.in)
			wantArgErr(t, err, tc.wantKey, tc.wantMsg)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseSASL(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		later   func(string) bool
		want    *SASL
		wantKey string
		wantMsg string
	}{
		{"absent", nil, never, nil, "", ""},
		{"plain", map[string]any{"mechanism": "plain", "username": "u", "password": "p"}, never, &SASL{"plain", "u", "p"}, "", ""},
		{"upper case", map[string]any{"mechanism": "SCRAM-SHA-512", "username": "u"}, never, &SASL{Mechanism: "scram-sha-512", Username: "u"}, "", ""},
		{"later mechanism", map[string]any{"mechanism": "${env:M}", "username": "u"}, secretRef, &SASL{Mechanism: "${env:m}", Username: "u"}, "", ""},
		{"not a mapping", "plain", never, nil, "sasl", "must be a mapping"},
		{"value not a string", map[string]any{"mechanism": "plain", "username": "u", "password": 42}, never, nil, "sasl.password", "must be a string"},
		{"unknown key", map[string]any{"mechanism": "plain", "username": "u", "user": "x"}, never, nil, "sasl.user", `unknown key "user"`},
		{"no mechanism", map[string]any{"username": "u"}, never, nil, "sasl.mechanism", "is required (plain, scram-sha-256 or scram-sha-512)"},
		{"bad mechanism", map[string]any{"mechanism": "gssapi", "username": "u"}, never, nil, "sasl.mechanism", `must be plain, scram-sha-256 or scram-sha-512, not "gssapi"`},
		{"bad mechanism not later", map[string]any{"mechanism": "gssapi", "username": "u"}, secretRef, nil, "sasl.mechanism", `not "gssapi"`},
		{"no username", map[string]any{"mechanism": "plain"}, never, nil, "sasl.username", "is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSASL(tc.in, tc.later)
			wantArgErr(t, err, tc.wantKey, tc.wantMsg)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSASLErrorsHideThePassword(t *testing.T) {
	for _, in := range []map[string]any{
		{"mechanism": "nope", "username": "u", "password": "hunter2"},
		{"mechanism": "plain", "password": "hunter2"},
		{"mechanism": "plain", "username": "u", "password": "hunter2", "extra": 1},
	} {
		_, err := ParseSASL(in, never)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("%v: got %v", in, err)
		}
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		sasl     *SASL
		wantName string // "" for no mechanism
		wantErr  string
	}{
		{nil, "", ""},
		{&SASL{"plain", "u", "p"}, "PLAIN", ""},
		{&SASL{"scram-sha-256", "u", "p"}, "SCRAM-SHA-256", ""},
		{&SASL{"scram-sha-512", "u", "p"}, "SCRAM-SHA-512", ""},
		{&SASL{"gssapi", "u", "p"}, "", `sasl.mechanism: unsupported "gssapi"`},
	}
	for _, tc := range tests {
		m, err := tc.sasl.Auth()
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("%+v: got %v, want %q", tc.sasl, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc.sasl, err)
		}
		switch {
		case tc.wantName == "" && m != nil:
			t.Fatalf("nil SASL built %v", m)
		case tc.wantName != "" && (m == nil || m.Name() != tc.wantName):
			t.Fatalf("%+v: got %v, want %s", tc.sasl, m, tc.wantName)
		}
	}
	m, _ := (&SASL{"plain", "u", "p"}).Auth()
	if p, ok := m.(plain.Mechanism); !ok || p.Username != "u" || p.Password != "p" {
		t.Fatalf("plain mechanism: %#v", m)
	}
}

// testPEM returns a self-signed certificate and its key, as PEM.
func testPEM(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	c := testcerts.SelfSigned(t, testcerts.Spec{CommonName: "kafkaconn test"})
	return c.CertPEM, c.KeyPEM
}

func TestTLSConfig(t *testing.T) {
	certPEM, keyPEM := testPEM(t)
	otherCert, _ := testPEM(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string { return testcerts.WriteFile(t, dir, name, b) }
	caFile, certFile, keyFile := write("ca.pem", certPEM), write("cert.pem", certPEM), write("key.pem", keyPEM)
	junk := write("junk.pem", []byte("not pem"))
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name      string
		tls       *TLS
		wantNil   bool
		wantCA    bool
		wantCerts int
		wantSkip  bool
		wantErr   string // prefix of the error
	}{
		{"nil", nil, true, false, 0, false, ""},
		{"system CAs", &TLS{}, false, false, 0, false, ""},
		{"skip verify", &TLS{InsecureSkipVerify: true}, false, false, 0, true, ""},
		{"files", &TLS{CA: caFile, Cert: certFile, Key: keyFile}, false, true, 1, false, ""},
		{"PEM text", &TLS{CA: string(certPEM), Cert: string(certPEM), Key: string(keyPEM)}, false, true, 1, false, ""},
		{"missing ca", &TLS{CA: missing}, false, false, 0, false, `tls.ca: read "` + missing + `"`},
		{"ca without certificate", &TLS{CA: junk}, false, false, 0, false, "tls.ca: no certificate found in the PEM data"},
		{"missing cert", &TLS{Cert: missing, Key: keyFile}, false, false, 0, false, "tls.cert: read"},
		{"missing key", &TLS{Cert: certFile, Key: missing}, false, false, 0, false, "tls.key: read"},
		{"key of another certificate", &TLS{Cert: string(otherCert), Key: string(keyPEM)}, false, false, 0, false, "tls.cert: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.tls.Config()
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error starting %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Fatalf("error quotes key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNil {
				if cfg != nil {
					t.Fatalf("want no TLS, got %+v", cfg)
				}
				return
			}
			if cfg.MinVersion == 0 || (cfg.RootCAs != nil) != tc.wantCA || len(cfg.Certificates) != tc.wantCerts || cfg.InsecureSkipVerify != tc.wantSkip {
				t.Fatalf("config: min %x, CAs %v, certs %d, skip %v", cfg.MinVersion, cfg.RootCAs != nil, len(cfg.Certificates), cfg.InsecureSkipVerify)
			}
		})
	}
}

func TestLoadTransportDialer(t *testing.T) {
	if _, err := Load(&TLS{CA: filepath.Join(t.TempDir(), "none")}, nil); err == nil || !strings.HasPrefix(err.Error(), "tls.ca:") {
		t.Fatalf("Load with a missing CA: %v", err)
	}
	if _, err := Load(nil, &SASL{Mechanism: "x"}); err == nil || !strings.HasPrefix(err.Error(), "sasl.mechanism:") {
		t.Fatalf("Load with a bad mechanism: %v", err)
	}
	plainSec, err := Load(nil, nil)
	if err != nil || plainSec.TLS != nil || plainSec.SASL != nil {
		t.Fatalf("Load(nil, nil) = %+v, %v", plainSec, err)
	}
	sec, err := Load(&TLS{InsecureSkipVerify: true}, &SASL{Mechanism: "plain", Username: "u"})
	if err != nil {
		t.Fatal(err)
	}
	tr := sec.Transport()
	if tr.ClientID != ClientID || tr.DialTimeout != DialTimeout || tr.TLS != sec.TLS || tr.SASL != sec.SASL || tr.TLS == nil {
		t.Fatalf("transport: %+v", tr)
	}
	if sec.Transport() == tr {
		t.Fatal("Transport must return a new transport each time (callers adjust and close it)")
	}
	d := sec.Dialer()
	if d.ClientID != ClientID || d.Timeout != DialTimeout || !d.DualStack || d.TLS != sec.TLS || d.SASLMechanism != sec.SASL {
		t.Fatalf("dialer: %+v", d)
	}
}

// FuzzParse: arbitrary argument values never panic and fail only with an
// ArgError.
func FuzzParse(f *testing.F) {
	f.Add("a:1,b:2", "/ca.pem", "plain", "u", true)
	f.Add("${env:B}", "", "SCRAM-SHA-256", "", false)
	f.Add(" , ", "-----BEGIN", "${env:M}", "u", true)
	f.Fuzz(func(t *testing.T, brokers, ca, mech, user string, skip bool) {
		check := func(err error) {
			var ae *engine.ArgError
			if err != nil && !errors.As(err, &ae) {
				t.Fatalf("not an ArgError: %T %v", err, err)
			}
		}
		bs, err := ParseBrokers(brokers, secretRef)
		check(err)
		if err == nil && len(bs) == 0 {
			t.Fatal("no error and no broker")
		}
		_, err = ParseTLS(map[string]any{"ca": ca, "insecure_skip_verify": skip})
		check(err)
		s, err := ParseSASL(map[string]any{"mechanism": mech, "username": user, "password": "hunter2"}, secretRef)
		check(err)
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error quotes the password: %v", err)
		}
		if err == nil && (s.Username == "" || s.Mechanism != strings.ToLower(s.Mechanism)) {
			t.Fatalf("accepted %+v", s)
		}
	})
}

func TestPathArgs(t *testing.T) {
	want := []string{"tls.ca", "tls.cert", "tls.key"}
	a := PathArgs()
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("PathArgs() = %q, want %q", a, want)
	}
	a[0] = "changed"
	if PathArgs()[0] != "tls.ca" {
		t.Fatal("PathArgs shares its slice with callers")
	}
}

// kafka-go's lines, logged through a logger that names its component (the
// bus's), hold each key once and say whose they are: library kafka-go.
func TestLogMarksTheLibraryNotAComponent(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel).With().Str("component", "bus").Str("topic", "t").Logger()
	Log(log, zerolog.WarnLevel)("no leader for partition %d", 3)
	line := strings.TrimSpace(buf.String())
	repeated, err := rbtest.RepeatedKeys(line)
	if err != nil {
		t.Fatal(err)
	}
	if len(repeated) > 0 {
		t.Errorf("keys %q twice in log line %s", repeated, line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"component": "bus", "library": "kafka-go", "level": "warn", "message": "no leader for partition 3"} {
		if got, _ := m[k].(string); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}
