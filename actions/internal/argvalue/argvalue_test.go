package argvalue

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/actions/internal/checktest"
	"github.com/rulebook-dev/rulebook/engine"
)

var at = []string{"k"}

// expect checks what reading an argument at path gave: an *engine.ArgError
// containing errHas when errHas is set, else no error and want.
func expect[T comparable](t *testing.T, path string, got T, err error, want T, errHas string) {
	t.Helper()
	if errHas != "" {
		checktest.ArgError(t, err, path, errHas)
		return
	}
	checktest.ArgError(t, err, "", "")
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// intRead is what Int returns besides its error.
type intRead struct {
	n        int
	template bool
}

func TestBool(t *testing.T) {
	tests := []struct {
		name    string
		v       any
		check   bool
		want    bool
		errPath string
		errHas  string
	}{
		{"true", true, false, true, "", ""},
		{"string false", " false ", false, false, "", ""},
		{"string 1", "1", true, true, "", ""},
		{"template at load", "{{ vars.b }}", true, false, "", ""},
		{"template at run", "{{ vars.b }}", false, false, "k", `got "{{ vars.b }}"`},
		{"word", "yes please", true, false, "k", "true or false"},
		{"number", 1, true, false, "k", "got a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Bool(at, tc.v, tc.check)
			checktest.ArgError(t, err, tc.errPath, tc.errHas)
			if err == nil && got != tc.want {
				t.Errorf("Bool(%v) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		name     string
		v        any
		check    bool
		want     int
		template bool
		errHas   string // "" means valid
	}{
		{"int", 7, false, 7, false, ""},
		{"int64", int64(-3), false, -3, false, ""},
		{"uint64", uint64(9), false, 9, false, ""},
		{"uint64 too large", uint64(1) << 40, false, 0, false, "too large"},
		{"whole float", 42.0, false, 42, false, ""},
		{"fraction", 1.5, false, 0, false, "whole number, got 1.5"},
		{"huge float", 1e12, false, 0, false, "whole number"},
		{"json number", json.Number("12"), false, 12, false, ""},
		{"json fraction", json.Number("1.2"), false, 0, false, `got "1.2"`},
		{"string", " 12 ", false, 12, false, ""},
		{"template at load", "{{ x }}", true, 0, true, ""},
		{"template at run", "{{ x }}", false, 0, false, "whole number"},
		{"bool", true, false, 0, false, "got a boolean"},
		{"null", nil, false, 0, false, "got null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, tmpl, err := Int(at, tc.v, tc.check)
			expect(t, "k", intRead{got, tmpl}, err, intRead{tc.want, tc.template}, tc.errHas)
		})
	}
}

func TestStringAndText(t *testing.T) {
	tests := []struct {
		name   string
		v      any
		check  bool
		want   string
		errHas string
	}{
		{"string", "x", true, "x", ""},
		{"number at load", 755, true, "", "quote it in YAML"},
		{"map at load", map[string]any{}, true, "", "got a map"},
		{"float at run", 42.0, false, "42", ""},
		{"fraction at run", 2.5, false, "2.5", ""},
		{"null at run", nil, false, "", ""},
		{"bool at run", true, false, "true", ""},
		{"map at run", map[string]any{"a": 1.0}, false, `{"a":1}`, ""},
		{"list at run", []any{"x", 1.0}, false, `["x",1]`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := String(at, tc.v, tc.check)
			expect(t, "k", got, err, tc.want, tc.errHas)
		})
	}
}

func TestScalarMap(t *testing.T) {
	noDash := func(p []string, k string) error {
		if strings.Contains(k, "-") {
			return engine.ArgErrorf(p, "%q is not a valid name", k)
		}
		return nil
	}
	noNL := func(p []string, s string) error {
		if strings.Contains(s, "\n") {
			return engine.ArgErrorf(p, "value must not contain line breaks")
		}
		return nil
	}
	tests := []struct {
		name    string
		v       any
		check   bool
		want    map[string]string
		errPath string
		errHas  string
	}{
		{"scalars", map[string]any{"A": "x", "B": 2, "C": true, "D": 2.5, "E": int64(-1), "F": uint64(3), "G": json.Number("7")}, false,
			map[string]string{"A": "x", "B": "2", "C": "true", "D": "2.5", "E": "-1", "F": "3", "G": "7"}, "", ""},
		{"template at load", "{{ vars.env }}", true, nil, "", ""},
		{"template at run", "{{ vars.env }}", false, nil, "env", "must be a map of variable names to values, got a string"},
		{"list", []any{}, true, nil, "env", "got a list"},
		{"bad name", map[string]any{"A-B": "1"}, true, nil, "env.A-B", "not a valid name"},
		{"bad name wins over bad value", map[string]any{"A-B": []any{}}, true, nil, "env.A-B", "not a valid name"},
		{"list value", map[string]any{"A": []any{}}, true, nil, "env.A", "string, number or boolean, got a list"},
		{"bad value", map[string]any{"A": "x\ny"}, true, nil, "env.A", "line breaks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ScalarMap([]string{"env"}, tc.v, tc.check, "variable names", noDash, noNL)
			checktest.ArgError(t, err, tc.errPath, tc.errHas)
			if err != nil {
				return
			}
			if len(got) != len(tc.want) || (got == nil) != (tc.want == nil) {
				t.Fatalf("ScalarMap = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestSize(t *testing.T) {
	const max = 16 << 20
	tests := []struct {
		name   string
		v      any
		check  bool
		want   int
		errHas string
	}{
		{"bytes", 4096, false, 4096, ""},
		{"KiB", "64KiB", false, 64 << 10, ""},
		{"kb", " 10kb ", false, 10 << 10, ""},
		{"MiB", "1MiB", false, 1 << 20, ""},
		{"plain string", "512", false, 512, ""},
		{"B", "7 B", false, 7, ""},
		{"max", "16MiB", false, max, ""},
		{"template at load", "{{ vars.n }}", true, 0, ""},
		{"over max", "17MiB", false, 0, "larger than 16777216 bytes"},
		{"number over max", max + 1, false, 0, "larger than"},
		{"digits overflow", "99999999999999999999", false, 0, "larger than"},
		{"no digits", "lots", false, 0, "not a size"},
		{"unit only", "k", false, 0, "not a size"},
		{"unknown unit", "3GiB", false, 0, "unknown unit"},
		{"zero", 0, false, 0, "positive"},
		{"zero string", "0KiB", false, 0, "positive"},
		{"bool", true, false, 0, "whole number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Size([]string{"output_limit"}, tc.v, tc.check, max)
			expect(t, "output_limit", got, err, tc.want, tc.errHas)
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64KiB", "1MiB", "512", "10kb", "", "k", "99999999999999999999", "16MiB", "17MiB"} {
		f.Add(s)
	}
	const max = 16 << 20
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s, max)
		if err == nil && (n < 0 || n > max) {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name   string
		v      any
		check  bool
		want   time.Duration
		errHas string
	}{
		{"string", "1.5s", false, 1500 * time.Millisecond, ""},
		{"seconds", 3, false, 3 * time.Second, ""},
		{"max", "1m", false, time.Minute, ""},
		{"template at load", "{{ vars.d }}", true, 0, ""},
		{"word", "soon", false, 0, `"soon" is not a duration`},
		{"negative", "-1s", false, 0, "outside 0s-1m0s"},
		{"over max", 61, false, 0, "outside"},
		{"list", []any{}, false, 0, "got a list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Duration([]string{"kill_grace"}, tc.v, tc.check, time.Minute)
			expect(t, "kill_grace", got, err, tc.want, tc.errHas)
		})
	}
}

func TestPolicyKeysAndSortedKeys(t *testing.T) {
	for _, k := range []string{"timeout", "retries", "delay", "max_delay", "lock"} {
		if !IsPolicyKey(k) {
			t.Errorf("%q is not a policy key", k)
		}
	}
	if IsPolicyKey("argv") {
		t.Error(`"argv" is a policy key`)
	}
	got := strings.Join(SortedKeys(map[string]any{"b": 1, "a": 2, "c": 3}), ",")
	if got != "a,b,c" {
		t.Errorf("SortedKeys = %s", got)
	}
	p := []string{"a"}
	q := AppendPath(p[:1:1], "b")
	r := AppendPath(p, "c")
	if strings.Join(q, ".") != "a.b" || strings.Join(r, ".") != "a.c" {
		t.Errorf("AppendPath shares memory: %v %v", q, r)
	}
}
