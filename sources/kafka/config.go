package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/rulebook-dev/rulebook/engine"
)

// Format is how a message value becomes the event's body.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// config is the source's arguments, validated.
type config struct {
	Brokers      []string
	Topics       []string
	TopicPattern *regexp.Regexp
	GroupID      string
	StartOffset  int64 // kafkago.FirstOffset or kafkago.LastOffset
	TLS          *tlsArgs
	SASL         *saslArgs
	Format       string
	DeadLetter   string
	Dedupe       bool

	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	JoinGroupBackoff  time.Duration
	CommitInterval    time.Duration
	MaxWait           time.Duration
	TopicRefresh      time.Duration
	LagLogInterval    time.Duration
	BatchSize         int
	RetryBackoff      time.Duration
	MaxRetryBackoff   time.Duration
}

type tlsArgs struct {
	CA, Cert, Key      string // PEM content or a file path
	InsecureSkipVerify bool
}

type saslArgs struct {
	Mechanism, Username, Password string
}

var knownKeys = map[string]bool{
	"brokers": true, "topic": true, "topics": true, "topic_pattern": true, "group_id": true,
	"offset": true, "tls": true, "sasl": true, "format": true, "dead_letter_topic": true,
	"dedupe": true, "session_timeout": true, "rebalance_timeout": true, "heartbeat_interval": true,
	"join_group_backoff": true, "commit_interval": true, "max_wait": true,
	"topic_refresh_interval": true, "lag_log_interval": true, "batch_size": true,
	"retry_backoff": true, "max_retry_backoff": true,
}

// parseConfig validates args. It reads no file: TLS material is loaded by
// tlsConfig when the source is built. With resolved false (Check, at load
// time) a string holding a secret reference (${env:...}, ${file:...}) is
// only known later, so its format is not checked; New checks everything.
func parseConfig(args map[string]any, resolved bool) (config, error) {
	later := func(s string) bool { return !resolved && engine.HasSecretRef(s) }
	c := config{
		StartOffset:       kafkago.FirstOffset,
		Format:            FormatJSON,
		Dedupe:            true,
		SessionTimeout:    30 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		HeartbeatInterval: 3 * time.Second,
		JoinGroupBackoff:  2 * time.Second,
		CommitInterval:    time.Second,
		MaxWait:           500 * time.Millisecond,
		TopicRefresh:      30 * time.Second,
		LagLogInterval:    30 * time.Second,
		BatchSize:         256,
		RetryBackoff:      100 * time.Millisecond,
		MaxRetryBackoff:   5 * time.Second,
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !knownKeys[k] {
			return c, engine.ArgErrorf([]string{k}, "unknown key %q", k)
		}
	}

	var err error
	if c.Brokers, err = stringList(args, "brokers"); err != nil {
		return c, err
	}
	if len(c.Brokers) == 0 {
		return c, engine.ArgErrorf([]string{"brokers"}, "at least one broker is required")
	}
	for _, b := range c.Brokers {
		if !later(b) && !strings.Contains(b, ":") {
			return c, engine.ArgErrorf([]string{"brokers"}, "broker %q needs a port (host:port)", b)
		}
	}

	topic, err := optString(args, "topic")
	if err != nil {
		return c, err
	}
	topics, err := stringList(args, "topics")
	if err != nil {
		return c, err
	}
	pattern, err := optString(args, "topic_pattern")
	if err != nil {
		return c, err
	}
	n := 0
	for _, set := range []bool{topic != "", len(topics) > 0, pattern != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return c, engine.ArgErrorf([]string{"topic"}, "exactly one of topic, topics and topic_pattern is required")
	}
	switch {
	case topic != "":
		c.Topics = []string{topic}
	case len(topics) > 0:
		c.Topics = topics
	case later(pattern):
	default:
		if c.TopicPattern, err = regexp.Compile(pattern); err != nil {
			return c, engine.ArgErrorf([]string{"topic_pattern"}, "invalid regular expression %q: %v", pattern, err)
		}
	}

	if c.GroupID, err = optString(args, "group_id"); err != nil {
		return c, err
	}
	off, err := optString(args, "offset")
	if err != nil {
		return c, err
	}
	switch {
	case later(off):
	case off == "" || off == "earliest":
		c.StartOffset = kafkago.FirstOffset
	case off == "latest":
		c.StartOffset = kafkago.LastOffset
	default:
		return c, engine.ArgErrorf([]string{"offset"}, "must be earliest or latest, not %q", off)
	}

	if f, err := optString(args, "format"); err != nil {
		return c, err
	} else if f != "" && !later(f) {
		if f != FormatJSON && f != FormatText {
			return c, engine.ArgErrorf([]string{"format"}, "must be json or text, not %q", f)
		}
		c.Format = f
	}
	if c.DeadLetter, err = optString(args, "dead_letter_topic"); err != nil {
		return c, err
	}
	if v, ok := args["dedupe"]; ok {
		b, ok := v.(bool)
		if !ok {
			return c, engine.ArgErrorf([]string{"dedupe"}, "must be true or false")
		}
		c.Dedupe = b
	}
	if c.TLS, err = parseTLS(args["tls"]); err != nil {
		return c, err
	}
	if c.SASL, err = parseSASL(args["sasl"], later); err != nil {
		return c, err
	}

	durations := []struct {
		key string
		dst *time.Duration
	}{
		{"session_timeout", &c.SessionTimeout},
		{"rebalance_timeout", &c.RebalanceTimeout},
		{"heartbeat_interval", &c.HeartbeatInterval},
		{"join_group_backoff", &c.JoinGroupBackoff},
		{"commit_interval", &c.CommitInterval},
		{"max_wait", &c.MaxWait},
		{"topic_refresh_interval", &c.TopicRefresh},
		{"lag_log_interval", &c.LagLogInterval},
		{"retry_backoff", &c.RetryBackoff},
		{"max_retry_backoff", &c.MaxRetryBackoff},
	}
	for _, d := range durations {
		if v, ok := args[d.key]; ok {
			if str, isStr := v.(string); isStr && later(str) {
				continue
			}
			if *d.dst, err = duration(d.key, v); err != nil {
				return c, err
			}
		}
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return c, engine.ArgErrorf([]string{"heartbeat_interval"}, "must be shorter than session_timeout (%s)", c.SessionTimeout)
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		return c, engine.ArgErrorf([]string{"max_retry_backoff"}, "must not be shorter than retry_backoff (%s)", c.RetryBackoff)
	}
	if v, ok := args["batch_size"]; ok {
		n, ok := toInt(v)
		if !ok || n < 1 || n > 100000 {
			return c, engine.ArgErrorf([]string{"batch_size"}, "must be a whole number from 1 to 100000")
		}
		c.BatchSize = n
	}
	return c, nil
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

func parseSASL(v any, later func(string) bool) (*saslArgs, error) {
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

// tlsConfig loads the TLS material: each of ca, cert and key is PEM text
// when it contains "-----BEGIN" (as a ${file:...} reference resolves to),
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

func optString(args map[string]any, key string) (string, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", engine.ArgErrorf([]string{key}, "must be a string")
	}
	return strings.TrimSpace(s), nil
}

// stringList accepts a YAML list of strings or one comma-separated string.
func stringList(args map[string]any, key string) ([]string, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return nil, nil
	}
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

// duration accepts a Go duration string ("500ms", "2s") or a number of
// seconds.
func duration(key string, v any) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(x)); err != nil {
			return 0, engine.ArgErrorf([]string{key}, "invalid duration %q", x)
		}
	case int:
		d = time.Duration(x) * time.Second
	case int64:
		d = time.Duration(x) * time.Second
	case float64:
		d = time.Duration(x * float64(time.Second))
	default:
		return 0, engine.ArgErrorf([]string{key}, "must be a duration such as \"500ms\" or a number of seconds")
	}
	if d <= 0 {
		return 0, engine.ArgErrorf([]string{key}, "must be positive")
	}
	return d, nil
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		if x == float64(int(x)) {
			return int(x), true
		}
	}
	return 0, false
}
