package journal

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/rulebook-dev/rulebook/engine"
)

// A deferred update is visible at once but durable only with the next
// synced write (Sync, or another invocation's synced Update), and a power
// loss never keeps a later state of an invocation without the earlier
// ones: the WAL's order holds. The dispatcher relies on both (an attempt
// recorded as running and then finished without waiting for a sync).
func TestUpdateDeferred(t *testing.T) {
	ctx := context.Background()
	mem, s := openCrashable(t, nil)
	as := s.Actions().(engine.DeferredActionStore)
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	f := firing("f1", at, "rs", "r", nil, 2)
	if err := as.Submit(ctx, f); err != nil {
		t.Fatal(err)
	}
	a, b := f.Invocations[0], f.Invocations[1]
	deferred := func(inv *engine.Invocation, status engine.InvocationStatus) {
		t.Helper()
		if err := as.UpdateDeferred(ctx, &engine.InvocationState{Invocation: inv, Status: status, Updated: at}); err != nil {
			t.Fatal(err)
		}
	}
	statusAfterCrash := func(pct int, seed uint64, id string) engine.InvocationStatus {
		t.Helper()
		c, err := openAfterCrash(mem, vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, 3))})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		st, err := c.Actions().(*actionStore).Invocation(ctx, id)
		if err != nil || st == nil {
			t.Fatalf("invocation %s after a crash: %v, %v", id, st, err)
		}
		return st.Status
	}

	deferred(a, engine.StatusRunning)
	deferred(a, engine.StatusSucceeded)
	if got := unfinishedIDs(t, as); got != "f1/1:queued" {
		t.Fatalf("unfinished right after the deferred updates: %q, want only f1/1 (visible at once)", got)
	}
	if got := statusAfterCrash(0, 1, a.ID); got != engine.StatusQueued {
		t.Fatalf("a power loss that keeps nothing unsynced left %s, want queued: the update was synced", got)
	}
	// Random parts of the unsynced tail survive: always a prefix.
	for seed := range uint64(30) {
		got := statusAfterCrash(rand.New(rand.NewPCG(seed, 9)).IntN(101), seed, a.ID)
		switch got {
		case engine.StatusQueued, engine.StatusRunning, engine.StatusSucceeded:
		default:
			t.Fatalf("seed %d: status %s after a crash", seed, got)
		}
	}

	// Another invocation's synced update makes the earlier deferred ones
	// durable.
	setStatus(t, as, b, engine.StatusRunning)
	if got := statusAfterCrash(0, 2, a.ID); got != engine.StatusSucceeded {
		t.Fatalf("after a later synced update: %s, want succeeded", got)
	}

	c := firing("f2", at, "rs", "r", nil, 1).Invocations[0]
	if err := as.Submit(ctx, firing("f2", at, "rs", "r", nil, 1)); err != nil {
		t.Fatal(err)
	}
	deferred(c, engine.StatusFailed)
	if err := as.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := statusAfterCrash(0, 3, c.ID); got != engine.StatusFailed {
		t.Fatalf("after Sync: %s, want failed", got)
	}
	if err := as.UpdateDeferred(ctx, &engine.InvocationState{Invocation: &engine.Invocation{ID: "nope"}, Status: engine.StatusFailed}); err == nil {
		t.Fatal("a deferred update of an unknown invocation succeeded")
	}
}
