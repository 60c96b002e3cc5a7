// Package rulebooks reads rulebooks: YAML lists of rulesets shaped like
// ansible-rulebook's. It decodes into yaml.Node first so that every error
// names FILE:LINE:COL, rejects unknown keys, checks cross-references, compiles
// every condition and template, and returns engine.Ruleset values ready to
// run. The Go types in this file are the format's single definition: the
// loader takes its allowed keys from them and the JSON Schema is generated
// from them.
package rulebooks

// RulesetSpec is one ruleset of a rulebook.
type RulesetSpec struct {
	Name               string         `json:"name" jsonschema:"required,minLength=1,description=Unique name of the ruleset."`
	Hosts              string         `json:"hosts,omitempty" jsonschema:"description=Default host pattern for actions (used when the matched events carry no meta.hosts)."`
	Vars               map[string]any `json:"vars,omitempty" jsonschema:"description=Variables conditions and templates read as vars; merged with --vars FILE and --env-vars."`
	MatchMultipleRules bool           `json:"match_multiple_rules,omitempty" jsonschema:"description=Let every matching rule see an event; by default the first rule that matches consumes it."`
	DefaultEventsTTL   string         `json:"default_events_ttl,omitempty" jsonschema:"description=How long partial matches of multi-event rules are kept (e.g. 2h).,default=2h"`
	ExecutionStrategy  string         `json:"execution_strategy,omitempty" jsonschema:"enum=sequential,enum=parallel,default=sequential,description=sequential: firings of this ruleset run their actions one firing at a time; parallel: concurrently."`
	GatherFacts        bool           `json:"gather_facts,omitempty" jsonschema:"description=Accepted for ansible-rulebook compatibility; has no effect."`
	Defaults           *DefaultsSpec  `json:"defaults,omitempty" jsonschema:"description=Policy applied to every action of the ruleset unless the action sets its own."`
	Mode               string         `json:"mode,omitempty" jsonschema:"enum=auto,enum=shadow,enum=approve,default=auto,description=Default mode of the ruleset's rules: auto runs actions; shadow records them (rendered) without running them; approve makes each wait for a person's approval."`
	Approval           *ApprovalSpec  `json:"approval,omitempty" jsonschema:"description=Default approval settings of the ruleset's approve-mode rules."`
	Plugins            []PluginSpec   `json:"plugins,omitempty" jsonschema:"description=Action plugins this ruleset needs, by path; with sha256 a mismatching file is refused."`
	Sources            []SourceSpec   `json:"sources" jsonschema:"required,description=Event sources feeding this ruleset."`
	Rules              []RuleSpec     `json:"rules" jsonschema:"required,description=Rules evaluated in order for every event."`
}

// PluginSpec declares an action plugin executable.
type PluginSpec struct {
	Name   string `json:"name,omitempty" yaml:"name" jsonschema:"description=Plugin name (default: from the file name rulebook-plugin-NAME)."`
	Path   string `json:"path" yaml:"path" jsonschema:"required,description=Executable, relative to the rulebook's directory."`
	SHA256 string `json:"sha256,omitempty" yaml:"sha256" jsonschema:"pattern=^[0-9a-fA-F]{64}$,description=Expected SHA-256 of the executable, hex."`
}

// DefaultsSpec holds the action policy defaults of a ruleset.
type DefaultsSpec struct {
	Timeout  string `json:"timeout,omitempty" jsonschema:"description=Time limit of one attempt (e.g. 5m)."`
	Retries  int    `json:"retries,omitempty" jsonschema:"minimum=0,description=How often a retryable failure is tried again."`
	Delay    string `json:"delay,omitempty" jsonschema:"description=First backoff delay; doubles per retry with jitter."`
	MaxDelay string `json:"max_delay,omitempty" jsonschema:"description=Upper bound of the backoff delay."`
}

// SourceSpec is one source entry: an optional name and exactly one source
// type key whose value holds the source's arguments (e.g. `range: {limit: 5}`).
// The type keys are listed in the schema's sourceTypes.
type SourceSpec struct {
	Name string `json:"name,omitempty" jsonschema:"description=Name of the source (default: its type); events carry it as meta.source.name."`
}

// RuleSpec is one rule.
type RuleSpec struct {
	Name      string        `json:"name" jsonschema:"required,minLength=1,description=Unique name within the ruleset."`
	Condition any           `json:"condition" jsonschema:"required,description=An expression over event/events/fact/facts/vars or a mapping with all/any/not_all (and timeout)."`
	Enabled   *bool         `json:"enabled,omitempty" jsonschema:"default=true"`
	Throttle  *ThrottleSpec `json:"throttle,omitempty"`
	Mode      string        `json:"mode,omitempty" jsonschema:"enum=auto,enum=shadow,enum=approve,description=auto (default: the ruleset's mode) runs the rule's dispatched actions; shadow records them with rendered arguments as shadowed and runs none; approve makes each wait as pending_approval until approved, rejected or expired."`
	Approval  *ApprovalSpec `json:"approval,omitempty" jsonschema:"description=How long an approve-mode invocation waits, and what its expiry decides."`
	Action    any           `json:"action,omitempty" jsonschema:"description=A single action (use actions for several)."`
	Actions   []any         `json:"actions,omitempty" jsonschema:"description=Actions run in order when the rule fires."`
}

// ConditionSpec is the mapping form of a condition.
type ConditionSpec struct {
	All     []string `json:"all,omitempty" jsonschema:"description=Every condition must be matched by some event within the timeout."`
	Any     []string `json:"any,omitempty" jsonschema:"description=One of the conditions."`
	NotAll  []string `json:"not_all,omitempty" jsonschema:"description=Fires when, after one condition matched, not all of them matched within the timeout."`
	Timeout string   `json:"timeout,omitempty" jsonschema:"description=Window of all/not_all (e.g. 10m or 10 minutes)."`
}

// ApprovalSpec configures the wait of approve-mode invocations.
type ApprovalSpec struct {
	Timeout   string `json:"timeout,omitempty" jsonschema:"description=How long an invocation waits for a decision (e.g. 30m).,default=30m"`
	OnTimeout string `json:"on_timeout,omitempty" jsonschema:"enum=reject,enum=approve,default=reject,description=What an expiry decides."`
	Notify    any    `json:"notify,omitempty" jsonschema:"description=An action run when an invocation starts waiting (e.g. an http call to a chat webhook); its templates also see vars.approval.id / approve_command / reject_command / url."`
}

// ThrottleSpec limits how often a rule fires, per group.
type ThrottleSpec struct {
	OnceWithin       string   `json:"once_within,omitempty" jsonschema:"description=Fire on the first match, then not again within this window."`
	OnceAfter        string   `json:"once_after,omitempty" jsonschema:"description=Fire once when this window after the first match ends."`
	AccumulateWithin string   `json:"accumulate_within,omitempty" jsonschema:"description=Fire when threshold matches fall within this window."`
	Threshold        int      `json:"threshold,omitempty" jsonschema:"minimum=1"`
	GroupBy          []string `json:"group_by,omitempty" jsonschema:"description=Expressions whose values form the throttle group (e.g. event.meta.hosts)."`
	// OnceAfterPerGroup and AccumulateSliding choose this engine's own
	// windows over Event-Driven Ansible's (the default).
	OnceAfterPerGroup bool     `json:"once_after_per_group,omitempty" jsonschema:"description=once_after: a window per group, each firing when it ends with its group's events (default: one window for the rule, firing once with one event per group seen, as in Event-Driven Ansible)."`
	AccumulateSliding bool     `json:"accumulate_sliding,omitempty" jsonschema:"description=accumulate_within: fire when threshold matches fall within any window of that length (default: the window opens at a group's first match and does not slide, as in Event-Driven Ansible)."`
	GroupByAttributes []string `json:"group_by_attributes,omitempty" jsonschema:"description=ansible-rulebook's name of group_by."`
}

// PolicySpec are the keys every dispatched action accepts beside its own.
type PolicySpec struct {
	Timeout  string `json:"timeout,omitempty" jsonschema:"description=Time limit of one attempt."`
	Retries  int    `json:"retries,omitempty" jsonschema:"minimum=0"`
	Delay    string `json:"delay,omitempty"`
	MaxDelay string `json:"max_delay,omitempty"`
	Lock     string `json:"lock,omitempty" jsonschema:"description=A key no two running invocations share: literal text or a template (e.g. {{ event.meta.hosts[0] }})."`
}
