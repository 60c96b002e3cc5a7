// Package tick is the `tick` source: it emits {"i": 0}, {"i": 1}, ...
// every delay, forever, like ansible.eda.tick.
package tick

import (
	"context"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// Spec registers the source as `tick`.
func Spec() engine.SourceSpec {
	return engine.SourceSpec{
		Type:        "tick",
		Description: "emits {i: 0}, {i: 1}, ... every delay, until stopped",
		Check:       func(args map[string]any) error { _, err := parse(args); return err },
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			t, err := parse(cfg.Args)
			if err != nil {
				return nil, err
			}
			t.ref = engine.SourceRef{Ruleset: cfg.Ruleset, Name: cfg.Name, Type: cfg.Type}
			t.clock = cfg.Clock
			return t, nil
		},
		Schema: map[string]any{
			"type": "object", "additionalProperties": false,
			"properties": map[string]any{
				"delay": map[string]any{"description": "pause between events: seconds or a duration (default 1)"},
			},
		},
	}
}

// Tick is a running tick source.
type Tick struct {
	delay time.Duration
	ref   engine.SourceRef
	clock engine.Clock
}

var _ engine.Source = (*Tick)(nil)

func parse(args map[string]any) (*Tick, error) {
	t := &Tick{delay: time.Second}
	for k, v := range args {
		switch k {
		case "delay":
			d, err := engine.ParseDuration(v)
			if err != nil {
				return nil, &engine.ArgError{Path: []string{k}, Err: err}
			}
			if d <= 0 {
				return nil, engine.ArgErrorf([]string{k}, "must be positive")
			}
			t.delay = d
		default:
			return nil, engine.ArgErrorf([]string{k}, "unknown key %q (want delay)", k)
		}
	}
	return t, nil
}

// Run emits an event, waits delay on the source's clock, and again, until
// ctx ends.
func (t *Tick) Run(ctx context.Context, out engine.Emitter) error {
	for i := 0; ; i++ {
		if i > 0 && !engine.Sleep(ctx, t.clock, t.delay) {
			return nil
		}
		ev := engine.NewEvent(map[string]any{"i": i}, t.ref.Name, t.ref.Type, t.clock.Now())
		if _, err := engine.EmitWait(ctx, t.clock, out, t.ref, []engine.Entry{{Event: ev}}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
