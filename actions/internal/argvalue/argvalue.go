// Package argvalue reads the arguments of the built-in actions: it coerces
// the values YAML gives (int, float64, string, bool, []any, map[string]any)
// or templates render to the type an argument needs, and reports what does
// not fit as an *engine.ArgError naming the argument's path.
//
// Every function takes check: at load time (check=true) a "{{ ... }}" string
// is accepted wherever a rendered value could be valid, and the zero value
// is returned for it; at run time (check=false) the rendered value must have
// the right shape.
package argvalue

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// policyKeys are the keys every action accepts; the dispatcher, not the
// action, interprets them. The loader normally removes them before Check.
var policyKeys = map[string]bool{"timeout": true, "retries": true, "delay": true, "max_delay": true, "lock": true}

// IsPolicyKey reports whether k is a dispatcher policy key (timeout,
// retries, delay, max_delay, lock), which every action accepts and ignores.
func IsPolicyKey(k string) bool { return policyKeys[k] }

// SortedKeys returns the keys of args in order, so that the first error
// reported for several bad arguments is always the same one.
func SortedKeys(args map[string]any) []string {
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// AppendPath returns a new path with elem after path; path is not changed.
func AppendPath(path []string, elem string) []string {
	p := make([]string, len(path), len(path)+1)
	copy(p, path)
	return append(p, elem)
}

// Bool reads a boolean; strings strconv.ParseBool accepts count too.
func Bool(path []string, v any, check bool) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if check && engine.IsTemplate(x) {
			return false, nil
		}
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, nil
		}
		return false, engine.ArgErrorf(path, "must be true or false, got %q", x)
	}
	return false, engine.ArgErrorf(path, "must be true or false, got %s", engine.TypeName(v))
}

// Int reads a whole number. isTemplate is true when, at load time, v is a
// template whose value is not known yet.
func Int(path []string, v any, check bool) (n int, isTemplate bool, err error) {
	switch x := v.(type) {
	case int:
		return x, false, nil
	case int64:
		return int(x), false, nil
	case uint64:
		if x > math.MaxInt32 {
			return 0, false, engine.ArgErrorf(path, "%d is too large", x)
		}
		return int(x), false, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > math.MaxInt32 {
			return 0, false, engine.ArgErrorf(path, "must be a whole number, got %v", x)
		}
		return int(x), false, nil
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0, false, engine.ArgErrorf(path, "must be a whole number, got %q", x.String())
		}
		return int(i), false, nil
	case string:
		if check && engine.IsTemplate(x) {
			return 0, true, nil
		}
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, false, engine.ArgErrorf(path, "must be a whole number, got %q", x)
		}
		return i, false, nil
	}
	return 0, false, engine.ArgErrorf(path, "must be a whole number, got %s", engine.TypeName(v))
}

// String reads a text argument. At load time (check) it accepts strings
// only, so that a YAML value like `0755` or `yes` never changes meaning
// silently; at run time a whole-value template may have rendered to another
// type, which is turned into text the way templates render inside text.
func String(path []string, v any, check bool) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	if check {
		return "", engine.ArgErrorf(path, "must be a string, got %s (quote it in YAML)", engine.TypeName(v))
	}
	return engine.Text(v), nil
}

// Scalar reads a string, number or boolean as text (an environment
// variable's or a header's value).
func Scalar(path []string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case json.Number:
		return x.String(), nil
	}
	return "", engine.ArgErrorf(path, "must be a string, number or boolean, got %s", engine.TypeName(v))
}

// ScalarMap reads a map of names to scalar values (see Scalar), such as
// environment variables or HTTP headers. keys says what the names are in
// the error for a value that is not a map ("variable names"). checkName
// rejects a bad name before its value is read; checkValue, when not nil,
// rejects a bad value. Both get the entry's path. At load time a template
// in place of the whole map gives a nil map.
func ScalarMap(path []string, v any, check bool, keys string,
	checkName func(path []string, name string) error,
	checkValue func(path []string, value string) error,
) (map[string]string, error) {
	if s, ok := v.(string); ok && check && engine.IsTemplate(s) {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, engine.ArgErrorf(path, "must be a map of %s to values, got %s", keys, engine.TypeName(v))
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		p := AppendPath(path, k)
		if err := checkName(p, k); err != nil {
			return nil, err
		}
		s, err := Scalar(p, e)
		if err != nil {
			return nil, err
		}
		if checkValue != nil {
			if err := checkValue(p, s); err != nil {
				return nil, err
			}
		}
		out[k] = s
	}
	return out, nil
}

// ParseSize reads a byte size of at most max: a whole number of bytes or a
// string such as "64KiB", "1MiB", "512", "10kb".
func ParseSize(s string, max int) (int, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size (use bytes or a unit: B, KiB, MiB, KB, MB)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > int64(max) {
		return 0, fmt.Errorf("%q is larger than %d bytes", s, max)
	}
	mult := int64(1)
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	default:
		return 0, fmt.Errorf("%q has an unknown unit (use B, KiB or MiB)", s)
	}
	n *= mult
	if n > int64(max) {
		return 0, fmt.Errorf("%q is larger than %d bytes", s, max)
	}
	return int(n), nil
}

// Size reads a positive byte size of at most max: a number of bytes or a
// string ParseSize reads. At load time a template gives 0.
func Size(path []string, v any, check bool, max int) (int, error) {
	var n int
	switch x := v.(type) {
	case string:
		if check && engine.IsTemplate(x) {
			return 0, nil
		}
		var err error
		if n, err = ParseSize(x, max); err != nil {
			return 0, engine.ArgErrorf(path, "%v", err)
		}
	default:
		var err error
		if n, _, err = Int(path, v, check); err != nil {
			return 0, err
		}
		if n > max {
			return 0, engine.ArgErrorf(path, "%d is larger than %d bytes", n, max)
		}
	}
	if n <= 0 {
		return 0, engine.ArgErrorf(path, "must be a positive size in bytes, got %v", v)
	}
	return n, nil
}

// Duration reads a duration from 0 to max: a string time.ParseDuration
// reads ("5s") or a whole number of seconds. At load time a template
// gives 0.
func Duration(path []string, v any, check bool, max time.Duration) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		if check && engine.IsTemplate(x) {
			return 0, nil
		}
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(x)); err != nil {
			return 0, engine.ArgErrorf(path, "%q is not a duration (e.g. \"5s\")", x)
		}
	default:
		n, _, err := Int(path, v, check)
		if err != nil {
			return 0, engine.ArgErrorf(path, "must be a duration such as \"5s\", got %s", engine.TypeName(v))
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > max {
		return 0, engine.ArgErrorf(path, "%v is outside 0s-%v", d, max)
	}
	return d, nil
}
