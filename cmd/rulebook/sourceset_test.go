package main

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

type sourceFunc func(ctx context.Context, out engine.Emitter) error

func (f sourceFunc) Run(ctx context.Context, out engine.Emitter) error { return f(ctx, out) }

// A source that ends at once (a range of 0 in one ruleset) must not end the
// run while another ruleset's source has not even started: the run used to
// stop before the second source sent anything.
func TestSourcesEndOnlyWhenAllStartedEnded(t *testing.T) {
	reg := engine.NewRegistry()
	var s *sourceSet
	firstReturned := make(chan struct{})
	release := make(chan struct{})
	reg.RegisterSource(engine.SourceSpec{Type: "instant", New: func(engine.SourceConfig) (engine.Source, error) {
		return sourceFunc(func(context.Context, engine.Emitter) error { close(firstReturned); return nil }), nil
	}})
	reg.RegisterSource(engine.SourceSpec{Type: "held", New: func(engine.SourceConfig) (engine.Source, error) {
		// Built only once the instant source has returned and been counted.
		<-firstReturned
		for {
			s.mu.Lock()
			live := s.live
			s.mu.Unlock()
			if live == 0 {
				break
			}
			runtime.Gosched()
		}
		return sourceFunc(func(ctx context.Context, _ engine.Emitter) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}), nil
	}})
	s = newSourceSet(reg, nil, engine.SystemClock{}, discardLog())
	want := map[string]engine.SourceConfig{
		"a\x00x": {Ruleset: "a", Name: "x", Type: "instant"},
		"b\x00y": {Ruleset: "b", Name: "y", Type: "held"},
	}
	if err := s.startMissing(want); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.ended:
		t.Fatal("the sources ended while one of them still runs")
	default:
	}
	close(release)
	select {
	case <-s.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the sources did not end once all had returned")
	}
	s.stopAll()
}
