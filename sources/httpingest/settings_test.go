package httpingest

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestDecodeSettings(t *testing.T) {
	s, err := DecodeSettings(map[string]any{
		"port": 5000, "paths": []any{"/a", "/b"}, "methods": []any{"post", "PUT"},
		"content_type": "application/json", "max_body_bytes": 1024, "allow_ips": []any{"10.0.0.0/8", "127.0.0.1", "::1"},
		"token": "t", "basic": map[string]any{"username": "u", "password": "p"},
		"header_token": map[string]any{"header": "X-Gitlab-Token", "token": "g"},
		"hmac":         map[string]any{"preset": "GitHub", "secrets": []any{"s1", "s2"}},
		"tls":          map[string]any{"cert": "c.pem", "key": "k.pem", "client_ca": "ca.pem", "client_names": []any{"am"}},
		"read_timeout": "5s", "idle_timeout": 30, "timestamp_tolerance": "1m",
	}, true, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{
		Listener: Listener{Address: "0.0.0.0:5000", TLS: &TLSFiles{Cert: "c.pem", Key: "k.pem", ClientCA: "ca.pem"},
			Timeouts: Timeouts{Read: 5 * time.Second, Idle: 30 * time.Second}},
		Paths: []string{"/a", "/b"}, Methods: []string{"POST", "PUT"}, ContentType: "application/json", MaxBodyBytes: 1024,
		AllowIPs:    []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		ClientNames: []string{"am"},
		Auth: Auth{BearerTokens: []string{"t"}, Basic: []BasicUser{{"u", "p"}}, HeaderToken: &HeaderToken{Header: "X-Gitlab-Token", Tokens: []string{"g"}},
			HMAC: &HMAC{Preset: PresetGitHub, Secrets: []string{"s1", "s2"}}, Tolerance: time.Minute},
	}
	s.Verifier = nil
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got  %+v\nwant %+v", s, want)
	}

	d, err := DecodeSettings(map[string]any{"address": "127.0.0.1:0"}, true, Defaults{Path: "/hook", Methods: []string{"POST"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Listener.Address != "127.0.0.1:0" || !reflect.DeepEqual(d.Paths, []string{"/hook"}) || d.Verifier == nil {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestDecodeSettingsErrors(t *testing.T) {
	cases := []struct {
		name     string
		args     map[string]any
		resolved bool
		want     string
	}{
		{"no port", map[string]any{}, true, "port: port (or address) is required"},
		{"port and address", map[string]any{"port": 1, "address": "a:1"}, true, "address: cannot be combined with host and port"},
		{"bad address", map[string]any{"address": "localhost"}, true, `address: address "localhost" is not host:port`},
		{"port range", map[string]any{"port": 70000}, true, "port: port 70000 is not between 0 and 65535"},
		{"port text", map[string]any{"port": "http"}, true, "port: must be an integer, not a string"},
		{"path and paths", map[string]any{"port": 1, "path": "/a", "paths": []any{"/b"}}, true, "paths: cannot be combined with path"},
		{"relative path", map[string]any{"port": 1, "paths": []any{"/a", "b"}}, true, `paths.1: path "b" does not start with /`},
		{"duplicate path", map[string]any{"port": 1, "paths": []any{"/a", "/a"}}, true, `paths.1: path "/a" is listed twice`},
		{"path not string", map[string]any{"port": 1, "path": 3}, true, "path: must be a string, not a number"},
		{"bad method", map[string]any{"port": 1, "methods": []any{"PO ST"}}, true, `methods.0: method "PO ST" is not an HTTP method`},
		{"bad content type", map[string]any{"port": 1, "content_type": "image/png"}, true, `content_type: content type "image/png" cannot be parsed (use json, form, xml, text or raw types)`},
		{"bad max body", map[string]any{"port": 1, "max_body_bytes": 0}, true, "max_body_bytes: max_body_bytes must be positive, not 0"},
		{"bad ip", map[string]any{"port": 1, "allow_ips": []any{"10.0.0.0/8", "intranet"}}, true, `allow_ips.1: "intranet" is not an IP address or CIDR`},
		{"bad duration", map[string]any{"port": 1, "read_timeout": "soon"}, true, `read_timeout: duration "soon" is not like "30s" or "5m"`},
		{"negative duration", map[string]any{"port": 1, "timestamp_tolerance": -5}, true, `timestamp_tolerance: duration must be positive`},
		{"tls unknown key", map[string]any{"port": 1, "tls": map[string]any{"cert": "c", "key": "k", "ca": "x"}}, true, `tls.ca: unknown key "ca" (known: cert, key, client_ca, client_names)`},
		{"tls no key", map[string]any{"port": 1, "tls": map[string]any{"cert": "c"}}, true, "tls.key: key is required with tls"},
		{"client names without ca", map[string]any{"port": 1, "tls": map[string]any{"cert": "c", "key": "k", "client_names": []any{"a"}}}, true, "tls.client_names: client_names needs client_ca"},
		{"basic unknown key", map[string]any{"port": 1, "basic": map[string]any{"user": "u"}}, true, `basic.user: unknown key "user" (known: username, password)`},
		{"basic list item", map[string]any{"port": 1, "basic": []any{map[string]any{"username": "u", "password": "p"}, "x"}}, true, "basic.1: must be a mapping, not a string"},
		{"hmac secret and secrets", map[string]any{"port": 1, "hmac": map[string]any{"preset": "github", "secret": "a", "secrets": []any{"b"}}}, true, "hmac.secret: cannot be combined with secrets"},
		{"hmac unknown preset", map[string]any{"port": 1, "hmac": map[string]any{"preset": "gitea", "secret": "a"}}, true, `hmac.preset: preset "gitea" is not one of github, shopify, slack, stripe, standard`},
		{"hmac secret not string", map[string]any{"port": 1, "hmac": map[string]any{"preset": "github", "secrets": []any{"a", 5}}}, true, "hmac.secrets.1: must be a string, not a number"},
		{"standard secret bad, resolved", map[string]any{"port": 1, "hmac": map[string]any{"preset": "standard", "secret": "${env:WHSEC_UNSET_X}"}}, true, `hmac.secrets.0: standard webhooks secret is not "whsec_" followed by base64`},
		{"literal standard secret bad at check", map[string]any{"port": 1, "hmac": map[string]any{"preset": "standard", "secret": "nope!"}}, false, `hmac.secrets.0: standard webhooks secret is not "whsec_" followed by base64`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeSettings(tc.args, tc.resolved, Defaults{})
			var ae *engine.ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *engine.ArgError", err, err)
			}
			if err.Error() != tc.want {
				t.Fatalf("err = %q, want %q", err, tc.want)
			}
		})
	}
}

// TestCheckLeavesSecretReferences: at Check time references are not
// resolved (the variables need not exist) and still pass validation.
func TestCheckLeavesSecretReferences(t *testing.T) {
	args := map[string]any{
		"port":         8080,
		"token":        "${env:RULEBOOK_TEST_UNSET_1}",
		"basic":        map[string]any{"username": "u", "password": "${file:/nonexistent/pw}"},
		"header_token": map[string]any{"header": "X-Gitlab-Token", "tokens": []any{"${env:RULEBOOK_TEST_UNSET_2}"}},
		"hmac":         map[string]any{"preset": "standard", "secrets": []any{"${env:RULEBOOK_TEST_UNSET_3}"}},
		"read_timeout": "${env:RULEBOOK_TEST_UNSET_4}",
	}
	if _, err := DecodeSettings(args, false, Defaults{}); err != nil {
		t.Fatalf("check with references: %v", err)
	}
	for _, a := range []map[string]any{{"host": "127.0.0.1", "port": "${env:RULEBOOK_TEST_UNSET_5}"}, {"address": "${env:RULEBOOK_TEST_UNSET_6}"}, {"host": "${env:RULEBOOK_TEST_UNSET_7}", "port": 80}} {
		if _, err := DecodeSettings(a, false, Defaults{}); err != nil {
			t.Fatalf("check %v: %v", a, err)
		}
	}
	// Resolved, the same values are checked.
	if _, err := DecodeSettings(map[string]any{"port": "eighty"}, true, Defaults{}); err == nil {
		t.Fatal("a port that is not a number passed")
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want time.Duration
	}{{"90s", 90 * time.Second}, {30, 30 * time.Second}, {1.5, 1500 * time.Millisecond}, {"24h", 24 * time.Hour}} {
		got, err := ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%v: %v %v", tc.in, got, err)
		}
	}
}

func TestSettingsSchemaCoversKeys(t *testing.T) {
	props := SettingsSchema()
	for _, k := range SettingsKeys {
		if _, ok := props[k]; !ok {
			t.Errorf("schema lacks %q", k)
		}
	}
	if len(props) != len(SettingsKeys) {
		t.Errorf("schema has %d keys, SettingsKeys %d", len(props), len(SettingsKeys))
	}
}

func TestArgsSchema(t *testing.T) {
	listen := []any{
		map[string]any{"required": []any{"port"}},
		map[string]any{"required": []any{"address"}},
	}
	props := map[string]any{"port": map[string]any{"type": "integer"}}
	s := ArgsSchema("x", "x source arguments", props)
	if s["title"] != "x" || s["description"] != "x source arguments" || s["additionalProperties"] != false || !reflect.DeepEqual(s["properties"], props) {
		t.Errorf("schema %v", s)
	}
	if !reflect.DeepEqual(s["oneOf"], listen) || s["allOf"] != nil {
		t.Errorf("without also: oneOf %v allOf %v, want port or address only", s["oneOf"], s["allOf"])
	}
	auth := map[string]any{"anyOf": []any{map[string]any{"required": []any{"token"}}}}
	s = ArgsSchema("x", "x source arguments", props, auth)
	want := []any{map[string]any{"oneOf": listen}, auth}
	if !reflect.DeepEqual(s["allOf"], want) || s["oneOf"] != nil {
		t.Errorf("with also: allOf %v oneOf %v, want %v", s["allOf"], s["oneOf"], want)
	}
}
