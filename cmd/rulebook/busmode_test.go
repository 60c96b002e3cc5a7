package main

import (
	"testing"
	"time"

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
	if got := busLookback(rb.Rulesets); got != 30*time.Minute {
		t.Fatalf("lookback = %s, want the ruleset's 30m events ttl", got)
	}
}
