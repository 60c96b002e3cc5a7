package awx

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/rulebook-dev/rulebook/actions/internal/argvalue"
	"github.com/rulebook-dev/rulebook/engine"
)

// config is one invocation's arguments, EDA's names.
type config struct {
	name          string
	organization  string
	jobArgs       map[string]any
	limit         string
	limitSet      bool
	setFacts      bool
	postEvents    bool
	ruleset       string
	includeEvents bool
}

var knownKeys = []string{"name", "organization", "job_args", "set_facts", "post_events", "ruleset", "include_events"}

// Check validates the arguments of run_job_template and
// run_workflow_template before rendering.
func Check(args map[string]any) error {
	_, err := parse(args, true)
	return err
}

func parse(args map[string]any, check bool) (config, error) {
	cfg := config{includeEvents: true}
	isKnown := map[string]bool{}
	for _, k := range knownKeys {
		isKnown[k] = true
	}
	for _, k := range argvalue.SortedKeys(args) {
		v, p := args[k], []string{k}
		var err error
		switch {
		case k == "retry":
			err = engine.ArgErrorf(p, "is not supported: write retries: 1 (and delay: SECONDS) instead")
		case argvalue.IsPolicyKey(k):
			// retries, delay, timeout ...: the dispatcher's.
		case !isKnown[k]:
			err = engine.ArgErrorf(p, "unknown key (known: %s, and retries, delay, timeout)", strings.Join(knownKeys, ", "))
		case k == "name" || k == "organization" || k == "ruleset":
			var s string
			s, err = argvalue.String(p, v, check)
			if err == nil && strings.TrimSpace(s) == "" {
				err = engine.ArgErrorf(p, "must not be empty")
			}
			switch k {
			case "name":
				cfg.name = s
			case "organization":
				cfg.organization = s
			case "ruleset":
				cfg.ruleset = s
			}
		case k == "job_args":
			err = cfg.parseJobArgs(v, check)
		case k == "set_facts":
			cfg.setFacts, err = argvalue.Bool(p, v, check)
		case k == "post_events":
			cfg.postEvents, err = argvalue.Bool(p, v, check)
		case k == "include_events":
			cfg.includeEvents, err = argvalue.Bool(p, v, check)
		}
		if err != nil {
			return cfg, err
		}
	}
	if _, ok := args["name"]; !ok {
		return cfg, engine.ArgErrorf([]string{"name"}, "is required: the template's name on the controller")
	}
	if _, ok := args["organization"]; !ok {
		return cfg, engine.ArgErrorf([]string{"organization"}, "is required: the organization the template belongs to")
	}
	return cfg, nil
}

// parseJobArgs reads job_args: the body of the launch request. extra_vars
// must be a map (ansible_eda is rulebook's) and limit a pattern or a list of
// hosts; any other launch field (inventory, job_tags, scm_branch ...) goes
// to the controller as it is.
func (cfg *config) parseJobArgs(v any, check bool) error {
	p := []string{"job_args"}
	if s, ok := v.(string); ok && check && engine.IsTemplate(s) {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return engine.ArgErrorf(p, "must be a map of launch fields (extra_vars, limit, ...), got %s", engine.TypeName(v))
	}
	cfg.jobArgs = make(map[string]any, len(m))
	for _, k := range argvalue.SortedKeys(m) {
		val, kp := m[k], argvalue.AppendPath(p, k)
		switch k {
		case "extra_vars":
			if s, ok := val.(string); ok && check && engine.IsTemplate(s) {
				break
			}
			ev, ok := val.(map[string]any)
			if !ok {
				return engine.ArgErrorf(kp, "must be a map of variables, got %s", engine.TypeName(val))
			}
			if _, ok := ev["ansible_eda"]; ok {
				return engine.ArgErrorf(argvalue.AppendPath(kp, "ansible_eda"), "is set by rulebook to the matched events and cannot be given")
			}
		case "limit":
			l, err := parseLimit(kp, val, check)
			if err != nil {
				return err
			}
			cfg.limit, cfg.limitSet = l, true
			continue
		}
		cfg.jobArgs[k] = val
	}
	return nil
}

// parseLimit reads a limit as EDA does: a pattern, or a list joined with
// commas.
func parseLimit(p []string, v any, check bool) (string, error) {
	switch x := v.(type) {
	case string:
		if strings.TrimSpace(x) == "" {
			return "", engine.ArgErrorf(p, "must not be empty")
		}
		return x, nil
	case []any:
		parts := make([]string, 0, len(x))
		for i, e := range x {
			s, err := argvalue.String(argvalue.AppendPath(p, fmt.Sprint(i)), e, check)
			if err != nil {
				return "", err
			}
			if strings.TrimSpace(s) == "" {
				return "", engine.ArgErrorf(argvalue.AppendPath(p, fmt.Sprint(i)), "must not be empty")
			}
			parts = append(parts, s)
		}
		if len(parts) == 0 {
			return "", engine.ArgErrorf(p, "must not be empty")
		}
		return strings.Join(parts, ","), nil
	}
	return "", engine.ArgErrorf(p, "must be a host pattern or a list of hosts, got %s", engine.TypeName(v))
}

// plainHost matches a host name or address that is not an Ansible pattern.
var plainHost = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$|^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$`)

// limitFor works out the launch's limit as EDA does: job_args.limit, else
// the hosts of the matched events (meta.hosts), else the ruleset's hosts.
// Hosts from events come from outside, so they must be host names, not
// patterns ("all", "*", "!prod").
func (cfg *config) limitFor(inv *engine.Invocation) (string, error) {
	if cfg.limitSet {
		return cfg.limit, nil
	}
	if len(inv.Hosts) > 0 {
		for _, h := range inv.Hosts {
			if !plainHost.MatchString(h) || h == "all" || h == "ungrouped" {
				return "", fmt.Errorf("meta.hosts: %q is not a host name", h)
			}
		}
		return strings.Join(inv.Hosts, ","), nil
	}
	return inv.HostPattern, nil
}

// Schema returns the JSON Schema of the arguments of both actions.
func Schema(typ, description string) map[string]any {
	orTmpl := argvalue.OrTemplate
	props := map[string]any{
		"name":         map[string]any{"type": "string", "minLength": 1, "description": "the template's name on the controller"},
		"organization": map[string]any{"type": "string", "minLength": 1, "description": "the organization the template belongs to"},
		"job_args": orTmpl(map[string]any{
			"type":        "object",
			"description": "the launch request's fields: extra_vars, limit, and any other the template prompts for",
			"properties": map[string]any{
				"extra_vars": orTmpl(map[string]any{"type": "object", "not": map[string]any{"required": []any{"ansible_eda"}}, "description": "variables of the job; rulebook adds ansible_eda (ruleset, rule, event or events)"}),
				"limit": map[string]any{
					"description": "host pattern or list of hosts; default: meta.hosts of the matched events, else the ruleset's hosts",
					"anyOf": []any{
						map[string]any{"type": "string", "minLength": 1},
						map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "minLength": 1}},
					},
				},
			},
		}),
		"set_facts":      orTmpl(map[string]any{"type": "boolean", "default": false, "description": "feed the job's artifacts (set_stats) back as a fact"}),
		"post_events":    orTmpl(map[string]any{"type": "boolean", "default": false, "description": "feed the job's artifacts (set_stats) back as an event"}),
		"ruleset":        map[string]any{"type": "string", "minLength": 1, "description": "the ruleset the artifacts go to; default: this rule's"},
		"include_events": orTmpl(map[string]any{"type": "boolean", "default": true, "description": "send the matched events in extra_vars.ansible_eda"}),
		"retries":        map[string]any{"description": "dispatcher policy: relaunches of a failed job (and of controller errors)"},
		"delay":          map[string]any{"description": "dispatcher policy: first wait before a relaunch, seconds or a duration"},
	}
	return argvalue.ObjectSchema(typ, description, props, "name", "organization")
}
