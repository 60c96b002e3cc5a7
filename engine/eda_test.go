package engine_test

import (
	"strings"
	"testing"
	"time"
)

// Cases from Event-Driven Ansible's documented behaviour (ansible-rulebook
// docs/conditions.rst, docs/actions.rst, and the Drools engine behind
// them) where this engine used to differ (issue 15).
func TestEDASemantics(t *testing.T) {
	cases := []struct {
		name   string
		rules  string
		steps  []step
		runFor time.Duration
		want   []string
	}{
		{
			// Only a firing removes an event: starting an all match of an
			// earlier rule does not, and the firing drops that partial
			// match, so {j: 1} completes nothing.
			name: "a partial match does not consume the event, a firing drops partial matches holding it",
			rules: `    - name: pair
      condition:
        all: [event.i == 1, event.j == 1]
      action: {none: {}}
    - name: first
      condition: event.i == 1
      action: {none: {}}
`,
			steps: []step{{0, "", ev("i", 1)}, {time.Second, "", ev("j", 1)}},
			want:  []string{"first@0s"},
		},
		{
			name: "the events of a completed all are consumed for every rule",
			rules: `    - name: wait
      condition:
        all: [event.i == 1, event.z == 1]
      action: {none: {}}
    - name: pair
      condition:
        all: [event.i == 1, event.j == 1]
      action: {none: {}}
`,
			steps: []step{{0, "", ev("i", 1)}, {time.Second, "", ev("j", 1)}, {2 * time.Second, "", ev("z", 1)}},
			want:  []string{"pair@1s"},
		},
		{
			name: "with match_multiple_rules a firing leaves other rules' partial matches",
			rules: `    - name: pair
      condition:
        all: [event.i == 1, event.j == 1]
      action: {none: {}}
    - name: first
      condition: event.i == 1
      action: {none: {}}
`,
			steps: []step{{0, "", ev("i", 1)}, {time.Second, "", ev("j", 1)}},
			want:  []string{"first@0s", "pair@1s"},
		},
		{
			name: "a back-reference that arrives first waits for the event it refers to",
			rules: `    - name: join
      condition:
        all: [event.x == 1, event.y == events.m_0.x]
      action: {debug: {msg: "{{ events.m_1.y }}"}}
`,
			steps: []step{{0, "", ev("y", 1)}, {time.Second, "", ev("x", 1)}},
			want:  []string{"join@1s:1"},
		},
		{
			name: "a waiting back-reference expires with the timeout",
			rules: `    - name: join
      condition:
        all: [event.x == 1, event.y == events.m_0.x]
        timeout: 1m
      action: {none: {}}
`,
			steps: []step{{0, "", ev("y", 1)}, {time.Minute, "", ev("x", 1)}},
			want:  nil,
		},
		{
			name: "a chain of three joins in any order, among other values",
			rules: `    - name: chain
      condition:
        all:
          - event.k == "a"
          - event.k == "b" && event.v == events.m_0.v
          - event.k == "c" && event.v == events.m_1.v
      action: {debug: {msg: "{{ events.m_0.v }}{{ events.m_1.v }}{{ events.m_2.v }}"}}
`,
			steps: []step{
				{0, "", ev("k", "c", "v", 1)}, {1 * time.Second, "", ev("k", "a", "v", 2)}, {2 * time.Second, "", ev("k", "c", "v", 2)},
				{3 * time.Second, "", ev("k", "b", "v", 1)}, {4 * time.Second, "", ev("k", "a", "v", 1)},
				{5 * time.Second, "", ev("k", "b", "v", 2)},
			},
			want: []string{"chain@4s:111", "chain@5s:222"},
		},
		{
			// Facts are not consumed: a fact that matches several rules
			// fires each of them, also without match_multiple_rules.
			name: "a fact fires every rule it matches",
			rules: `    - name: remember
      condition: event.k == "set"
      action: {set_fact: {fact: {x: 1}}}
    - name: one
      condition: fact.x == 1
      action: {none: {}}
    - name: two
      condition: fact.x == 1
      action: {none: {}}
`,
			steps: []step{{0, "", ev("k", "set")}},
			want:  []string{"remember@0s", "one@0s", "two@0s"},
		},
		{
			// once_after with group_by: one window per rule, opened by the
			// first match; when it ends the rule fires once with one event
			// per group seen (the newest), not once per group.
			name: "once_after fires once per rule window with an event per group",
			rules: `    - name: t
      condition: event.x == 1
      throttle: {once_after: 1m, group_by: [event.h]}
      action: {debug: {msg: "{{ events.m_0.h }}{{ events.m_0.n }} {{ events.m_1.h }}{{ events.m_1.n }} {{ event.h }}"}}
`,
			steps: []step{
				{0, "", ev("x", 1, "h", "a", "n", 1)}, {30 * time.Second, "", ev("x", 1, "h", "b", "n", 2)}, {40 * time.Second, "", ev("x", 1, "h", "a", "n", 3)},
				{70 * time.Second, "", ev("x", 1, "h", "b", "n", 4)},
			},
			runFor: 5 * time.Minute,
			want:   []string{"t@1m0s:a3 b2 b", "t@2m10s:b4  b"},
		},
		{
			// accumulate_within: the window opens at the group's first
			// match and does not slide: matches at 0, 8, 12 and 15 s with
			// a 10 s window and threshold 3 do not fire.
			name: "accumulate_within counts in a window opened by the first match",
			rules: `    - name: t
      condition: event.x == 1
      throttle: {accumulate_within: 10s, threshold: 3, group_by: [event.h]}
      action: {none: {}}
`,
			steps: []step{{0, "", ev("x", 1, "h", "a")}, {8 * time.Second, "", ev("x", 1, "h", "a")}, {12 * time.Second, "", ev("x", 1, "h", "a")},
				{15 * time.Second, "", ev("x", 1, "h", "a")}, {21 * time.Second, "", ev("x", 1, "h", "a")}},
			want: []string{"t@21s"},
		},
		{
			name: "accumulate_sliding counts in the window ending at each match",
			rules: `    - name: t
      condition: event.x == 1
      throttle: {accumulate_within: 10s, threshold: 3, group_by: [event.h], accumulate_sliding: true}
      action: {none: {}}
`,
			steps: []step{{0, "", ev("x", 1, "h", "a")}, {8 * time.Second, "", ev("x", 1, "h", "a")}, {12 * time.Second, "", ev("x", 1, "h", "a")},
				{15 * time.Second, "", ev("x", 1, "h", "a")}},
			want: []string{"t@15s"},
		},
		{
			// Drools re-evaluates a negation when a fact is retracted: the
			// rule fires when the last fact carrying x goes, with that
			// fact as its event. An event without x fires it too, unless
			// an earlier rule consumed the event.
			name: "retracting the last fact carrying x fires not defined(fact.x)",
			rules: `    - name: set
      condition: event.k == "set"
      action: {set_fact: {fact: {x: "{{ event.n }}"}}}
    - name: clear
      condition: event.k == "clear"
      action: {retract_fact: {fact: {x: "{{ event.n }}"}}}
    - name: no x
      condition: not defined(fact.x)
      action: {debug: {msg: "{{ event.x }}{{ event.k }}"}}
`,
			steps: []step{
				{0, "", ev("k", "set", "n", 1)}, {1 * time.Second, "", ev("k", "set", "n", 2)},
				{2 * time.Second, "", ev("k", "clear", "n", 1)}, {3 * time.Second, "", ev("k", "clear", "n", 2)},
				{4 * time.Second, "", ev("k", "clear", "n", 2)}, {5 * time.Second, "", ev("k", "other")},
			},
			want: []string{"set@0s", "set@1s", "clear@2s", "clear@3s", "no x@3s:2", "clear@4s", "no x@5s:other"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rb := rulebook(tc.rules)
			if strings.Contains(tc.name, "match_multiple_rules") {
				rb = strings.Replace(rb, "  rules:\n", "  match_multiple_rules: true\n  rules:\n", 1)
			}
			h := newHarness(t, rb)
			h.run(tc.steps, tc.runFor)
			if strings.Join(h.fired, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("fired:\n  %s\nwant:\n  %s", strings.Join(h.fired, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
