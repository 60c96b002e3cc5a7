package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/conf"
)

// IsFunction reports whether a condition or template may call name with
// a value as its first argument: an expr builtin the engine keeps or a
// function the engine adds (not an internal __name, not a predicate
// builtin such as map or filter, whose second argument is a closure).
func IsFunction(name string) bool {
	if strings.HasPrefix(name, "__") {
		return false
	}
	cfg := functionTable()
	if _, ok := cfg.Functions[name]; ok {
		return true
	}
	f, ok := cfg.Builtins[name]
	return ok && !f.Predicate
}

// functionTable is the configuration every Compiler's conditions are
// checked against, for IsFunction.
var functionTable = sync.OnceValue(func() *conf.Config { return (&Compiler{}).newConfig() })

// The helpers a rule writer reaches for. Each is documented in the README's
// condition reference and has table-driven tests.
func (c *Compiler) functions() []expr.Option {
	clock := c.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	now := func() time.Time { return clock.Now() }
	return append(append(selectFunctions(), textFunctions()...),
		expr.Function("__get", func(p ...any) (any, error) {
			v, ok := lookup(p[0], p[1:])
			if !ok {
				return nil, errMissing
			}
			return v, nil
		}),
		expr.Function("__getor", func(p ...any) (any, error) {
			v, _ := lookup(p[0], p[1:])
			return v, nil
		}),
		expr.Function("__has", func(p ...any) (any, error) {
			_, ok := lookup(p[0], p[1:])
			return ok, nil
		}, new(func(...any) bool)),
		expr.Function("__contains", func(p ...any) (any, error) {
			return containsValue(p[0], p[1])
		}, new(func(any, any) bool)),
		expr.Function("match", func(p ...any) (any, error) {
			return regexTest(p, true)
		}, new(func(any, string) bool), new(func(any, string, bool) bool)),
		expr.Function("search", func(p ...any) (any, error) {
			return regexTest(p, false)
		}, new(func(any, string) bool), new(func(any, string, bool) bool)),
		expr.Function("cidr_match", func(p ...any) (any, error) {
			return cidrMatch(p[0], p[1])
		}, new(func(any, any) bool)),
		expr.Function("now", func(p ...any) (any, error) {
			return now(), nil
		}, new(func() time.Time)),
		expr.Function("timestamp", func(p ...any) (any, error) {
			return parseTimestamp(p[0])
		}, new(func(any) time.Time)),
		expr.Function("urlpath", func(p ...any) (any, error) {
			return URLPathEscape(p[0]), nil
		}, new(func(any) string)),
		expr.Function("urlquery", func(p ...any) (any, error) {
			return URLQueryEscape(p[0]), nil
		}, new(func(any) string)),
		expr.Function("age", func(p ...any) (any, error) {
			t, err := parseTimestamp(p[0])
			if err != nil {
				return nil, err
			}
			return now().Sub(t), nil
		}, new(func(any) time.Duration)),
	)
}

// regexCache holds compiled patterns; conditions use few distinct ones.
// It is indexed by [anchored][ignoreCase], then keyed by the pattern (a
// single map keyed by the pattern with "^" or "i" put in front took
// "ifoo" for "foo" ignoring case, and "^a|b" for "a|b" anchored).
var regexCache [2][2]sync.Map // string -> *regexp.Regexp

func compileRegex(pattern string, anchored, ignoreCase bool) (*regexp.Regexp, error) {
	cache := &regexCache[b2i(anchored)][b2i(ignoreCase)]
	if re, ok := cache.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	src := pattern
	if anchored {
		src = `^(?:` + src + `)`
	}
	if ignoreCase {
		src = `(?i)` + src
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", pattern, err)
	}
	cache.Store(pattern, re)
	return re, nil
}

// b2i is 1 for true, 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func regexTest(p []any, anchored bool) (any, error) {
	s, ok := p[0].(string)
	if !ok {
		return nil, fmt.Errorf("match/search needs a string, got %s", TypeName(p[0]))
	}
	pattern, _ := p[1].(string)
	ignoreCase := false
	if len(p) > 2 {
		ignoreCase, _ = p[2].(bool)
	}
	re, err := compileRegex(pattern, anchored, ignoreCase)
	if err != nil {
		return nil, err
	}
	return re.MatchString(s), nil
}

func containsValue(container, item any) (bool, error) {
	switch c := container.(type) {
	case string:
		s, ok := item.(string)
		if !ok {
			return false, fmt.Errorf("contains: a string can only contain a string, got %s", TypeName(item))
		}
		return strings.Contains(c, s), nil
	case []any:
		for _, v := range c {
			if valuesEqual(v, item) {
				return true, nil
			}
		}
		return false, nil
	case []string:
		s, ok := item.(string)
		if !ok {
			return false, nil
		}
		for _, v := range c {
			if v == s {
				return true, nil
			}
		}
		return false, nil
	case map[string]any:
		s, ok := item.(string)
		if !ok {
			return false, nil
		}
		_, ok = c[s]
		return ok, nil
	}
	return false, fmt.Errorf("contains: %s is not a string, list or map", TypeName(container))
}

// valuesEqual compares JSON-ish values, treating all numbers alike.
func valuesEqual(a, b any) bool {
	if fa, ok := toFloat(a); ok {
		fb, ok := toFloat(b)
		return ok && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

// toFloat returns v as a float64 when it is a number of a Go int, uint or
// float type that events and expr produce.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint:
		return float64(x), true
	}
	return 0, false
}

func cidrMatch(ipv, cidrv any) (bool, error) {
	ips, ok := ipv.(string)
	if !ok {
		return false, fmt.Errorf("cidr_match: the address must be a string, got %s", TypeName(ipv))
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(ips))
	if err != nil {
		return false, fmt.Errorf("cidr_match: %w", err)
	}
	ip = ip.Unmap()
	check := func(s string) (bool, error) {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return false, fmt.Errorf("cidr_match: %w", err)
		}
		return pfx.Contains(ip), nil
	}
	switch c := cidrv.(type) {
	case string:
		return check(c)
	case []any:
		for _, x := range c {
			s, ok := x.(string)
			if !ok {
				return false, errors.New("cidr_match: networks must be strings")
			}
			if ok, err := check(s); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("cidr_match: the network must be a string or a list, got %s", TypeName(cidrv))
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	time.RFC1123Z,
	time.RFC1123,
	"2006-01-02",
}

// parseTimestamp accepts RFC 3339 (and close relatives) strings, Unix
// seconds as numbers or numeric strings, and time.Time.
func parseTimestamp(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		s := strings.TrimSpace(x)
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t, nil
			}
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return unixFloat(f), nil
		}
		return time.Time{}, fmt.Errorf("timestamp: cannot parse %q", x)
	}
	if f, ok := toFloat(v); ok {
		return unixFloat(f), nil
	}
	return time.Time{}, fmt.Errorf("timestamp: cannot use %s as a time", TypeName(v))
}

func unixFloat(f float64) time.Time {
	// Milliseconds since the epoch are common too (Kafka, JavaScript).
	if f > 1e12 {
		return time.UnixMilli(int64(f)).UTC()
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
}

// TypeName names the type of a YAML or JSON value for an error message:
// "null", "a string", "a boolean", "a number", "a list", "a map".
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case json.Number:
		return "a number"
	}
	if _, ok := toFloat(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
