package kafkaconn

func str(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }

// StringListSchema is the schema of an argument that StringList decodes:
// one non-empty string or a non-empty list of strings.
func StringListSchema(desc string) map[string]any {
	return map[string]any{"description": desc, "anyOf": []any{
		map[string]any{"type": "string", "minLength": 1},
		map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string"}},
	}}
}

// BrokersSchema is the schema of the brokers argument.
func BrokersSchema() map[string]any {
	return StringListSchema("host:port of one or more brokers, a list or comma-separated")
}

// TLSSchema is the schema of the tls argument.
func TLSSchema() map[string]any {
	return map[string]any{"anyOf": []any{
		map[string]any{"type": "boolean"},
		map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"dependentRequired":    map[string]any{"cert": []any{"key"}, "key": []any{"cert"}},
			"properties": map[string]any{
				"ca":                   str("PEM file (or PEM text) of the CAs to trust instead of the system's"),
				"cert":                 str("PEM client certificate (file or text)"),
				"key":                  str("PEM client key (file or text)"),
				"insecure_skip_verify": map[string]any{"type": "boolean", "default": false},
			},
		},
	}}
}

// SASLSchema is the schema of the sasl argument. later is the schema of a
// mechanism known only later (a template or a secret reference).
func SASLSchema(later map[string]any) map[string]any {
	return map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"mechanism", "username"},
		"properties": map[string]any{
			"mechanism": map[string]any{"anyOf": []any{
				map[string]any{"enum": []any{"plain", "scram-sha-256", "scram-sha-512", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}},
				later,
			}},
			"username": map[string]any{"type": "string", "minLength": 1},
			"password": str("use a secret reference: ${env:NAME} or ${file:PATH}"),
		},
	}
}
