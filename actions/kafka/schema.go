package kafka

import "github.com/rulebook-dev/rulebook/kafkaconn"

// Schema returns the JSON Schema (draft 2020-12) of the kafka action's
// arguments, as the loader sees them before rendering.
func Schema() map[string]any {
	orTmpl := func(s map[string]any) map[string]any {
		return map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/$defs/template"}}}
	}
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                Type,
		"description":          "Produce one message to a Kafka topic with acks=all. Broker and network errors are retryable; invalid arguments, a message too large and authorization failures are not. The invocation ID is sent as header rulebook-invocation-id.",
		"type":                 "object",
		"required":             []any{"brokers", "topic", "value"},
		"additionalProperties": false,
		"$defs":                map[string]any{"template": map[string]any{"type": "string", "pattern": `\{\{|\$\{`}},
		"properties": map[string]any{
			"brokers":   kafkaconn.BrokersSchema(),
			"topic":     map[string]any{"type": "string", "minLength": 1, "description": "letters, digits, '.', '_', '-' (or a template)"},
			"key":       map[string]any{"type": []any{"string", "number", "boolean", "null"}, "description": "the message key; equal keys go to one partition (murmur2, as the Java client)"},
			"value":     map[string]any{"description": "a mapping or list is sent as JSON, a string as is"},
			"headers":   orTmpl(map[string]any{"type": "object", "additionalProperties": map[string]any{"type": []any{"string", "number", "boolean"}}}),
			"tls":       kafkaconn.TLSSchema(),
			"sasl":      kafkaconn.SASLSchema(map[string]any{"$ref": "#/$defs/template"}),
			"timeout":   map[string]any{"description": "dispatcher policy: time limit of one attempt"},
			"retries":   map[string]any{"description": "dispatcher policy: retries of a retryable failure"},
			"delay":     map[string]any{"description": "dispatcher policy: first backoff"},
			"max_delay": map[string]any{"description": "dispatcher policy: longest backoff"},
			"lock":      map[string]any{"description": "dispatcher policy: mutual exclusion key"},
		},
	}
}
