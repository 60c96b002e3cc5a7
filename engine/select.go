package engine

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
)

// selectFunctions are Event-Driven Ansible's list tests, which its
// `is select(...)` and `is selectattr(...)` conditions translate to:
//
//	select(list, op, value)           an item of list passes `item op value`
//	selectattr(list, key, op, value)  an object of list whose key passes
//
// op is one of ==, !=, >, >=, <, <=, regex, search, match, and for
// selectattr also in, not in, contains, not contains. selectattr treats a
// single object as a list of one, and an object without the key (a dotted
// path) does not pass, as in ansible-rulebook.
func selectFunctions() []expr.Option {
	return []expr.Option{
		expr.Function("select", func(p ...any) (any, error) {
			items, ok := p[0].([]any)
			if !ok {
				return nil, fmt.Errorf("select needs a list, got %s", TypeName(p[0]))
			}
			op, _ := p[1].(string)
			for _, it := range items {
				ok, err := selectTest(it, op, p[2], false)
				if err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}, new(func(any, string, any) bool)),
		expr.Function("selectattr", func(p ...any) (any, error) {
			var items []any
			switch x := p[0].(type) {
			case []any:
				items = x
			case map[string]any:
				items = []any{x}
			default:
				return nil, fmt.Errorf("selectattr needs a list or a mapping, got %s", TypeName(p[0]))
			}
			key, _ := p[1].(string)
			var keys []any
			for _, k := range strings.Split(key, ".") {
				keys = append(keys, k)
			}
			op, _ := p[2].(string)
			for _, it := range items {
				v, found := lookup(it, keys)
				if !found {
					continue
				}
				ok, err := selectTest(v, op, p[3], true)
				if err != nil || ok {
					return ok, err
				}
			}
			return false, nil
		}, new(func(any, string, string, any) bool)),
	}
}

// selectTest applies one select/selectattr operator to an item. An item
// of the wrong type for the operator does not pass; a bad operator or
// pattern is an error.
func selectTest(item any, op string, value any, attr bool) (bool, error) {
	switch op {
	case "==":
		return valuesEqual(item, value), nil
	case "!=":
		return !valuesEqual(item, value), nil
	case "<", "<=", ">", ">=":
		var c int
		if a, ok := toFloat(item); ok {
			b, ok := toFloat(value)
			if !ok {
				return false, nil
			}
			c = cmpFloat(a, b)
		} else if a, ok := item.(string); ok {
			b, ok := value.(string)
			if !ok {
				return false, nil
			}
			c = strings.Compare(a, b)
		} else {
			return false, nil
		}
		switch op {
		case "<":
			return c < 0, nil
		case "<=":
			return c <= 0, nil
		case ">":
			return c > 0, nil
		}
		return c >= 0, nil
	case "regex", "search", "match":
		s, ok := item.(string)
		if !ok {
			return false, nil
		}
		pattern, ok := value.(string)
		if !ok {
			return false, fmt.Errorf("%s: the pattern must be a string, got %s", op, TypeName(value))
		}
		re, err := compileRegex(pattern, op == "match", false)
		if err != nil {
			return false, err
		}
		return re.MatchString(s), nil
	}
	if attr {
		switch op {
		case "in", "not in":
			if _, ok := value.([]any); !ok {
				return false, fmt.Errorf("selectattr %s: the value must be a list, got %s", op, TypeName(value))
			}
			in, _ := containsValue(value, item)
			return in == (op == "in"), nil
		case "contains", "not contains":
			has, err := containsValue(item, value)
			if err != nil {
				return false, nil
			}
			return has == (op == "contains"), nil
		}
	}
	return false, fmt.Errorf("unknown select operator %q", op)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
