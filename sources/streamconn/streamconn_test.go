package streamconn

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/schematest"
	"github.com/rulebook-dev/rulebook/internal/testcerts"
)

func TestBackoff(t *testing.T) {
	b := &Backoff{Initial: time.Second, Max: 5 * time.Second}
	var got []time.Duration
	for i := 0; i < 5; i++ {
		got = append(got, b.Next())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v, want %v", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Fatalf("after reset %s, want 1s", d)
	}
	b.SetInitial(30 * time.Second) // a server's retry: beyond Max raises Max
	if d := b.Next(); d != 30*time.Second || b.Next() != 30*time.Second {
		t.Fatalf("after SetInitial(30s): %s", d)
	}
}

func TestArgs(t *testing.T) {
	a := NewArgs(map[string]any{"s": "x", "n": 7, "d": "2s", "m": map[string]any{"k": "v"}, "l": []any{"a", "b"}, "typo": 1})
	if s, _ := a.String("s", ""); s != "x" {
		t.Fatal(s)
	}
	if n, _ := a.Int("n", 0, 1, 10); n != 7 {
		t.Fatal(n)
	}
	if _, err := a.Int("n", 0, 8, 10); err == nil {
		t.Fatal("out of range accepted")
	}
	if d, _ := a.Duration("d", 0); d != 2*time.Second {
		t.Fatal(d)
	}
	if m, _ := a.StringMap("m"); m["k"] != "v" {
		t.Fatal(m)
	}
	if l, _ := a.StringList("l"); strings.Join(l, ",") != "a,b" {
		t.Fatal(l)
	}
	err := a.Unknown()
	var ae *engine.ArgError
	if !errors.As(err, &ae) || ae.Path[0] != "typo" || !strings.Contains(err.Error(), `unknown key "typo"`) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	dir := t.TempDir()
	caFile := testcerts.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	cert, key := ca.Client(t, "c").WriteFiles(t, dir, "client")
	tl, err := TLSArgs(NewArgs(map[string]any{"tls": map[string]any{"ca": caFile, "cert": cert, "key": key, "server_name": "x"}}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := tl.Config()
	if err != nil || c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "x" {
		t.Fatalf("config %v %v", c, err)
	}
	for _, tc := range []struct {
		tls  map[string]any
		want string
	}{
		{map[string]any{"cert": cert}, "give both cert and key"},
		{map[string]any{"ca": 3}, "tls.ca: want a string"},
		{map[string]any{"cafile": caFile}, `tls.cafile: unknown key "cafile"`},
	} {
		if _, err := TLSArgs(NewArgs(map[string]any{"tls": tc.tls})); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.tls, err, tc.want)
		}
	}
	bad, _ := TLSArgs(NewArgs(map[string]any{"tls": map[string]any{"ca": key}}))
	if _, err := bad.Config(); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Fatalf("a key as CA: %v", err)
	}
	schematest.Compile(t, map[string]any{"type": "object", "properties": map[string]any{"tls": TLSSchema(), "d": DurationSchema("x")}})
}

// fakeSource is what TestSpec's build makes: the parsed config and the Env.
type fakeSource struct {
	engine.Source
	tls *TLS
	env Env
}

// Spec's Check and New parse the same way; New hands build the source's
// reference, the system clock when none is given, and the TLS config, and
// fails on TLS files that do not load.
func TestSpec(t *testing.T) {
	parse := func(args map[string]any) (*TLS, error) {
		a := NewArgs(args)
		tl, err := TLSArgs(a)
		if err != nil {
			return nil, err
		}
		return tl, a.Unknown()
	}
	spec := Spec(engine.SourceSpec{Type: "fake"}, parse, func(tl *TLS) *TLS { return tl },
		func(tl *TLS, env Env) engine.Source { return &fakeSource{tls: tl, env: env} })
	if err := spec.Check(map[string]any{"url": "x"}); err == nil || !strings.Contains(err.Error(), `unknown key "url"`) {
		t.Fatalf("check: %v", err)
	}
	if _, err := spec.New(engine.SourceConfig{Args: map[string]any{"url": "x"}}); err == nil {
		t.Fatal("new accepted an unknown key")
	}
	if strings.Join(spec.PathArgs, " ") != "tls.ca tls.cert tls.key" {
		t.Fatalf("path args %v", spec.PathArgs)
	}
	src, err := spec.New(engine.SourceConfig{Ruleset: "rs", Name: "n", Type: "fake", Args: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	env := src.(*fakeSource).env
	if env.Ref != (engine.SourceRef{Ruleset: "rs", Name: "n", Type: "fake"}) || env.TLS != nil {
		t.Fatalf("env %+v", env)
	}
	if _, ok := env.Clock.(engine.SystemClock); !ok {
		t.Fatalf("clock %T, want the system clock", env.Clock)
	}
	ca := testcerts.NewCA(t, "ca")
	caFile := testcerts.WriteFile(t, t.TempDir(), "ca.pem", ca.CertPEM)
	src, err = spec.New(engine.SourceConfig{Args: map[string]any{"tls": map[string]any{"ca": caFile}}})
	if err != nil || src.(*fakeSource).env.TLS == nil || src.(*fakeSource).env.TLS.RootCAs == nil {
		t.Fatalf("tls: %v", err)
	}
	if _, err := spec.New(engine.SourceConfig{Args: map[string]any{"tls": map[string]any{"ca": "/nonexistent/ca.pem"}}}); err == nil || !strings.Contains(err.Error(), "tls.ca") {
		t.Fatalf("a missing CA file: %v", err)
	}
}

func TestURL(t *testing.T) {
	for _, tc := range []struct {
		args map[string]any
		want string // the error; empty: accepted
	}{
		{map[string]any{"url": "https://h/x"}, ""},
		{map[string]any{"url": "${env:FEED_URL}"}, ""},
		{map[string]any{}, `missing key "url"`},
		{map[string]any{"url": 3}, "url: want a string"},
		{map[string]any{"url": "ftp://h"}, `url: want an http:// or https:// URL, got "ftp://h"`},
		{map[string]any{"url": "http://"}, `want an http:// or https:// URL`},
	} {
		got, err := NewArgs(tc.args).URL("url", "an http:// or https:// URL", "http", "https")
		if tc.want == "" {
			if err != nil || got != tc.args["url"] {
				t.Errorf("%v: %q, %v", tc.args, got, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestPayload(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{`{"a":1}`, map[string]any{"a": float64(1)}},
		{`[1,"x"]`, []any{float64(1), "x"}},
		{`42`, float64(42)},
		{`null`, nil},
		{`{"a":1`, `{"a":1`},
		{`{"a":1} trailing`, `{"a":1} trailing`},
		{`plain text`, `plain text`},
		{``, ``},
	} {
		if got := Payload([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Payload(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	inner := errors.New("connection refused")
	err := Redact(&url.Error{Op: "Get", URL: "https://h/x?token=secret", Err: inner})
	if err != inner || strings.Contains(err.Error(), "secret") {
		t.Errorf("Redact(url.Error) = %v, want %v", err, inner)
	}
	if err := Redact(inner); err != inner {
		t.Errorf("Redact(%v) = %v", inner, err)
	}
}

// The token's Authorization header replaces one given in headers; no
// token: no Authorization beyond what headers say.
func TestHeader(t *testing.T) {
	h := Header(map[string]string{"x-tenant": "blue", "Authorization": "Basic old"}, "s3cret")
	if h.Get("X-Tenant") != "blue" || h.Get("Authorization") != "Bearer s3cret" || len(h["Authorization"]) != 1 {
		t.Fatalf("header %v", h)
	}
	if h := Header(map[string]string{"X-Tenant": "blue"}, ""); len(h) != 1 || h.Get("X-Tenant") != "blue" {
		t.Fatalf("header without token %v", h)
	}
}
