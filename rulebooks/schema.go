package rulebooks

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/rulebook-dev/rulebook/engine"
)

// SchemaID is the $id of the published schema.
const SchemaID = "https://rulebook.dev/schemas/rulebook.schema.json"

// Schema returns the JSON Schema of the rulebook format, generated from the
// spec types in this package and completed with the argument schemas of the
// registry's sources and actions, so editors can complete and check
// rulebooks. Output is deterministic (sorted keys), so a checked-in copy can
// be tested to be current.
func Schema(reg *engine.Registry) ([]byte, error) {
	r := &jsonschema.Reflector{
		Anonymous:                  true,
		DoNotReference:             true,
		RequiredFromJSONSchemaTags: true,
		ExpandedStruct:             true,
	}
	toMap := func(v any) (map[string]any, error) {
		s := r.Reflect(v)
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		err = json.Unmarshal(b, &m)
		delete(m, "$schema")
		return m, err
	}
	ruleset, err := toMap(&RulesetSpec{})
	if err != nil {
		return nil, err
	}
	condition, err := toMap(&ConditionSpec{})
	if err != nil {
		return nil, err
	}
	policy, err := toMap(&PolicySpec{})
	if err != nil {
		return nil, err
	}
	props := ruleset["properties"].(map[string]any)

	// Sources: a name plus exactly one type key.
	var sourceAlts []any
	for _, typ := range reg.SourceTypes() {
		spec, _ := reg.Source(typ)
		argSchema := spec.Schema
		if argSchema == nil {
			argSchema = map[string]any{"type": "object"}
		}
		argSchema = withID(argSchema, "sources/"+typ)
		sourceAlts = append(sourceAlts, map[string]any{
			"type":                 "object",
			"description":          spec.Description,
			"required":             []any{typ},
			"additionalProperties": false,
			"properties": map[string]any{
				"name":    map[string]any{"type": "string", "description": "name of the source (default: its type)"},
				"filters": filtersSchema,
				typ:       argSchema,
			},
		})
	}
	// ansible-rulebook's names (eda.builtin.range, ansible.eda.webhook) take
	// its argument names, checked at load (rulebooks/eda/sources.go).
	sourceAlts = append(sourceAlts, map[string]any{
		"type":                 "object",
		"description":          "a source under ansible-rulebook's name (eda.builtin.NAME or ansible.eda.NAME) with its arguments",
		"minProperties":        1,
		"maxProperties":        2,
		"not":                  map[string]any{"required": []any{"name"}, "maxProperties": 1},
		"properties":           map[string]any{"name": map[string]any{"type": "string", "description": "name of the source (default: its type)"}},
		"patternProperties":    map[string]any{`^(eda\.builtin|ansible\.eda)\.[a-z_]+$`: map[string]any{"type": []any{"object", "null"}}},
		"additionalProperties": false,
	})
	props["sources"] = map[string]any{"type": "array", "description": "event sources feeding this ruleset", "items": map[string]any{"oneOf": sourceAlts}}

	// Actions: one key, the action type.
	var actionAlts []any
	builtins := map[string]map[string]any{}
	for typ, keys := range builtinArgs {
		p := map[string]any{}
		for k := range keys {
			p[k] = map[string]any{}
		}
		builtins[typ] = map[string]any{"type": "object", "additionalProperties": false, "properties": p}
	}
	types := append([]string{}, engine.BuiltinActions...)
	sort.Strings(types)
	for _, typ := range types {
		actionAlts = append(actionAlts, actionAlt(typ, "handled by the engine", builtins[typ]))
	}
	for _, typ := range reg.ActionTypes() {
		spec, _ := reg.Action(typ)
		args := spec.Schema
		if args == nil {
			args = map[string]any{"type": "object"}
		}
		args = withID(withPolicy(args, policy["properties"].(map[string]any)), "actions/"+typ)
		actionAlts = append(actionAlts, actionAlt(typ, spec.Description, args))
	}
	// Plugin actions are namespaced (ticket.open); their schemas come from
	// the plugins at load time.
	actionAlts = append(actionAlts, map[string]any{
		"type": "object", "minProperties": 1, "maxProperties": 1,
		"description":          "an action from a plugin (namespaced, e.g. ticket.open)",
		"patternProperties":    map[string]any{`^[a-z0-9_]+\.[a-z0-9_.]+$`: map[string]any{"type": "object"}},
		"additionalProperties": false,
	})
	action := map[string]any{"$ref": "#/$defs/action"}

	rules := props["rules"].(map[string]any)
	rule := rules["items"].(map[string]any)
	rp := rule["properties"].(map[string]any)
	rp["condition"] = map[string]any{
		"description": rp["condition"].(map[string]any)["description"],
		"oneOf":       []any{map[string]any{"type": "string", "minLength": 1}, condition},
	}
	rp["action"] = action
	rp["actions"] = map[string]any{"type": "array", "minItems": 1, "items": action, "description": "actions run in order when the rule fires"}
	rule["oneOf"] = []any{map[string]any{"required": []any{"action"}}, map[string]any{"required": []any{"actions"}}}

	root := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         SchemaID,
		"title":       "Rulebook",
		"description": "A rulebook: a list of rulesets, each with sources and rules.",
		"type":        "array",
		"minItems":    1,
		"items":       ruleset,
		"$defs":       map[string]any{"action": map[string]any{"oneOf": actionAlts}},
	}
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return append(b, '\n'), nil
}

func actionAlt(typ, desc string, args map[string]any) map[string]any {
	return map[string]any{
		"type": "object", "description": desc, "required": []any{typ}, "additionalProperties": false,
		"properties": map[string]any{typ: map[string]any{"anyOf": []any{args, map[string]any{"type": "null"}}}},
	}
}

// withID makes an embedded argument schema its own resource, so its
// "#/$defs/..." references resolve inside it.
func withID(schema map[string]any, name string) map[string]any {
	out := map[string]any{}
	for k, v := range schema {
		out[k] = v
	}
	out["$id"] = "https://rulebook.dev/schemas/" + name + ".schema.json"
	return out
}

// withPolicy adds the dispatcher's policy keys to an action's argument
// schema.
func withPolicy(args map[string]any, policy map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range args {
		out[k] = v
	}
	p := map[string]any{}
	if ap, ok := args["properties"].(map[string]any); ok {
		for k, v := range ap {
			p[k] = v
		}
	}
	for k, v := range policy {
		if _, taken := p[k]; !taken {
			p[k] = v
		}
	}
	out["properties"] = p
	return out
}

// filtersSchema is a source's `filters:` list: each item one filter name
// (optionally eda.builtin./ansible.eda. prefixed) holding its arguments.
var filtersSchema = map[string]any{
	"type":        "array",
	"description": "event filters applied in order before the event is journaled: " + strings.Join(engine.FilterNames, ", "),
	"items": map[string]any{
		"type": "object", "minProperties": 1, "maxProperties": 1,
		"additionalProperties": map[string]any{"type": []any{"object", "null"}},
	},
}
