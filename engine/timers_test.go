package engine_test

import (
	"context"
	"testing"
	"time"
)

// A random run over every kind of rule that keeps state over time keeps
// each rule's heap of deadlines equal to its partial matches and throttle
// groups, its count of open slots, its join indexes and the items' counts
// of partials right, and the timers it holds fire.
func TestDeadlinesFollowState(t *testing.T) {
	run := newRandomRun(t, 1)
	for i := range 5000 {
		run.step()
		if err := run.eng.CheckDeadlines(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if i == 2500 {
			run.eng.Replace(run.rulesets) // a reload keeps the state, and the heaps
		}
	}
	if err := run.eng.AdvanceTo(context.Background(), run.clock, run.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := run.eng.CheckDeadlines(); err != nil {
		t.Fatalf("after every timer: %v", err)
	}
	if _, ok := run.eng.NextDeadline(); ok {
		t.Errorf("state left an hour after the last event: %v", run.eng.StateCounts())
	}
	fired := run.fired()
	for _, rule := range []string{"triple", "same value", "pair", "missing end", "late", "once per host", "after per host", "two per host", "page owner", "with fact", "either"} {
		if fired[rule] == 0 {
			t.Errorf("%s never fired in the run: %v", rule, fired)
		}
	}
}
