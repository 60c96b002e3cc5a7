package engine

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
)

// textFunctions are the Jinja2 filters of Event-Driven Ansible's action
// templates that expr lacks, with Python's semantics (rulebooks/eda turns
// `{{ x | basename }}` into `{{ basename(x) }}`):
//
//	basename(p), dirname(p), normpath(p)  os.path's functions
//	regex_replace(s, pattern, repl)       Ansible's filter: re.sub, \1 and \g<name> in repl
func textFunctions() []expr.Option {
	str := func(name string, v any) (string, error) {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s needs a string, got %s", name, TypeName(v))
		}
		return s, nil
	}
	return []expr.Option{
		expr.Function("basename", func(p ...any) (any, error) {
			s, err := str("basename", p[0])
			if err != nil {
				return nil, err
			}
			return s[strings.LastIndex(s, "/")+1:], nil
		}, new(func(any) string)),
		expr.Function("dirname", func(p ...any) (any, error) {
			s, err := str("dirname", p[0])
			if err != nil {
				return nil, err
			}
			head := s[:strings.LastIndex(s, "/")+1]
			if head != "" && strings.Trim(head, "/") != "" {
				head = strings.TrimRight(head, "/")
			}
			return head, nil
		}, new(func(any) string)),
		expr.Function("normpath", func(p ...any) (any, error) {
			s, err := str("normpath", p[0])
			if err != nil {
				return nil, err
			}
			out := path.Clean(s)
			// POSIX keeps exactly two leading slashes.
			if strings.HasPrefix(s, "//") && !strings.HasPrefix(s, "///") {
				out = "/" + out
			}
			return out, nil
		}, new(func(any) string)),
		expr.Function("regex_replace", func(p ...any) (any, error) {
			s, err := str("regex_replace", p[0])
			if err != nil {
				return nil, err
			}
			pattern, _ := p[1].(string)
			repl, _ := p[2].(string)
			re, err := regexp.Compile(pattern)
			if err != nil {
				return nil, fmt.Errorf("regex_replace: invalid regular expression %q: %w", pattern, err)
			}
			return re.ReplaceAllString(s, pythonRepl(repl)), nil
		}, new(func(any, string, string) string)),
		expr.Function("__capitalize", func(p ...any) (any, error) {
			s, err := str("capitalize", p[0])
			if err != nil || s == "" {
				return s, err
			}
			r := []rune(s)
			return strings.ToUpper(string(r[0])) + strings.ToLower(string(r[1:])), nil
		}, new(func(any) string)),
		expr.Function("__to_json", func(p ...any) (any, error) {
			var b strings.Builder
			if err := pythonJSON(&b, p[0]); err != nil {
				return nil, err
			}
			return b.String(), nil
		}, new(func(any) string)),
	}
}

var pyGroup = regexp.MustCompile(`\\(\d+|g<(\w+)>|\\)`)

// pythonRepl turns a Python re.sub replacement (\1, \g<1>, \g<name>, \\)
// into Go's (${1}, ${name}), escaping Go's $.
func pythonRepl(repl string) string {
	repl = strings.ReplaceAll(repl, "$", "$$")
	return pyGroup.ReplaceAllStringFunc(repl, func(m string) string {
		switch {
		case m == `\\`:
			return `\`
		case strings.HasPrefix(m, `\g<`):
			return "${" + m[3:len(m)-1] + "}"
		}
		return "${" + m[1:] + "}"
	})
}

// pythonJSON writes v as Python's json.dumps does by default: ", " and
// ": " separators (keys sorted: Go maps keep no order).
func pythonJSON(b *strings.Builder, v any) error {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteString(": ")
			if err := pythonJSON(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteString("}")
	case []any:
		b.WriteString("[")
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := pythonJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteString("]")
	case float64:
		// JSON's whole numbers are Python ints.
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	default:
		out, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("to_json: %w", err)
		}
		b.Write(out)
	}
	return nil
}
