package engine_test

import (
	"context"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

type nopSource struct{}

func (nopSource) Run(context.Context, engine.Emitter) error { return nil }

func TestRegistrySourceResolver(t *testing.T) {
	reg := engine.NewRegistry()
	newNop := func(engine.SourceConfig) (engine.Source, error) { return nopSource{}, nil }
	reg.RegisterSource(engine.SourceSpec{Type: "range", Description: "registered", New: newNop})
	if _, ok := reg.Source("plugin"); ok {
		t.Fatal("an unregistered type resolved without a resolver")
	}
	var asked []string
	reg.SetSourceResolver(func(typ string) (engine.SourceSpec, bool) {
		asked = append(asked, typ)
		if typ != "plugin" {
			return engine.SourceSpec{}, false
		}
		return engine.SourceSpec{Type: typ, Description: "resolved", New: newNop}, true
	})
	if s, ok := reg.Source("range"); !ok || s.Description != "registered" {
		t.Fatalf("registered type: %+v %v", s, ok)
	}
	if s, ok := reg.Source("plugin"); !ok || s.Description != "resolved" {
		t.Fatalf("resolved type: %+v %v", s, ok)
	}
	if _, ok := reg.Source("nothing"); ok {
		t.Fatal("the resolver said no, yet the type resolved")
	}
	if len(asked) != 2 || asked[0] != "plugin" || asked[1] != "nothing" {
		t.Fatalf("resolver asked about %v; want only the unregistered types", asked)
	}
	if got := reg.SourceTypes(); len(got) != 1 || got[0] != "range" {
		t.Fatalf("SourceTypes lists %v; resolved types are not registered", got)
	}
}
