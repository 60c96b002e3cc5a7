package eda

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rulebook-dev/rulebook/engine"
)

// SourceArgs rewrites the arguments ansible.eda's webhook, alertmanager
// and kafka sources take into this project's names, in a new map; keys
// that are already native, and other source types, pass unchanged. EDA's
// names do not collide with native ones, so both may be used. An EDA
// argument that has no equivalent is an *engine.ArgError naming it.
// edaStyle says the source is written for EDA (named with its prefix, or in
// a rulebook read as EDA's): then a webhook or alertmanager source without
// path or paths serves every path, as EDA's do.
func SourceArgs(typ string, args map[string]any, edaStyle bool) (map[string]any, error) {
	var tr func(in, out map[string]any) error
	switch typ {
	case "webhook":
		tr = webhookArgs
	case "alertmanager":
		tr = alertmanagerArgs
	case "kafka":
		tr = kafkaArgs
	default:
		return args, nil
	}
	out := make(map[string]any, len(args))
	for k, v := range args {
		out[k] = v
	}
	if err := tr(args, out); err != nil {
		return nil, err
	}
	if edaStyle && typ != "kafka" {
		_, p := out["path"]
		_, ps := out["paths"]
		if !p && !ps {
			out["path"] = "*"
		}
	}
	return out, nil
}

// move renames key from to the nested path to (dotted), if present.
func move(in, out map[string]any, from, to string) error {
	v, ok := in[from]
	if !ok {
		return nil
	}
	delete(out, from)
	parts := strings.Split(to, ".")
	m := out
	for i, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			if _, exists := m[p]; exists {
				return engine.ArgErrorf([]string{from}, "cannot be combined with %q", strings.Join(parts[:i+1], "."))
			}
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	last := parts[len(parts)-1]
	if _, exists := m[last]; exists {
		return engine.ArgErrorf([]string{from}, "cannot be combined with %q", to)
	}
	m[last] = v
	return nil
}

func moveAll(in, out map[string]any, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := move(in, out, pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func unsupported(in map[string]any, keys map[string]string) error {
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := in[k]; ok {
			return engine.ArgErrorf([]string{k}, "%s", keys[k])
		}
	}
	return nil
}

const encryptedKey = "an encrypted key file is not supported: decrypt it (openssl pkey -in key.pem -out plain.pem) and keep it readable only by rulebook"

// webhookArgs: ansible.eda.webhook's host, port and token are native;
// hmac_secret, hmac_algo, hmac_header, hmac_format become hmac.*, and
// certfile, keyfile, cafile become tls.*.
func webhookArgs(in, out map[string]any) error {
	if err := unsupported(in, map[string]string{"password": encryptedKey}); err != nil {
		return err
	}
	if _, ok := in["hmac_secret"]; ok {
		algo := "sha256"
		if a, ok := in["hmac_algo"].(string); ok {
			algo = strings.ToLower(a)
		}
		header := "x-hub-signature-256"
		if h, ok := in["hmac_header"].(string); ok {
			header = h
		}
		hm := map[string]any{"secret": in["hmac_secret"], "algorithm": algo, "header": header}
		if f, ok := in["hmac_format"]; ok {
			hm["encoding"] = f
		}
		if strings.EqualFold(header, "x-hub-signature-256") || strings.EqualFold(header, "x-hub-signature") {
			// GitHub's headers carry "sha256=" before the signature.
			hm["prefix"] = algo + "="
		}
		if _, exists := out["hmac"]; exists {
			return engine.ArgErrorf([]string{"hmac_secret"}, "cannot be combined with %q", "hmac")
		}
		for _, k := range []string{"hmac_secret", "hmac_algo", "hmac_header", "hmac_format"} {
			delete(out, k)
		}
		out["hmac"] = hm
	} else {
		for _, k := range []string{"hmac_algo", "hmac_header", "hmac_format"} {
			if _, ok := in[k]; ok {
				return engine.ArgErrorf([]string{k}, "goes with hmac_secret")
			}
		}
	}
	return moveAll(in, out, "certfile", "tls.cert", "keyfile", "tls.key", "cafile", "tls.client_ca")
}

// alertmanagerArgs: ansible.eda.alertmanager's host and port are native;
// data_host_path labels.NAME becomes host_label NAME, skip_original_data
// false asks for the whole notification too (notification_event).
func alertmanagerArgs(in, out map[string]any) error {
	sep := "."
	if v, ok := in["data_path_separator"]; ok {
		s, ok := v.(string)
		if !ok || s == "" {
			return engine.ArgErrorf([]string{"data_path_separator"}, "want a separator like \".\"")
		}
		sep = s
		delete(out, "data_path_separator")
	}
	if v, ok := in["data_alerts_path"]; ok {
		if v != "alerts" {
			return engine.ArgErrorf([]string{"data_alerts_path"}, "only %q (Alertmanager's own payload) is supported, got %v", "alerts", v)
		}
		delete(out, "data_alerts_path")
	}
	if v, ok := in["data_host_path"]; ok {
		s, _ := v.(string)
		label, ok := strings.CutPrefix(s, "labels"+sep)
		if !ok || label == "" || strings.Contains(label, sep) {
			return engine.ArgErrorf([]string{"data_host_path"}, "want labels%sNAME (the alert label naming the host), got %v", sep, v)
		}
		if err := move(map[string]any{"data_host_path": label}, out, "data_host_path", "host_label"); err != nil {
			return err
		}
	}
	if v, ok := in["skip_original_data"]; ok {
		b, ok := v.(bool)
		if !ok {
			return engine.ArgErrorf([]string{"skip_original_data"}, "want true or false, got %v", v)
		}
		delete(out, "skip_original_data")
		if _, exists := out["notification_event"]; exists {
			return engine.ArgErrorf([]string{"skip_original_data"}, "cannot be combined with %q", "notification_event")
		}
		out["notification_event"] = !b
	}
	return nil
}

// kafkaArgs: ansible.eda.kafka's host and port become brokers; topic,
// group_id and offset are native; cafile, certfile, keyfile,
// check_hostname, verify_mode and security_protocol become tls; the
// sasl_* arguments become sasl.
func kafkaArgs(in, out map[string]any) error {
	if err := unsupported(in, map[string]string{"password": encryptedKey}); err != nil {
		return err
	}
	if h, ok := in["host"]; ok {
		port := any(9092)
		if p, ok := in["port"]; ok {
			port = p
		}
		if _, exists := out["brokers"]; exists {
			return engine.ArgErrorf([]string{"host"}, "cannot be combined with %q", "brokers")
		}
		delete(out, "host")
		delete(out, "port")
		out["brokers"] = fmt.Sprintf("%v:%v", h, port)
	} else if _, ok := in["port"]; ok {
		return engine.ArgErrorf([]string{"port"}, "goes with host")
	}
	if v, ok := in["encoding"]; ok {
		if s, _ := v.(string); !strings.EqualFold(strings.ReplaceAll(s, "_", "-"), "utf-8") && !strings.EqualFold(s, "utf8") {
			return engine.ArgErrorf([]string{"encoding"}, "only utf-8 is supported, got %v", v)
		}
		delete(out, "encoding")
	}
	tlsOn := false
	if v, ok := in["security_protocol"]; ok {
		s, _ := v.(string)
		switch strings.ToUpper(s) {
		case "PLAINTEXT", "SASL_PLAINTEXT":
		case "SSL", "SASL_SSL":
			tlsOn = true
		default:
			return engine.ArgErrorf([]string{"security_protocol"}, "want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got %v", v)
		}
		delete(out, "security_protocol")
	}
	insecure := false
	if v, ok := in["check_hostname"]; ok {
		b, ok := v.(bool)
		if !ok {
			return engine.ArgErrorf([]string{"check_hostname"}, "want true or false, got %v", v)
		}
		insecure = insecure || !b
		delete(out, "check_hostname")
	}
	if v, ok := in["verify_mode"]; ok {
		s, _ := v.(string)
		switch strings.ToUpper(s) {
		case "CERT_NONE":
			insecure = true
		case "CERT_OPTIONAL", "CERT_REQUIRED":
		default:
			return engine.ArgErrorf([]string{"verify_mode"}, "want CERT_NONE, CERT_OPTIONAL or CERT_REQUIRED, got %v", v)
		}
		delete(out, "verify_mode")
	}
	if err := moveAll(in, out, "cafile", "tls.ca", "certfile", "tls.cert", "keyfile", "tls.key"); err != nil {
		return err
	}
	if insecure {
		if err := move(map[string]any{"verify": true}, out, "verify", "tls.insecure_skip_verify"); err != nil {
			return err
		}
	}
	if _, ok := out["tls"]; !ok && tlsOn {
		out["tls"] = true
	}
	return moveAll(in, out, "sasl_mechanism", "sasl.mechanism", "sasl_plain_username", "sasl.username", "sasl_plain_password", "sasl.password")
}
