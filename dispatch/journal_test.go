package dispatch

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/journal"
)

// openJournal opens the real embedded store in dir.
func openJournal(t *testing.T, dir string) *journal.Store {
	t.Helper()
	js, err := journal.Open(journal.Options{Dir: dir, Log: zerolog.Nop()})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	return js
}

// journalStates returns the recorded state of every invocation by ID.
func journalStates(t *testing.T, store engine.ActionStore) map[string]*engine.InvocationState {
	t.Helper()
	entries, err := store.Query(context.Background(), engine.AuditFilter{})
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	out := map[string]*engine.InvocationState{}
	for _, e := range entries {
		for _, st := range e.Invocations {
			out[st.Invocation.ID] = st
		}
	}
	return out
}

func newDispatcher(t *testing.T, store engine.ActionStore, clock Clock, actions map[string]engine.Action) *Dispatcher {
	t.Helper()
	d, err := New(Config{
		Store: store, Clock: clock, Rand: func() float64 { return 0.5 }, MaxConcurrency: 1,
		Actions: ActionMap(actions), Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	return d
}

// TestJournalRestart runs the dispatcher against the real embedded store:
// work is queued, one attempt is cancelled by a stop, one is left running
// as a crash would leave it, the store is closed and reopened, and a new
// dispatcher brings every invocation to the final state expected.
func TestJournalRestart(t *testing.T) {
	dir := t.TempDir()
	js := openJournal(t, dir)
	clock := newFakeClock()
	if _, ok := js.Actions().(FiringReader); !ok {
		t.Fatal("the journal's action store does not implement FiringReader: resubmits would scan the audit trail")
	}

	g := newGate(func(*engine.Invocation) []string { return nil })
	d1 := newDispatcher(t, js.Actions(), clock, map[string]engine.Action{"x": g, "fail": g})
	firings := []*engine.Firing{
		newFiring("f1", "rs", false, invSpec{action: "x", policy: engine.Policy{Retries: 1}}, invSpec{action: "x"}),
		newFiring("f2", "rs", false, invSpec{action: "x", policy: engine.Policy{Retries: 1}}),
		newFiring("f3", "rs", false, invSpec{action: "fail"}, invSpec{action: "x"}),
		newFiring("f4", "rs", false, invSpec{action: "x", policy: engine.Policy{Retries: 0}}),
	}
	for _, f := range firings {
		if err := d1.Submit(context.Background(), f); err != nil {
			t.Fatalf("submit %s: %v", f.ID, err)
		}
	}
	waitFor(t, "one action running", func() bool { return g.running("*") == 1 })
	cancelled := g.startedIDs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := d1.Stop(ctx); err == nil {
		t.Fatal("stop with a running action past its deadline returned nil")
	}

	// A crash while f2/0 and f4/0 ran leaves them recorded as running.
	before := journalStates(t, js.Actions())
	if st := before[cancelled]; st.Status != engine.StatusRetrying || !strings.HasPrefix(st.Attempts[0].Error, ErrTextShutdown) {
		t.Fatalf("%s after stop: %s %+v", cancelled, st.Status, st.Attempts)
	}
	for _, id := range []string{"f2/0", "f4/0"} {
		if id == cancelled {
			continue
		}
		st := before[id]
		st.Status = engine.StatusRunning
		if err := js.Actions().Update(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
	if err := js.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	js = openJournal(t, dir)
	defer js.Close()
	ok := &script{results: []engine.Result{engine.Success("done")}}
	bad := &script{results: []engine.Result{engine.Failure("task failed")}}
	d2 := newDispatcher(t, js.Actions(), clock, map[string]engine.Action{"x": ok, "fail": bad})
	defer d2.Stop(context.Background())
	waitFor(t, "every invocation final", func() bool {
		for _, st := range journalStates(t, js.Actions()) {
			if !st.Status.Final() {
				if d, ok := clock.next(); ok {
					clock.Advance(d)
				}
				return false
			}
		}
		return true
	})

	after := journalStates(t, js.Actions())
	want := map[string]engine.InvocationStatus{
		"f1/0": engine.StatusSucceeded, "f1/1": engine.StatusSucceeded,
		"f2/0": engine.StatusSucceeded,
		"f3/0": engine.StatusFailed, "f3/1": engine.StatusFailed,
		// No retries, but the attempt the crash cut short is the engine's
		// fault and runs again (as does one cancelled by the stop).
		"f4/0": engine.StatusSucceeded,
	}
	if len(after) != len(want) {
		t.Fatalf("%d invocations recorded, want %d", len(after), len(want))
	}
	for id, status := range want {
		st := after[id]
		if st.Status != status {
			t.Errorf("%s: %s %+v, want %s", id, st.Status, st.Attempts, status)
		}
	}
	if st := after["f3/1"]; st.Attempts[len(st.Attempts)-1].Error != ErrTextSkipped {
		t.Errorf("f3/1 not skipped: %+v", st.Attempts)
	}
	for _, id := range []string{"f2/0", "f4/0"} {
		if id != cancelled && after[id].Attempts[0].Error != ErrTextInterrupted {
			t.Errorf("%s: first attempt %+v, want %q", id, after[id].Attempts[0], ErrTextInterrupted)
		}
	}

	// Resubmitting a finished firing (its event replayed) changes nothing.
	waitFor(t, "dispatcher idle", func() bool {
		d2.mu.Lock()
		defer d2.mu.Unlock()
		return len(d2.active) == 0
	})
	runs := ok.count()
	firings[0].Redelivered = true
	if err := d2.Submit(context.Background(), firings[0]); err != nil {
		t.Fatal(err)
	}
	if ok.count() != runs || len(journalStates(t, js.Actions())["f1/0"].Attempts) != len(after["f1/0"].Attempts) {
		t.Fatal("resubmitted finished firing ran again")
	}
	if u, err := js.Actions().Unfinished(context.Background()); err != nil || len(u) != 0 {
		t.Fatalf("unfinished after the run: %d, %v", len(u), err)
	}

	entries, err := js.Actions().Query(context.Background(), engine.AuditFilter{Status: engine.StatusFailed})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteTable(&b, entries); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "task failed") || !strings.Contains(b.String(), ErrTextSkipped) {
		t.Fatalf("audit table misses the failure:\n%s", b.String())
	}
}

// BenchmarkJournalFiring measures one firing with one succeeding action
// through the real store: Submit (stored, read back) and the running and
// succeeded records, with firings submitted from parallel goroutines.
func BenchmarkJournalFiring(b *testing.B) {
	js, err := journal.Open(journal.Options{Dir: b.TempDir(), Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer js.Close()
	act := actionFunc(func(context.Context, *engine.Invocation) engine.Result { return engine.Success("ok") })
	d, err := New(Config{Store: js.Actions(), Actions: ActionMap(map[string]engine.Action{"x": act}), Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer d.Stop(context.Background())
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f := newFiring(fmt.Sprintf("b%d", next.Add(1)), "rs", false, invSpec{action: "x"})
			if err := d.Submit(context.Background(), f); err != nil {
				b.Error(err)
				return
			}
		}
	})
	waitFor(b, "every firing final", func() bool {
		u, err := js.Actions().Unfinished(context.Background())
		return err == nil && len(u) == 0
	})
}
