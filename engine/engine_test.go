package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type step struct {
	at      time.Duration
	ruleset string
	event   map[string]any
}

type harness struct {
	t     *testing.T
	clock *engine.FakeClock
	eng   *engine.Engine
	fired []string
	out   bytes.Buffer
	seq   uint64
}

func newHarness(t *testing.T, rulebook string) *harness {
	t.Helper()
	h := &harness{t: t, clock: engine.NewFakeClock(t0)}
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	rb, err := rulebooks.Parse("test.yml", []byte(rulebook), rulebooks.Options{Registry: reg, Clock: h.clock})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	h.eng = engine.New(rb.Rulesets, engine.Options{Clock: h.clock, Stdout: &h.out,
		OnFiring: func(f *engine.Firing, acts []engine.RenderedAction) {
			desc := fmt.Sprintf("%s@%s", f.Rule, f.Time.Sub(t0))
			for _, a := range acts {
				if m, ok := a.Args["msg"]; ok {
					desc += fmt.Sprintf(":%v", m)
				}
			}
			h.fired = append(h.fired, desc)
		}})
	return h
}

// advance moves virtual time to `to`, firing due timers in order.
func (h *harness) advance(to time.Time) {
	if err := h.eng.AdvanceTo(context.Background(), h.clock, to); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) run(steps []step, runFor time.Duration) {
	var last time.Duration
	for _, s := range steps {
		h.advance(t0.Add(s.at))
		h.seq++
		rs := s.ruleset
		if rs == "" {
			rs = "r"
		}
		ev := engine.NewEvent(s.event, "src", "generic", h.clock.Now())
		if err := h.eng.Process(context.Background(), engine.Record{Seq: h.seq, Source: engine.SourceRef{Ruleset: rs, Name: "src"}, Event: ev}); err != nil {
			h.t.Fatal(err)
		}
		last = s.at
	}
	h.advance(t0.Add(last + runFor))
}

func rulebook(rules string) string {
	return "- name: r\n  sources:\n    - generic: {payload: []}\n  rules:\n" + rules
}

func ev(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func TestRuleSemantics(t *testing.T) {
	cases := []struct {
		name   string
		rules  string
		steps  []step
		runFor time.Duration
		want   []string
	}{
		{
			name: "first matching rule consumes the event",
			rules: `    - {name: a, condition: event.x == 1, action: {none: {}}}
    - {name: b, condition: event.x >= 1, action: {none: {}}}
`,
			steps: []step{{0, "", ev("x", 1)}, {0, "", ev("x", 2)}},
			want:  []string{"a@0s", "b@0s"},
		},
		{
			name: "all in any order",
			rules: `    - name: pair
      condition:
        all: [event.k == "a", event.k == "b"]
      action: {none: {}}
`,
			steps: []step{{0, "", ev("k", "b")}, {time.Minute, "", ev("k", "a")}},
			want:  []string{"pair@1m0s"},
		},
		{
			name: "all consumes matched events, leftovers wait for their partner",
			rules: `    - name: pair
      condition:
        all: [event.k == "a", event.k == "b"]
      action: {none: {}}
`,
			steps: []step{{0, "", ev("k", "a")}, {0, "", ev("k", "a")}, {time.Second, "", ev("k", "b")}, {2 * time.Second, "", ev("k", "b")}, {3 * time.Second, "", ev("k", "b")}},
			want:  []string{"pair@1s", "pair@2s"},
		},
		{
			name: "all with default_events_ttl from the ruleset expires partial matches",
			rules: `    - name: pair
      condition:
        all: [event.k == "a", event.k == "b"]
      action: {none: {}}
`,
			steps: []step{{0, "", ev("k", "a")}, {3 * time.Hour, "", ev("k", "b")}},
			want:  nil,
		},
		{
			name: "later condition refers to the earlier match by m_0",
			rules: `    - name: same host
      condition:
        all:
          - event.kind == "down"
          - event.kind == "up" && event.host == events.m_0.host
      action: {debug: {msg: "{{ events.m_0.host }}"}}
`,
			steps: []step{{0, "", ev("kind", "down", "host", "a")}, {time.Second, "", ev("kind", "up", "host", "b")}, {2 * time.Second, "", ev("kind", "up", "host", "a")}},
			want:  []string{"same host@2s:a"},
		},
		{
			name: "facts join multi-condition rules whenever they exist",
			rules: `    - name: mark
      condition: event.kind == "maint"
      action: {set_fact: {fact: {maintenance: "{{ event.host }}"}}}
    - name: suppressed alert
      condition:
        all:
          - fact.maintenance == "db1"
          - event.kind == "alert" && event.host == "db1"
      action: {debug: {msg: "{{ events.m_1.host }} in maintenance"}}
`,
			steps: []step{{0, "", ev("kind", "maint", "host", "db1")}, {time.Minute, "", ev("kind", "alert", "host", "db1")}, {2 * time.Minute, "", ev("kind", "alert", "host", "db1")}},
			want:  []string{"mark@0s", "suppressed alert@1m0s:db1 in maintenance", "suppressed alert@2m0s:db1 in maintenance"},
		},
		{
			name: "retract_fact removes facts by partial match",
			rules: `    - name: set
      condition: event.kind == "set"
      action: {set_fact: {fact: {lock: "{{ event.host }}", owner: ops}}}
    - name: retract
      condition: event.kind == "clear"
      action: {retract_fact: {fact: {lock: "{{ event.host }}"}}}
    - name: locked
      condition:
        all: [fact.lock == "a", event.kind == "ping"]
      action: {none: {}}
`,
			steps: []step{{0, "", ev("kind", "set", "host", "a")}, {time.Second, "", ev("kind", "clear", "host", "a")}, {2 * time.Second, "", ev("kind", "ping")}},
			want:  []string{"set@0s", "retract@1s"},
		},
		{
			name: "not_all without any match opens no window",
			rules: `    - name: na
      condition:
        not_all: [event.k == "a", event.k == "b"]
        timeout: 1m
      action: {none: {}}
`,
			steps:  []step{{0, "", ev("k", "c")}},
			runFor: time.Hour,
			want:   nil,
		},
		{
			name: "once_within without group_by throttles the whole rule",
			rules: `    - name: t
      condition: event.x == 1
      throttle: {once_within: 1m}
      action: {none: {}}
`,
			steps: []step{{0, "", ev("x", 1, "h", "a")}, {10 * time.Second, "", ev("x", 1, "h", "b")}, {61 * time.Second, "", ev("x", 1)}},
			want:  []string{"t@0s", "t@1m1s"},
		},
		{
			name: "once_after_per_group keeps a window per group and fires at each window end",
			rules: `    - name: t
      condition: event.x == 1
      throttle: {once_after: 1m, group_by: [event.h], once_after_per_group: true}
      action: {debug: {msg: "{{ event.h }}"}}
`,
			steps:  []step{{0, "", ev("x", 1, "h", "a")}, {30 * time.Second, "", ev("x", 1, "h", "b")}, {40 * time.Second, "", ev("x", 1, "h", "a")}},
			runFor: 5 * time.Minute,
			want:   []string{"t@1m0s:a", "t@1m30s:b"},
		},
		{
			name: "post_event to another ruleset",
			rules: `    - name: forward
      condition: event.x == 1
      action: {post_event: {ruleset: other, event: {y: "{{ event.x + 1 }}"}}}
- name: other
  sources:
    - generic: {payload: []}
  rules:
    - name: got
      condition: event.y == 2
      action: {debug: {msg: "y={{ event.y }}"}}
`,
			steps: []step{{0, "", ev("x", 1)}},
			want:  []string{"forward@0s", "got@0s:y=2"},
		},
		{
			name: "a post_event loop is cut off",
			rules: `    - name: loop
      condition: event.x == 1
      action: {post_event: {event: {x: 1}}}
`,
			steps: []step{{0, "", ev("x", 1)}},
			want:  nil, // checked by count below
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, rulebook(tc.rules))
			h.run(tc.steps, tc.runFor)
			if tc.name == "a post_event loop is cut off" {
				if len(h.fired) != 10000 {
					t.Fatalf("loop fired %d times, want the cascade limit 10000", len(h.fired))
				}
				return
			}
			if strings.Join(h.fired, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("fired:\n  %s\nwant:\n  %s", strings.Join(h.fired, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestTemplatesKeepTypesAndInsertEventDataAsIs(t *testing.T) {
	h := newHarness(t, rulebook(`    - name: t
      condition: event.x == 1
      action:
        debug:
          msg:
            n: "{{ event.n }}"
            text: "n={{ event.n }} missing={{ event.nope }}"
            list: "{{ event.list }}"
            sneaky: "{{ event.s }}"
            default: "{{ event.nope ?? 'none' }}"
`))
	var got map[string]any
	h.eng = engine.New(h.eng.Rulesets(), engine.Options{Clock: h.clock, Stdout: &h.out, OnFiring: func(f *engine.Firing, acts []engine.RenderedAction) {
		got = acts[0].Args["msg"].(map[string]any)
	}})
	h.run([]step{{0, "", ev("x", 1, "n", 3.0, "list", []any{"a"}, "s", "${env:HOME}")}}, 0)
	if got["n"] != 3.0 {
		t.Errorf("n = %#v, want the number 3", got["n"])
	}
	if got["text"] != "n=3 missing=" {
		t.Errorf("text = %q", got["text"])
	}
	if l, ok := got["list"].([]any); !ok || len(l) != 1 {
		t.Errorf("list = %#v", got["list"])
	}
	// Event data is inserted as it is; it is not a reference (the
	// rulebook's literal text made none), so nothing resolves it.
	if got["sneaky"] != "${env:HOME}" {
		t.Errorf("event data was changed: %q", got["sneaky"])
	}
	resolved, _, err := engine.ResolveArgs(got, nil)
	if err != nil || resolved["sneaky"] != "${env:HOME}" {
		t.Errorf("event data resolved to %q (%v), want it literal", resolved["sneaky"], err)
	}
	if got["default"] != "none" {
		t.Errorf("default = %q", got["default"])
	}
}

func TestFiringIDsAreStableForTheSameRecord(t *testing.T) {
	rb := rulebook(`    - name: t
      condition: event.x == 1
      action: {none: {}}
`)
	ids := func() string {
		h := newHarness(t, rb)
		var id string
		h.eng = engine.New(h.eng.Rulesets(), engine.Options{Clock: h.clock, Stdout: &h.out, OnFiring: func(f *engine.Firing, _ []engine.RenderedAction) { id = f.ID }})
		h.run([]step{{0, "", ev("x", 1)}}, 0)
		return id
	}
	a, b := ids(), ids()
	if a == "" || a != b {
		t.Fatalf("firing ids %q and %q differ for the same record", a, b)
	}
}

func TestDebugAndPrintEventOutput(t *testing.T) {
	h := newHarness(t, rulebook(`    - name: d
      condition: event.x == 1
      actions:
        - debug: {msg: ["line one", "x={{ event.x }}"]}
        - debug: {var: event.nested.k}
        - debug: {var: event.nope}
        - print_event: {}
        - print_event: {pretty: true}
`))
	h.run([]step{{0, "", ev("x", 1, "nested", map[string]any{"k": "v"})}}, 0)
	out := h.out.String()
	for _, want := range []string{"line one\nx=1\n", `event.nested.k: "v"`, "event.nope: (not defined)", `{"meta":`, "{\n  \"meta\": {"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestNotAllKeepsAWindowPerFirstMatch(t *testing.T) {
	h := newHarness(t, rulebook(`    - name: escalate
      condition:
        not_all:
          - event.status == "firing"
          - event.status == "resolved" && event.name == events.m_0.name
        timeout: 10m
      action: {debug: {msg: "{{ events.m_0.name }}"}}
`))
	h.run([]step{
		{0, "", ev("status", "firing", "name", "A")},
		{time.Minute, "", ev("status", "firing", "name", "B")},
		{2 * time.Minute, "", ev("status", "resolved", "name", "A")},
	}, 20*time.Minute)
	if got := strings.Join(h.fired, ","); got != "escalate@11m0s:B" {
		t.Fatalf("fired %q, want only B escalated at 11m", got)
	}
}

type batchRecorder struct {
	calls [][]string
}

func (b *batchRecorder) Submit(ctx context.Context, f *engine.Firing) error {
	b.calls = append(b.calls, []string{f.Rule})
	return nil
}

func (b *batchRecorder) SubmitAll(ctx context.Context, fs []*engine.Firing) error {
	var rules []string
	for _, f := range fs {
		rules = append(rules, f.Rule)
	}
	b.calls = append(b.calls, rules)
	return nil
}

func TestProcessBatchStoresFiringsTogether(t *testing.T) {
	h := newHarness(t, rulebook(`    - {name: a, condition: event.x == 1, action: {none: {}}}
    - {name: b, condition: event.x == 2, action: {none: {}}}
`))
	rec := &batchRecorder{}
	eng := engine.New(h.eng.Rulesets(), engine.Options{Clock: h.clock, Dispatcher: rec})
	var recs []engine.Record
	for i, x := range []int{1, 2, 3, 1} {
		recs = append(recs, engine.Record{Seq: uint64(i + 1), Source: engine.SourceRef{Ruleset: "r"}, Event: engine.NewEvent(ev("x", x), "s", "t", h.clock.Now())})
	}
	if err := eng.ProcessBatch(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 1 || strings.Join(rec.calls[0], ",") != "a,b,a" {
		t.Fatalf("store calls %v, want one call with a,b,a", rec.calls)
	}
	// A single Process still stores at once.
	if err := eng.Process(context.Background(), recs[0]); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 2 {
		t.Fatalf("Process did not store its firing: %v", rec.calls)
	}
}

// A firing is Redelivered exactly when its record is, and its invocations
// carry the engine's Stream (where action feedback goes back to).
func TestFiringsCarryRedeliveryAndStream(t *testing.T) {
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	reg.RegisterAction(engine.ActionSpec{Type: "notify", Check: func(map[string]any) error { return nil },
		New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil }})
	rb, err := rulebooks.Parse("test.yml", []byte(rulebook(`    - {name: a, condition: event.x == 1, action: {notify: {}}}
`)), rulebooks.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	rec := &firingRecorder{}
	eng := engine.New(rb.Rulesets, engine.Options{Clock: engine.NewFakeClock(t0), Dispatcher: rec, Stream: "bus/3"})
	var recs []engine.Record
	for i, redelivered := range []bool{true, false} {
		recs = append(recs, engine.Record{Seq: uint64(i + 1), Stream: "bus/3", Redelivered: redelivered,
			Source: engine.SourceRef{Ruleset: "r"}, Event: engine.NewEvent(ev("x", 1), "s", "t", t0)})
	}
	if err := eng.ProcessBatch(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if len(rec.firings) != 2 {
		t.Fatalf("%d firings, want 2", len(rec.firings))
	}
	for i, f := range rec.firings {
		if f.Redelivered != recs[i].Redelivered {
			t.Errorf("firing %d: Redelivered %v, its record %v", i, f.Redelivered, recs[i].Redelivered)
		}
		if len(f.Invocations) != 1 || f.Invocations[0].Stream != "bus/3" {
			t.Errorf("firing %d: invocations %+v, want one with stream bus/3", i, f.Invocations)
		}
	}
}

type firingRecorder struct{ firings []*engine.Firing }

func (r *firingRecorder) Submit(_ context.Context, f *engine.Firing) error {
	r.firings = append(r.firings, f)
	return nil
}
