package kafka

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/kafkaconn"
)

// args are the action's arguments after rendering.
type args struct {
	Brokers []string
	Topic   string
	Key     []byte // nil: no key
	Value   []byte
	Headers map[string]string
	TLS     *kafkaconn.TLS
	SASL    *kafkaconn.SASL
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
	later := func(s string) bool { return tmpl(s) }

	switch v := in["brokers"]; {
	case v == nil:
		return a, engine.ArgErrorf([]string{"brokers"}, "is required")
	case tmpl(v):
	default:
		var err error
		if a.Brokers, err = kafkaconn.ParseBrokers(v, later); err != nil {
			return a, err
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
	if a.TLS, err = kafkaconn.ParseTLS(in["tls"]); err != nil {
		return a, err
	}
	if a.SASL, err = kafkaconn.ParseSASL(in["sasl"], later); err != nil {
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
