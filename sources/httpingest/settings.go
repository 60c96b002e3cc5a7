package httpingest

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Settings is the HTTP part of an HTTP source's arguments, decoded by
// DecodeSettings from the keys listed in SettingsKeys.
type Settings struct {
	Listener     Listener
	Paths        []string
	Methods      []string
	ContentType  string
	MaxBodyBytes int64
	AllowIPs     []netip.Prefix
	ClientNames  []string
	Auth         Auth
	// Verifier is Auth compiled.
	Verifier *Verifier
	// Insecure accepts listening on a non-loopback address without any
	// authentication (the `insecure: true` argument).
	Insecure bool
}

// Authenticated reports whether requests must prove who sent them: a bearer
// token, basic auth, a header token, an HMAC signature or a client
// certificate (tls.client_ca).
func (s Settings) Authenticated() bool {
	a := s.Auth
	return len(a.BearerTokens) > 0 || len(a.Basic) > 0 || a.HeaderToken != nil || a.HMAC != nil ||
		(s.Listener.TLS != nil && s.Listener.TLS.ClientCA != "")
}

// IsLoopback reports whether host (from host:port) only reaches this
// machine: a loopback IP or "localhost". An empty host binds every
// interface.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

// SettingsKeys are the argument keys DecodeSettings reads. A source accepts
// these plus its own and rejects any other key.
var SettingsKeys = []string{
	"host", "port", "address", "path", "paths", "methods", "content_type",
	"token", "basic", "header_token", "hmac", "timestamp_tolerance", "tls",
	"max_body_bytes", "allow_ips", "insecure",
	"read_header_timeout", "read_timeout", "write_timeout", "idle_timeout",
}

// CheckKeys returns an *engine.ArgError for the first key of args (in sorted
// order) that is neither one of SettingsKeys nor one of own: a typo must not
// silently disable a setting.
func CheckKeys(args map[string]any, own ...string) error {
	d := decoder{}
	known := append(append([]string{}, SettingsKeys...), own...)
	sort.Strings(known)
	d.onlyKeys(nil, args, known...)
	return d.err
}

// DefaultHost is the host a source listens on when only a port is given.
const DefaultHost = "0.0.0.0"

// Defaults are the values a source uses for keys that are absent.
type Defaults struct {
	// Path is served when neither path nor paths is set.
	Path string
	// Methods when methods is not set (empty: POST).
	Methods []string
	// Insecure when insecure is not set: a source whose own argument already
	// says it accepts unauthenticated requests (dynatrace's
	// insecure_no_auth).
	Insecure bool
}

// DecodeSettings reads the keys of SettingsKeys from args (other keys are
// left to the caller). With resolved false (a Check at load time), strings
// holding secret references (${env:X}) are taken as valid placeholders and
// not resolved; with resolved true (in New) every value is checked. Errors
// are *engine.ArgError naming the key; they never contain a secret.
func DecodeSettings(args map[string]any, resolved bool, def Defaults) (Settings, error) {
	d := decoder{args: args, resolved: resolved}
	var s Settings

	// Listener.
	host, hasHost := d.str("host")
	port, hasPort := d.int("port")
	addr, hasAddr := d.str("address")
	switch {
	case hasAddr && (hasHost || hasPort):
		d.fail([]string{"address"}, "cannot be combined with host and port")
	case hasAddr:
		if _, p, err := net.SplitHostPort(addr); (err != nil || p == "") && !d.unresolved(addr) {
			d.fail([]string{"address"}, "address %q is not host:port", addr)
		}
		s.Listener.Address = addr
	case hasPort:
		if port < 0 || port > 65535 {
			d.fail([]string{"port"}, "port %d is not between 0 and 65535", port)
		}
		if !hasHost {
			host = DefaultHost
		}
		s.Listener.Address = net.JoinHostPort(host, strconv.FormatInt(port, 10))
	case d.err == nil:
		d.fail([]string{"port"}, "port (or address) is required")
	}
	s.Listener.Timeouts = Timeouts{
		ReadHeader: d.duration("read_header_timeout"),
		Read:       d.duration("read_timeout"),
		Write:      d.duration("write_timeout"),
		Idle:       d.duration("idle_timeout"),
	}
	if tm, ok := d.mapAt([]string{"tls"}, args["tls"]); ok {
		d.onlyKeys([]string{"tls"}, tm, "cert", "key", "client_ca", "client_names")
		f := &TLSFiles{}
		f.Cert, _ = d.strAt([]string{"tls", "cert"}, tm["cert"])
		f.Key, _ = d.strAt([]string{"tls", "key"}, tm["key"])
		f.ClientCA, _ = d.strAt([]string{"tls", "client_ca"}, tm["client_ca"])
		s.ClientNames = d.strListAt([]string{"tls", "client_names"}, tm["client_names"])
		if f.Cert == "" {
			d.fail([]string{"tls", "cert"}, "cert is required with tls")
		}
		if f.Key == "" {
			d.fail([]string{"tls", "key"}, "key is required with tls")
		}
		if len(s.ClientNames) > 0 && f.ClientCA == "" {
			d.fail([]string{"tls", "client_names"}, "client_names needs client_ca")
		}
		s.Listener.TLS = f
	}

	// Paths and methods. AnyPath serves every path no other source on the
	// listener serves, as ansible-rulebook's webhook does.
	p, hasPath := d.str("path")
	ps := d.strList("paths")
	switch {
	case hasPath && ps != nil:
		d.fail([]string{"paths"}, "cannot be combined with path")
	case hasPath:
		s.Paths = []string{p}
	case ps != nil:
		if len(ps) == 0 {
			d.fail([]string{"paths"}, "paths is empty")
		}
		s.Paths = ps
	default:
		s.Paths = []string{def.Path}
		if def.Path == "" {
			s.Paths = []string{"/"}
		}
	}
	seen := map[string]bool{}
	for i, p := range s.Paths {
		key := []string{"path"}
		if !hasPath {
			key = []string{"paths", strconv.Itoa(i)}
		}
		if !strings.HasPrefix(p, "/") && p != AnyPath {
			d.fail(key, "path %q does not start with /", p)
		}
		if seen[p] {
			d.fail(key, "path %q is listed twice", p)
		}
		seen[p] = true
	}
	s.Methods = def.Methods
	if ms := d.strList("methods"); ms != nil {
		s.Methods = nil
		for i, m := range ms {
			m = strings.ToUpper(m)
			if m == "" || strings.ContainsAny(m, " \t/:") {
				d.fail([]string{"methods", strconv.Itoa(i)}, "method %q is not an HTTP method", m)
			}
			s.Methods = append(s.Methods, m)
		}
		if len(s.Methods) == 0 {
			d.fail([]string{"methods"}, "methods is empty")
		}
	}

	// Body.
	if ct, ok := d.str("content_type"); ok {
		if _, err := KindOf(ct); err != nil {
			d.fail([]string{"content_type"}, "content type %q cannot be parsed (use json, form, xml, text or raw types)", ct)
		}
		s.ContentType = ct
	}
	if n, ok := d.int("max_body_bytes"); ok {
		if n <= 0 {
			d.fail([]string{"max_body_bytes"}, "max_body_bytes must be positive, not %d", n)
		}
		s.MaxBodyBytes = n
	}
	for i, a := range d.strList("allow_ips") {
		pfx, err := parsePrefix(a)
		if err != nil {
			d.fail([]string{"allow_ips", strconv.Itoa(i)}, "%q is not an IP address or CIDR", a)
			continue
		}
		s.AllowIPs = append(s.AllowIPs, pfx)
	}

	// Authentication.
	s.Auth.Tolerance = d.duration("timestamp_tolerance")
	for _, t := range d.strList("token") {
		s.Auth.BearerTokens = append(s.Auth.BearerTokens, d.secret(t, PresetNone))
	}
	if v, ok := args["basic"]; ok {
		list, isList := v.([]any)
		if !isList {
			list = []any{v}
		}
		for i, item := range list {
			path := []string{"basic"}
			if isList {
				path = append(path, strconv.Itoa(i))
			}
			m, ok := d.mapAt(path, item)
			if !ok {
				continue
			}
			d.onlyKeys(path, m, "username", "password")
			u, _ := d.strAt(append(path, "username"), m["username"])
			pw, _ := d.strAt(append(path, "password"), m["password"])
			s.Auth.Basic = append(s.Auth.Basic, BasicUser{Username: u, Password: d.secret(pw, PresetNone)})
		}
	}
	if m, ok := d.mapAt([]string{"header_token"}, args["header_token"]); ok {
		d.onlyKeys([]string{"header_token"}, m, "header", "tokens", "token")
		ht := &HeaderToken{}
		ht.Header, _ = d.strAt([]string{"header_token", "header"}, m["header"])
		key := "tokens"
		if _, one := m["token"]; one {
			key = "token"
		}
		for _, t := range d.strListAt([]string{"header_token", key}, m[key]) {
			ht.Tokens = append(ht.Tokens, d.secret(t, PresetNone))
		}
		s.Auth.HeaderToken = ht
	}
	if m, ok := d.mapAt([]string{"hmac"}, args["hmac"]); ok {
		d.onlyKeys([]string{"hmac"}, m, "preset", "header", "algorithm", "encoding", "prefix", "secrets", "secret")
		h := &HMAC{}
		pre, _ := d.strAt([]string{"hmac", "preset"}, m["preset"])
		h.Preset = Preset(strings.ToLower(pre))
		h.Header, _ = d.strAt([]string{"hmac", "header"}, m["header"])
		h.Algorithm, _ = d.strAt([]string{"hmac", "algorithm"}, m["algorithm"])
		h.Encoding, _ = d.strAt([]string{"hmac", "encoding"}, m["encoding"])
		h.Prefix, _ = d.strAt([]string{"hmac", "prefix"}, m["prefix"])
		key := "secrets"
		if _, one := m["secret"]; one {
			if _, both := m["secrets"]; both {
				d.fail([]string{"hmac", "secret"}, "cannot be combined with secrets")
			}
			key = "secret"
		}
		for _, sec := range d.strListAt([]string{"hmac", key}, m[key]) {
			h.Secrets = append(h.Secrets, d.secret(sec, h.Preset))
		}
		s.Auth.HMAC = h
	}
	s.Insecure = def.Insecure
	if v, ok := args["insecure"]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			d.fail([]string{"insecure"}, "must be true or false")
		}
		s.Insecure = b
	}
	if d.err == nil && !s.Insecure && !s.Authenticated() {
		// Like the admin listener: without credentials, only this machine
		// may send events, unless the rulebook says otherwise.
		host, _, err := net.SplitHostPort(s.Listener.Address)
		if err == nil && !IsLoopback(host) && !d.unresolved(s.Listener.Address) {
			key := "port"
			switch {
			case hasAddr:
				key = "address"
			case hasHost:
				key = "host"
			}
			d.fail([]string{key}, "listening on %q, not a loopback address, without authentication: anyone who can reach it could send events; "+
				"set token, basic, header_token, hmac or tls.client_ca, or insecure: true to accept that", s.Listener.Address)
		}
	}
	if d.err != nil {
		return Settings{}, d.err
	}
	v, err := s.Auth.Compile()
	if err != nil {
		return Settings{}, err
	}
	s.Verifier = v
	return s, nil
}

// Endpoint returns an Endpoint applying s; the caller sets Out before
// serving.
func (s Settings) Endpoint(src engine.SourceRef, now func() time.Time, log zerolog.Logger, build func(*Request) ([]engine.Entry, error)) *Endpoint {
	return &Endpoint{
		Source:       src,
		Build:        build,
		Methods:      s.Methods,
		MaxBodyBytes: s.MaxBodyBytes,
		AllowIPs:     s.AllowIPs,
		ClientNames:  s.ClientNames,
		ContentType:  s.ContentType,
		Auth:         s.Verifier,
		Now:          now,
		Log:          log,
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// decoder reads loosely typed YAML/JSON values and keeps the first error.
type decoder struct {
	args     map[string]any
	resolved bool
	err      error
}

func (d *decoder) fail(path []string, format string, a ...any) {
	if d.err == nil {
		d.err = engine.ArgErrorf(path, format, a...)
	}
}

func (d *decoder) str(key string) (string, bool) {
	v, ok := d.args[key]
	if !ok || v == nil {
		return "", false
	}
	return d.strAt([]string{key}, v)
}

func (d *decoder) strAt(path []string, v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	}
	d.fail(path, "must be a string, not %s", typeName(v))
	return "", false
}

func (d *decoder) strList(key string) []string {
	v, ok := d.args[key]
	if !ok || v == nil {
		return nil
	}
	return d.strListAt([]string{key}, v)
}

// strListAt accepts a string or a list of strings; it returns a non-nil
// slice when the key is present.
func (d *decoder) strListAt(path []string, v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []string:
		return append([]string{}, x...)
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				d.fail(append(append([]string{}, path...), strconv.Itoa(i)), "must be a string, not %s", typeName(e))
				continue
			}
			out = append(out, s)
		}
		return out
	}
	d.fail(path, "must be a string or a list of strings, not %s", typeName(v))
	return nil
}

func (d *decoder) mapAt(path []string, v any) (map[string]any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case map[string]any:
		return x, true
	}
	d.fail(path, "must be a mapping, not %s", typeName(v))
	return nil, false
}

func (d *decoder) onlyKeys(path []string, m map[string]any, keys ...string) {
	if err := unknownKey(path, m, keys); err != nil && d.err == nil {
		d.err = err
	}
}

func (d *decoder) int(key string) (int64, bool) {
	v, ok := d.args[key]
	if !ok || v == nil {
		return 0, false
	}
	if s, isStr := v.(string); isStr && d.unresolved(s) {
		return 0, true
	}
	n, ok := toInt(v)
	if !ok {
		d.fail([]string{key}, "must be an integer, not %s", typeName(v))
	}
	return n, ok
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// duration reads a Go duration string ("30s", "5m") or a number of seconds.
func (d *decoder) duration(key string) time.Duration {
	v, ok := d.args[key]
	if !ok || v == nil {
		return 0
	}
	if s, isStr := v.(string); isStr && d.unresolved(s) {
		return 0
	}
	dur, err := ParseDuration(v)
	if err != nil {
		d.fail([]string{key}, "%v", err)
	}
	return dur
}

// ParseDuration reads a duration argument: a Go duration string ("30s",
// "5m", "24h") or a number of seconds. It must be positive.
func ParseDuration(v any) (time.Duration, error) {
	var dur time.Duration
	switch x := v.(type) {
	case string:
		var err error
		if dur, err = time.ParseDuration(x); err != nil {
			return 0, fmt.Errorf("duration %q is not like \"30s\" or \"5m\"", x)
		}
	default:
		n, ok := toInt(v)
		if !ok {
			if f, isF := v.(float64); isF {
				dur = time.Duration(f * float64(time.Second))
				break
			}
			return 0, fmt.Errorf("must be a duration like \"30s\" or a number of seconds, not %s", typeName(v))
		}
		dur = time.Duration(n) * time.Second
	}
	if dur <= 0 {
		return 0, fmt.Errorf("duration must be positive")
	}
	return dur, nil
}

// unresolved reports whether s is only known once its secret references are
// resolved (at Check time), so that its value cannot be checked yet.
func (d *decoder) unresolved(s string) bool {
	return !d.resolved && engine.HasSecretRef(s)
}

// secret returns s, or at Check time a placeholder for a string holding a
// secret reference, so that unresolved references pass validation (Compile
// checks the values).
func (d *decoder) secret(s string, p Preset) string {
	if !d.resolved && engine.HasSecretRef(s) {
		if p == PresetStandard {
			return "whsec_cGxhY2Vob2xkZXI="
		}
		return "placeholder"
	}
	return s
}

// typeName is ValueKind in the words of a rulebook: a map is "a mapping".
func typeName(v any) string {
	if _, ok := v.(map[string]any); ok {
		return "a mapping"
	}
	return ValueKind(v)
}

// SettingsSchema returns the JSON Schema (draft 2020-12) properties of
// SettingsKeys, for a source's published schema.
func SettingsSchema() map[string]any {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	strOrList := func(desc string) map[string]any {
		return map[string]any{"description": desc, "oneOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		}}
	}
	dur := func(desc string) map[string]any {
		return map[string]any{"description": desc + ` (a duration like "30s", or seconds)`, "type": []any{"string", "number"}}
	}
	basic := map[string]any{"type": "object", "additionalProperties": false, "required": []any{"username", "password"},
		"properties": map[string]any{"username": str("user name"), "password": str("password; use a secret reference")}}
	return map[string]any{
		"host":    str("interface to listen on (default " + DefaultHost + "); with port"),
		"port":    map[string]any{"type": "integer", "minimum": 0, "maximum": 65535, "description": "port to listen on"},
		"address": str(`host:port to listen on, instead of host and port`),
		"path":    str(`the one path served (exact match; "*" serves every path no other source serves)`),
		"paths":   map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "paths served (exact match), instead of path"},
		"methods": map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "allowed HTTP methods (default POST); others get 405"},
		"content_type": str("parse every body as this media type, whatever the sender says " +
			"(application/json, application/x-www-form-urlencoded, application/xml, text/plain, application/octet-stream)"),
		"token": strOrList("accepted bearer token(s) (Authorization: Bearer ...); several for rotation"),
		"basic": map[string]any{"description": "accepted basic-auth credential(s)", "oneOf": []any{basic, map[string]any{"type": "array", "items": basic}}},
		"header_token": map[string]any{"type": "object", "additionalProperties": false, "required": []any{"header"},
			"description": "a shared token sent verbatim in a header (GitLab: X-Gitlab-Token)",
			"properties": map[string]any{
				"header": str("header name"),
				"tokens": strOrList("accepted token(s)"),
				"token":  strOrList("accepted token(s), same as tokens"),
			}},
		"hmac": map[string]any{"type": "object", "additionalProperties": false,
			"description": "HMAC signature of the body; several secrets for rotation",
			"properties": map[string]any{
				"preset":    map[string]any{"type": "string", "enum": toAny(Presets), "description": "a provider's scheme; then header/algorithm/encoding/prefix are fixed"},
				"header":    str("header holding the signature (without preset)"),
				"algorithm": map[string]any{"type": "string", "enum": []any{"sha1", "sha256", "sha512"}, "description": "hash (default sha256)"},
				"encoding":  map[string]any{"type": "string", "enum": []any{"hex", "base64"}, "description": "signature encoding (default hex)"},
				"prefix":    str(`prefix before the signature, e.g. "sha256="`),
				"secrets":   strOrList("accepted secret(s); standard: whsec_<base64>"),
				"secret":    strOrList("accepted secret(s), same as secrets"),
			}},
		"timestamp_tolerance": dur("how far a signed timestamp (slack, stripe, standard) may be from now (default 5m)"),
		"tls": map[string]any{"type": "object", "additionalProperties": false, "required": []any{"cert", "key"},
			"description": "serve HTTPS; with client_ca, require client certificates (mTLS)",
			"properties": map[string]any{
				"cert":         str("PEM certificate file"),
				"key":          str("PEM private key file"),
				"client_ca":    str("PEM bundle of CAs that client certificates must chain to"),
				"client_names": map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "accepted client certificate common names or DNS SANs (others get 403)"},
			}},
		"max_body_bytes":      map[string]any{"type": "integer", "minimum": 1, "description": "largest accepted body (default 4 MiB); larger gets 413"},
		"allow_ips":           map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "accepted client IPs or CIDRs; others get 403"},
		"insecure":            map[string]any{"type": "boolean", "default": false, "description": "accept listening on a non-loopback address without token, basic, header_token, hmac or tls.client_ca (refused otherwise)"},
		"read_header_timeout": dur("time to read the request headers (default 10s)"),
		"read_timeout":        dur("time to read the whole request (default 30s)"),
		"write_timeout":       dur("time from the headers to the end of the answer (default 60s)"),
		"idle_timeout":        dur("keep-alive idle time (default 120s)"),
	}
}

// ArgsSchema is the JSON Schema (draft 2020-12) of an HTTP source's
// arguments: the properties props (SettingsSchema and the source's own keys),
// no other key, and port or address, which DecodeSettings requires. The
// schemas of also, if any, must hold as well (allOf).
func ArgsSchema(title, description string, props map[string]any, also ...any) map[string]any {
	listen := []any{
		map[string]any{"required": []any{"port"}},
		map[string]any{"required": []any{"address"}},
	}
	s := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                title,
		"description":          description,
		"type":                 "object",
		"additionalProperties": false,
		"properties":           props,
	}
	if len(also) == 0 {
		s["oneOf"] = listen
	} else {
		s["allOf"] = append([]any{map[string]any{"oneOf": listen}}, also...)
	}
	return s
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
