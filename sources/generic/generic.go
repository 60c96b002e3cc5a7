// Package generic is the `generic` source: it emits a list of payloads,
// optionally in a loop, like ansible.eda.generic.
package generic

import (
	"context"
	"fmt"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// Spec registers the source as `generic`.
func Spec() engine.SourceSpec {
	return engine.SourceSpec{
		Type:        "generic",
		Description: "emits the given payloads, loop_count times",
		Check:       func(args map[string]any) error { _, err := parse(args); return err },
		New: func(cfg engine.SourceConfig) (engine.Source, error) {
			g, err := parse(cfg.Args)
			if err != nil {
				return nil, err
			}
			g.ref = engine.SourceRef{Ruleset: cfg.Ruleset, Name: cfg.Name, Type: cfg.Type}
			g.clock = cfg.Clock
			return g, nil
		},
		Schema: map[string]any{
			"type": "object", "additionalProperties": false, "required": []any{"payload"},
			"properties": map[string]any{
				"payload":      map[string]any{"type": "array", "items": map[string]any{"type": "object"}, "description": "events to emit (each a mapping)"},
				"loop_count":   map[string]any{"type": "integer", "minimum": -1, "description": "how often to emit the list; -1 forever (default 1)"},
				"loop_delay":   map[string]any{"description": "pause between loops"},
				"delay":        map[string]any{"description": "pause between events"},
				"create_index": map[string]any{"type": "string", "description": "add a key with this name holding the event's index"},
			},
		},
	}
}

// Generic is a running generic source.
type Generic struct {
	payload   []map[string]any
	loops     int
	loopDelay time.Duration
	delay     time.Duration
	index     string
	ref       engine.SourceRef
	clock     engine.Clock
}

var _ engine.Source = (*Generic)(nil)

func parse(args map[string]any) (*Generic, error) {
	g := &Generic{loops: 1}
	p, ok := args["payload"]
	if !ok {
		return nil, engine.ArgErrorf(nil, "missing key \"payload\"")
	}
	list, ok := p.([]any)
	if !ok {
		return nil, engine.ArgErrorf([]string{"payload"}, "want a list of mappings")
	}
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, engine.ArgErrorf([]string{"payload", fmt.Sprint(i)}, "want a mapping, got %T", item)
		}
		g.payload = append(g.payload, m)
	}
	for k, v := range args {
		switch k {
		case "payload":
		case "loop_count":
			n, ok := v.(int)
			if !ok || n < -1 {
				return nil, engine.ArgErrorf([]string{k}, "want a whole number >= -1, got %v", v)
			}
			g.loops = n
		case "loop_delay", "delay":
			d, err := engine.ParseDuration(v)
			if err != nil {
				return nil, &engine.ArgError{Path: []string{k}, Err: err}
			}
			if k == "delay" {
				g.delay = d
			} else {
				g.loopDelay = d
			}
		case "create_index":
			s, ok := v.(string)
			if !ok || s == "" {
				return nil, engine.ArgErrorf([]string{k}, "want a key name")
			}
			g.index = s
		default:
			return nil, engine.ArgErrorf([]string{k}, "unknown key %q (want payload, loop_count, loop_delay, delay, create_index)", k)
		}
	}
	return g, nil
}

// maxBatch bounds the events of one Emit call when delay is zero: one
// durable write for up to this many events instead of one each.
const maxBatch = 256

// Run emits the payloads, then returns. It waits delay before every event
// but the first, and loop_delay before every loop but the first, on the
// source's clock. Without a delay the events of a loop go in batches.
func (g *Generic) Run(ctx context.Context, out engine.Emitter) error {
	per := 1
	if g.delay <= 0 {
		per = maxBatch
	}
	batch := make([]engine.Entry, 0, per)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := engine.EmitPaced(ctx, g.clock, out, g.ref, batch)
		clear(batch)
		batch = batch[:0]
		return err
	}
	n := 0
	for loop := 0; g.loops < 0 || loop < g.loops; loop++ {
		if loop > 0 && !engine.Sleep(ctx, g.clock, g.loopDelay) {
			return nil
		}
		for i, p := range g.payload {
			if (loop > 0 || i > 0) && g.delay > 0 && !engine.Sleep(ctx, g.clock, g.delay) {
				return nil
			}
			body := deepCopy(p)
			if g.index != "" {
				body[g.index] = n
			}
			n++
			batch = append(batch, engine.Entry{Event: engine.NewEvent(body, g.ref.Name, g.ref.Type, g.clock.Now())})
			if len(batch) < per && i < len(g.payload)-1 {
				continue
			}
			if err := flush(); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			out[k] = deepCopy(x)
		case []any:
			l := make([]any, len(x))
			for i, e := range x {
				if mm, ok := e.(map[string]any); ok {
					l[i] = deepCopy(mm)
				} else {
					l[i] = e
				}
			}
			out[k] = l
		default:
			out[k] = v
		}
	}
	return out
}
