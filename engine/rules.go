package engine

import (
	"sort"
	"time"
)

// Ruleset is a compiled ruleset, ready to run. The rulebooks package builds
// it from YAML; nothing in it is re-parsed at run time.
type Ruleset struct {
	Name string
	// Hosts is the default host pattern for actions (`hosts:`).
	Hosts string
	Vars  map[string]any
	// MatchMultiple lets every matching rule see an event; by default the
	// first rule that fires consumes it.
	MatchMultiple bool
	// DefaultEventsTTL bounds how long partial matches of multi-event rules
	// are kept.
	DefaultEventsTTL time.Duration
	// Sequential (execution_strategy: sequential) makes firings of this
	// ruleset run their actions one firing at a time.
	Sequential bool
	Sources    []SourceConfig
	Rules      []*Rule
}

// RuleKind is how a rule's conditions combine.
type RuleKind int

const (
	// Single: one condition.
	Single RuleKind = iota
	// All: every condition matched by some event, within the timeout.
	All
	// Any: one of the conditions.
	Any
	// NotAll: fires when, once a condition matched, not all of them matched
	// within the timeout.
	NotAll
)

func (k RuleKind) String() string {
	return [...]string{"condition", "all", "any", "not_all"}[k]
}

// Rule is one compiled rule.
type Rule struct {
	Name string
	// Fingerprint identifies the rule's definition together with the
	// ruleset settings it depends on; a reload keeps the state (partial
	// matches, throttle windows) of a rule whose fingerprint did not change.
	Fingerprint string
	Enabled     bool
	Kind        RuleKind
	// Conditions in order; Names[i] is how later conditions and templates
	// refer to the event that matched Conditions[i] (events.m_0, or the name
	// given with `events.name << ...`).
	Conditions []*Condition
	Names      []string
	// Timeout of all / not_all; zero means the ruleset's DefaultEventsTTL
	// for all.
	Timeout  time.Duration
	Throttle *Throttle
	Actions  []*ActionDef
	// Mode is ModeAuto, ModeShadow or ModeApprove (empty: auto); the
	// dispatcher applies it to the rule's dispatched actions.
	Mode string
	// Approval is set when Mode is ModeApprove.
	Approval *ApprovalPolicy
}

// DefaultApprovalTimeout is how long an approve-mode invocation waits
// when the rulebook does not say.
const DefaultApprovalTimeout = 30 * time.Minute

// ApprovalPolicy is how approve-mode invocations of a rule wait.
type ApprovalPolicy struct {
	Timeout time.Duration `json:"timeout"`
	// OnTimeout is DecisionApproved or DecisionRejected.
	OnTimeout string `json:"on_timeout"`
	// Notify, when set, is the action run when an invocation starts
	// waiting; its templates see vars.approval (ApprovalVars).
	Notify *ActionDef `json:"-"`
}

// ApprovalVars are the values a notify action's templates see as
// vars.approval: how to decide the waiting invocation.
func ApprovalVars(id, approveCmd, rejectCmd, url string) map[string]any {
	return map[string]any{"id": id, "approve_command": approveCmd, "reject_command": rejectCmd, "url": url}
}

// ThrottleKind selects how a throttle limits firings.
type ThrottleKind int

const (
	// OnceWithin: fire on the first match, then stay quiet for the window.
	OnceWithin ThrottleKind = iota
	// OnceAfter: open a window on the first match and fire once when it
	// ends, with one event per group matched in it (the newest); with
	// PerGroup, a window per group.
	OnceAfter
	// AccumulateWithin: fire when Threshold matches of a group fall within
	// the window that the group's first match opened; with Sliding, within
	// any window of that length.
	AccumulateWithin
)

// Throttle limits a rule's firings per group of GroupBy values (once_after:
// per rule, unless PerGroup).
type Throttle struct {
	Kind      ThrottleKind
	Window    time.Duration
	Threshold int
	// GroupBy are templates rendered against the matched event; their values
	// form the group key.
	GroupBy []*Template
	// PerGroup (once_after) keeps a window per group instead of one for
	// the rule.
	PerGroup bool
	// Sliding (accumulate_within) counts the matches in the window that
	// ends at each match instead of the window opened by the first.
	Sliding bool
}

// ActionDef is one compiled action of a rule.
type ActionDef struct {
	// Type is the action's key (`run_playbook`, `debug`, `ticket.open`).
	Type string
	Args *Template
	// Policy holds the static policy; Lock, when set, is rendered per firing.
	Policy Policy
	Lock   *Template
	// Pos is "file:line:col" of the action, for messages.
	Pos string
	// VarRoot is EDA's var_root (print_event, run_playbook, run_module):
	// the matched events handed to the action, and seen by its templates,
	// are replaced by what they hold at a key path (ApplyVarRoot).
	VarRoot []VarRoot
}

// VarRoot is one entry of var_root: a key path (`kafka.message`) and the
// name its value takes among the events of a multi-event match. A plain
// string var_root is one entry named by the path itself.
type VarRoot struct {
	Path []string
	Name string
}

// ApplyVarRoot does what ansible-rulebook does with var_root. A single
// event match (single is true) has its event replaced by the value at the
// first entry's path it holds, a mapping that is not empty. In a
// multi-event match, each event that holds such a value at an entry's path
// adds it to events under the entry's name (the first entry it holds);
// the events keep their own names too. Neither input is changed.
func ApplyVarRoot(roots []VarRoot, single bool, event Event, events map[string]Event) (Event, map[string]Event) {
	if len(roots) == 0 {
		return event, events
	}
	at := func(ev Event, path []string) (Event, bool) {
		keys := make([]any, len(path))
		for i, k := range path {
			keys[i] = k
		}
		v, ok := lookup(map[string]any(ev), keys)
		m, isMap := v.(map[string]any)
		return m, ok && isMap && len(m) > 0
	}
	if single {
		for _, r := range roots {
			if v, ok := at(event, r.Path); ok {
				out := make(map[string]Event, len(events))
				for k := range events { // the one match's name
					out[k] = v
				}
				return v, out
			}
		}
		return event, events
	}
	out := make(map[string]Event, len(events))
	names := make([]string, 0, len(events))
	for k, v := range events {
		out[k] = v
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, r := range roots {
			if v, ok := at(events[k], r.Path); ok {
				out[r.Name] = v
				break
			}
		}
	}
	return event, out
}

// Engine-handled action types.
const (
	ActionDebug       = "debug"
	ActionPrintEvent  = "print_event"
	ActionSetFact     = "set_fact"
	ActionRetractFact = "retract_fact"
	ActionPostEvent   = "post_event"
	ActionShutdown    = "shutdown"
	ActionNone        = "none"
)

// BuiltinActions lists the actions the engine handles itself.
var BuiltinActions = []string{ActionDebug, ActionPrintEvent, ActionSetFact, ActionRetractFact, ActionPostEvent, ActionShutdown, ActionNone}

// IsBuiltinAction reports whether the engine itself handles typ.
func IsBuiltinAction(typ string) bool {
	for _, b := range BuiltinActions {
		if b == typ {
			return true
		}
	}
	return false
}
