package tick

import (
	"context"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/internal/sourcetest"
)

func TestTickFollowsTheClockUntilStopped(t *testing.T) {
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src, err := Spec().New(engine.SourceConfig{Name: "t", Type: "tick", Clock: clock, Args: map[string]any{"delay": 2}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out := make(sourcetest.Events)
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, out) }()
	for i := 0; i < 3; i++ {
		if i > 0 {
			if err := clock.BlockUntil(ctx, 1); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2*time.Second - time.Nanosecond)
			select {
			case ev := <-out:
				t.Fatalf("event %v before the delay", ev)
			default:
			}
			clock.Advance(time.Nanosecond)
		}
		select {
		case ev := <-out:
			if ev["i"] != i {
				t.Fatalf("event %d = %v", i, ev)
			}
		case <-ctx.Done():
			t.Fatalf("event %d never came", i)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{{"delay": 0}, {"delay": "soon"}, {"limit": 3}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
