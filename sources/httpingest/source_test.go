package httpingest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestOnlyKeys(t *testing.T) {
	cases := []struct {
		name string
		path []string
		m    map[string]any
		keys []string
		want string // "" for no error
	}{
		{"all known", nil, map[string]any{"b": 1, "a": 2}, []string{"b", "a"}, ""},
		{"empty", []string{"x"}, nil, []string{"a"}, ""},
		{"first unknown sorted, known sorted", []string{"order"}, map[string]any{"z": 1, "y": 2, "a": 3}, []string{"b", "a"}, `order.y: unknown key "y" (known: a, b)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := OnlyKeys(c.path, c.m, c.keys...)
			if c.want == "" {
				if err != nil {
					t.Fatalf("OnlyKeys = %v, want nil", err)
				}
				return
			}
			var ae *engine.ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("OnlyKeys = %v, want an *engine.ArgError", err)
			}
			if got := strings.Join(ae.Path, ".") + ": " + ae.Err.Error(); got != c.want {
				t.Errorf("OnlyKeys = %q, want %q", got, c.want)
			}
		})
	}
	keys := []string{"b", "a"}
	_ = OnlyKeys(nil, map[string]any{"c": 1}, keys...)
	if keys[0] != "b" {
		t.Errorf("OnlyKeys sorted the caller's keys: %v", keys)
	}
}

func TestValueKindAndDescribe(t *testing.T) {
	long := strings.Repeat("x", 70)
	cases := []struct {
		v          any
		kind, desc string
	}{
		{nil, "null", "missing"},
		{"ab", "a string", `"ab"`},
		{long, "a string", `"` + long[:64] + `..."`},
		{true, "a boolean", "a boolean"},
		{1.5, "a number", "a number"},
		{int64(2), "a number", "a number"},
		{uint64(3), "a number", "a number"},
		{[]any{}, "a list", "a list"},
		{[]string{}, "a list", "a list"},
		{map[string]any{}, "an object", "an object"},
		{uint8(1), "uint8", "uint8"},
	}
	for _, c := range cases {
		if got := ValueKind(c.v); got != c.kind {
			t.Errorf("ValueKind(%#v) = %q, want %q", c.v, got, c.kind)
		}
		if got := DescribeValue(c.v); got != c.desc {
			t.Errorf("DescribeValue(%#v) = %q, want %q", c.v, got, c.desc)
		}
		want := c.kind
		if want == "an object" {
			want = "a mapping"
		}
		if got := typeName(c.v); got != want {
			t.Errorf("typeName(%#v) = %q, want %q", c.v, got, want)
		}
	}
}

func TestNewBase(t *testing.T) {
	if _, err := NewBase(nil, engine.SourceConfig{}, "webhook"); err == nil || err.Error() != "webhook source needs an http hub" {
		t.Fatalf("NewBase(nil hub) = %v, want the hub error", err)
	}
	hub := NewHub(HubConfig{})
	cases := []struct {
		name               string
		sc                 engine.SourceConfig
		wantName, wantType string
	}{
		{"defaults", engine.SourceConfig{Ruleset: "rs"}, "dynatrace", "dynatrace"},
		{"alias type", engine.SourceConfig{Ruleset: "rs", Type: "dt"}, "dt", "dt"},
		{"named", engine.SourceConfig{Ruleset: "rs", Name: "prod", Type: "dt"}, "prod", "dt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := NewBase(hub, c.sc, "dynatrace")
			if err != nil {
				t.Fatal(err)
			}
			want := engine.SourceRef{Ruleset: "rs", Name: c.wantName, Type: c.wantType}
			if b.Name != c.wantName || b.Ref != want {
				t.Errorf("NewBase = name %q ref %+v, want %q %+v", b.Name, b.Ref, c.wantName, want)
			}
			if _, ok := b.Clock.(engine.SystemClock); !ok {
				t.Errorf("clock = %T, want engine.SystemClock", b.Clock)
			}
		})
	}
}

func TestBoolAndDurationArg(t *testing.T) {
	args := map[string]any{"yes": true, "null": nil, "text": "true", "d": "90s", "n": 2, "bad": "soon"}
	boolCases := []struct {
		key     string
		def     bool
		want    bool
		wantErr string
	}{
		{"yes", false, true, ""},
		{"absent", true, true, ""},
		{"null", true, true, ""},
		{"text", false, false, "text: must be true or false"},
	}
	for _, c := range boolCases {
		got, err := BoolArg(args, c.key, c.def)
		if got != c.want || errText(err) != c.wantErr {
			t.Errorf("BoolArg(%q) = %v, %q; want %v, %q", c.key, got, errText(err), c.want, c.wantErr)
		}
	}
	durCases := []struct {
		key     string
		want    time.Duration
		wantErr bool
	}{
		{"d", 90 * time.Second, false},
		{"n", 2 * time.Second, false},
		{"absent", time.Hour, false},
		{"null", time.Hour, false},
		{"bad", 0, true},
	}
	for _, c := range durCases {
		got, err := DurationArg(args, c.key, time.Hour)
		var ae *engine.ArgError
		if got != c.want || (err != nil) != c.wantErr || (err != nil && (!errors.As(err, &ae) || strings.Join(ae.Path, ".") != c.key)) {
			t.Errorf("DurationArg(%q) = %v, %v; want %v, error %v at the key", c.key, got, err, c.want, c.wantErr)
		}
	}
}

func errText(err error) string {
	var ae *engine.ArgError
	if !errors.As(err, &ae) {
		if err != nil {
			return "not an ArgError: " + err.Error()
		}
		return ""
	}
	return strings.Join(ae.Path, ".") + ": " + ae.Err.Error()
}
