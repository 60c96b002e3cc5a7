package journal

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// TestPaceKeepsBulkSourcesWithinTheRing: Pace holds a bulk source while
// the backlog plus its next call would pass paceWindow, lets it go once
// the engine marks records done, and never holds a call when nothing is
// pending (however big), after Close, or past its context.
func TestPaceKeepsBulkSourcesWithinTheRing(t *testing.T) {
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	ctx := context.Background()
	if err := s.Pace(ctx, 10*paceWindow); err != nil {
		t.Fatalf("empty backlog: %v", err)
	}
	entries := make([]engine.Entry, paceWindow-10)
	for i := range entries {
		entries[i] = engine.Entry{Event: ev(i)}
	}
	emit(t, s, srcA, entries...)
	if err := s.Pace(ctx, 10); err != nil {
		t.Fatalf("a call that fits: %v", err)
	}

	paced := make(chan error, 1)
	go func() { paced <- s.Pace(ctx, 11) }()
	select {
	case err := <-paced:
		t.Fatalf("a call past the window was not held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.Done(ctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-paced:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pace was not released by Done")
	}

	short, cancel := context.WithCancel(ctx)
	go func() { paced <- s.Pace(short, paceWindow) }()
	cancel()
	if err := <-paced; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Pace: %v", err)
	}
	go func() { paced <- s.Pace(ctx, paceWindow) }()
	s.Close()
	select {
	case err := <-paced:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pace was not released by Close")
	}
}
