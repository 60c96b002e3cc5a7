package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// A random run over every kind of rule that keeps state over time keeps
// each rule's heap of deadlines equal to its partial matches and throttle
// groups, and its count of open slots right, and the timers it holds fire.
func TestDeadlinesFollowState(t *testing.T) {
	rules := `    - name: same value
      condition:
        all:
          - events.first << event.k == "x"
          - event.k == "y" && event.v == events.first.v && event.h != events.first.h
        timeout: 1m
      action: {none: {}}
    - name: pair
      condition:
        all: [event.k == "a", event.k == "b" && event.h == events.m_0.h]
        timeout: 2m
      action: {none: {}}
    - name: missing end
      condition:
        not_all:
          - events.s << event.k == "start"
          - event.k == "end" && event.h == events.s.h
        timeout: 3m
      action: {none: {}}
    - name: once per host
      condition: event.k == "disk"
      throttle: {once_within: 2m, group_by: [event.h]}
      action: {none: {}}
    - name: after per host
      condition: event.k == "cpu"
      throttle: {once_after: 90s, group_by: [event.h]}
      action: {none: {}}
    - name: three per host
      condition: event.k == "mem"
      throttle: {accumulate_within: 3m, threshold: 2, group_by: [event.h]}
      action: {none: {}}
    - name: remember
      condition: event.k == "fact"
      action: {set_fact: {fact: {k: "known", h: "{{ event.h }}"}}}
    - name: forget
      condition: event.k == "forget"
      action: {retract_fact: {fact: {k: "known", h: "{{ event.h }}"}}}
    - name: with fact
      condition:
        all: [fact.k == "known", event.k == "probe" && event.h == events.m_0.h]
        timeout: 4m
      action: {none: {}}
`
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	clock := engine.NewFakeClock(t0)
	rb, err := rulebooks.Parse("test.yml", []byte(rulebook(rules)), rulebooks.Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string]int{}
	eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, OnFiring: func(f *engine.Firing, _ []engine.RenderedAction) { fired[f.Rule]++ }})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []string{"a", "b", "start", "end", "disk", "cpu", "mem", "fact", "forget", "probe", "x", "y"}
	for i := range 5000 {
		clock.Advance(time.Duration(rng.IntN(20)) * time.Second)
		if rng.IntN(10) == 0 {
			if err := eng.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		} else {
			event := ev("k", kinds[rng.IntN(len(kinds))], "h", fmt.Sprintf("h%d", rng.IntN(8)))
			switch rng.IntN(4) { // numbers of either type meet; some events lack the value
			case 0:
				event["v"] = rng.IntN(3)
			case 1:
				event["v"] = float64(rng.IntN(3))
			case 2:
				event["v"] = []any{1.0}
			}
			rec := engine.Record{Seq: uint64(i + 1), Source: engine.SourceRef{Ruleset: "r"}, Event: engine.NewEvent(event, "s", "t", clock.Now())}
			if err := eng.Process(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := eng.CheckDeadlines(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if i == 2500 {
			eng.Replace(rb.Rulesets) // a reload keeps the state, and the heaps
		}
	}
	if err := eng.AdvanceTo(ctx, clock, clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := eng.CheckDeadlines(); err != nil {
		t.Fatalf("after every timer: %v", err)
	}
	if _, ok := eng.NextDeadline(); ok {
		t.Errorf("state left an hour after the last event: %v", eng.StateCounts())
	}
	for _, rule := range []string{"pair", "missing end", "once per host", "after per host", "three per host", "with fact", "same value"} {
		if fired[rule] == 0 {
			t.Errorf("%s never fired in the run: %v", rule, fired)
		}
	}
}
