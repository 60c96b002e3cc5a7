package main

import (
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/bus"
	"github.com/rulebook-dev/rulebook/engine"
)

func TestBusKey(t *testing.T) {
	key, err := busKeyFunc(DefaultBusKey)
	if err != nil {
		t.Fatal(err)
	}
	src := engine.SourceRef{Ruleset: "rs", Name: "hook"}
	withHost := engine.NewEvent(map[string]any{engine.MetaKey: map[string]any{"hosts": []any{"web1", "web2"}}}, "hook", "webhook", time.Now())
	if got := key(src, engine.Entry{Event: withHost}); got != "hook/web1" {
		t.Errorf("key = %q, want hook/web1", got)
	}
	noHost := engine.NewEvent(map[string]any{}, "hook", "webhook", time.Now())
	if got := key(src, engine.Entry{Event: noHost}); got != "hook/" {
		t.Errorf("key without hosts = %q, want hook/", got)
	}
	if _, err := busKeyFunc("event.("); err == nil {
		t.Error("a bad --bus-key compiled")
	}
}

func TestBusLookback(t *testing.T) {
	rulesets := parseRulesets(t, `- name: rs
  default_events_ttl: 30m
  sources: [{range: {limit: 1}}]
  rules:
    - {name: t, condition: event.i == 1, throttle: {once_within: 10m}, action: {none: {}}}
    - {name: a, condition: {all: [event.i == 1, event.i == 2]}, action: {none: {}}}
    - {name: n, condition: {not_all: [event.i == 1, event.i == 2], timeout: 5m}, action: {none: {}}}
`)
	if got := engine.StateWindow(rulesets); got != 30*time.Minute {
		t.Fatalf("lookback = %s, want the ruleset's 30m events ttl", got)
	}
}

// An action's feedback goes back to the partition engine that fired it,
// not to every engine of the process, and is dropped (not misapplied) once
// that partition has moved away.
func TestBusFeedbackReachesItsPartition(t *testing.T) {
	rulesets := parseRulesets(t, `- name: rs
  sources: [{range: {limit: 1}}]
  rules:
    - {name: r, condition: event.i == 1, action: {none: {}}}
`)
	a := &app{log: discardLog()}
	a.parts = newPartitions(a, "bus", rulesets)
	for _, id := range []int{0, 1} {
		opts := engine.Options{Log: discardLog(), Stream: bus.Stream("bus", id)}
		a.parts.owned[id] = &partition{owner: a.parts, id: id, stream: bus.Stream("bus", id), eng: engine.New(rulesets, opts)}
	}
	facts := func(id int) int { return len(a.parts.owned[id].eng.Facts("rs")) }

	a.feedback(&engine.Invocation{ID: "x-0", Ruleset: "rs", Stream: "bus/1"}, []map[string]any{{"restarted": true}}, nil)
	if facts(0) != 0 || facts(1) != 1 {
		t.Fatalf("facts per partition after feedback for bus/1: %d, %d; want 0, 1", facts(0), facts(1))
	}
	a.feedback(&engine.Invocation{ID: "y-0", Ruleset: "rs", Stream: "bus/7"}, []map[string]any{{"restarted": true}}, nil)
	if facts(0) != 0 || facts(1) != 1 {
		t.Fatalf("feedback for a partition not owned was applied: %d, %d", facts(0), facts(1))
	}
}

// A reload's summary counts the rulebook once, whether this process owns
// no partition, one or several, and the facts of every owned partition.
func TestBusReloadSummary(t *testing.T) {
	parse := func(rules string) []*engine.Ruleset {
		t.Helper()
		return parseRulesets(t, "- name: rs\n  sources: [{range: {limit: 1}}]\n  rules:\n"+rules)
	}
	v1 := parse("    - {name: a, condition: event.i == 1, action: {none: {}}}\n    - {name: b, condition: event.i == 2, action: {none: {}}}\n")
	v2 := parse("    - {name: a, condition: event.i == 1, action: {none: {}}}\n    - {name: b, condition: event.i == 3, action: {none: {}}}\n    - {name: c, condition: event.i == 4, action: {none: {}}}\n")

	a := &app{log: discardLog()}
	a.parts = newPartitions(a, "bus", v1)
	want := engine.ReloadSummary{Rulesets: 1, Rules: 3, KeptRules: 1, ResetRules: 2}
	if got := a.parts.replace(v2); got != want {
		t.Fatalf("no partition owned: summary %+v, want %+v", got, want)
	}

	a.parts = newPartitions(a, "bus", v1)
	for _, id := range []int{0, 1} {
		opts := engine.Options{Log: discardLog(), Stream: bus.Stream("bus", id)}
		a.parts.owned[id] = &partition{owner: a.parts, id: id, stream: bus.Stream("bus", id), eng: engine.New(v1, opts)}
	}
	a.feedback(&engine.Invocation{ID: "x-0", Ruleset: "rs", Stream: "bus/0"}, []map[string]any{{"k": 1}}, nil)
	a.feedback(&engine.Invocation{ID: "y-0", Ruleset: "rs", Stream: "bus/1"}, []map[string]any{{"k": 2}, {"k": 3}}, nil)
	want.KeptFacts = 3
	if got := a.parts.replace(v2); got != want {
		t.Fatalf("two partitions owned: summary %+v, want %+v", got, want)
	}
	for id, p := range a.parts.owned {
		if n := len(p.eng.Rulesets()[0].Rules); n != 3 {
			t.Fatalf("partition %d has %d rules after the reload, want 3", id, n)
		}
	}
}

// The replay window on start is --state-lookback, else the rulebook's
// longest state window, capped by --retention either way.
func TestReplayWindow(t *testing.T) {
	rulesets := parseRulesets(t, `- name: rs
  sources: [{range: {limit: 1}}]
  rules:
    - {name: t, condition: event.i == 1, throttle: {once_within: 10m}, action: {none: {}}}
`)
	for _, tc := range []struct {
		lookback, retention, want time.Duration
	}{
		{0, 24 * time.Hour, 10 * time.Minute},
		{6 * time.Hour, 24 * time.Hour, 6 * time.Hour},
		{48 * time.Hour, 24 * time.Hour, 24 * time.Hour},
		{0, 5 * time.Minute, 5 * time.Minute},
	} {
		a := &app{log: discardLog(), rf: &runFlags{stateLookback: tc.lookback, retention: tc.retention}}
		if got := a.replayWindow(rulesets); got != tc.want {
			t.Errorf("--state-lookback %s --retention %s: window %s, want %s", tc.lookback, tc.retention, got, tc.want)
		}
	}
}
