// Package rangesrc is the `range` source: it emits {"i": 0} ... {"i":
// limit-1}, like ansible.eda.range, for demos and tests.
package rangesrc

import (
	"context"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// Spec registers the source as `range`.
func Spec() engine.SourceSpec {
	return engine.SourceSpec{
		Type:        "range",
		Description: "emits events {i: 0} to {i: limit-1}",
		Check:       func(args map[string]any) error { _, err := parse(args); return err },
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			c, err := parse(cfg.Args)
			if err != nil {
				return nil, err
			}
			c.ref = engine.SourceRef{Ruleset: cfg.Ruleset, Name: cfg.Name, Type: cfg.Type}
			c.clock = cfg.Clock
			return c, nil
		},
		Schema: map[string]any{
			"type": "object", "additionalProperties": false,
			"properties": map[string]any{
				"limit": map[string]any{"type": "integer", "minimum": 0, "description": "number of events"},
				"delay": map[string]any{"description": "pause between events (e.g. 1s)"},
			},
		},
	}
}

// Range is a running range source.
type Range struct {
	limit int
	delay time.Duration
	ref   engine.SourceRef
	clock engine.Clock
}

var _ engine.Source = (*Range)(nil)

func parse(args map[string]any) (*Range, error) {
	r := &Range{limit: 1}
	for k, v := range args {
		switch k {
		case "limit":
			n, ok := v.(int)
			if !ok || n < 0 {
				return nil, engine.ArgErrorf([]string{k}, "want a whole number >= 0, got %v", v)
			}
			r.limit = n
		case "delay":
			d, err := engine.ParseDuration(v)
			if err != nil {
				return nil, &engine.ArgError{Path: []string{k}, Err: err}
			}
			r.delay = d
		default:
			return nil, engine.ArgErrorf([]string{k}, "unknown key %q (want limit, delay)", k)
		}
	}
	return r, nil
}

// maxBatch bounds the events of one Emit call when delay is zero: one
// durable write for up to this many events instead of one each.
const maxBatch = 256

// Run emits the events, then returns. It waits delay between two events on
// the source's clock; without a delay it emits them in batches.
func (r *Range) Run(ctx context.Context, out engine.Emitter) error {
	per := 1
	if r.delay <= 0 {
		per = maxBatch
	}
	batch := make([]engine.Entry, 0, per)
	for i := 0; i < r.limit; {
		if i > 0 && !engine.Sleep(ctx, r.clock, r.delay) {
			return nil
		}
		batch = batch[:0]
		for ; i < r.limit && len(batch) < per; i++ {
			ev := engine.NewEvent(map[string]any{"i": i}, r.ref.Name, r.ref.Type, r.clock.Now())
			batch = append(batch, engine.Entry{Event: ev})
		}
		if _, err := engine.EmitPaced(ctx, r.clock, out, r.ref, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}
