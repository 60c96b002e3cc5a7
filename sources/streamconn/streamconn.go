// Package streamconn holds what the stream sources (sse, websocket, mqtt)
// share: their SourceSpec's Check and New, argument decoding, client TLS,
// and reconnect backoff. It is no source itself.
package streamconn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Env is what a stream source takes from its engine.SourceConfig.
type Env struct {
	Ref   engine.SourceRef
	Clock engine.Clock // the system clock when the config gives none
	Log   zerolog.Logger
	TLS   *tls.Config // built from the `tls:` settings; nil without them
}

// NewEnv is cfg's Env, with the client TLS config of t (nil t: none).
func NewEnv(cfg engine.SourceConfig, t *TLS) (Env, error) {
	tc, err := t.Config()
	if err != nil {
		return Env{}, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = engine.SystemClock{}
	}
	return Env{Ref: engine.SourceRef{Ruleset: cfg.Ruleset, Name: cfg.Name, Type: cfg.Type}, Clock: clock, Log: cfg.Log, TLS: tc}, nil
}

// Spec completes spec (its Type, Description and Schema) for a stream
// source whose arguments parse decodes and checks into a C: Check parses,
// the `tls:` files are PathArgs, and New parses, builds the Env with the
// TLS settings tlsOf finds in C, and hands both to build.
func Spec[C any](spec engine.SourceSpec, parse func(map[string]any) (C, error), tlsOf func(C) *TLS, build func(C, Env) engine.Source) engine.SourceSpec {
	spec.Check = func(args map[string]any) error { _, err := parse(args); return err }
	spec.PathArgs = TLSPaths
	spec.New = func(cfg engine.SourceConfig) (engine.Source, error) {
		c, err := parse(cfg.Args)
		if err != nil {
			return nil, err
		}
		env, err := NewEnv(cfg, tlsOf(c))
		if err != nil {
			return nil, err
		}
		return build(c, env), nil
	}
	return spec
}

// Args decodes a source's argument map, remembering the keys it read so
// Unknown can reject the rest (a typo must not silently change nothing).
type Args struct {
	m    map[string]any
	seen map[string]bool
}

// NewArgs wraps args.
func NewArgs(args map[string]any) *Args {
	return &Args{m: args, seen: map[string]bool{}}
}

// Has reports whether key is given.
func (a *Args) Has(key string) bool {
	_, ok := a.m[key]
	return ok
}

// String returns key's string value, def when absent.
func (a *Args) String(key, def string) (string, error) {
	a.seen[key] = true
	v, ok := a.m[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", engine.ArgErrorf([]string{key}, "want a string, got %s", engine.TypeName(v))
	}
	return s, nil
}

// URL returns key's URL, which is required and must have a host and one
// of schemes, unless it holds a ${...} reference resolved only at run
// time; want says what is wanted in the error ("an http:// or https://
// URL").
func (a *Args) URL(key, want string, schemes ...string) (string, error) {
	s, err := a.String(key, "")
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", engine.ArgErrorf(nil, "missing key %q", key)
	}
	if !strings.Contains(s, "${") {
		u, err := url.Parse(s)
		if err != nil || !slices.Contains(schemes, u.Scheme) || u.Host == "" {
			return "", engine.ArgErrorf([]string{key}, "want %s, got %q", want, s)
		}
	}
	return s, nil
}

// Bool returns key's boolean value, def when absent.
func (a *Args) Bool(key string, def bool) (bool, error) {
	a.seen[key] = true
	v, ok := a.m[key]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, engine.ArgErrorf([]string{key}, "want true or false, got %s", engine.TypeName(v))
	}
	return b, nil
}

// Int returns key's whole-number value within [min, max], def when absent.
func (a *Args) Int(key string, def, min, max int) (int, error) {
	a.seen[key] = true
	v, ok := a.m[key]
	if !ok || v == nil {
		return def, nil
	}
	n, ok := v.(int)
	if !ok || n < min || n > max {
		return 0, engine.ArgErrorf([]string{key}, "want a whole number from %d to %d, got %v", min, max, v)
	}
	return n, nil
}

// Duration returns key's duration (positive), def when absent.
func (a *Args) Duration(key string, def time.Duration) (time.Duration, error) {
	a.seen[key] = true
	v, ok := a.m[key]
	if !ok || v == nil {
		return def, nil
	}
	d, err := engine.ParseDuration(v)
	if err != nil {
		return 0, &engine.ArgError{Path: []string{key}, Err: err}
	}
	if d <= 0 {
		return 0, engine.ArgErrorf([]string{key}, "must be positive, got %s", d)
	}
	return d, nil
}

// Reconnect reads reconnect_delay (default 1s) and max_reconnect_delay
// (default 1m), the bounds of a stream source's Backoff; the longest wait
// may not be shorter than the first.
func (a *Args) Reconnect() (initial, max time.Duration, err error) {
	if initial, err = a.Duration("reconnect_delay", time.Second); err != nil {
		return 0, 0, err
	}
	if max, err = a.Duration("max_reconnect_delay", time.Minute); err != nil {
		return 0, 0, err
	}
	if max < initial {
		return 0, 0, engine.ArgErrorf([]string{"max_reconnect_delay"}, "must be at least reconnect_delay (%s)", initial)
	}
	return initial, max, nil
}

// StringMap returns key's mapping of strings (headers).
func (a *Args) StringMap(key string) (map[string]string, error) {
	a.seen[key] = true
	v, ok := a.m[key]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, engine.ArgErrorf([]string{key}, "want a mapping of names to strings, got %s", engine.TypeName(v))
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, engine.ArgErrorf([]string{key, k}, "want a string, got %s", engine.TypeName(x))
		}
		out[k] = s
	}
	return out, nil
}

// StringList returns key's list of strings (a single string is a list of
// one).
func (a *Args) StringList(key string) ([]string, error) {
	a.seen[key] = true
	v, ok := a.m[key]
	if !ok || v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok {
		return []string{s}, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, engine.ArgErrorf([]string{key}, "want a list of strings, got %s", engine.TypeName(v))
	}
	out := make([]string, 0, len(l))
	for i, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, engine.ArgErrorf([]string{key, fmt.Sprint(i)}, "want a string, got %s", engine.TypeName(x))
		}
		out = append(out, s)
	}
	return out, nil
}

// Raw returns key's value as decoded.
func (a *Args) Raw(key string) (any, bool) {
	a.seen[key] = true
	v, ok := a.m[key]
	return v, ok
}

// Unknown returns an error naming the first key that was not read.
func (a *Args) Unknown() error {
	var extra []string
	for k := range a.m {
		if !a.seen[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	known := make([]string, 0, len(a.seen))
	for k := range a.seen {
		known = append(known, k)
	}
	sort.Strings(known)
	return engine.ArgErrorf([]string{extra[0]}, "unknown key %q (want %s)", extra[0], strings.Join(known, ", "))
}

// TLS is a client's TLS settings.
type TLS struct {
	CA, Cert, Key      string
	ServerName         string
	InsecureSkipVerify bool
}

// TLSArgs reads the `tls:` mapping: ca, cert, key (a client certificate
// for mTLS), server_name, insecure_skip_verify.
func TLSArgs(a *Args) (*TLS, error) {
	v, ok := a.Raw("tls")
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, engine.ArgErrorf([]string{"tls"}, "want a mapping, got %s", engine.TypeName(v))
	}
	ta := NewArgs(m)
	t := &TLS{}
	var err error
	wrap := func(err error) error {
		if ae, ok := err.(*engine.ArgError); ok {
			ae.Path = append([]string{"tls"}, ae.Path...)
			return ae
		}
		return err
	}
	if t.CA, err = ta.String("ca", ""); err != nil {
		return nil, wrap(err)
	}
	if t.Cert, err = ta.String("cert", ""); err != nil {
		return nil, wrap(err)
	}
	if t.Key, err = ta.String("key", ""); err != nil {
		return nil, wrap(err)
	}
	if t.ServerName, err = ta.String("server_name", ""); err != nil {
		return nil, wrap(err)
	}
	if t.InsecureSkipVerify, err = ta.Bool("insecure_skip_verify", false); err != nil {
		return nil, wrap(err)
	}
	if err := ta.Unknown(); err != nil {
		return nil, wrap(err)
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, engine.ArgErrorf([]string{"tls"}, "give both cert and key, or neither")
	}
	return t, nil
}

// TLSPaths are the file arguments of TLSArgs, for SourceSpec.PathArgs.
var TLSPaths = []string{"tls.ca", "tls.cert", "tls.key"}

// Config builds the *tls.Config (nil t: nil).
func (t *TLS) Config() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the operator's explicit choice
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca: no certificate in %q", t.CA)
		}
		c.RootCAs = pool
	}
	if t.Cert != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls.cert/tls.key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// TLSSchema is the JSON Schema of the `tls:` mapping.
func TLSSchema() map[string]any {
	str := func(d string) map[string]any { return map[string]any{"type": "string", "description": d} }
	return map[string]any{"type": "object", "additionalProperties": false, "description": "client TLS settings",
		"properties": map[string]any{
			"ca":                   str("PEM file of the CA(s) to trust (default: the system's)"),
			"cert":                 str("PEM client certificate, for mutual TLS"),
			"key":                  str("PEM key of the client certificate"),
			"server_name":          str("name to verify the server's certificate against"),
			"insecure_skip_verify": map[string]any{"type": "boolean", "description": "do not verify the server (tests only)"},
		}}
}

// DurationSchema is the JSON Schema of a duration argument.
func DurationSchema(desc string) map[string]any {
	return map[string]any{"description": desc, "anyOf": []any{
		map[string]any{"type": "string", "pattern": `^\s*([0-9]*\.?[0-9]+(ns|us|µs|ms|s|m|h))+\s*$|\$\{`},
		map[string]any{"type": "number", "exclusiveMinimum": 0},
	}}
}

// Backoff is a reconnect delay that doubles after each failed attempt, from
// Initial up to Max.
type Backoff struct {
	Initial, Max time.Duration
	next         time.Duration
}

// Next returns the wait before the next attempt and doubles the one after.
func (b *Backoff) Next() time.Duration {
	if b.next <= 0 {
		b.next = b.Initial
	}
	d := b.next
	b.next = min(b.next*2, b.Max)
	return d
}

// Reset starts again from Initial (after a connection that worked).
func (b *Backoff) Reset() { b.next = 0 }

// SetInitial changes Initial (an SSE server's `retry:`) and restarts.
func (b *Backoff) SetInitial(d time.Duration) {
	b.Initial = d
	if b.Max < d {
		b.Max = d
	}
	b.next = 0
}

// Payload is a message body as an event's payload: the decoded value when
// the body is JSON, else the body as a string. It decodes once:
// json.Unmarshal checks the whole input before it sets anything.
func Payload(data []byte) any {
	var v any
	if json.Unmarshal(data, &v) == nil {
		return v
	}
	return string(data)
}

// Header is the request header of a connection: the `headers` argument,
// then an Authorization bearer header when token is set.
func Header(headers map[string]string, token string) http.Header {
	h := make(http.Header, len(headers)+1)
	for k, v := range headers {
		h.Set(k, v)
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

// Redact drops the URL from an HTTP client error: it may carry a token in
// its query.
func Redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
