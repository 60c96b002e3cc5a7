package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// A timer's firing ID comes from the timer (rule, deadline, events), so two
// engines that rebuilt the same state fire it under the same ID; it is
// Redelivered when due before the engine went live. Injected firings stay
// unique.
func TestTimerAndInjectedFiringIDs(t *testing.T) {
	rulesets := parseWithNotify(t, restartRules, nil)
	ctx := context.Background()
	start := engine.Record{Seq: 1, Source: engine.SourceRef{Ruleset: "r"}, Accepted: t0,
		Event: engine.NewEvent(ev("kind", "start", "id", "A"), "s", "t", t0)}
	// run builds an engine at `at`, rebuilds its state from start, marks
	// it live at `live` and ticks at t0+6m: the 5m timeout is due.
	run := func(at, live time.Time) *engine.Firing {
		clock := engine.NewFakeClock(at)
		rec := &firingRecorder{}
		eng := engine.New(rulesets, engine.Options{Clock: clock, Dispatcher: rec})
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
	eng := engine.New(rulesets, engine.Options{Clock: engine.NewFakeClock(t0), Dispatcher: rec})
	for range 2 {
		if err := eng.Inject(ctx, "r", nil, []map[string]any{{"kind": "disk"}}); err != nil {
			t.Fatal(err)
		}
		eng.Replace(rulesets[:0]) // forget the throttle window
		eng.Replace(rulesets)
	}
	if len(rec.firings) != 2 || rec.firings[0].ID == rec.firings[1].ID || rec.firings[0].Redelivered {
		t.Errorf("injected firings %+v, want two with distinct IDs, not redelivered", rec.firings)
	}
}

// What a timer's firing causes (its post_event here) takes its IDs from the
// timer's firing, so they are the same whether a Tick or the next record
// found the timer due, and the record's own firing IDs do not shift with
// them. A cascade of a Redelivered timer firing is Redelivered too, so it
// is looked up, not stored twice, after a restart.
func TestTimerCascadeFiringIDs(t *testing.T) {
	rules := `    - name: slow
      condition:
        not_all:
          - events.start << event.kind == "start"
          - event.kind == "end" && event.id == events.start.id
        timeout: 5m
      action: {post_event: {event: {kind: "late", id: "{{ events.start.id }}"}}}
    - name: escalate
      condition: event.kind == "late"
      action: {notify: {}}
    - name: other
      condition: event.kind == "other"
      action: {notify: {}}
`
	rulesets := parseWithNotify(t, rules, nil)
	ctx := context.Background()
	record := func(seq uint64, at time.Time, kv ...any) engine.Record {
		return engine.Record{Seq: seq, Source: engine.SourceRef{Ruleset: "r"}, Accepted: at,
			Event: engine.NewEvent(ev(kv...), "s", "t", at)}
	}
	start := record(1, t0, "kind", "start", "id", "A")
	other := record(2, t0.Add(6*time.Minute), "kind", "other")
	// run processes start, then other at t0+6m, after the 5m timeout; with
	// tick, a Tick finds the timer due first, else other's processing does.
	run := func(tick bool, live time.Time) map[string]*engine.Firing {
		clock := engine.NewFakeClock(t0)
		rec := &firingRecorder{}
		eng := engine.New(rulesets, engine.Options{Clock: clock, Dispatcher: rec})
		if err := eng.Process(ctx, start); err != nil {
			t.Fatal(err)
		}
		eng.SetLiveSince(live)
		clock.Set(t0.Add(6 * time.Minute))
		if tick {
			if err := eng.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := eng.Process(ctx, other); err != nil {
			t.Fatal(err)
		}
		byRule := map[string]*engine.Firing{}
		for _, f := range rec.firings {
			byRule[f.Rule] = f
		}
		if len(byRule) != 3 || len(rec.firings) != 3 {
			t.Fatalf("tick %v: %d firings of %d rules, want slow, escalate and other once each", tick, len(rec.firings), len(byRule))
		}
		return byRule
	}
	byRecord, byTick := run(false, t0), run(true, t0)
	for _, rule := range []string{"slow", "escalate", "other"} {
		if byRecord[rule].ID != byTick[rule].ID {
			t.Errorf("%s fired as %s when the record found the timer due, %s when a Tick did", rule, byRecord[rule].ID, byTick[rule].ID)
		}
		if byRecord[rule].Redelivered || byTick[rule].Redelivered {
			t.Errorf("%s: Redelivered on a live engine", rule)
		}
	}

	restarted := run(true, t0.Add(7*time.Minute)) // live after the deadline
	for _, rule := range []string{"slow", "escalate"} {
		if f := restarted[rule]; !f.Redelivered || f.ID != byTick[rule].ID {
			t.Errorf("%s after a restart: ID %s (want %s), Redelivered %v (want true)", rule, f.ID, byTick[rule].ID, f.Redelivered)
		}
	}
	if restarted["other"].Redelivered {
		t.Error("other's firing is Redelivered: its record was not")
	}
}

// Events and facts the engine creates (post_event, set_fact) get IDs derived
// from the firing that created them, so the replay after a restart rebuilds
// partial matches over them with the same event IDs, and their timer fires
// under the same ID as it would have without the restart.
func TestCreatedItemIDsSurviveReplay(t *testing.T) {
	rules := `    - name: begin
      condition: event.kind == "start"
      actions:
        - post_event: {event: {kind: "begun", id: "{{ event.id }}"}}
        - set_fact: {fact: {kind: "running", id: "{{ event.id }}"}}
    - name: slow
      condition:
        not_all:
          - events.b << event.kind == "begun"
          - events.f << fact.kind == "running" && fact.id == events.b.id
          - event.kind == "end" && event.id == events.b.id
        timeout: 5m
      action: {notify: {}}
`
	rulesets := parseWithNotify(t, rules, nil)
	ctx := context.Background()
	start := engine.Record{Seq: 1, Source: engine.SourceRef{Ruleset: "r"}, Accepted: t0,
		Event: engine.NewEvent(ev("kind", "start", "id", "A"), "s", "t", t0)}
	// run processes (or replays) start, then ticks after the timeout.
	run := func(replay bool, live time.Time) *engine.Firing {
		clock := engine.NewFakeClock(t0)
		rec := &firingRecorder{}
		eng := engine.New(rulesets, engine.Options{Clock: clock, Dispatcher: rec})
		step := eng.Process
		if replay {
			step = eng.Replay
		}
		if err := step(ctx, start); err != nil {
			t.Fatal(err)
		}
		eng.SetLiveSince(live)
		clock.Set(t0.Add(8 * time.Minute))
		if err := eng.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		for _, f := range rec.firings {
			if f.Rule == "slow" {
				return f
			}
		}
		t.Fatalf("replay %v: slow did not fire: %+v", replay, rec.firings)
		return nil
	}
	live := run(false, t0)
	restarted := run(true, t0.Add(7*time.Minute))
	if len(live.EventIDs) != 2 {
		t.Fatalf("slow's event IDs %v, want the posted event's and the fact's", live.EventIDs)
	}
	if live.ID != restarted.ID || strings.Join(live.EventIDs, ",") != strings.Join(restarted.EventIDs, ",") {
		t.Errorf("slow fired as %s over %v live, as %s over %v after a restart", live.ID, live.EventIDs, restarted.ID, restarted.EventIDs)
	}
	if live.Redelivered || !restarted.Redelivered {
		t.Errorf("Redelivered: %v live (want false), %v after a restart (want true)", live.Redelivered, restarted.Redelivered)
	}
}
