package backtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
)

// Firing is one firing of a replay: the rule, when it fired in virtual
// time, the events that caused it and the actions it would have run,
// rendered (none of them ran).
type Firing struct {
	Ruleset  string                    `json:"ruleset"`
	Rule     string                    `json:"rule"`
	Time     time.Time                 `json:"time"`
	EventIDs []string                  `json:"event_ids"`
	Events   map[string]map[string]any `json:"events,omitempty"`
	Actions  []engine.RenderedAction   `json:"actions"`
}

// Options configure Replay.
type Options struct {
	// Registry knows the source and action types; required.
	Registry *engine.Registry
	// ExtraVars override every ruleset's vars, as `run --vars` does.
	ExtraVars map[string]any
	// Until is how far virtual time runs after the last record, so timers
	// (once_after windows, multi-event timeouts) that were due by then
	// fire. Zero: the last record's time.
	Until time.Time
}

// Replay compiles the rulebook text (name is its path, for error positions
// and relative paths) and runs the records through it in order and in
// virtual time: the clock is set to each record's accepted time before it
// is processed, timers fire at their own time in between. No action is
// run; the engine's own actions (facts, post_event, throttles) take effect
// as they would live. It returns the firings in the order they happened.
func Replay(ctx context.Context, name string, text []byte, recs []engine.Record, opts Options) ([]Firing, error) {
	start := time.Now()
	if len(recs) > 0 {
		start = recs[0].Accepted
	}
	clock := engine.NewFakeClock(start)
	rb, err := rulebooks.Parse(name, text, rulebooks.Options{Registry: opts.Registry, Clock: clock, ExtraVars: opts.ExtraVars})
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, rs := range rb.Rulesets {
		known[rs.Name] = true
	}
	var out []Firing
	eng := engine.New(rb.Rulesets, engine.Options{
		Clock:  clock,
		Stdout: io.Discard,
		OnFiring: func(f *engine.Firing, actions []engine.RenderedAction) {
			bf := Firing{Ruleset: f.Ruleset, Rule: f.Rule, Time: clock.Now(), EventIDs: append([]string(nil), f.EventIDs...),
				Actions: normalizeActions(actions)}
			if len(f.Events) > 0 {
				bf.Events = map[string]map[string]any{}
				for k, ev := range f.Events {
					bf.Events[k] = normalizeMap(ev)
				}
			}
			out = append(out, bf)
		},
	})
	last := start
	for _, rec := range recs {
		if !known[rec.Source.Ruleset] {
			// The ruleset this event was sent to is not in this rulebook.
			continue
		}
		at := rec.Accepted
		if at.Before(clock.Now()) {
			at = clock.Now() // the wall clock stepped back: keep virtual time monotonic
		}
		if err := eng.AdvanceTo(ctx, clock, at); err != nil {
			return nil, err
		}
		rec.Redelivered = false
		if err := eng.Process(ctx, rec); err != nil {
			return nil, fmt.Errorf("backtest: record %d: %w", rec.Seq, err)
		}
		last = at
	}
	until := opts.Until
	if until.Before(last) {
		until = last
	}
	if err := eng.AdvanceTo(ctx, clock, until); err != nil {
		return nil, err
	}
	return out, nil
}

// normalizeActions gives rendered arguments their JSON shape, so arguments
// compare equal whatever Go types rendering produced.
func normalizeActions(in []engine.RenderedAction) []engine.RenderedAction {
	out := make([]engine.RenderedAction, len(in))
	for i, a := range in {
		out[i] = engine.RenderedAction{Type: a.Type, Args: normalizeMap(a.Args), Error: a.Error}
	}
	return out
}

func normalizeMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return map[string]any{"unencodable": err.Error()}
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}
