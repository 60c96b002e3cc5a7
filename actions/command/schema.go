package command

import "github.com/rulebook-dev/rulebook/actions/internal/argvalue"

// Schema returns the JSON Schema (draft 2020-12) of run_command's arguments,
// as the loader sees them: before rendering, so "{{ ... }}" strings are
// allowed wherever a rendered value could be valid.
func Schema() map[string]any {
	orTmpl := argvalue.OrTemplate
	codes := orTmpl(map[string]any{
		"type":  "array",
		"items": orTmpl(map[string]any{"type": "integer", "minimum": 0, "maximum": 255}),
	})
	return argvalue.ObjectSchema(Type, "Run a program with an argv list; no shell unless shell: true.",
		map[string]any{
			"argv": map[string]any{
				"description": "the program and its arguments, each templated separately; with shell: true one string run by /bin/sh -c",
				"anyOf": []any{
					map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string"}},
					map[string]any{"type": "string", "minLength": 1},
				},
			},
			"shell": orTmpl(map[string]any{"type": "boolean", "default": false, "description": "run argv (one string) with /bin/sh -c; never insert event data into it, pass it in args or env"}),
			"args": orTmpl(map[string]any{"type": "array", "items": map[string]any{"type": "string"},
				"description": "with shell: true, the script's positional arguments $1, $2, ... (each templated on its own; the safe way to give event data to a shell)"}),
			"env":                orTmpl(map[string]any{"type": "object", "propertyNames": map[string]any{"pattern": `^[A-Za-z_][A-Za-z0-9_]*$`}, "additionalProperties": map[string]any{"type": []any{"string", "number", "boolean"}}}),
			"inherit_env":        orTmpl(map[string]any{"type": "boolean", "default": true, "description": "start from the engine's environment (else only PATH)"}),
			"dir":                map[string]any{"type": "string", "minLength": 1, "description": "working directory"},
			"stdin":              orTmpl(map[string]any{"enum": []any{StdinEvent, StdinEvents, StdinNone}, "default": StdinEvent}),
			"success_exit_codes": codes,
			"retry_exit_codes":   codes,
			"output_limit":       argvalue.SizeSchema(MaxOutputLimit, "bytes of output kept (head and tail), e.g. 65536 or \"64KiB\""),
			"kill_grace":         orTmpl(map[string]any{"type": "string", "description": "time between SIGTERM and SIGKILL of the process group, e.g. \"3s\""}),
		}, "argv")
}
