package generic

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

type recorder struct {
	mu     sync.Mutex
	events []engine.Event
	full   int // answer BacklogError this many times first
}

func (r *recorder) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full > 0 {
		r.full--
		return nil, &engine.BacklogError{RetryAfter: time.Millisecond}
	}
	out := make([]engine.Outcome, len(entries))
	for _, e := range entries {
		r.events = append(r.events, e.Event)
	}
	return out, nil
}

func TestGenericEmitsPayloadsInLoops(t *testing.T) {
	spec := Spec()
	src, err := spec.New(engine.SourceConfig{Name: "g", Type: "generic", Ruleset: "rs", Clock: engine.SystemClock{},
		Args: map[string]any{"payload": []any{map[string]any{"a": 1}, map[string]any{"a": 2}}, "loop_count": 2, "create_index": "i"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{full: 2}
	if err := src.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 4 {
		t.Fatalf("emitted %d events, want 4 (backlog errors are retried, not dropped)", len(rec.events))
	}
	for i, ev := range rec.events {
		if ev["i"] != i || ev["a"] != 1+i%2 {
			t.Errorf("event %d = %v", i, ev)
		}
		if engine.EventID(ev) == "" || engine.Meta(ev)["source"].(map[string]any)["name"] != "g" {
			t.Errorf("event %d meta = %v", i, ev["meta"])
		}
	}
	// Each loop emits fresh copies.
	rec.events[0]["a"] = 99
	if rec.events[2]["a"] == 99 {
		t.Error("loops share payload maps")
	}
}

func TestGenericCheck(t *testing.T) {
	cases := []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, `missing key "payload"`},
		{map[string]any{"payload": "x"}, "payload: want a list of mappings"},
		{map[string]any{"payload": []any{1}}, "payload.0: want a mapping"},
		{map[string]any{"payload": []any{}, "loop_count": -2}, "loop_count: want a whole number >= -1"},
		{map[string]any{"payload": []any{}, "delay": "soon"}, "delay: invalid duration"},
		{map[string]any{"payload": []any{}, "paylod": 1}, `paylod: unknown key "paylod"`},
	}
	for _, tc := range cases {
		err := Spec().Check(tc.args)
		var ae *engine.ArgError
		if err == nil || !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%v) = %v, want *ArgError with %q", tc.args, err, tc.want)
		}
	}
}
