package kafka

import "github.com/rulebook-dev/rulebook/kafkaconn"

// Schema returns the JSON Schema (draft 2020-12) of the kafka source's
// arguments. A string holding a secret reference (${env:...}) is checked
// once resolved, so formats are advisory where one may appear.
func Schema() map[string]any {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	list := kafkaconn.StringListSchema
	dur := func(desc string) map[string]any {
		return map[string]any{"description": desc, "anyOf": []any{
			map[string]any{"type": "string", "pattern": `^\s*([0-9]*\.?[0-9]+(ns|us|µs|ms|s|m|h))+\s*$|\$\{`},
			map[string]any{"type": "number", "exclusiveMinimum": 0},
		}}
	}
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                Type,
		"description":          "Consume Kafka topics in a consumer group, at least once: an offset is committed only once the event is durable. Undecodable messages become rejected events (and go to dead_letter_topic).",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"brokers"},
		"oneOf": []any{
			map[string]any{"required": []any{"topic"}},
			map[string]any{"required": []any{"topics"}},
			map[string]any{"required": []any{"topic_pattern"}},
		},
		"properties": map[string]any{
			"brokers":                kafkaconn.BrokersSchema(),
			"topic":                  map[string]any{"type": "string", "minLength": 1, "description": "the topic to consume"},
			"topics":                 list("topics to consume, a list or comma-separated"),
			"topic_pattern":          map[string]any{"type": "string", "minLength": 1, "description": "regular expression (Go syntax): consume every matching topic, refreshed every topic_refresh_interval"},
			"group_id":               str("consumer group (default rulebook.<ruleset>.<source name>)"),
			"offset":                 map[string]any{"description": "where a new group starts", "default": "earliest", "anyOf": []any{map[string]any{"enum": []any{"earliest", "latest"}}, map[string]any{"type": "string", "pattern": `\$\{`}}},
			"format":                 map[string]any{"description": "how a value becomes event.body", "default": "json", "anyOf": []any{map[string]any{"enum": []any{"json", "text"}}, map[string]any{"type": "string", "pattern": `\$\{`}}},
			"dead_letter_topic":      str("where undecodable messages are forwarded, with rulebook-reject-reason and rulebook-origin-* headers"),
			"dedupe":                 map[string]any{"type": "boolean", "default": true, "description": "DedupeKey topic/partition/offset, so a replay is not processed twice"},
			"tls":                    kafkaconn.TLSSchema(),
			"sasl":                   kafkaconn.SASLSchema(map[string]any{"type": "string", "pattern": `\$\{`}),
			"session_timeout":        dur("consumer group session timeout (default 30s)"),
			"rebalance_timeout":      dur("consumer group rebalance timeout (default 30s)"),
			"heartbeat_interval":     dur("shorter than session_timeout (default 3s)"),
			"join_group_backoff":     dur("wait before joining the group again after an error (default 2s)"),
			"commit_interval":        dur("how often durable offsets are committed (default 1s)"),
			"max_wait":               dur("longest wait of one fetch (default 500ms)"),
			"topic_refresh_interval": dur("how often topic_pattern and partition counts are refreshed (default 30s)"),
			"lag_log_interval":       dur("how often the consumer lag is logged (default 30s)"),
			"retry_backoff":          dur("first wait before retrying a failed delivery (default 100ms)"),
			"max_retry_backoff":      dur("longest wait between delivery retries (default 5s)"),
			"batch_size":             map[string]any{"type": "integer", "minimum": 1, "maximum": 100000, "default": 256, "description": "events per Emit"},
		},
	}
}
