// Package kafkaconn holds the Kafka connection settings shared by the kafka
// source and the kafka action: the brokers, tls {ca, cert, key,
// insecure_skip_verify} and sasl {mechanism, username, password} arguments,
// their checks and JSON Schema fragments, and the kafka-go Dialer and
// Transport built from them. Error paths name the argument keys brokers,
// tls and sasl, so both users keep their error texts. SecurityError and
// PermanentWriteError, the errors no retry can fix, are shared with the
// bus.
package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/rulebook-dev/rulebook/engine"
)

// ClientID is the client id sent to the brokers.
const ClientID = "rulebook"

// DialTimeout bounds the dial of one broker connection.
const DialTimeout = 10 * time.Second

// PathArgs returns the argument paths holding file paths (the tls
// material), for a spec's PathArgs: the loader resolves a relative one
// against the rulebook's directory.
func PathArgs() []string { return []string{"tls.ca", "tls.cert", "tls.key"} }

// TLS is the tls argument: each of CA, Cert and Key is PEM text or a file
// path.
type TLS struct {
	CA, Cert, Key      string
	InsecureSkipVerify bool
}

// SASL is the sasl argument. Mechanism is lower case.
type SASL struct {
	Mechanism, Username, Password string
}

// StringList accepts a YAML list of strings or one comma-separated string
// as the value of key; blank items are dropped.
func StringList(v any, key string) ([]string, error) {
	var raw []string
	switch x := v.(type) {
	case string:
		raw = strings.Split(x, ",")
	case []string:
		raw = x
	case []any:
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, engine.ArgErrorf([]string{key, fmt.Sprint(i)}, "must be a string")
			}
			raw = append(raw, s)
		}
	default:
		return nil, engine.ArgErrorf([]string{key}, "must be a list of strings or a comma-separated string")
	}
	var out []string
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// ParseBrokers decodes the brokers argument (nil is no broker) and checks
// that there is at least one and that each has a port. A broker for which
// later reports true (a template or a secret reference not yet resolved)
// is not checked.
func ParseBrokers(v any, later func(string) bool) ([]string, error) {
	var brokers []string
	if v != nil {
		var err error
		if brokers, err = StringList(v, "brokers"); err != nil {
			return nil, err
		}
	}
	if len(brokers) == 0 {
		return nil, engine.ArgErrorf([]string{"brokers"}, "at least one broker is required")
	}
	for _, b := range brokers {
		if !later(b) && !strings.Contains(b, ":") {
			return nil, engine.ArgErrorf([]string{"brokers"}, "broker %q needs a port (host:port)", b)
		}
	}
	return brokers, nil
}

// ParseTLS decodes the tls argument: nil or false is no TLS, true is TLS
// with the system's CAs, a mapping sets ca, cert, key and
// insecure_skip_verify. It reads no file (see Config).
func ParseTLS(v any) (*TLS, error) {
	if v == nil {
		return nil, nil
	}
	if b, ok := v.(bool); ok {
		if !b {
			return nil, nil
		}
		return &TLS{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, engine.ArgErrorf([]string{"tls"}, "must be a mapping or true")
	}
	t := &TLS{}
	for k, val := range m {
		switch k {
		case "ca", "cert", "key":
			s, ok := val.(string)
			if !ok {
				return nil, engine.ArgErrorf([]string{"tls", k}, "must be a string (a PEM file path or PEM text)")
			}
			switch k {
			case "ca":
				t.CA = s
			case "cert":
				t.Cert = s
			case "key":
				t.Key = s
			}
		case "insecure_skip_verify":
			b, ok := val.(bool)
			if !ok {
				return nil, engine.ArgErrorf([]string{"tls", k}, "must be true or false")
			}
			t.InsecureSkipVerify = b
		default:
			return nil, engine.ArgErrorf([]string{"tls", k}, "unknown key %q", k)
		}
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, engine.ArgErrorf([]string{"tls", "cert"}, "cert and key go together")
	}
	return t, nil
}

// ParseSASL decodes the sasl argument (nil is no SASL). A mechanism for
// which later reports true is accepted unchecked. Errors never quote the
// password.
func ParseSASL(v any, later func(string) bool) (*SASL, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, engine.ArgErrorf([]string{"sasl"}, "must be a mapping")
	}
	s := &SASL{}
	for k, val := range m {
		str, ok := val.(string)
		if !ok {
			return nil, engine.ArgErrorf([]string{"sasl", k}, "must be a string")
		}
		switch k {
		case "mechanism":
			s.Mechanism = strings.ToLower(str)
		case "username":
			s.Username = str
		case "password":
			s.Password = str
		default:
			return nil, engine.ArgErrorf([]string{"sasl", k}, "unknown key %q", k)
		}
	}
	switch {
	case s.Mechanism == "plain", s.Mechanism == "scram-sha-256", s.Mechanism == "scram-sha-512":
	case later(s.Mechanism):
	case s.Mechanism == "":
		return nil, engine.ArgErrorf([]string{"sasl", "mechanism"}, "is required (plain, scram-sha-256 or scram-sha-512)")
	default:
		return nil, engine.ArgErrorf([]string{"sasl", "mechanism"}, "must be plain, scram-sha-256 or scram-sha-512, not %q", s.Mechanism)
	}
	if s.Username == "" {
		return nil, engine.ArgErrorf([]string{"sasl", "username"}, "is required")
	}
	return s, nil
}

// Config loads the TLS material: each of ca, cert and key is PEM text when
// it contains "-----BEGIN" (as a ${file:...} reference resolves to), else
// a file path. A nil t is no TLS.
func (t *TLS) Config() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in by the operator
	if t.CA != "" {
		pem, err := pemOrFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls.ca: no certificate found in the PEM data")
		}
		cfg.RootCAs = pool
	}
	if t.Cert != "" {
		cert, err := pemOrFile(t.Cert)
		if err != nil {
			return nil, fmt.Errorf("tls.cert: %w", err)
		}
		key, err := pemOrFile(t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls.key: %w", err)
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			// The error of X509KeyPair never quotes key material.
			return nil, fmt.Errorf("tls.cert: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func pemOrFile(s string) ([]byte, error) {
	if strings.Contains(s, "-----BEGIN") {
		return []byte(s), nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", s, err)
	}
	return b, nil
}

// Auth builds the SASL mechanism. A nil s is no SASL.
func (s *SASL) Auth() (sasl.Mechanism, error) {
	if s == nil {
		return nil, nil
	}
	switch s.Mechanism {
	case "plain":
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, s.Username, s.Password)
	}
	return nil, fmt.Errorf("sasl.mechanism: unsupported %q", s.Mechanism)
}

// Security is the loaded connection security: what Config and Auth built.
type Security struct {
	TLS  *tls.Config    // nil: plaintext
	SASL sasl.Mechanism // nil: no authentication
}

// Load loads the TLS material and builds the SASL mechanism.
func Load(t *TLS, s *SASL) (Security, error) {
	tlsCfg, err := t.Config()
	if err != nil {
		return Security{}, err
	}
	mech, err := s.Auth()
	if err != nil {
		return Security{}, err
	}
	return Security{TLS: tlsCfg, SASL: mech}, nil
}

// Transport returns a kafka-go Transport (for writers and clients) with
// these settings, ClientID and DialTimeout.
func (sec Security) Transport() *kafkago.Transport {
	return &kafkago.Transport{
		DialTimeout: DialTimeout,
		ClientID:    ClientID,
		TLS:         sec.TLS,
		SASL:        sec.SASL,
	}
}

// Dialer returns a kafka-go Dialer (for readers) with these settings,
// ClientID and DialTimeout.
func (sec Security) Dialer() *kafkago.Dialer {
	return &kafkago.Dialer{
		ClientID:      ClientID,
		Timeout:       DialTimeout,
		DualStack:     true,
		TLS:           sec.TLS,
		SASLMechanism: sec.SASL,
	}
}

// PermanentWriteError reports whether a failed write of one message cannot
// succeed by trying again: the message is too large or malformed, the topic
// name is invalid, the client lacks the rights or the credentials, or the
// connection failed for a reason no retry fixes (SecurityError). A network
// error, a timeout or a broker that is restarting or has no leader is not
// permanent. err is one message's error: a caller unpacks kafka-go's
// WriteErrors as its batch semantics need.
func PermanentWriteError(err error) bool {
	if SecurityError(err) {
		return true
	}
	var tooLarge kafkago.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return true
	}
	var ke kafkago.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafkago.MessageSizeTooLarge, kafkago.InvalidTopic, kafkago.RecordListTooLarge,
			kafkago.TopicAuthorizationFailed, kafkago.ClusterAuthorizationFailed,
			kafkago.SASLAuthenticationFailed, kafkago.UnsupportedSASLMechanism,
			kafkago.InvalidRecord, kafkago.InvalidRequiredAcks, kafkago.UnsupportedForMessageFormat:
			return true
		}
	}
	return false
}

// SecurityError reports a connection error that no retry can fix because
// the brokers refuse this client or this client refuses them: failed SASL
// authentication or an unsupported mechanism, an untrusted or invalid
// broker certificate, a TLS alert from the broker (it refused the client
// certificate, or TLS itself), or an answer that is not TLS at all (TLS
// spoken to a plaintext listener).
func SecurityError(err error) bool {
	if err == nil {
		return false
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	var header tls.RecordHeaderError
	// crypto/tls reports an alert received from the broker as a
	// *net.OpError with Op "remote error".
	var op *net.OpError
	remoteAlert := errors.As(err, &op) && op.Op == "remote error"
	return errors.Is(err, kafkago.SASLAuthenticationFailed) || errors.Is(err, kafkago.UnsupportedSASLMechanism) ||
		errors.Is(err, kafkago.IllegalSASLState) || errors.As(err, &alert) || remoteAlert ||
		errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &header)
}

// Log passes kafka-go's log lines to log at lvl, marked as the library's
// (library: kafka-go). The mark is not component: the logger of the bus
// names its own component, and a key twice in a JSON line is kept
// differently by each log processor.
func Log(log zerolog.Logger, lvl zerolog.Level) kafkago.LoggerFunc {
	return func(msg string, args ...any) {
		log.WithLevel(lvl).Str("library", "kafka-go").Msgf(msg, args...)
	}
}
