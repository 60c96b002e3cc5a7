package engine

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
)

// Explanation says, for one event, what each rule of a ruleset would do
// with it: the answer to "why did my rule not fire?".
type Explanation struct {
	Ruleset string `json:"ruleset"`
	// At is the time the throttles were judged at (the engine's clock).
	At    time.Time         `json:"at"`
	Rules []RuleExplanation `json:"rules"`
}

// What a rule would do with the event (RuleExplanation.Outcome).
const (
	// OutcomeDisabled: the rule is disabled; its condition is still shown.
	OutcomeDisabled = "disabled"
	// OutcomeNoMatch: its condition is false or unknown.
	OutcomeNoMatch = "no_match"
	// OutcomeFires: it matches and nothing stops it.
	OutcomeFires = "fires"
	// OutcomeSuppressed: it matches and its throttle keeps it from firing
	// (an open once_within window, an accumulate_within count below the
	// threshold).
	OutcomeSuppressed = "suppressed"
	// OutcomeHeld: it matches and its once_after window holds the match; the
	// rule fires when the window ends (WindowEnds).
	OutcomeHeld = "held"
	// OutcomeConsumed: an earlier rule matches the event and consumes it
	// (match_multiple_rules: false): this rule never sees it.
	OutcomeConsumed = "consumed"
	// OutcomeJoins: a multi-event rule (all, not_all) with a condition the
	// event satisfies: it may open, extend or complete a match, depending
	// on the rule's partial matches. Explain does not run the join.
	OutcomeJoins = "joins"
)

// RuleExplanation is one rule's part of an Explanation.
type RuleExplanation struct {
	Rule    string `json:"rule"`
	Kind    string `json:"kind"`
	Enabled bool   `json:"enabled"`
	// Match is the rule's condition result: true, false or unknown (a
	// field it reads is missing) for a single-condition or any rule; for
	// all and not_all, true when the event satisfies one of its conditions
	// (Satisfies), else false.
	Match      string            `json:"match"`
	Conditions []ConditionResult `json:"conditions"`
	// Satisfies lists, for all and not_all, the indexes of the conditions
	// the event satisfies on its own.
	Satisfies []int  `json:"satisfies,omitempty"`
	Outcome   string `json:"outcome"`
	// Detail says why, in words.
	Detail string `json:"detail,omitempty"`
	// ConsumedBy names the earlier rule that consumes the event.
	ConsumedBy string `json:"consumed_by,omitempty"`
	// Throttle is the rule's throttle kind; Group the event's group_by
	// values; WindowEnds when the throttle window that decides ends.
	Throttle   string    `json:"throttle,omitempty"`
	Group      []string  `json:"group,omitempty"`
	WindowEnds time.Time `json:"window_ends,omitzero"`
	// OpenMatches counts an all or not_all rule's partial matches now.
	OpenMatches int `json:"open_matches,omitempty"`
}

// ConditionResult is one condition's result for the event.
type ConditionResult struct {
	// Name is how later conditions refer to its match (m, m_0, ...).
	Name      string `json:"name"`
	Condition string `json:"condition"`
	// Result is true, false or unknown.
	Result string `json:"result"`
	// Missing names the fields the condition reads that the event lacks
	// when they make the result unknown (event.alert.labels.severity).
	Missing []string `json:"missing,omitempty"`
	// Error is a run-time error that made the result unknown (a string
	// compared with a number).
	Error string `json:"error,omitempty"`
	// ReadsMatches says the condition reads earlier matches (events.NAME,
	// facts.NAME): Result is that of the parts that do not, that is
	// whether the event may meet the condition with some earlier match.
	ReadsMatches bool `json:"reads_matches,omitempty"`
}

// Explain tells, for event, what every rule of ruleset would do with it
// now, given the engine's state (facts, throttle windows, partial matches),
// without changing that state: nothing fires, nothing is counted. An empty
// ruleset explains every ruleset. The event is taken as a source would
// send it; meta is added where it lacks one.
//
// It follows evaluate: rules in order, a match of a single-condition or
// any rule consumes the event unless the ruleset matches multiple rules,
// a matching rule's throttle decides on firing. One thing it does not do
// is join: for all and not_all it reports which conditions the event
// satisfies, not whether a partial match would complete (so neither does
// such a rule consume the event for the rules after it here).
func (e *Engine) Explain(ruleset string, event map[string]any) ([]Explanation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var sets []*rsState
	if ruleset == "" {
		sets = e.rulesets
	} else if s := e.byName[ruleset]; s != nil {
		sets = []*rsState{s}
	} else {
		return nil, fmt.Errorf("no ruleset named %q", ruleset)
	}
	now := e.now()
	data, _ := deepCopy(event).(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	meta := Meta(data)
	if meta[MetaUUID] == nil {
		meta[MetaUUID] = NewID()
	}
	if meta[MetaSource] == nil {
		meta[MetaSource] = map[string]any{"name": "explain", "type": "explain"}
	}
	if meta[MetaReceivedAt] == nil {
		meta[MetaReceivedAt] = now.UTC().Format(time.RFC3339Nano)
	}
	it := &item{id: EventID(data), data: data}
	out := make([]Explanation, 0, len(sets))
	for _, s := range sets {
		out = append(out, e.explainRuleset(s, it, now))
	}
	return out, nil
}

func (e *Engine) explainRuleset(s *rsState, it *item, now time.Time) Explanation {
	x := Explanation{Ruleset: s.rs.Name, At: now}
	consumer := ""
	for _, r := range s.rules {
		rule := r.rule
		re := RuleExplanation{Rule: rule.Name, Kind: rule.Kind.String(), Enabled: rule.Enabled,
			Throttle: throttleReason(rule.Throttle)}
		matched, name := false, ""
		switch rule.Kind {
		case Single, Any:
			re.Match = Unknown.String()
			anyUnknown := false
			for i, c := range rule.Conditions {
				e.st.bind(it.data, noBindings, e.vars(s))
				cr := explainCondition(e.st, c.root)
				cr.Name, cr.Condition = rule.Names[i], c.Source
				re.Conditions = append(re.Conditions, cr)
				switch cr.Result {
				case "true":
					if !matched {
						matched, name = true, rule.Names[i]
					}
				case "unknown":
					anyUnknown = true
				}
			}
			switch {
			case matched:
				re.Match = True.String()
			case !anyUnknown:
				re.Match = False.String()
			}
		case All, NotAll:
			for i, c := range rule.Conditions {
				e.st.bind(it.data, noBindings, e.vars(s))
				var cr ConditionResult
				if c.unbound {
					cr = explainCondition(e.st, c.root)
				} else {
					cr = explainAlpha(e.st, c.alpha)
					cr.ReadsMatches = true
				}
				cr.Name, cr.Condition = rule.Names[i], c.Source
				re.Conditions = append(re.Conditions, cr)
				if cr.Result == "true" {
					re.Satisfies = append(re.Satisfies, i)
				}
			}
			re.Match = strconv.FormatBool(len(re.Satisfies) > 0)
			re.OpenMatches = len(r.partials)
		}
		switch {
		case !rule.Enabled:
			re.Outcome = OutcomeDisabled
		case consumer != "":
			re.Outcome, re.ConsumedBy = OutcomeConsumed, consumer
			re.Detail = fmt.Sprintf("rule %q matches the event first and consumes it (match_multiple_rules: false)", consumer)
		case rule.Kind == All || rule.Kind == NotAll:
			if len(re.Satisfies) == 0 {
				re.Outcome, re.Detail = OutcomeNoMatch, "the event satisfies none of its conditions"
				break
			}
			re.Outcome = OutcomeJoins
			re.Detail = fmt.Sprintf("the event satisfies condition(s) %s; it may open, extend or complete one of its matches (%d open now)",
				joinInts(re.Satisfies), re.OpenMatches)
		case !matched:
			re.Outcome = OutcomeNoMatch
			if re.Match == Unknown.String() {
				re.Detail = "a field the condition reads is missing, so it does not match (nor does its negation)"
			}
		default:
			e.explainThrottle(s, r, it, name, now, &re)
			if !s.rs.MatchMultiple {
				consumer = rule.Name
			}
		}
		x.Rules = append(x.Rules, re)
	}
	return x
}

// explainThrottle sets what r's throttle would do with a match of it, as
// matched would, without changing anything.
func (e *Engine) explainThrottle(s *rsState, r *ruleState, it *item, name string, now time.Time, re *RuleExplanation) {
	th := r.rule.Throttle
	if th == nil {
		re.Outcome = OutcomeFires
		return
	}
	bound := map[string]*item{name: it}
	key := e.groupKey(s, th, it, bound)
	if len(th.GroupBy) > 0 {
		re.Group = groupValues(key)
	}
	g := r.groups[key]
	switch th.Kind {
	case OnceWithin:
		if g != nil && now.Before(g.dl.at) {
			re.Outcome, re.WindowEnds = OutcomeSuppressed, g.dl.at
			re.Detail = "the group fired within once_within; its window is open"
			return
		}
		re.Outcome, re.WindowEnds = OutcomeFires, now.Add(th.Window)
		re.Detail = "fires and opens a once_within window for the group"
	case OnceAfter:
		re.Outcome = OutcomeHeld
		w := g
		if !th.PerGroup {
			w = r.groups[ruleWindow]
		}
		if w == nil {
			re.WindowEnds = now.Add(th.Window)
			re.Detail = "opens a once_after window; the rule fires when it ends"
			return
		}
		re.WindowEnds = w.dl.at
		re.Detail = "joins the open once_after window; the rule fires when it ends, with the group's newest match"
	case AccumulateWithin:
		n := 1
		end := now.Add(th.Window)
		if g != nil {
			if th.Sliding {
				cut := now.Add(-th.Window)
				for _, t := range g.times {
					if t.After(cut) {
						n++
					}
				}
			} else {
				n += g.count
				end = g.dl.at
			}
		}
		re.WindowEnds = end
		if n >= th.Threshold {
			re.Outcome = OutcomeFires
			re.Detail = fmt.Sprintf("match %d of threshold %d within accumulate_within: fires", n, th.Threshold)
			return
		}
		re.Outcome = OutcomeSuppressed
		re.Detail = fmt.Sprintf("match %d of threshold %d within accumulate_within: below the threshold", n, th.Threshold)
	}
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}

// explainAlpha is explainCondition over the conjuncts of a condition that
// read no match: true when they all hold (none: true, as admits).
func explainAlpha(st *evalState, alpha []condNode) ConditionResult {
	var n condNode
	for _, a := range alpha {
		if n == nil {
			n = a
		} else {
			n = andNode{n, a}
		}
	}
	if n == nil {
		return ConditionResult{Result: True.String()}
	}
	return explainCondition(st, n)
}

// explainCondition evaluates n as condNode.eval does (Kleene logic over its
// atoms) and, when the result is unknown, names the missing fields (or the
// error) that made it so.
func explainCondition(st *evalState, n condNode) ConditionResult {
	t, missing, errs := explainNode(st, n)
	cr := ConditionResult{Result: t.String()}
	if t == Unknown {
		cr.Missing = dedupe(missing)
		cr.Error = strings.Join(dedupe(errs), "; ")
	}
	return cr
}

func dedupe(xs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// explainNode returns n's value and, when it is unknown, why: the missing
// fields and the run-time errors of the unknown atoms that decide it.
func explainNode(st *evalState, n condNode) (Tri, []string, []string) {
	switch x := n.(type) {
	case andNode:
		l, lm, le := explainNode(st, x.l)
		if l == False {
			return False, nil, nil
		}
		r, rm, re := explainNode(st, x.r)
		if t := and3(l, r); t != Unknown {
			return t, nil, nil
		}
		return Unknown, append(lm, rm...), append(le, re...)
	case orNode:
		l, lm, le := explainNode(st, x.l)
		if l == True {
			return True, nil, nil
		}
		r, rm, re := explainNode(st, x.r)
		if t := or3(l, r); t != Unknown {
			return t, nil, nil
		}
		return Unknown, append(lm, rm...), append(le, re...)
	case notNode:
		t, m, errs := explainNode(st, x.n)
		if t != Unknown {
			return not3(t), nil, nil
		}
		return Unknown, m, errs
	case atomNode:
		return explainAtom(st, x)
	case cmpNode:
		return explainCmp(st, x)
	}
	return n.eval(st), nil, nil
}

// explainCmp explains a comparison the engine evaluates without a program
// (cmpNode): the path must exist, and a type mismatch is an error.
func explainCmp(st *evalState, n cmpNode) (Tri, []string, []string) {
	if _, ok := lookup(st.env.root(n.path.root), n.path.keys); !ok {
		return Unknown, []string{firstMissing(st, n.path.root, n.path.keys)}, nil
	}
	var errs []string
	saved := st.onError
	st.onError = func(err error) { errs = append(errs, err.Error()) }
	t := n.eval(st)
	st.onError = saved
	if t == Unknown {
		return Unknown, nil, errs
	}
	return t, nil, nil
}

func explainAtom(st *evalState, n atomNode) (Tri, []string, []string) {
	var missing []string
	for _, p := range n.paths {
		if _, ok := lookup(st.env.root(p.root), p.keys); !ok {
			missing = append(missing, firstMissing(st, p.root, p.keys))
		}
	}
	if len(missing) > 0 {
		return Unknown, missing, nil
	}
	out, err := st.vm.Run(n.prog, st.env)
	if err != nil {
		if errors.Is(err, errMissing) {
			missing = missingGets(st, n.prog.Node())
			if len(missing) == 0 {
				// A path with a computed key: the program knows no name.
				missing = []string{"a field with a computed name"}
			}
			return Unknown, missing, nil
		}
		return Unknown, nil, []string{err.Error()}
	}
	if b, ok := out.(bool); ok {
		if b {
			return True, nil, nil
		}
		return False, nil, nil
	}
	return Unknown, nil, []string{fmt.Sprintf("the condition's value is %T, not a boolean", out)}
}

// missingGets names the missing fields among the constant paths the
// rewritten program reads through __get (the presence-aware lookups that
// fail when a key is absent).
func missingGets(st *evalState, root ast.Node) []string {
	var out []string
	ast.Walk(&root, visitor(func(n ast.Node) {
		c, ok := n.(*ast.CallNode)
		if !ok || !isHelper(c, "__get") || len(c.Arguments) == 0 {
			return
		}
		id, ok := c.Arguments[0].(*ast.IdentifierNode)
		if !ok || !rootNames[id.Value] {
			return
		}
		keys := make([]any, 0, len(c.Arguments)-1)
		for _, a := range c.Arguments[1:] {
			switch k := a.(type) {
			case *ast.StringNode:
				keys = append(keys, k.Value)
			case *ast.IntegerNode:
				keys = append(keys, k.Value)
			default:
				return
			}
		}
		if _, ok := lookup(st.env.root(id.Value), keys); !ok {
			out = append(out, firstMissing(st, id.Value, keys))
		}
	}))
	return out
}

// firstMissing renders the shortest prefix of root.keys that is missing:
// the field to add (event.alert, not event.alert.labels.severity, when
// the event has no alert at all).
func firstMissing(st *evalState, root string, keys []any) string {
	for i := 1; i <= len(keys); i++ {
		if _, ok := lookup(st.env.root(root), keys[:i]); !ok {
			return pathString(root, keys[:i])
		}
	}
	return pathString(root, keys)
}

func pathString(root string, keys []any) string {
	var b strings.Builder
	b.WriteString(root)
	for _, k := range keys {
		switch x := k.(type) {
		case string:
			if isIdent(x) {
				b.WriteString("." + x)
			} else {
				fmt.Fprintf(&b, "[%q]", x)
			}
		default:
			fmt.Fprintf(&b, "[%v]", x)
		}
	}
	return b.String()
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// WriteText writes the explanations for a terminal: per rule its outcome
// and why, then each condition with its result and the missing fields.
func WriteText(w io.Writer, xs []Explanation) error {
	var b strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&b, "ruleset %q\n", x.Ruleset)
		for _, r := range x.Rules {
			fmt.Fprintf(&b, "  rule %q (%s): %s", r.Rule, r.Kind, r.Outcome)
			if r.Detail != "" {
				fmt.Fprintf(&b, ": %s", r.Detail)
			}
			if len(r.Group) > 0 {
				fmt.Fprintf(&b, "; group %q", r.Group)
			}
			if !r.WindowEnds.IsZero() {
				fmt.Fprintf(&b, "; window ends %s", r.WindowEnds.UTC().Format(time.RFC3339))
			}
			b.WriteString("\n")
			for _, c := range r.Conditions {
				fmt.Fprintf(&b, "    %s: %s → %s", c.Name, c.Condition, c.Result)
				switch {
				case len(c.Missing) > 0:
					fmt.Fprintf(&b, " (missing %s)", strings.Join(c.Missing, ", "))
				case c.Error != "":
					fmt.Fprintf(&b, " (error: %s)", c.Error)
				}
				if c.ReadsMatches {
					b.WriteString(" [parts reading no earlier match]")
				}
				b.WriteString("\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
