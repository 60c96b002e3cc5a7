package argvalue

// policyDescriptions describe the dispatcher policy keys (see IsPolicyKey)
// in every action's schema.
var policyDescriptions = map[string]string{
	"timeout":   "dispatcher policy: time limit of one attempt",
	"retries":   "dispatcher policy: retries of a retryable failure",
	"delay":     "dispatcher policy: first backoff",
	"max_delay": "dispatcher policy: longest backoff",
	"lock":      "dispatcher policy: mutual exclusion key",
}

// ObjectSchema returns the JSON Schema (draft 2020-12) of an action's
// arguments as the loader sees them, before rendering: an object with no
// keys but properties and the dispatcher policy keys (a property of the
// same name describes a policy key instead of the default text), the
// required keys, and the $defs/template definition of a "{{ ... }}"
// string that OrTemplate refers to.
func ObjectSchema(title, description string, properties map[string]any, required ...string) map[string]any {
	props := make(map[string]any, len(properties)+len(policyDescriptions))
	for k, d := range policyDescriptions {
		props[k] = map[string]any{"description": d}
	}
	for k, p := range properties {
		props[k] = p
	}
	req := make([]any, len(required))
	for i, r := range required {
		req[i] = r
	}
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                title,
		"description":          description,
		"type":                 "object",
		"required":             req,
		"additionalProperties": false,
		"$defs":                map[string]any{"template": map[string]any{"type": "string", "pattern": `\{\{`}},
		"properties":           props,
	}
}

// OrTemplate allows a "{{ ... }}" string in place of a value of schema s,
// in a schema made by ObjectSchema.
func OrTemplate(s map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/$defs/template"}}}
}

// SizeSchema is the schema of a size Size reads, at most max bytes, or a
// template.
func SizeSchema(max int, description string) map[string]any {
	return OrTemplate(map[string]any{
		"description": description,
		"anyOf": []any{
			map[string]any{"type": "integer", "minimum": 1, "maximum": max},
			map[string]any{"type": "string", "pattern": `^\s*[0-9]+\s*([kKmM]i?[bB]?|[bB])?\s*$`},
		},
	})
}
