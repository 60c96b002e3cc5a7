package dispatch

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// reattacher is an action whose Reattach blocks until released and then
// reports the result it is given (known or not); Run records the
// invocations it runs.
type reattacher struct {
	mu        sync.Mutex
	ran       []string
	reattach  []string
	release   chan struct{}
	result    engine.Result
	known     bool
	deadlines []time.Duration // what was left of each reattach's timeout
}

func (r *reattacher) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, inv.ID)
	return engine.Success("ran")
}

func (r *reattacher) Reattach(ctx context.Context, inv *engine.Invocation) (engine.Result, bool) {
	r.mu.Lock()
	r.reattach = append(r.reattach, inv.ID)
	if dl, ok := ctx.Deadline(); ok {
		r.deadlines = append(r.deadlines, time.Until(dl))
	}
	r.mu.Unlock()
	select {
	case <-r.release:
		return r.result, r.known
	case <-ctx.Done():
		return engine.RetryableFailure("cancelled"), true
	}
}

func (r *reattacher) runs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ran...)
}

// An invocation found running after a crash is reattached before anything
// runs: while its orphan runs, no other invocation with its lock key
// starts, and a known result stands for the attempt (it does not run
// again).
func TestReattachHoldsLockAndKeepsKnownResult(t *testing.T) {
	for _, tc := range []struct {
		name    string
		known   bool
		result  engine.Result
		wantRan []string
		errs    []string
	}{
		{"result known", true, engine.Result{Status: engine.Succeeded, Output: "orphan done"}, []string{"f2/0"}, []string{""}},
		{"result lost", false, engine.Result{}, []string{"f1/0", "f2/0"}, []string{ErrTextInterrupted, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			lock := engine.Policy{Lock: "host-1", Timeout: time.Hour}
			// f2 comes first, so it would take the lock first if Start
			// did not take it for f1.
			f1 := newFiring("f1", "rs", false, invSpec{action: "x", policy: lock})
			f2 := newFiring("f2", "rs", false, invSpec{action: "x", policy: lock})
			store.put(f2, stateOf(f2, 0, engine.StatusQueued))
			store.put(f1, stateOf(f1, 0, engine.StatusRunning))
			// f3 has no lock, but the orphan takes the only slot.
			f3 := newFiring("f3", "rs", false, invSpec{action: "x"})
			store.put(f3, stateOf(f3, 0, engine.StatusQueued))
			act := &reattacher{release: make(chan struct{}), result: tc.result, known: tc.known}
			h := start(t, store, newFakeClock(), Config{MaxConcurrency: 1, Actions: ActionMap(map[string]engine.Action{"x": act})})
			waitFor(t, "reattach called", func() bool {
				act.mu.Lock()
				defer act.mu.Unlock()
				return len(act.reattach) == 1
			})
			if got := store.status("f2/0"); got != engine.StatusQueued {
				t.Fatalf("f2/0 is %s while the orphan of f1/0 holds the lock, want queued", got)
			}
			if r := act.runs(); len(r) != 0 {
				t.Fatalf("ran %v while the orphan of f1/0 runs and holds the only slot", r)
			}
			// The attempt started a minute before t0 with a 1h timeout.
			if d := act.deadlines[0]; d < 58*time.Minute || d > 59*time.Minute {
				t.Errorf("reattach deadline in %s, want what is left of the timeout (59m)", d)
			}
			close(act.release)
			h.waitFinal("f1/0", "f2/0", "f3/0")
			got := slices.DeleteFunc(act.runs(), func(id string) bool { return id == "f3/0" })
			slices.Sort(got)
			if !slices.Equal(got, tc.wantRan) {
				t.Errorf("ran %v, want %v", got, tc.wantRan)
			}
			st := store.state("f1/0")
			if st.Status != engine.StatusSucceeded || len(st.Attempts) != len(tc.errs) {
				t.Fatalf("f1/0: %s with attempts %+v, want succeeded after %d", st.Status, st.Attempts, len(tc.errs))
			}
			for i, e := range tc.errs {
				if st.Attempts[i].Error != e {
					t.Errorf("attempt %d error %q, want %q", i+1, st.Attempts[i].Error, e)
				}
			}
			if tc.known && st.Attempts[0].Details["reattached"] != true {
				t.Errorf("reattached attempt details %v, want reattached", st.Attempts[0].Details)
			}
		})
	}
}

// An action whose process is killed by a signal while the engine begins
// to shut down (a signal to the whole service) is interrupted, not
// failed: without retries it stays retrying for the next start, with the
// attempt not counted.
func TestSignalAtShutdownInterrupts(t *testing.T) {
	store := newMemStore()
	clock := newFakeClock()
	var d *Dispatcher
	killed := actionFunc(func(ctx context.Context, inv *engine.Invocation) engine.Result {
		d.BeginShutdown()
		return engine.Result{Status: engine.Retryable, Error: "command killed by signal terminated", Signal: "SIGTERM"}
	})
	h := start(t, store, clock, Config{Actions: ActionMap(map[string]engine.Action{"x": killed})})
	d = h.d
	h.submit(newFiring("f1", "rs", false, invSpec{action: "x"}))
	waitFor(t, "the attempt recorded", func() bool { return len(store.state("f1/0").Attempts) == 1 })
	st := store.state("f1/0")
	if st.Status != engine.StatusRetrying || st.Attempts[0].Details[detailInterrupted] != "shutdown" {
		t.Fatalf("f1/0: %s %+v, want retrying, interrupted by shutdown", st.Status, st.Attempts)
	}
	if countedAttempts(st.Attempts) != 0 {
		t.Errorf("the interrupted attempt counts against the retries")
	}
}

// Killed by a signal with no shutdown following within SignalGrace: a
// failure like any other (a dead letter without retries).
func TestSignalWithoutShutdownFails(t *testing.T) {
	store := newMemStore()
	killed := actionFunc(func(ctx context.Context, inv *engine.Invocation) engine.Result {
		return engine.Result{Status: engine.Retryable, Error: "command killed by signal killed", Signal: "SIGKILL"}
	})
	h := start(t, store, newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": killed})})
	h.submit(newFiring("f1", "rs", false, invSpec{action: "x"}))
	waitFor(t, "the grace timer", func() bool { return h.clock.pending() == 1 })
	if w := h.clock.waits(); w[len(w)-1] != SignalGrace {
		t.Fatalf("waits %v, want the signal grace last", w)
	}
	h.clock.Advance(SignalGrace)
	h.waitFinal("f1/0")
	if st := store.state("f1/0"); st.Status != engine.StatusFailed {
		t.Fatalf("f1/0: %s, want failed", st.Status)
	}
}

// With a store that reads invocations back, a queued invocation that must
// wait is run from what the store holds when its turn comes, not from a
// copy kept in memory since it was submitted; one that can start at once
// runs from what it was submitted with, without reading it back. f2 waits
// behind f1 for the one global slot, or, in a sequential ruleset with
// slots to spare, for f1 to finish.
func TestQueuedInvocationsReadFromStore(t *testing.T) {
	for _, tc := range []struct {
		name           string
		sequential     bool
		maxConcurrency int
	}{
		{"waits for a slot", false, 1},
		{"waits for the ruleset's earlier firing", true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			ws := &invStore{readerStore: &readerStore{memStore: store}}
			g := newGate(func(*engine.Invocation) []string { return nil })
			var mu sync.Mutex
			seen := map[string]any{}
			act := actionFunc(func(ctx context.Context, inv *engine.Invocation) engine.Result {
				mu.Lock()
				seen[inv.ID] = inv.Args["v"]
				mu.Unlock()
				return g.Run(ctx, inv)
			})
			h := start(t, store, newFakeClock(), Config{Store: ws, MaxConcurrency: tc.maxConcurrency, Actions: ActionMap(map[string]engine.Action{"x": act})})
			h.submit(newFiring("f1", "rs", tc.sequential, invSpec{action: "x", args: map[string]any{"v": "submitted"}}))
			waitFor(t, "f1 running", func() bool { return g.running("*") == 1 })
			h.submit(newFiring("f2", "rs", tc.sequential, invSpec{action: "x", args: map[string]any{"v": "submitted"}}))
			st := store.state("f2/0")
			st.Invocation.Args = map[string]any{"v": "stored"}
			if err := store.Update(context.Background(), st); err != nil {
				t.Fatal(err)
			}
			g.step(t)
			g.step(t)
			h.waitFinal("f1/0", "f2/0")
			mu.Lock()
			defer mu.Unlock()
			if seen["f1/0"] != "submitted" || seen["f2/0"] != "stored" {
				t.Errorf("f1/0 ran with %v, f2/0 with %v; want submitted (started at once), stored (waited)", seen["f1/0"], seen["f2/0"])
			}
			if n := ws.invReads.Load(); n != 1 {
				t.Errorf("%d invocation reads, want 1: f2, which waited (f1 started at once)", n)
			}
		})
	}
}

// Firings beyond the runner bound wait in a queue, not in goroutines of
// their own, and all run in the end.
func TestParkedFiringsRun(t *testing.T) {
	store := newMemStore()
	g := newGate(func(*engine.Invocation) []string { return nil })
	h := start(t, store, newFakeClock(), Config{MaxConcurrency: 1, Actions: ActionMap(map[string]engine.Action{"x": g})})
	h.d.mu.Lock()
	h.d.maxRunners = 2
	h.d.mu.Unlock()
	ids := []string{}
	for i := 0; i < 5; i++ {
		f := newFiring(fmt.Sprintf("f%d", i), "rs", false, invSpec{action: "x"})
		h.submit(f)
		ids = append(ids, f.ID+"/0")
	}
	waitFor(t, "one action running", func() bool { return g.running("*") == 1 })
	h.d.mu.Lock()
	runners, parked := h.d.jobRunners, len(h.d.parked)
	h.d.mu.Unlock()
	if runners != 2 || parked != 3 {
		t.Fatalf("%d runners, %d parked; want 2 and 3", runners, parked)
	}
	for range ids {
		g.step(t)
	}
	h.waitFinal(ids...)
	h.waitIdle()
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	if h.d.jobRunners != 0 || len(h.d.parked) != 0 {
		t.Errorf("%d runners, %d parked after all ran; want none", h.d.jobRunners, len(h.d.parked))
	}
}
