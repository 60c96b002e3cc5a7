package dispatch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// stateOf builds a recorded state for invocation i of f.
func stateOf(f *engine.Firing, i int, status engine.InvocationStatus, atts ...engine.Attempt) *engine.InvocationState {
	return &engine.InvocationState{Invocation: f.Invocations[i], Status: status, Attempts: atts, Updated: t0.Add(-time.Minute)}
}

func TestRestartResumesUnfinished(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) { testRestartResumesUnfinished(t, kind.wrap) })
	}
}

func testRestartResumesUnfinished(t *testing.T, wrap func(*memStore) engine.ActionStore) {
	store := newMemStore()
	retry2 := engine.Policy{Retries: 2}

	f1 := newFiring("f1", "rs", false, invSpec{action: "x", policy: retry2}, invSpec{action: "x"})
	store.put(f1, stateOf(f1, 0, engine.StatusRunning), stateOf(f1, 1, engine.StatusQueued))

	f2 := newFiring("f2", "rs", false, invSpec{action: "x", policy: engine.Policy{Retries: 3}})
	s2 := stateOf(f2, 0, engine.StatusRetrying, engine.Attempt{N: 1, Start: t0.Add(-time.Minute), Status: engine.Retryable, Error: "503"})
	s2.NextAttempt = t0.Add(10 * time.Second)
	store.put(f2, s2)

	f3 := newFiring("f3", "rs", false, invSpec{action: "x"}, invSpec{action: "x"})
	store.put(f3, stateOf(f3, 0, engine.StatusRunning), stateOf(f3, 1, engine.StatusQueued))

	// A crash between recording an invocation's failure and skipping the
	// rest of its firing.
	f4 := newFiring("f4", "rs", false, invSpec{action: "x"}, invSpec{action: "x"})
	store.put(f4, stateOf(f4, 0, engine.StatusFailed, engine.Attempt{N: 1, Status: engine.Failed, Error: "boom"}), stateOf(f4, 1, engine.StatusQueued))

	f5 := newFiring("f5", "rs", false, invSpec{action: "x"}, invSpec{action: "x"})
	store.put(f5, stateOf(f5, 0, engine.StatusSucceeded, engine.Attempt{N: 1, Status: engine.Succeeded}), stateOf(f5, 1, engine.StatusQueued))

	act := &script{results: []engine.Result{engine.Success("ok")}}
	ws := wrap(store)
	h := start(t, store, newFakeClock(), Config{Store: ws, Actions: ActionMap(map[string]engine.Action{"x": act})})
	// f1/0 and f3/0 back off after their interrupted attempts, f2/0 waits
	// for its next_attempt; let the timers exist before time moves.
	waitFor(t, "three backoff timers", func() bool { return h.clock.pending() == 3 })
	h.clock.Advance(750 * time.Millisecond)
	// f1/0 and f3/0 resume at 750ms; both must have run before time moves
	// on to f2/0's next attempt.
	waitFor(t, "f1 and f3 final", func() bool {
		return store.status("f1/0").Final() && store.status("f1/1").Final() && store.status("f3/0").Final() && store.status("f3/1").Final()
	})
	all := []string{"f1/0", "f1/1", "f2/0", "f3/0", "f3/1", "f4/1", "f5/1"}
	h.waitFinal(all...)

	tests := []struct {
		id       string
		status   engine.InvocationStatus
		errors   []string
		firstRun time.Time
	}{
		{"f1/0", engine.StatusSucceeded, []string{ErrTextInterrupted, ""}, t0.Add(750 * time.Millisecond)},
		{"f1/1", engine.StatusSucceeded, []string{""}, time.Time{}},
		{"f2/0", engine.StatusSucceeded, []string{"503", ""}, t0.Add(10 * time.Second)},
		// Without retries, an attempt the crash cut short still runs again.
		{"f3/0", engine.StatusSucceeded, []string{ErrTextInterrupted, ""}, t0.Add(750 * time.Millisecond)},
		{"f3/1", engine.StatusSucceeded, []string{""}, time.Time{}},
		{"f4/1", engine.StatusFailed, []string{ErrTextSkipped}, time.Time{}},
		{"f5/1", engine.StatusSucceeded, []string{""}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			st := store.state(tc.id)
			if st.Status != tc.status {
				t.Fatalf("status %s, want %s", st.Status, tc.status)
			}
			var errs []string
			for _, a := range st.Attempts {
				errs = append(errs, a.Error)
			}
			if !slices.Equal(errs, tc.errors) {
				t.Fatalf("attempt errors %q, want %q", errs, tc.errors)
			}
			if tc.errors[0] == ErrTextInterrupted {
				if a := st.Attempts[0]; a.Status != engine.Retryable || !a.Start.Equal(t0.Add(-time.Minute)) {
					t.Fatalf("interrupted attempt %+v, want retryable starting when it was marked running", a)
				}
			}
			if !tc.firstRun.IsZero() {
				if got := st.Attempts[len(st.Attempts)-1].Start; !got.Equal(tc.firstRun) {
					t.Fatalf("resumed attempt started %s, want %s", got, tc.firstRun)
				}
			}
		})
	}
	if rs, ok := ws.(*readerStore); ok && rs.reads.Load() != 2 {
		t.Fatalf("%d firing reads at start, want 2 (f4 and f5 resume after index 0)", rs.reads.Load())
	}
	if act.count() != 6 {
		t.Fatalf("%d runs, want 6 (f1/0, f1/1, f2/0, f3/0, f3/1, f5/1)", act.count())
	}
}

func TestStopDrains(t *testing.T) {
	g := newGate(func(*engine.Invocation) []string { return nil })
	store := newMemStore()
	h := start(t, store, newFakeClock(), Config{MaxConcurrency: 1, Actions: ActionMap(map[string]engine.Action{"x": g})})
	h.submit(newFiring("f1", "rs", false, invSpec{action: "x"}, invSpec{action: "x"}))
	h.submit(newFiring("f2", "rs", false, invSpec{action: "x"}))
	waitFor(t, "one action running", func() bool { return g.running("*") == 1 })
	first := g.startedIDs()[0]

	stopped := make(chan error, 1)
	go func() { stopped <- h.d.Stop(context.Background()) }()
	waitFor(t, "stop begun", h.d.stopping)
	select {
	case err := <-stopped:
		t.Fatalf("stop returned %v while an action runs", err)
	default:
	}
	g.step(t)
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := store.status(first); got != engine.StatusSucceeded {
		t.Fatalf("drained action %s is %s, want succeeded", first, got)
	}
	if started := g.startedIDs(); len(started) != 1 {
		t.Fatalf("started %v after stop began", started)
	}
	unfinished, _ := store.Unfinished(context.Background())
	if len(unfinished) != 2 {
		t.Fatalf("%d unfinished after drain, want 2", len(unfinished))
	}
	for _, st := range unfinished {
		if st.Status != engine.StatusQueued || len(st.Attempts) != 0 {
			t.Fatalf("%s left %s with %d attempts, want queued untouched", st.Invocation.ID, st.Status, len(st.Attempts))
		}
	}
	if err := h.d.Stop(context.Background()); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

func TestStopCancelsAfterDeadlineAndResumes(t *testing.T) {
	g := newGate(func(*engine.Invocation) []string { return nil })
	store := newMemStore()
	h := start(t, store, newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": g})})
	h.submit(newFiring("f", "rs", false, invSpec{action: "x", policy: engine.Policy{Retries: 1}}, invSpec{action: "x"}))
	waitFor(t, "action running", func() bool { return g.running("*") == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := h.d.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stop: %v, want deadline exceeded", err)
	}
	if err := h.d.Stop(context.Background()); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	st := store.state("f/0")
	if st.Status != engine.StatusRetrying || len(st.Attempts) != 1 || !strings.HasPrefix(st.Attempts[0].Error, ErrTextShutdown) {
		t.Fatalf("cancelled invocation %s %+v, want retrying with a %q attempt", st.Status, st.Attempts, ErrTextShutdown)
	}
	if store.status("f/1") != engine.StatusQueued {
		t.Fatalf("second action %s, want queued", store.status("f/1"))
	}

	// The next start runs it again, and its one retry is still there: a
	// shutdown does not use it up.
	act := &script{results: []engine.Result{engine.RetryableFailure("503"), engine.Success("ok")}}
	h2 := start(t, store, newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act})})
	h2.waitFinal("f/0", "f/1")
	if store.status("f/0") != engine.StatusSucceeded || store.status("f/1") != engine.StatusSucceeded || act.count() != 3 {
		t.Fatalf("after restart: %s, %s, %d runs", store.status("f/0"), store.status("f/1"), act.count())
	}
	if n := len(store.state("f/0").Attempts); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

func TestLifecycleOrder(t *testing.T) {
	store := newMemStore()
	d, err := New(Config{Store: store, Actions: ActionMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatalf("stop before start: %v", err)
	}
	if err := d.Start(context.Background()); err == nil {
		t.Fatal("start after stop succeeded")
	}
	d2, _ := New(Config{Store: store, Actions: ActionMap(nil)})
	if err := d2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d2.Start(context.Background()); err == nil {
		t.Fatal("second start succeeded")
	}
	done := make(chan error, 2)
	go func() { done <- d2.Stop(context.Background()) }()
	go func() { done <- d2.Stop(context.Background()) }()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("concurrent stop: %v", err)
		}
	}
}

func TestRestartInterruptionsStopBeingFree(t *testing.T) {
	restart := func(n int) engine.Attempt {
		return engine.Attempt{N: n, Status: engine.Retryable, Error: ErrTextInterrupted, Details: map[string]any{detailInterrupted: "restart"}}
	}
	shutdown := engine.Attempt{Status: engine.Retryable, Details: map[string]any{detailInterrupted: "shutdown"}}
	cases := []struct {
		name string
		atts []engine.Attempt
		want int
	}{
		{"shutdowns are free", []engine.Attempt{shutdown, shutdown, {Status: engine.Retryable}}, 1},
		{"three restarts are free", []engine.Attempt{restart(1), restart(2), restart(3)}, 0},
		{"the fourth restart counts", []engine.Attempt{restart(1), restart(2), restart(3), restart(4)}, 1},
		{"ordinary failures count", []engine.Attempt{{Status: engine.Retryable}, restart(2), {Status: engine.Retryable}}, 2},
	}
	for _, tc := range cases {
		if got := countedAttempts(tc.atts); got != tc.want {
			t.Errorf("%s: %d counted, want %d", tc.name, got, tc.want)
		}
	}
}
