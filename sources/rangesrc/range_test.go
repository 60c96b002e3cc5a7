package rangesrc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
)

type recorder struct {
	events []engine.Event
	calls  []int
}

func (r *recorder) Emit(_ context.Context, _ engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	r.calls = append(r.calls, len(entries))
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

// TestRangeDelayFollowsTheClock: with a delay, the next event comes only
// once the source's clock has moved by the delay, and stamped with that
// time; cancelling during a wait ends Run and drops its timer.
func TestRangeDelayFollowsTheClock(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := engine.NewFakeClock(t0)
	src, err := Spec().New(engine.SourceConfig{Name: "ticks", Type: "range", Clock: clock, Args: map[string]any{"limit": 5, "delay": "10s"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out := make(sourcetest.Events)
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, out) }()

	next := func(want int) {
		t.Helper()
		select {
		case ev := <-out:
			if ev["i"] != want {
				t.Fatalf("event %v, want i=%d", ev, want)
			}
			if at := engine.Meta(ev)[engine.MetaReceivedAt]; at != clock.Now().UTC().Format(time.RFC3339Nano) {
				t.Errorf("event %d received_at %v, want the clock's %v", want, at, clock.Now())
			}
		case <-ctx.Done():
			t.Fatalf("event i=%d never came", want)
		}
	}
	next(0)
	for i := 1; i <= 2; i++ {
		if err := clock.BlockUntil(ctx, 1); err != nil {
			t.Fatalf("range never armed a timer for event %d: %v", i, err)
		}
		clock.Advance(10*time.Second - time.Nanosecond)
		if clock.Timers() != 1 {
			t.Fatalf("the delay ended before 10s had passed on the clock")
		}
		select {
		case ev := <-out:
			t.Fatalf("event %v before the delay passed", ev)
		default:
		}
		clock.Advance(time.Nanosecond)
		next(i)
	}

	if err := clock.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v after cancel, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return when cancelled during a delay")
	}
	if n := clock.Timers(); n != 0 {
		t.Fatalf("%d timers left pending after Run returned", n)
	}
}

// Without a delay the events go in batches of maxBatch, one durable write
// each, not one per event.
func TestRangeBatchesWithoutDelay(t *testing.T) {
	src, _ := Spec().New(engine.SourceConfig{Name: "t", Type: "range", Clock: engine.SystemClock{}, Args: map[string]any{"limit": 600}})
	rec := &recorder{}
	if err := src.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rec.calls) != "[256 256 88]" || rec.events[599]["i"] != 599 {
		t.Fatalf("calls %v, %d events", rec.calls, len(rec.events))
	}
}

type paced struct{ recorder }

func (p *paced) Pace(_ context.Context, n int) error {
	p.calls = append(p.calls, -n)
	return nil
}

// Each batch is paced (engine.Pacer) first: the calls are -n for a pace.
func TestRangeIsPaced(t *testing.T) {
	src, _ := Spec().New(engine.SourceConfig{Name: "t", Type: "range", Clock: engine.SystemClock{}, Args: map[string]any{"limit": 300}})
	p := &paced{}
	if err := src.Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.calls) != "[-256 256 -44 44]" {
		t.Fatalf("calls %v", p.calls)
	}
}
