package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// A timer's firing ID comes from the timer (rule, deadline, events), so two
// engines that rebuilt the same state fire it under the same ID; it is
// Redelivered when due before the engine went live. Injected firings stay
// unique.
func TestTimerAndInjectedFiringIDs(t *testing.T) {
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	reg.RegisterAction(engine.ActionSpec{Type: "notify", Check: func(map[string]any) error { return nil },
		New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil }})
	rb, err := rulebooks.Parse("test.yml", []byte(rulebook(restartRules)), rulebooks.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := engine.Record{Seq: 1, Source: engine.SourceRef{Ruleset: "r"}, Accepted: t0,
		Event: engine.NewEvent(ev("kind", "start", "id", "A"), "s", "t", t0)}
	// run builds an engine at `at`, rebuilds its state from start, marks
	// it live at `live` and ticks at t0+6m: the 5m timeout is due.
	run := func(at, live time.Time) *engine.Firing {
		clock := engine.NewFakeClock(at)
		rec := &firingRecorder{}
		eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, Dispatcher: rec})
		if err := eng.Replay(ctx, start); err != nil {
			t.Fatal(err)
		}
		eng.SetLiveSince(live)
		clock.Set(t0.Add(6 * time.Minute))
		if err := eng.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if len(rec.firings) != 1 {
			t.Fatalf("%d firings, want the timeout's", len(rec.firings))
		}
		return rec.firings[0]
	}
	live := run(t0, t0)                                            // went live before the deadline
	restarted := run(t0.Add(7*time.Minute), t0.Add(7*time.Minute)) // after it
	if live.ID != restarted.ID {
		t.Errorf("timer firing IDs differ: %s live, %s after a restart", live.ID, restarted.ID)
	}
	if live.Redelivered || !restarted.Redelivered {
		t.Errorf("Redelivered: %v live (want false), %v after a restart (want true)", live.Redelivered, restarted.Redelivered)
	}

	rec := &firingRecorder{}
	eng := engine.New(rb.Rulesets, engine.Options{Clock: engine.NewFakeClock(t0), Dispatcher: rec})
	for range 2 {
		if err := eng.Inject(ctx, "r", nil, []map[string]any{{"kind": "disk"}}); err != nil {
			t.Fatal(err)
		}
		eng.Replace(rb.Rulesets[:0]) // forget the throttle window
		eng.Replace(rb.Rulesets)
	}
	if len(rec.firings) != 2 || rec.firings[0].ID == rec.firings[1].ID || rec.firings[0].Redelivered {
		t.Errorf("injected firings %+v, want two with distinct IDs, not redelivered", rec.firings)
	}
}
