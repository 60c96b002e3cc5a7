package httpcall

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rulebook-dev/rulebook/engine"
)

// Argument values come from YAML (int, float64, string, bool, []any,
// map[string]any) or, after rendering, from templates. At load time
// (check=true) a "{{ ... }}" string is accepted wherever a rendered value
// could be valid; at run time the rendered value must have the right shape.

// policyKeys are the keys every action accepts; the dispatcher, not the
// action, interprets them. The loader normally removes them before Check.
var policyKeys = map[string]bool{"timeout": true, "retries": true, "delay": true, "max_delay": true, "lock": true}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64, json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

func argErr(path []string, format string, args ...any) error {
	return engine.ArgErrorf(path, format, args...)
}

func toBool(path []string, v any, check bool) (bool, error) {
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
		return false, argErr(path, "must be true or false, got %q", x)
	}
	return false, argErr(path, "must be true or false, got %s", typeName(v))
}

func toInt(path []string, v any, check bool) (n int, isTemplate bool, err error) {
	switch x := v.(type) {
	case int:
		return x, false, nil
	case int64:
		return int(x), false, nil
	case uint64:
		if x > math.MaxInt32 {
			return 0, false, argErr(path, "%d is too large", x)
		}
		return int(x), false, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > math.MaxInt32 {
			return 0, false, argErr(path, "must be a whole number, got %v", x)
		}
		return int(x), false, nil
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0, false, argErr(path, "must be a whole number, got %q", x.String())
		}
		return int(i), false, nil
	case string:
		if check && engine.IsTemplate(x) {
			return 0, true, nil
		}
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, false, argErr(path, "must be a whole number, got %q", x)
		}
		return i, false, nil
	}
	return 0, false, argErr(path, "must be a whole number, got %s", typeName(v))
}

// toString reads a text argument. At load time (check) it accepts strings
// only, so that a YAML value like `0755` or `yes` never changes meaning
// silently; at run time a whole-value template may have rendered to another
// type, which is turned into text the way templates render inside text.
func toString(path []string, v any, check bool) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	if check {
		return "", argErr(path, "must be a string, got %s (quote it in YAML)", typeName(v))
	}
	return textOf(v), nil
}

// textOf renders a value as text like engine templates do: null is empty,
// whole numbers have no decimal point, containers are JSON.
func textOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case map[string]any, []any:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
	return fmt.Sprint(v)
}

// toScalarString accepts strings, numbers and booleans (env values).
func toScalarString(path []string, v any) (string, error) {
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
	return "", argErr(path, "must be a string, number or boolean, got %s", typeName(v))
}

func appendPath(path []string, elem string) []string {
	p := make([]string, len(path), len(path)+1)
	copy(p, path)
	return append(p, elem)
}

// MaxOutputLimit bounds output_limit: the audit trail is not a log store.
const MaxOutputLimit = 16 << 20

// parseSize reads a byte size: a whole number of bytes or a string such as
// "64KiB", "1MiB", "512", "10kb".
func parseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size (use bytes or a unit: B, KiB, MiB, KB, MB)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > MaxOutputLimit {
		return 0, fmt.Errorf("%q is larger than %d bytes", s, MaxOutputLimit)
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
	if n > MaxOutputLimit {
		return 0, fmt.Errorf("%q is larger than %d bytes", s, MaxOutputLimit)
	}
	return int(n), nil
}

func toSize(path []string, v any, check bool) (int, error) {
	var n int
	switch x := v.(type) {
	case string:
		if check && engine.IsTemplate(x) {
			return 0, nil
		}
		var err error
		if n, err = parseSize(x); err != nil {
			return 0, argErr(path, "%v", err)
		}
	default:
		var err error
		if n, _, err = toInt(path, v, check); err != nil {
			return 0, err
		}
		if n > MaxOutputLimit {
			return 0, argErr(path, "%d is larger than %d bytes", n, MaxOutputLimit)
		}
	}
	if n <= 0 {
		return 0, argErr(path, "must be a positive size in bytes, got %v", v)
	}
	return n, nil
}
