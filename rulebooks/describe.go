package rulebooks

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/rulebook-dev/rulebook/engine"
)

// Describe writes what `rulebook describe NAME` prints: the arguments of
// the action or source type name (its name, type, whether it is required,
// its default and description), read from the rulebook JSON Schema that
// Schema publishes for reg, so the two cannot drift apart. An action and a
// source of the same name are both described.
func Describe(w io.Writer, reg *engine.Registry, name string) error {
	b, err := Schema(reg)
	if err != nil {
		return err
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		return err
	}
	var sections []string
	if alt := altFor(dig(root, "$defs", "action", "oneOf"), name); alt != nil {
		sections = append(sections, describeAlt("action", name, alt))
	}
	if alt := altFor(dig(root, "items", "properties", "sources", "items", "oneOf"), name); alt != nil {
		sections = append(sections, describeAlt("source", name, alt))
	}
	if len(sections) == 0 {
		known := append(append(append([]string{}, engine.BuiltinActions...), reg.ActionTypes()...), reg.SourceTypes()...)
		sort.Strings(known)
		known = slices.Compact(known)
		return fmt.Errorf("no action or source type %q%s (known: %s)", name, suggest(name, known), strings.Join(known, ", "))
	}
	_, err = io.WriteString(w, strings.Join(sections, "\n"))
	return err
}

// dig follows keys into nested maps.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// altFor returns the alternative of a oneOf list that is the object
// {name: ARGS}.
func altFor(alts any, name string) map[string]any {
	list, _ := alts.([]any)
	for _, a := range list {
		m, _ := a.(map[string]any)
		if req, _ := m["required"].([]any); len(req) == 1 && req[0] == name {
			return m
		}
	}
	return nil
}

func describeAlt(kind, name string, alt map[string]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", kind, name)
	if d, _ := alt["description"].(string); d != "" {
		fmt.Fprintf(&b, ": %s", d)
	}
	b.WriteString("\n\n")
	args, _ := dig(alt, "properties", name).(map[string]any)
	if branches, ok := args["anyOf"].([]any); ok && len(branches) > 0 {
		// {anyOf: [ARGS, {type: null}]}: an action written without arguments.
		args, _ = branches[0].(map[string]any)
	}
	props, _ := args["properties"].(map[string]any)
	if len(props) == 0 {
		b.WriteString("no arguments\n")
		return b.String()
	}
	required := map[string]bool{}
	for _, r := range asList(args["required"]) {
		if s, ok := r.(string); ok {
			required[s] = true
		}
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	// Required arguments first, then by name.
	sort.Slice(keys, func(i, j int) bool {
		if required[keys[i]] != required[keys[j]] {
			return required[keys[i]]
		}
		return keys[i] < keys[j]
	})
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ARGUMENT\tTYPE\tREQUIRED\tDEFAULT\tDESCRIPTION")
	for _, k := range keys {
		p, _ := props[k].(map[string]any)
		req := ""
		if required[k] {
			req = "yes"
		}
		def := ""
		if d, ok := find(p, "default"); ok {
			j, _ := json.Marshal(d)
			def = string(j)
		}
		desc, _ := find(p, "description")
		ds, _ := desc.(string)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k, typeOf(p), req, def, ds)
	}
	tw.Flush()
	return b.String()
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// find returns key of s, or of the first anyOf/oneOf branch that has it.
func find(s map[string]any, key string) (any, bool) {
	if v, ok := s[key]; ok {
		return v, true
	}
	for _, alt := range []string{"anyOf", "oneOf"} {
		for _, br := range asList(s[alt]) {
			if m, ok := br.(map[string]any); ok {
				if v, ok := find(m, key); ok {
					return v, true
				}
			}
		}
	}
	return nil, false
}

// typeOf says in a few words what values schema s accepts: "string",
// "integer or string", "one of GET, POST", "... or a template".
func typeOf(s map[string]any) string {
	if ref, _ := s["$ref"].(string); strings.HasSuffix(ref, "/template") {
		return "a template"
	}
	var parts []string
	add := func(p string) {
		if p != "" && !slices.Contains(parts, p) {
			parts = append(parts, p)
		}
	}
	if enum := asList(s["enum"]); len(enum) > 0 {
		vals := make([]string, len(enum))
		for i, e := range enum {
			j, _ := json.Marshal(e)
			vals[i] = string(j)
		}
		add("one of " + strings.Join(vals, ", "))
	} else {
		switch t := s["type"].(type) {
		case string:
			add(t)
		case []any:
			for _, x := range t {
				if xs, ok := x.(string); ok {
					add(xs)
				}
			}
		}
		if t, _ := s["type"].(string); t == "array" {
			if items, ok := s["items"].(map[string]any); ok {
				// A template item reads as a template of the whole list
				// already named below.
				if it := strings.TrimSuffix(typeOf(items), " or a template"); it != "any" {
					parts[len(parts)-1] = "array of " + it
				}
			}
		}
	}
	for _, alt := range []string{"anyOf", "oneOf"} {
		for _, br := range asList(s[alt]) {
			if m, ok := br.(map[string]any); ok {
				add(typeOf(m))
			}
		}
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " or ")
}
