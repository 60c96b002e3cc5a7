// Package generic is the `generic` source: it emits a list of payloads,
// optionally in a loop, like ansible.eda.generic.
package generic

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
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
				"payload": map[string]any{"description": "events to emit: a list of mappings, or one mapping",
					"oneOf": []any{map[string]any{"type": "array", "items": map[string]any{"type": "object"}}, map[string]any{"type": "object"}}},
				"loop_count":     map[string]any{"type": "integer", "minimum": -1, "description": "how often to emit the list; -1 forever (default 1)"},
				"loop_delay":     map[string]any{"description": "pause between loops"},
				"delay":          map[string]any{"description": "pause between events (same as event_delay)"},
				"event_delay":    map[string]any{"description": "pause between events (seconds or a duration)"},
				"startup_delay":  map[string]any{"description": "pause before the first event"},
				"repeat_delay":   map[string]any{"description": "pause between repeats of one event"},
				"repeat_count":   map[string]any{"type": "integer", "minimum": 0, "description": "how often each event is emitted in a row (default 1)"},
				"shutdown_after": map[string]any{"description": "pause after the last event before the source ends"},
				"randomize":      map[string]any{"type": "boolean", "description": "shuffle the payload on every loop"},
				"display":        map[string]any{"type": "boolean", "description": "print each event on stdout"},
				"timestamp":      map[string]any{"type": "boolean", "description": "add a timestamp key"},
				"time_format":    map[string]any{"type": "string", "enum": []any{"local", "iso8601", "epoch"}, "description": "format of the timestamp key (default local)"},
				"blob_size":      map[string]any{"type": "integer", "minimum": 0, "description": "add a blob key of this many bytes"},
				"create_index":   map[string]any{"type": "string", "description": "add a key with this name holding the event's index"},
			},
		},
	}
}

// Generic is a running generic source.
type Generic struct {
	payload      []map[string]any
	loops        int
	loopDelay    time.Duration
	delay        time.Duration
	startupDelay time.Duration
	repeatDelay  time.Duration
	repeatCount  int
	shutdown     time.Duration
	randomize    bool
	display      bool
	timestamp    bool
	timeFormat   string
	blob         string // blob_size bytes of "x", made once
	index        string
	ref          engine.SourceRef
	clock        engine.Clock
	stdout       io.Writer
	rand         *rand.Rand
}

var _ engine.Source = (*Generic)(nil)

// The arguments, as ansible.eda.generic names them; delay is this
// project's older name of event_delay.
const argNames = "payload, randomize, display, timestamp, time_format, create_index, startup_delay, event_delay, repeat_delay, loop_delay, loop_count, repeat_count, shutdown_after, blob_size"

func parse(args map[string]any) (*Generic, error) {
	g := &Generic{loops: 1, repeatCount: 1, timeFormat: "local", stdout: os.Stdout}
	p, ok := args["payload"]
	if !ok {
		return nil, engine.ArgErrorf(nil, "missing key \"payload\"")
	}
	list, ok := p.([]any)
	if m, isMap := p.(map[string]any); isMap {
		list, ok = []any{m}, true
	}
	if !ok {
		return nil, engine.ArgErrorf([]string{"payload"}, "want a list of mappings or one mapping")
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
		case "loop_count", "repeat_count":
			n, ok := v.(int)
			min := -1
			if k == "repeat_count" {
				min = 0
			}
			if !ok || n < min {
				return nil, engine.ArgErrorf([]string{k}, "want a whole number >= %d, got %v", min, v)
			}
			if k == "loop_count" {
				g.loops = n
			} else {
				g.repeatCount = n
			}
		case "blob_size":
			n, ok := v.(int)
			if !ok || n < 0 {
				return nil, engine.ArgErrorf([]string{k}, "want a whole number >= 0, got %v", v)
			}
			g.blob = strings.Repeat("x", n)
		case "loop_delay", "delay", "event_delay", "startup_delay", "repeat_delay", "shutdown_after":
			d, err := engine.ParseDuration(v)
			if err != nil {
				return nil, &engine.ArgError{Path: []string{k}, Err: err}
			}
			if d < 0 {
				return nil, engine.ArgErrorf([]string{k}, "must not be negative")
			}
			switch k {
			case "delay", "event_delay":
				g.delay = d
			case "loop_delay":
				g.loopDelay = d
			case "startup_delay":
				g.startupDelay = d
			case "repeat_delay":
				g.repeatDelay = d
			case "shutdown_after":
				g.shutdown = d
			}
		case "randomize", "display", "timestamp":
			b, ok := v.(bool)
			if !ok {
				return nil, engine.ArgErrorf([]string{k}, "want true or false, got %v", v)
			}
			switch k {
			case "randomize":
				g.randomize = b
			case "display":
				g.display = b
			case "timestamp":
				g.timestamp = b
			}
		case "time_format":
			s, ok := v.(string)
			if !ok || (s != "local" && s != "iso8601" && s != "epoch") {
				return nil, engine.ArgErrorf([]string{k}, "want local, iso8601 or epoch, got %v", v)
			}
			g.timeFormat = s
		case "create_index":
			s, ok := v.(string)
			if !ok || s == "" {
				return nil, engine.ArgErrorf([]string{k}, "want a key name")
			}
			g.index = s
		default:
			return nil, engine.ArgErrorf([]string{k}, "unknown key %q (want %s)", k, argNames)
		}
	}
	return g, nil
}

// maxBatch bounds the events of one Emit call when no wait separates
// them: one durable write for up to this many events instead of one each.
const maxBatch = 256

// Run emits the payloads, then returns, as ansible.eda.generic does: after
// startup_delay, each payload item repeat_count times (repeat_delay
// apart), event_delay between items, loop_delay between loops, loop_count
// loops (-1: forever), and shutdown_after before returning. Waits are on
// the source's clock.
//
// Events that no wait separates go in batches of up to maxBatch, each
// paced (engine.EmitPaced), so a generator without delays costs one
// durable write per batch rather than per event. Before any non-zero
// wait the pending batch is emitted, so an event is never held back
// across a wait; without a loop_delay a batch spans loops, so a small
// payload looped forever is batched too.
func (g *Generic) Run(ctx context.Context, out engine.Emitter) error {
	if !engine.Sleep(ctx, g.clock, g.startupDelay) {
		return nil
	}
	batch := make([]engine.Entry, 0, min(maxBatch, max(1, len(g.payload)*g.repeatCount)))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := engine.EmitPaced(ctx, g.clock, out, g.ref, batch)
		clear(batch)
		batch = batch[:0]
		return err
	}
	// wait sleeps d, emitting the pending batch first when d is not zero.
	wait := func(d time.Duration) (bool, error) {
		if d <= 0 {
			return true, nil
		}
		if err := flush(); err != nil {
			return false, err
		}
		return engine.Sleep(ctx, g.clock, d), nil
	}
	stop := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// order is the payload's indexes; randomize shuffles it in place on
	// every loop (a shuffle of any order is as random as of the first).
	order := make([]int, len(g.payload))
	for i := range order {
		order[i] = i
	}
	n := 0
	first := true
	for loop := 0; g.loops < 0 || loop < g.loops; loop++ {
		if loop > 0 {
			if ok, err := wait(g.loopDelay); err != nil || !ok {
				return stop(err)
			}
		}
		if g.randomize {
			g.rng().Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		for _, i := range order {
			for r := 0; r < g.repeatCount; r++ {
				d := g.delay
				if r > 0 {
					d = g.repeatDelay
				}
				if !first {
					if ok, err := wait(d); err != nil || !ok {
						return stop(err)
					}
				}
				first = false
				body := deepCopy(g.payload[i])
				if g.index != "" {
					body[g.index] = n
				}
				if g.timestamp {
					body["timestamp"] = g.stamp(g.clock.Now())
				}
				if g.blob != "" {
					body["blob"] = g.blob
				}
				n++
				if g.display {
					b, _ := json.Marshal(body)
					fmt.Fprintln(g.stdout, string(b))
				}
				batch = append(batch, engine.Entry{Event: engine.NewEvent(body, g.ref.Name, g.ref.Type, g.clock.Now())})
				if len(batch) == maxBatch {
					if err := flush(); err != nil {
						return stop(err)
					}
				}
			}
		}
	}
	if err := flush(); err != nil {
		return stop(err)
	}
	engine.Sleep(ctx, g.clock, g.shutdown)
	return nil
}

func (g *Generic) rng() *rand.Rand {
	if g.rand == nil {
		g.rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	}
	return g.rand
}

// stamp formats the timestamp key as time_format says: local (Python's
// str(datetime.now())), iso8601, or epoch seconds.
func (g *Generic) stamp(t time.Time) any {
	switch g.timeFormat {
	case "iso8601":
		return t.Local().Format("2006-01-02T15:04:05.000000")
	case "epoch":
		return t.Unix()
	}
	return t.Local().Format("2006-01-02 15:04:05.000000")
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
