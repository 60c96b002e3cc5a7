package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
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
			// per group seen (the newest), not once per group; event is the newest
			// match of all.
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
			want:   []string{"t@1m0s:a3 b2 a", "t@2m10s:b4  b"}, // event: the newest match
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

// var_root (ansible-rulebook docs/actions.rst, run_playbook and
// print_event): a key path whose value replaces the matching event, or,
// for multi-event matches, a mapping of key paths to the names their
// values take in events. It applies to what the action is handed and to
// its templates.
func TestVarRoot(t *testing.T) {
	h := newHarness(t, rulebook(`    - name: single
      condition: event.k == 1
      action: {print_event: {var_root: payload.alert}}
    - name: multi
      condition:
        all:
          - events.webhook << event.webhook.payload.url == "http://www.example.com"
          - events.kafka << event.kafka.message.channel == "red"
      actions:
        - print_event: {var_root: {webhook.payload: webhook, kafka.message: kafka}}
        - debug: {msg: "{{ events.kafka.kafka.message.channel }}"}
    - name: not there
      condition: event.k == 2
      action: {print_event: {var_root: payload.nothing}}
`))
	h.run([]step{
		{0, "", ev("k", 1, "payload", map[string]any{"alert": map[string]any{"name": "disk"}})},
		{time.Second, "", ev("webhook", map[string]any{"payload": map[string]any{"url": "http://www.example.com"}})},
		{2 * time.Second, "", ev("kafka", map[string]any{"message": map[string]any{"channel": "red"}})},
		{3 * time.Second, "", ev("k", 2, "payload", map[string]any{"x": 1})},
	}, 0)
	lines := strings.Split(strings.TrimSpace(h.out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("output:\n%s", h.out.String())
	}
	if lines[0] != `{"name":"disk"}` {
		t.Errorf("single: printed %s, want the alert", lines[0])
	}
	for _, want := range []string{`"webhook":{"url":"http://www.example.com"}`, `"kafka":{"channel":"red"}`} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("multi: printed %s, lacks %s", lines[1], want)
		}
	}
	if lines[2] != "red" {
		t.Errorf("debug without var_root saw %q, want the match itself (red)", lines[2])
	}
	if !strings.Contains(lines[3], `"payload":{"x":1}`) {
		t.Errorf("a var_root the event lacks must leave it: printed %s", lines[3])
	}
}

// run_playbook and run_module hand the action the event var_root picks
// (ansible_eda.event), and render their arguments against it.
func TestVarRootReachesInvocations(t *testing.T) {
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	for _, typ := range []string{"run_playbook", "run_module"} {
		reg.RegisterAction(engine.ActionSpec{Type: typ, Check: func(args map[string]any) error {
			if _, ok := args["var_root"]; ok {
				return errors.New("var_root reached the action's own check")
			}
			return nil
		}, New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil }})
	}
	rb, err := rulebooks.Parse("test.yml", []byte(rulebook(`    - name: a
      condition: event.x == 1
      actions:
        - run_playbook: {name: p.yml, var_root: payload.data, extra_vars: {v: "{{ event.val }}"}}
        - run_module: {name: ping, var_root: {nope: n, payload.data: d}}
        - run_playbook: {name: q.yml, extra_vars: {v: "{{ event.payload.data.val }}"}}
`)), rulebooks.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	rec := &firingRecorder{}
	eng := engine.New(rb.Rulesets, engine.Options{Clock: engine.NewFakeClock(t0), Dispatcher: rec})
	data := map[string]any{"val": "hello"}
	if err := eng.Process(context.Background(), engine.Record{Seq: 1, Source: engine.SourceRef{Ruleset: "r"},
		Event: engine.NewEvent(ev("x", 1, "payload", map[string]any{"data": data}), "s", "t", t0)}); err != nil {
		t.Fatal(err)
	}
	if len(rec.firings) != 1 || len(rec.firings[0].Invocations) != 3 {
		t.Fatalf("firings: %+v", rec.firings)
	}
	invs := rec.firings[0].Invocations
	for i, inv := range invs[:2] {
		if !reflect.DeepEqual(inv.Event, engine.Event(data)) || !reflect.DeepEqual(inv.Events, map[string]engine.Event{"m_0": data}) {
			t.Errorf("invocation %d: event %v, events %v; want the var_root value", i, inv.Event, inv.Events)
		}
	}
	if got := invs[0].Args["extra_vars"]; !reflect.DeepEqual(got, map[string]any{"v": "hello"}) {
		t.Errorf("extra_vars rendered against the var_root: %v", got)
	}
	if _, ok := invs[2].Event["payload"]; !ok || invs[2].Args["extra_vars"].(map[string]any)["v"] != "hello" {
		t.Errorf("an action without var_root must get the whole event: %v %v", invs[2].Event, invs[2].Args)
	}
}

// TestDifferentialVarRoot: random nested events through print_event with
// a random var_root, against the model: the value at the key path when
// it is a non-empty mapping, else the event as it is.
func TestDifferentialVarRoot(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var nested func(depth int) any
	nested = func(depth int) any {
		if depth == 0 || rng.IntN(4) == 0 {
			return []any{nil, 1.0, "s", map[string]any{}, []any{}}[rng.IntN(5)]
		}
		m := map[string]any{}
		for _, k := range []string{"a", "b"} {
			if rng.IntN(3) > 0 {
				m[k] = nested(depth - 1)
			}
		}
		return m
	}
	paths := []string{"a", "b", "a.b", "b.a", "a.a.b"}
	for round := range 50 {
		path := paths[round%len(paths)]
		h := newHarness(t, rulebook(`    - name: p
      condition: event.k == 1
      action: {print_event: {var_root: `+path+`}}
`))
		var want []string
		var steps []step
		for range 20 {
			event := ev("k", 1, "a", nested(3), "b", nested(3))
			steps = append(steps, step{0, "", event})
			var cur any = event
			for _, k := range strings.Split(path, ".") {
				m, _ := cur.(map[string]any)
				cur = m[k]
			}
			m, ok := cur.(map[string]any)
			if !ok || len(m) == 0 {
				m = nil // the event itself, with its meta: checked below
			}
			b, _ := json.Marshal(m)
			want = append(want, string(b))
		}
		h.run(steps, 0)
		lines := strings.Split(strings.TrimSpace(h.out.String()), "\n")
		if len(lines) != len(want) {
			t.Fatalf("round %d: %d lines printed, want %d", round, len(lines), len(want))
		}
		for i, w := range want {
			if w == "null" {
				if !strings.Contains(lines[i], `"meta":`) {
					t.Fatalf("round %d, event %d, var_root %s: printed %s, want the whole event", round, i, path, lines[i])
				}
				continue
			}
			if lines[i] != w {
				t.Fatalf("round %d, event %d, var_root %s: printed %s, want %s", round, i, path, lines[i], w)
			}
		}
	}
}

// A fact never waits for the match its condition refers to: it lasts, and
// joins the match when the event arrives. Facts keeping waiting partial
// matches would cost every fact a scan of them (BenchmarkManyFacts).
func TestFactsDoNotWait(t *testing.T) {
	h := newHarness(t, rulebook(`    - name: owner
      condition: event.k == "owner"
      action: {set_fact: {fact: {host: "{{ event.h }}"}}}
    - name: page the owner
      condition:
        all:
          - event.k == "alert"
          - fact.host == events.m_0.h
      action: {debug: {msg: "{{ events.m_1.host }}"}}
`))
	h.run([]step{{0, "", ev("k", "owner", "h", "a")}, {0, "", ev("k", "owner", "h", "b")}}, 0)
	if c := h.eng.StateCounts(); len(c) != 0 {
		t.Fatalf("facts left waiting partial matches: %v", c)
	}
	h.run([]step{{time.Second, "", ev("k", "alert", "h", "b")}}, 0)
	if got := strings.Join(h.fired, " "); got != "owner@0s owner@0s page the owner@1s:b" {
		t.Fatalf("fired %s", got)
	}
}
