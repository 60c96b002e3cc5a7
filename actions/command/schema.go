package command

// Schema returns the JSON Schema (draft 2020-12) of run_command's arguments,
// as the loader sees them: before rendering, so "{{ ... }}" strings are
// allowed wherever a rendered value could be valid.
func Schema() map[string]any {
	tmpl := map[string]any{"type": "string", "pattern": `\{\{`}
	orTmpl := func(s map[string]any) map[string]any {
		return map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/$defs/template"}}}
	}
	codes := orTmpl(map[string]any{
		"type":  "array",
		"items": orTmpl(map[string]any{"type": "integer", "minimum": 0, "maximum": 255}),
	})
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                Type,
		"description":          "Run a program with an argv list; no shell unless shell: true.",
		"type":                 "object",
		"required":             []any{"argv"},
		"additionalProperties": false,
		"$defs":                map[string]any{"template": tmpl},
		"properties": map[string]any{
			"argv": map[string]any{
				"description": "the program and its arguments, each templated separately; with shell: true one string run by /bin/sh -c",
				"anyOf": []any{
					map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string"}},
					map[string]any{"type": "string", "minLength": 1},
				},
			},
			"shell":              orTmpl(map[string]any{"type": "boolean", "default": false, "description": "run argv (one string) with /bin/sh -c"}),
			"env":                orTmpl(map[string]any{"type": "object", "propertyNames": map[string]any{"pattern": `^[A-Za-z_][A-Za-z0-9_]*$`}, "additionalProperties": map[string]any{"type": []any{"string", "number", "boolean"}}}),
			"inherit_env":        orTmpl(map[string]any{"type": "boolean", "default": true, "description": "start from the engine's environment (else only PATH)"}),
			"dir":                map[string]any{"type": "string", "minLength": 1, "description": "working directory"},
			"stdin":              orTmpl(map[string]any{"enum": []any{StdinEvent, StdinEvents, StdinNone}, "default": StdinEvent}),
			"success_exit_codes": codes,
			"retry_exit_codes":   codes,
			"output_limit": orTmpl(map[string]any{
				"description": "bytes of output kept (head and tail), e.g. 65536 or \"64KiB\"",
				"anyOf": []any{
					map[string]any{"type": "integer", "minimum": 1, "maximum": MaxOutputLimit},
					map[string]any{"type": "string", "pattern": `^\s*[0-9]+\s*([kKmM]i?[bB]?|[bB])?\s*$`},
				},
			}),
			"kill_grace": orTmpl(map[string]any{"type": "string", "description": "time between SIGTERM and SIGKILL of the process group, e.g. \"3s\""}),
			"timeout":    map[string]any{"description": "dispatcher policy: time limit of one attempt"},
			"retries":    map[string]any{"description": "dispatcher policy: retries of a retryable failure"},
			"delay":      map[string]any{"description": "dispatcher policy: first backoff"},
			"max_delay":  map[string]any{"description": "dispatcher policy: longest backoff"},
			"lock":       map[string]any{"description": "dispatcher policy: mutual exclusion key"},
		},
	}
}
