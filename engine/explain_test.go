package engine_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func explainOne(t *testing.T, h *harness, event map[string]any) map[string]engine.RuleExplanation {
	t.Helper()
	xs, err := h.eng.Explain("r", event)
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != 1 || xs[0].Ruleset != "r" {
		t.Fatalf("explanations %+v, want one for ruleset r", xs)
	}
	out := map[string]engine.RuleExplanation{}
	for _, re := range xs[0].Rules {
		out[re.Rule] = re
	}
	return out
}

func TestExplainNamesTheMissingField(t *testing.T) {
	h := newHarness(t, rulebook(`    - name: severity
      condition: event.alert.labels.severity == "critical"
      action: {none: {}}
    - name: negated
      condition: not (event.alert.status == "resolved")
      action: {none: {}}
    - name: computed
      condition: 'any(event.items, # > 1) && event.kind == "x"'
      action: {none: {}}
    - name: type error
      condition: event.n > 1
      action: {none: {}}
    - name: or with a true side
      condition: event.nope == 1 || event.kind == "x"
      action: {none: {}}
`))
	h.eng.Explain("r", nil) // no event at all is no error
	got := explainOne(t, h, ev("alert", map[string]any{"status": "firing"}, "kind", "x", "n", "high"))
	want := map[string]engine.ConditionResult{
		"severity":            {Result: "unknown", Missing: []string{"event.alert.labels"}},
		"negated":             {Result: "true"},
		"computed":            {Result: "unknown", Missing: []string{"event.items"}},
		"or with a true side": {Result: "true"},
	}
	for rule, w := range want {
		re := got[rule]
		if len(re.Conditions) != 1 {
			t.Fatalf("%s: conditions %+v", rule, re.Conditions)
		}
		c := re.Conditions[0]
		if c.Result != w.Result || !reflect.DeepEqual(c.Missing, w.Missing) {
			t.Errorf("%s: result %s missing %q, want %s %q", rule, c.Result, c.Missing, w.Result, w.Missing)
		}
		if c.Condition == "" || c.Name != "m_0" {
			t.Errorf("%s: condition %+v lacks its source or name", rule, c)
		}
	}
	if re := got["severity"]; re.Outcome != engine.OutcomeNoMatch || re.Match != "unknown" {
		t.Errorf("severity: outcome %s match %s", re.Outcome, re.Match)
	}
	if c := got["type error"].Conditions[0]; c.Result != "unknown" || c.Error == "" || len(c.Missing) > 0 {
		t.Errorf("type error: %+v, want unknown with the error", c)
	}
	// The field present but the value wrong: false, not unknown.
	got = explainOne(t, h, ev("alert", map[string]any{"status": "resolved", "labels": map[string]any{"severity": "info"}}))
	if c := got["severity"].Conditions[0]; c.Result != "false" || len(c.Missing) > 0 {
		t.Errorf("severity with a value: %+v, want false", c)
	}
	if c := got["negated"].Conditions[0]; c.Result != "false" {
		t.Errorf("negated: %+v, want false", c)
	}
	// Missing under not: unknown too, named.
	got = explainOne(t, h, ev("kind", "y"))
	if c := got["negated"].Conditions[0]; c.Result != "unknown" || !reflect.DeepEqual(c.Missing, []string{"event.alert"}) {
		t.Errorf("negated without alert: %+v, want unknown naming event.alert", c)
	}
}

func TestExplainReportsThrottlesAndEarlierRulesWithoutChangingState(t *testing.T) {
	h := newHarness(t, rulebook(`    - name: within
      condition: event.kind == "disk"
      throttle: {once_within: 5m, group_by: [event.host]}
      action: {none: {}}
    - name: later
      condition: event.host == "a"
      action: {none: {}}
`+"- name: acc\n  match_multiple_rules: true\n  sources:\n    - generic: {payload: []}\n  rules:\n"+`    - name: three
      condition: event.kind == "disk"
      throttle: {accumulate_within: 1m, threshold: 3}
      action: {none: {}}
    - name: after
      condition: event.kind == "disk"
      throttle: {once_after: 2m}
      action: {none: {}}
`))
	h.run([]step{{0, "", ev("kind", "disk", "host", "a")}, {0, "acc", ev("kind", "disk")}}, 30*time.Second)
	before := h.eng.Stats()
	for range 2 { // explaining twice gives the same answer: nothing changed
		got := explainOne(t, h, ev("kind", "disk", "host", "a"))
		w := got["within"]
		if w.Outcome != engine.OutcomeSuppressed || !w.WindowEnds.Equal(t0.Add(5*time.Minute)) || !reflect.DeepEqual(w.Group, []string{"a"}) || w.Throttle != "once_within" {
			t.Errorf("within: %+v, want suppressed until 5m for group a", w)
		}
		if l := got["later"]; l.Outcome != engine.OutcomeConsumed || l.ConsumedBy != "within" || l.Match != "true" {
			t.Errorf("later: %+v, want consumed by within", l)
		}
		got = explainOne(t, h, ev("kind", "disk", "host", "b"))
		if w := got["within"]; w.Outcome != engine.OutcomeFires || !w.WindowEnds.Equal(t0.Add(5*time.Minute+30*time.Second)) {
			t.Errorf("within, other group: %+v, want fires opening a window until 5m30s", w)
		}
		if l := got["later"]; l.Outcome != engine.OutcomeConsumed || l.Match != "false" {
			t.Errorf("later, other host: %+v, want consumed, its own condition false", l)
		}
		xs, err := h.eng.Explain("acc", ev("kind", "disk"))
		if err != nil {
			t.Fatal(err)
		}
		three, after := xs[0].Rules[0], xs[0].Rules[1]
		if three.Outcome != engine.OutcomeSuppressed || !strings.Contains(three.Detail, "match 2 of threshold 3") {
			t.Errorf("three: %+v, want suppressed as match 2 of 3", three)
		}
		if after.Outcome != engine.OutcomeHeld || after.ConsumedBy != "" {
			t.Errorf("after: %+v, want held (match_multiple_rules: nothing consumed)", after)
		}
	}
	if !reflect.DeepEqual(before, h.eng.Stats()) {
		t.Errorf("explain changed the counters:\n%+v\n%+v", before, h.eng.Stats())
	}
	if len(h.fired) != 1 {
		t.Errorf("fired %v, want the one firing of the run", h.fired)
	}
	if _, err := h.eng.Explain("nope", ev()); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown ruleset: %v", err)
	}
}

func TestExplainSaysWhichConditionsOfAMultiEventRuleTheEventSatisfies(t *testing.T) {
	h := newHarness(t, rulebook(`    - name: down then up
      condition:
        all:
          - event.state == "down"
          - event.state == "up" && event.host == events.m_0.host
      action: {none: {}}
`))
	got := explainOne(t, h, ev("state", "up", "host", "a"))["down then up"]
	if got.Outcome != engine.OutcomeJoins || !reflect.DeepEqual(got.Satisfies, []int{1}) || got.Match != "true" {
		t.Fatalf("up: %+v, want joins satisfying condition 1", got)
	}
	if c := got.Conditions[1]; !c.ReadsMatches || c.Name != "m_1" || got.Conditions[0].Result != "false" {
		t.Errorf("conditions %+v", got.Conditions)
	}
	got = explainOne(t, h, ev("host", "a"))["down then up"]
	if got.Outcome != engine.OutcomeNoMatch || len(got.Satisfies) != 0 || !reflect.DeepEqual(got.Conditions[0].Missing, []string{"event.state"}) {
		t.Errorf("no state: %+v, want no match naming event.state", got)
	}
	h.run([]step{{0, "", ev("state", "down", "host", "a")}}, 0)
	if got := explainOne(t, h, ev("state", "up", "host", "a"))["down then up"]; got.OpenMatches != 1 {
		t.Errorf("open matches %d, want 1", got.OpenMatches)
	}
}
