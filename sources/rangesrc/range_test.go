package rangesrc

import (
	"context"
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

type recorder struct{ events []engine.Event }

func (r *recorder) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	for _, e := range entries {
		r.events = append(r.events, e.Event)
	}
	return make([]engine.Outcome, len(entries)), nil
}

func TestRange(t *testing.T) {
	src, err := Spec().New(engine.SourceConfig{Name: "ticks", Type: "range", Clock: engine.SystemClock{}, Args: map[string]any{"limit": 3}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := src.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 3 || rec.events[0]["i"] != 0 || rec.events[2]["i"] != 2 {
		t.Fatalf("events %v", rec.events)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slow, _ := Spec().New(engine.SourceConfig{Name: "t", Type: "range", Clock: engine.SystemClock{}, Args: map[string]any{"limit": 5, "delay": "1h"}})
	rec = &recorder{}
	if err := slow.Run(ctx, rec); err != nil || len(rec.events) > 1 {
		t.Fatalf("a cancelled range ran on: %v, %d events", err, len(rec.events))
	}
	for args, want := range map[string]map[string]any{
		"limit: want a whole number >= 0": {"limit": -1},
		"delay: invalid duration":         {"delay": "x"},
		`unknown key "limt"`:              {"limt": 1},
	} {
		if err := Spec().Check(want); err == nil || !strings.Contains(err.Error(), args) {
			t.Errorf("Check(%v) = %v, want %q", want, err, args)
		}
	}
}
