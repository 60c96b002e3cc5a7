package kafka

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/rulebook-dev/rulebook/engine"
)

// args are the action's arguments after rendering.
type args struct {
	Brokers []string
	Topic   string
	Key     []byte // nil: no key
	Value   []byte
	Headers map[string]string
	TLS     *tlsArgs
	SASL    *saslArgs
}

type tlsArgs struct {
	CA, Cert, Key      string
	InsecureSkipVerify bool
}

type saslArgs struct {
	Mechanism, Username, Password string
}

var knownKeys = map[string]bool{
	"brokers": true, "topic": true, "key": true, "value": true, "headers": true, "tls": true, "sasl": true,
}

// parseArgs validates arguments. With rendered false (load time), a template
// string is accepted wherever a rendered value could be valid.
func parseArgs(in map[string]any, rendered bool) (args, error) {
	var a args
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !knownKeys[k] {
			return a, engine.ArgErrorf([]string{k}, "unknown key %q", k)
		}
	}
	// At load time a template, or a string holding a secret reference
	// (resolved just before Run), is only known later.
	tmpl := func(v any) bool {
		str, ok := v.(string)
		return !rendered && ok && (engine.IsTemplate(str) || engine.HasSecretRef(str))
	}

	switch v := in["brokers"]; {
	case v == nil:
		return a, engine.ArgErrorf([]string{"brokers"}, "is required")
	case tmpl(v):
	default:
		var err error
		if a.Brokers, err = stringList(v, "brokers"); err != nil {
			return a, err
		}
		if len(a.Brokers) == 0 {
			return a, engine.ArgErrorf([]string{"brokers"}, "at least one broker is required")
		}
		for _, b := range a.Brokers {
			if !tmpl(b) && !strings.Contains(b, ":") {
				return a, engine.ArgErrorf([]string{"brokers"}, "broker %q needs a port (host:port)", b)
			}
		}
	}

	topic, ok := in["topic"].(string)
	if !ok || strings.TrimSpace(topic) == "" {
		return a, engine.ArgErrorf([]string{"topic"}, "is required and must be a string")
	}
	a.Topic = strings.TrimSpace(topic)
	if !tmpl(topic) && !validTopic(a.Topic) {
		return a, engine.ArgErrorf([]string{"topic"}, "%q is not a valid topic name (letters, digits, '.', '_', '-'; at most 249)", a.Topic)
	}

	if v, ok := in["key"]; ok && v != nil {
		switch k := v.(type) {
		case string:
			a.Key = []byte(k)
		case int, int64, float64, bool:
			a.Key = []byte(fmt.Sprint(k))
		default:
			return a, engine.ArgErrorf([]string{"key"}, "must be a string")
		}
	}

	v, ok := in["value"]
	if !ok {
		return a, engine.ArgErrorf([]string{"value"}, "is required")
	}
	switch x := v.(type) {
	case string:
		a.Value = []byte(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return a, engine.ArgErrorf([]string{"value"}, "cannot be encoded as JSON: %v", err)
		}
		a.Value = b
	}

	if v, ok := in["headers"]; ok && v != nil && !tmpl(v) {
		m, ok := v.(map[string]any)
		if !ok {
			return a, engine.ArgErrorf([]string{"headers"}, "must be a mapping of names to strings")
		}
		a.Headers = make(map[string]string, len(m))
		for k, hv := range m {
			switch s := hv.(type) {
			case string:
				a.Headers[k] = s
			case int, int64, float64, bool:
				a.Headers[k] = fmt.Sprint(s)
			default:
				return a, engine.ArgErrorf([]string{"headers", k}, "must be a string")
			}
		}
	}
	var err error
	if a.TLS, err = parseTLS(in["tls"]); err != nil {
		return a, err
	}
	if a.SASL, err = parseSASL(in["sasl"], tmpl); err != nil {
		return a, err
	}
	return a, nil
}

func validTopic(s string) bool {
	if s == "" || len(s) > 249 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func stringList(v any, key string) ([]string, error) {
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

func parseTLS(v any) (*tlsArgs, error) {
	if v == nil {
		return nil, nil
	}
	if b, ok := v.(bool); ok {
		if !b {
			return nil, nil
		}
		return &tlsArgs{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, engine.ArgErrorf([]string{"tls"}, "must be a mapping or true")
	}
	t := &tlsArgs{}
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

func parseSASL(v any, later func(any) bool) (*saslArgs, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, engine.ArgErrorf([]string{"sasl"}, "must be a mapping")
	}
	s := &saslArgs{}
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

// tlsConfig loads the TLS material: PEM text when it contains "-----BEGIN",
// else a file path.
func (t *tlsArgs) tlsConfig() (*tls.Config, error) {
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

func (s *saslArgs) mechanism() (sasl.Mechanism, error) {
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

// writerKey identifies the writer for these arguments: brokers, topic, and
// a digest of the connection security settings (never the secrets
// themselves), so two credentials never share a connection.
func (a args) writerKey() string {
	h := sha256.New()
	if a.TLS != nil {
		fmt.Fprintf(h, "tls\x00%s\x00%s\x00%s\x00%v\x00", a.TLS.CA, a.TLS.Cert, a.TLS.Key, a.TLS.InsecureSkipVerify)
	}
	if a.SASL != nil {
		fmt.Fprintf(h, "sasl\x00%s\x00%s\x00%s\x00", a.SASL.Mechanism, a.SASL.Username, a.SASL.Password)
	}
	return strings.Join(a.Brokers, ",") + "|" + a.Topic + "|" + hex.EncodeToString(h.Sum(nil)[:8])
}
