package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

func TestReplaceKeepsStateOfUnchangedRules(t *testing.T) {
	v1 := rulebook(`    - name: pair
      condition:
        all: [event.k == "a", event.k == "b"]
      action: {none: {}}
    - name: quiet
      condition: event.k == "t"
      throttle: {once_within: 10m}
      action: {none: {}}
    - name: changing
      condition:
        all: [event.k == "c", event.k == "d"]
      action: {none: {}}
    - name: fact
      condition: event.k == "f"
      action: {set_fact: {fact: {seen: true}}}
`)
	h := newHarness(t, v1)
	h.run([]step{
		{0, "", ev("k", "a")}, // partial match of pair
		{0, "", ev("k", "t")}, // quiet fires, window opens
		{0, "", ev("k", "c")}, // partial match of changing
		{0, "", ev("k", "f")}, // a fact
	}, 0)
	if got := strings.Join(h.fired, ","); got != "quiet@0s,fact@0s" {
		t.Fatalf("before reload fired %s", got)
	}

	v2 := strings.Replace(v1, `all: [event.k == "c", event.k == "d"]`, `all: [event.k == "c", event.k == "e"]`, 1)
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	rb, err := rulebooks.Parse("v2.yml", []byte(v2), rulebooks.Options{Registry: reg, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	before := h.eng.Rulesets()
	sum := h.eng.Replace(rb.Rulesets)
	if sum.KeptRules != 3 || sum.ResetRules != 1 || sum.KeptFacts != 1 {
		t.Fatalf("summary %+v, want 3 kept rules, 1 reset, 1 fact", sum)
	}
	want := engine.ReloadSummary{Rulesets: 1, Rules: 4, KeptRules: 3, ResetRules: 1}
	if got := engine.CompareRulesets(before, rb.Rulesets); got != want {
		t.Fatalf("CompareRulesets = %+v, want %+v (Replace's summary without facts)", got, want)
	}
	if got := engine.CompareRulesets(before, nil); got != (engine.ReloadSummary{DroppedSets: 1}) {
		t.Fatalf("CompareRulesets to nothing = %+v, want 1 dropped ruleset", got)
	}
	if got := engine.CompareRulesets(nil, rb.Rulesets); got != (engine.ReloadSummary{Rulesets: 1, Rules: 4, ResetRules: 4}) {
		t.Fatalf("CompareRulesets from nothing = %+v, want 4 new rules", got)
	}
	h.fired = nil
	h.run([]step{
		{time.Minute, "", ev("k", "b")}, // completes pair: its partial match survived
		{time.Minute, "", ev("k", "t")}, // still throttled: the window survived
		{time.Minute, "", ev("k", "e")}, // changing was reset: no partial to complete
	}, 0)
	if got := strings.Join(h.fired, ","); got != "pair@1m0s" {
		t.Fatalf("after reload fired %s, want pair@1m0s only", got)
	}
	if facts := h.eng.Facts("r"); len(facts) != 1 || facts[0]["seen"] != true {
		t.Fatalf("facts after reload: %v", facts)
	}
	for _, st := range h.eng.Stats() {
		if st.Rule == "quiet" && st.Fired != 1 {
			t.Fatalf("quiet's counter was not kept: %+v", st)
		}
	}
}

func TestReplayRebuildsStateWithoutFiring(t *testing.T) {
	h := newHarness(t, rulebook(`    - name: quiet
      condition: event.k == "t"
      throttle: {once_within: 10m, group_by: [event.h]}
      action: {debug: {msg: "fired {{ event.h }}"}}
    - name: fact
      condition: event.k == "f"
      action: {set_fact: {fact: {seen: "{{ event.h }}"}}}
`))
	rec := func(seq uint64, kv ...any) engine.Record {
		return engine.Record{Seq: seq, Stream: "events/2", Source: engine.SourceRef{Ruleset: "r", Name: "src"},
			Event: engine.NewEvent(ev(kv...), "src", "generic", h.clock.Now())}
	}
	ctx := context.Background()
	if err := h.eng.Replay(ctx, rec(1, "k", "t", "h", "a")); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.Replay(ctx, rec(2, "k", "f", "h", "a")); err != nil {
		t.Fatal(err)
	}
	if len(h.fired) != 0 || h.out.Len() != 0 {
		t.Fatalf("replay fired %v / printed %q", h.fired, h.out.String())
	}
	if facts := h.eng.Facts("r"); len(facts) != 1 || facts[0]["seen"] != "a" {
		t.Fatalf("replay did not rebuild facts: %v", facts)
	}
	// Windows follow the history's own times: host c's event was accepted
	// 9 minutes before the takeover, so its 10-minute window ends 1 minute
	// after it.
	old := rec(5, "k", "t", "h", "c")
	old.Accepted = h.clock.Now().Add(-9 * time.Minute)
	if err := h.eng.Replay(ctx, old); err != nil {
		t.Fatal(err)
	}
	// The throttle window opened during replay still holds for host a.
	h.clock.Advance(time.Minute)
	h.eng.Process(ctx, rec(3, "k", "t", "h", "a"))
	h.eng.Process(ctx, rec(4, "k", "t", "h", "b"))
	h.clock.Advance(time.Minute)
	h.eng.Process(ctx, rec(6, "k", "t", "h", "c"))
	if got := strings.Join(h.fired, ","); got != "quiet@1m0s:fired b,quiet@2m0s:fired c" {
		t.Fatalf("after replay fired %q, want host b, then c once its historical window ended", got)
	}
}
