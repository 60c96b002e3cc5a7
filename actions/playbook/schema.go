package playbook

import "github.com/rulebook-dev/rulebook/actions/internal/argvalue"

// PlaybookSchema returns the JSON Schema (draft 2020-12) of run_playbook's
// arguments, as the loader sees them before rendering.
func PlaybookSchema() map[string]any { return schema(ModePlaybook) }

// ModuleSchema returns the JSON Schema of run_module's arguments.
func ModuleSchema() map[string]any { return schema(ModeModule) }

func schema(mode Mode) map[string]any {
	orTmpl := argvalue.OrTemplate
	props := map[string]any{
		"inventory":  map[string]any{"type": "string", "minLength": 1, "description": "inventory path, or an inline host list \"web1,web2,\"; default: the hosts of the matched events inline"},
		"extra_vars": orTmpl(map[string]any{"type": "object", "not": map[string]any{"required": []any{"ansible_eda"}}, "description": "variables passed with -e @file; strings are !unsafe (never templated by Ansible)"}),
		"limit": map[string]any{
			"description": "host pattern or list of hosts; default: meta.hosts of the matched events, else the ruleset's hosts",
			"anyOf": []any{
				map[string]any{"type": "string", "minLength": 1},
				map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "minLength": 1}},
			},
		},
		"verbosity":    orTmpl(map[string]any{"type": "integer", "minimum": 0, "maximum": 4, "default": 0}),
		"check":        orTmpl(map[string]any{"type": "boolean", "default": false, "description": "--check mode"}),
		"connection":   map[string]any{"type": "string", "description": "connection plugin (-c), e.g. local"},
		"output_limit": argvalue.SizeSchema(MaxOutputLimit, "bytes of output kept (head and tail); default 64KiB"),
		"kill_grace":   map[string]any{"type": "string", "description": "time between SIGTERM and SIGKILL when the timeout ends the run, e.g. \"3s\""},
		"retries":      map[string]any{"description": "dispatcher policy: retries of a retryable failure (unreachable hosts, timeout)"},
		"var_root": map[string]any{
			"description": "EDA's var_root, applied by the engine: a key path (kafka.message) whose value, a mapping, replaces the matched event in ansible_eda.event and in templates; or a mapping of key paths to names, each multi-event match holding one adding it to ansible_eda.events under that name",
			"anyOf": []any{
				map[string]any{"type": "string", "minLength": 1},
				map[string]any{"type": "object", "minProperties": 1, "additionalProperties": map[string]any{"type": "string", "minLength": 1}},
			},
		},
	}
	if mode == ModeModule {
		props["name"] = map[string]any{"type": "string", "minLength": 1, "description": "module name, e.g. ansible.builtin.service"}
		props["module_args"] = map[string]any{"type": []any{"object", "string"}, "description": "module arguments: a map, or a free-form string for command, shell, raw and script"}
		return argvalue.ObjectSchema(ModuleType, "Run one Ansible module ad hoc (ansible -m).", props, "name")
	}
	props["name"] = map[string]any{"type": "string", "minLength": 1, "description": "playbook path, or a collection playbook ns.collection.playbook"}
	props["set_facts"] = orTmpl(map[string]any{"type": "boolean", "default": false, "description": "feed the playbook's set_stats data back as facts"})
	props["post_events"] = orTmpl(map[string]any{"type": "boolean", "default": false, "description": "feed the playbook's set_stats data back as events"})
	return argvalue.ObjectSchema(PlaybookType, "Run an Ansible playbook; the matched events are ansible_eda.event and ansible_eda.events.", props, "name")
}
