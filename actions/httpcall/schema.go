package httpcall

import (
	"strings"

	"github.com/rulebook-dev/rulebook/actions/internal/argvalue"
)

// Schema returns the JSON Schema (draft 2020-12) of the http action's
// arguments, as the loader sees them before rendering.
func Schema() map[string]any {
	orTmpl := argvalue.OrTemplate
	s := argvalue.ObjectSchema(Type, "Send an HTTP request. 5xx, 429 (Retry-After honoured) and connection errors are retryable; other 4xx are not. The invocation ID is sent as Idempotency-Key unless headers set it.",
		map[string]any{
			"method":   methodSchema(),
			"url":      map[string]any{"type": "string", "description": "http:// or https:// URL"},
			"headers":  orTmpl(map[string]any{"type": "object", "additionalProperties": map[string]any{"type": []any{"string", "number", "boolean"}}}),
			"body":     orTmpl(map[string]any{"type": []any{"object", "array"}, "description": "sent as JSON with Content-Type application/json"}),
			"raw_body": map[string]any{"type": "string", "description": "sent as is"},
			"tls": map[string]any{
				"type":                 "object",
				"additionalProperties": false,
				"dependentRequired":    map[string]any{"cert": []any{"key"}, "key": []any{"cert"}},
				"properties": map[string]any{
					"ca":                   map[string]any{"type": "string", "description": "PEM file of the CAs to trust instead of the system's"},
					"cert":                 map[string]any{"type": "string", "description": "PEM client certificate"},
					"key":                  map[string]any{"type": "string", "description": "PEM client key"},
					"insecure_skip_verify": orTmpl(map[string]any{"type": "boolean", "default": false}),
				},
			},
			"expect_status": orTmpl(map[string]any{
				"type": "array", "minItems": 1,
				"items":       orTmpl(map[string]any{"type": "integer", "minimum": 100, "maximum": 599}),
				"description": "statuses that count as success (default: any 2xx)",
			}),
			"output_limit": argvalue.SizeSchema(MaxOutputLimit, "bytes of the response body kept; default 64KiB"),
		}, "url")
	s["not"] = map[string]any{"required": []any{"body", "raw_body"}}
	return s
}

// methodSchema accepts the Methods in any case (the action sends them
// upper-cased), or a template. JSON Schema patterns have no
// case-insensitive flag, so every letter is a class: "^([Gg][Ee][Tt]|...)$".
func methodSchema() map[string]any {
	alts := make([]string, len(Methods))
	for i, m := range Methods {
		var b strings.Builder
		for _, r := range m {
			b.WriteString("[" + string(r) + strings.ToLower(string(r)) + "]")
		}
		alts[i] = b.String()
	}
	return argvalue.OrTemplate(map[string]any{"type": "string", "default": "POST", "pattern": "^(" + strings.Join(alts, "|") + ")$"})
}
