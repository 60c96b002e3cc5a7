package main

import (
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/bus"
	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
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
	reg, closeReg, err := newRegistry(registryOptions{log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeReg()
	src := `- name: rs
  default_events_ttl: 30m
  sources: [{range: {limit: 1}}]
  rules:
    - {name: t, condition: event.i == 1, throttle: {once_within: 10m}, action: {none: {}}}
    - {name: a, condition: {all: [event.i == 1, event.i == 2]}, action: {none: {}}}
    - {name: n, condition: {not_all: [event.i == 1, event.i == 2], timeout: 5m}, action: {none: {}}}
`
	rb, err := rulebooks.Parse("rb.yml", []byte(src), rulebooks.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if got := engine.StateWindow(rb.Rulesets); got != 30*time.Minute {
		t.Fatalf("lookback = %s, want the ruleset's 30m events ttl", got)
	}
}

// An action's feedback goes back to the partition engine that fired it,
// not to every engine of the process, and is dropped (not misapplied) once
// that partition has moved away.
func TestBusFeedbackReachesItsPartition(t *testing.T) {
	reg, closeReg, err := newRegistry(registryOptions{log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeReg()
	src := `- name: rs
  sources: [{range: {limit: 1}}]
  rules:
    - {name: r, condition: event.i == 1, action: {none: {}}}
`
	rb, err := rulebooks.Parse("rb.yml", []byte(src), rulebooks.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{log: discardLog()}
	a.parts = newPartitions(a, "bus", rb.Rulesets)
	for _, id := range []int{0, 1} {
		opts := engine.Options{Log: discardLog(), Stream: bus.Stream("bus", id)}
		a.parts.owned[id] = &partition{owner: a.parts, id: id, stream: bus.Stream("bus", id), eng: engine.New(rb.Rulesets, opts)}
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

// The replay window on start is --state-lookback, else the rulebook's
// longest state window, capped by --retention either way.
func TestReplayWindow(t *testing.T) {
	reg, closeReg, err := newRegistry(registryOptions{log: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer closeReg()
	rb, err := rulebooks.Parse("rb.yml", []byte(`- name: rs
  sources: [{range: {limit: 1}}]
  rules:
    - {name: t, condition: event.i == 1, throttle: {once_within: 10m}, action: {none: {}}}
`), rulebooks.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lookback, retention, want time.Duration
	}{
		{0, 24 * time.Hour, 10 * time.Minute},
		{6 * time.Hour, 24 * time.Hour, 6 * time.Hour},
		{48 * time.Hour, 24 * time.Hour, 24 * time.Hour},
		{0, 5 * time.Minute, 5 * time.Minute},
	} {
		a := &app{log: discardLog(), rf: &runFlags{stateLookback: tc.lookback, retention: tc.retention}}
		if got := a.replayWindow(rb.Rulesets); got != tc.want {
			t.Errorf("--state-lookback %s --retention %s: window %s, want %s", tc.lookback, tc.retention, got, tc.want)
		}
	}
}
