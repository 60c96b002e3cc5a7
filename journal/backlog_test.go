package journal

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func bigEvent(n, size int) engine.Event {
	return engine.Event{"payload": map[string]any{"n": float64(n), "pad": strings.Repeat("x", size)}}
}

// The backlog bounds count everything accepted and not finished: events
// not done and invocations not final, in count and in bytes, also across
// a reopen. Action feedback is never refused.
func TestBacklogCountsInvocationsAndBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mod := func(o *Options) {
		o.MaxBacklog = 3
		o.MaxBacklogBytes = 250 << 10
	}
	s := openTest(t, dir, engine.NewFakeClock(t0), mod)
	full := func(what string, entries ...engine.Entry) {
		t.Helper()
		if _, err := s.Emit(ctx, srcA, entries); err == nil {
			t.Fatalf("%s: accepted, want a BacklogError", what)
		} else if _, ok := engine.IsBacklog(err); !ok {
			t.Fatalf("%s: %v, want a BacklogError", what, err)
		}
	}
	emit(t, s, srcA, engine.Entry{Event: bigEvent(1, 100<<10)})
	emit(t, s, srcA, engine.Entry{Event: bigEvent(2, 100<<10)})
	if n, b := s.Pending(); n != 2 || b < 200<<10 || b > 210<<10 {
		t.Fatalf("pending = %d, %d bytes; want 2, ~200 KiB", n, b)
	}
	full("a third 100 KiB event over 250 KiB", engine.Entry{Event: bigEvent(3, 100<<10)})
	emit(t, s, srcA, engine.Entry{Event: bigEvent(3, 10<<10)})

	// Record 1 becomes a firing with one invocation carrying the event:
	// the event is done, the invocation is pending in its place.
	f := &engine.Firing{ID: "f1", Time: t0, Ruleset: "rs", Rule: "r", Invocations: []*engine.Invocation{
		{ID: "f1/0", FiringID: "f1", Action: "x", Event: bigEvent(1, 100<<10)},
	}}
	if err := s.Actions().Submit(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := s.Done(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n, b := s.Pending(); n != 3 || b < 210<<10 {
		t.Fatalf("pending = %d, %d bytes; want 3 (2 events, 1 invocation), >210 KiB", n, b)
	}
	full("a fourth event over the count of 3", engine.Entry{Event: bigEvent(4, 1)})
	if s.BacklogFull(srcA) == nil || s.BacklogFull(engine.FeedbackSource("rs")) != nil {
		t.Fatalf("BacklogFull at the count bound: %v for a source, %v for feedback; want full, not full",
			s.BacklogFull(srcA), s.BacklogFull(engine.FeedbackSource("rs")))
	}
	heads, err := s.actions.UnfinishedHeads(ctx)
	if err != nil || len(heads) != 1 || heads[0].Invocation.ID != "f1/0" || heads[0].Invocation.Action != "x" ||
		heads[0].Status != engine.StatusQueued || heads[0].Invocation.Event != nil {
		t.Fatalf("UnfinishedHeads = %+v, %v; want f1/0 queued, without its event", heads, err)
	}
	if _, err := s.Emit(ctx, engine.FeedbackSource("rs"), []engine.Entry{{Event: bigEvent(5, 1)}}); err != nil {
		t.Fatalf("action feedback refused: %v", err)
	}

	// A reopened store counts the same.
	n0, b0 := s.Pending()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, engine.NewFakeClock(t0), mod)
	if n, b := s.Pending(); n != n0 || b != b0 {
		t.Fatalf("after reopen pending = %d, %d; want %d, %d", n, b, n0, b0)
	}
	full("after reopen", engine.Entry{Event: bigEvent(6, 1)})

	// The invocation ends: its room is given back.
	st, err := s.actions.Invocation(ctx, "f1/0")
	if err != nil || st == nil {
		t.Fatalf("read invocation back: %v, %v", st, err)
	}
	st.Status = engine.StatusSucceeded
	st.Updated = t0.Add(time.Second)
	if err := s.Actions().Update(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.Done(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if n, b := s.Pending(); n != 0 || b != 0 {
		t.Fatalf("pending = %d, %d bytes once all is finished; want 0, 0", n, b)
	}
	if be := s.BacklogFull(srcA); be != nil {
		t.Fatalf("BacklogFull with nothing pending: %v", be)
	}
	emit(t, s, srcA, engine.Entry{Event: bigEvent(7, 300<<10)}) // larger than the bound, but nothing pending

	// Now over the byte bound with one record pending, under the count
	// bound: the probe and Emit both refuse, even the smallest event.
	if be := s.BacklogFull(srcA); be == nil {
		t.Fatal("BacklogFull over the byte bound: nil, want full")
	}
	full("a small event over the byte bound", engine.Entry{Event: bigEvent(8, 1)})
}

// The backlog counters follow every state an invocation goes through,
// whether update knows its stored size (invocations submitted by this
// process) or reads it back (the size map lost, as for one stored by an
// earlier process): after each step they are what a count of the stored
// states gives.
func TestBacklogCountersFollowUpdates(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	a := s.actions
	recount := func(step string) {
		t.Helper()
		fresh, err := newActionStore(s)
		if err != nil {
			t.Fatal(err)
		}
		if n, b := a.pending(); n != fresh.unfinished.Load() || b != fresh.unfinishedBytes.Load() {
			t.Fatalf("%s: counters %d, %d bytes; the stored states count %d, %d", step, n, b,
				fresh.unfinished.Load(), fresh.unfinishedBytes.Load())
		}
	}
	var states []*engine.InvocationState
	for i := range 3 {
		id := fmt.Sprintf("f%d", i)
		inv := &engine.Invocation{ID: id + "/0", FiringID: id, Action: "x", Event: bigEvent(i, 10*i)}
		if err := a.Submit(ctx, &engine.Firing{ID: id, Time: t0, Ruleset: "rs", Rule: "r", Invocations: []*engine.Invocation{inv}}); err != nil {
			t.Fatal(err)
		}
		states = append(states, &engine.InvocationState{Invocation: inv, Status: engine.StatusQueued, Updated: t0})
	}
	recount("submitted")
	for step := 1; step <= 4; step++ {
		if step == 3 {
			a.mu.Lock()
			a.sizes = nil
			a.mu.Unlock()
		}
		for i, st := range states {
			st.Status = engine.StatusRunning
			st.Attempts = append(st.Attempts, engine.Attempt{N: step, Output: strings.Repeat("o", 100*step+i)})
			if step == 4 && i > 0 {
				st.Status = engine.StatusSucceeded
			}
			st.Updated = t0.Add(time.Duration(step) * time.Second)
			if err := a.UpdateDeferred(ctx, st); err != nil {
				t.Fatal(err)
			}
			recount(fmt.Sprintf("step %d, invocation %d", step, i))
		}
	}
	if n, _ := a.pending(); n != 1 {
		t.Fatalf("%d invocations unfinished, want 1", n)
	}
}
