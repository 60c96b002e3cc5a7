package journal

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// auditFiring is one firing of a compaction case: its age in hours after
// t0 and the status each of its invocations is set to ("" stays queued).
type auditFiring struct {
	id     string
	hour   int
	states []engine.InvocationStatus
}

func storeAuditFirings(t testing.TB, as engine.ActionStore, fs []auditFiring) map[string]*engine.Firing {
	t.Helper()
	ctx := context.Background()
	byID := map[string]*engine.Firing{}
	var batch []*engine.Firing
	for i, af := range fs {
		f := firing(af.id, t0.Add(time.Duration(af.hour)*time.Hour), "rs", "r", []string{"e-" + af.id}, len(af.states))
		byID[af.id] = f
		if batch = append(batch, f); len(batch) == 500 || i == len(fs)-1 {
			if err := as.(engine.BatchActionStore).SubmitAll(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for _, af := range fs {
		for i, st := range af.states {
			if st != "" && st != engine.StatusQueued {
				inv := byID[af.id].Invocations[i]
				if err := as.Update(ctx, &engine.InvocationState{Invocation: inv, Status: st, Updated: inv.Created}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return byID
}

func storedIDs(t *testing.T, as engine.ActionStore) string {
	t.Helper()
	got, err := as.Query(context.Background(), engine.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(got))
	for i, e := range got {
		ids[len(got)-1-i] = e.Firing.ID // submit order
	}
	return strings.Join(ids, " ")
}

func TestActionCompactCases(t *testing.T) {
	const (
		ok  = engine.StatusSucceeded
		bad = engine.StatusFailed
		run = engine.StatusRunning
		q   = engine.StatusQueued
	)
	many := func(prefix string, n, hour int, states ...engine.InvocationStatus) []auditFiring {
		out := make([]auditFiring, n)
		for i := range out {
			out[i] = auditFiring{fmt.Sprintf("%s%04d", prefix, i), hour, states}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		firings []auditFiring
		before  int // hours after t0
		// between runs once between the scan and the deletion.
		between func(t *testing.T, as engine.ActionStore, fs map[string]*engine.Firing)
		removed int
		want    string // the firings left, in submit order; "" means check wantN only
		wantN   int    // the number left
	}{
		{
			name: "old final removed, unfinished and new kept",
			firings: []auditFiring{
				{"old-done", 0, []engine.InvocationStatus{ok, bad}},
				{"old-running", 1, []engine.InvocationStatus{ok, run}},
				{"old-queued", 1, []engine.InvocationStatus{q}},
				{"old-empty", 2, nil},
				{"at-cutoff", 3, []engine.InvocationStatus{ok}},
				{"new-done", 5, []engine.InvocationStatus{ok}},
				{"new-open", 6, []engine.InvocationStatus{run}},
			},
			before:  3,
			removed: 2,
			want:    "old-running old-queued at-cutoff new-done new-open",
		},
		{
			name: "an older firing stored after newer ones",
			firings: []auditFiring{
				{"new", 5, []engine.InvocationStatus{ok}},
				{"timer", 1, []engine.InvocationStatus{ok}},
				{"newer", 6, nil},
				{"timer-open", 2, []engine.InvocationStatus{run}},
			},
			before:  3,
			removed: 1,
			want:    "new newer timer-open",
		},
		{
			name: "final to running between scan and delete",
			firings: []auditFiring{
				{"a", 0, []engine.InvocationStatus{ok}},
				{"b", 0, []engine.InvocationStatus{ok, bad}},
				{"c", 0, []engine.InvocationStatus{ok}},
			},
			before: 3,
			between: func(t *testing.T, as engine.ActionStore, fs map[string]*engine.Firing) {
				setStatus(t, as, fs["b"].Invocations[1], engine.StatusRunning)
			},
			removed: 2,
			want:    "b",
		},
		{
			name: "unfinished to final between scan and delete",
			firings: []auditFiring{
				{"a", 0, []engine.InvocationStatus{ok}},
				{"b", 0, []engine.InvocationStatus{run}},
			},
			before: 3,
			between: func(t *testing.T, as engine.ActionStore, fs map[string]*engine.Firing) {
				setStatus(t, as, fs["b"].Invocations[0], engine.StatusSucceeded)
			},
			// The scan saw b running: it goes in the next run.
			removed: 1,
			want:    "b",
		},
		{
			name: "several chunks",
			firings: slices.Concat(
				many("old", compactChunk+200, 0, ok),
				[]auditFiring{{"stuck", 0, []engine.InvocationStatus{run}}},
				many("mid", 100, 1, bad, ok),
				many("new", 200, 4, ok),
			),
			before:  3,
			removed: compactChunk + 300,
			wantN:   201,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
			as := s.Actions()
			fs := storeAuditFirings(t, as, tc.firings)
			var calls atomic.Int32
			s.actions.hooks = &compactHooks{beforeDelete: func([]uint64) {
				if calls.Add(1) == 1 && tc.between != nil {
					tc.between(t, as, fs)
				}
			}}
			unfinished := unfinishedIDs(t, as)
			n, err := as.Compact(ctx, t0.Add(time.Duration(tc.before)*time.Hour))
			if err != nil || n != tc.removed {
				t.Fatalf("compact = %d, %v; want %d", n, err, tc.removed)
			}
			left := storedIDs(t, as)
			if tc.want != "" && left != tc.want {
				t.Fatalf("left after compaction: %q, want %q", left, tc.want)
			}
			if got := len(strings.Fields(left)); got != tc.wantN && tc.want == "" {
				t.Fatalf("%d firings left, want %d", got, tc.wantN)
			}
			if tc.between == nil && unfinishedIDs(t, as) != unfinished {
				t.Fatalf("unfinished changed: %q, was %q", unfinishedIDs(t, as), unfinished)
			}
			// Every index entry of a removed firing is gone; a kept one is
			// read back whole.
			for id, f := range fs {
				e, err := s.actions.Firing(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				kept := slices.Contains(strings.Fields(left), id)
				if kept != (e != nil) {
					t.Fatalf("firing %s: read back %v, kept %v", id, e != nil, kept)
				}
				if kept && len(e.Invocations) != len(f.Invocations) {
					t.Fatalf("firing %s: %d states, want %d", id, len(e.Invocations), len(f.Invocations))
				}
				for _, inv := range f.Invocations {
					err := as.Update(ctx, &engine.InvocationState{Invocation: inv, Status: engine.StatusSucceeded})
					if unknown := err != nil && strings.Contains(err.Error(), "unknown invocation"); unknown == kept {
						t.Fatalf("update of %s after compaction: %v (firing kept: %v)", inv.ID, err, kept)
					}
				}
			}
			// Now every invocation is final: a second run removes every old
			// firing left, including those behind the first run's starting
			// point.
			n2, err := as.Compact(ctx, t0.Add(time.Duration(tc.before)*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			old := 0
			for _, af := range tc.firings {
				if af.hour < tc.before {
					old++
				}
			}
			if n+n2 != old {
				t.Fatalf("second compact = %d, first %d; want %d old firings removed in all", n2, n, old)
			}
			for _, af := range tc.firings {
				if e, err := s.actions.Firing(ctx, af.id); err != nil || (e != nil) != (af.hour >= tc.before) {
					t.Fatalf("after the second compact, firing %s (hour %d): %v, %v", af.id, af.hour, e != nil, err)
				}
			}
		})
	}
}

// TestActionCompactStopsEarly checks that the scan stops after a run of
// compactNewerRun firings not older than the cutoff, and that an old firing
// behind them goes once they are old too.
func TestActionCompactStopsEarly(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	as := s.Actions()
	fs := []auditFiring{{"old", 0, []engine.InvocationStatus{engine.StatusSucceeded}}}
	for i := range 2 * compactNewerRun {
		fs = append(fs, auditFiring{fmt.Sprintf("new%04d", i), 5, nil})
	}
	fs = append(fs, auditFiring{"late", 1, nil})
	storeAuditFirings(t, as, fs)
	var scanned atomic.Int32
	s.actions.hooks = &compactHooks{scanned: func(uint64) { scanned.Add(1) }}
	n, err := as.Compact(ctx, t0.Add(3*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("compact = %d, %v; want 1", n, err)
	}
	if got, want := scanned.Load(), int32(1+compactNewerRun); got != want {
		t.Fatalf("scanned %d firings, want %d", got, want)
	}
	// The next run starts behind the removed firing.
	scanned.Store(0)
	if n, err := as.Compact(ctx, t0.Add(3*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second compact = %d, %v; want 0", n, err)
	}
	if got, want := scanned.Load(), int32(compactNewerRun); got != want {
		t.Fatalf("second run scanned %d firings, want %d", got, want)
	}
	// "late" is kept longer than asked, never lost.
	n, err = as.Compact(ctx, t0.Add(6*time.Hour))
	if err != nil || n != 2*compactNewerRun+1 {
		t.Fatalf("compact after the newer ones aged = %d, %v; want %d", n, err, 2*compactNewerRun+1)
	}
	if left := storedIDs(t, as); left != "" {
		t.Fatalf("left: %q", left)
	}
}

// TestActionCompactDoesNotBlockWriters pauses a compaction in the middle of
// its scan: Submit and Update must complete meanwhile, and an Update that
// makes a scanned-ahead firing unfinished again must keep it.
func TestActionCompactDoesNotBlockWriters(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), engine.NewFakeClock(t0), nil)
	as := s.Actions()
	var fs []auditFiring
	for i := range 20 {
		fs = append(fs, auditFiring{fmt.Sprintf("old%02d", i), 0, []engine.InvocationStatus{engine.StatusSucceeded}})
	}
	byID := storeAuditFirings(t, as, fs)

	paused, resume := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	s.actions.hooks = &compactHooks{scanned: func(uint64) {
		if once.CompareAndSwap(false, true) {
			close(paused)
			<-resume
		}
	}}
	resumed := false
	release := func() {
		if !resumed {
			resumed = true
			close(resume)
		}
	}
	defer release()
	type result struct {
		n   int
		err error
	}
	compacted := make(chan result, 1)
	go func() {
		n, err := as.Compact(ctx, t0.Add(time.Hour))
		compacted <- result{n, err}
	}()
	deadline := time.After(10 * time.Second)
	select {
	case <-paused:
	case <-deadline:
		t.Fatal("compaction did not reach its scan")
	}

	wrote := make(chan error, 1)
	go func() {
		if err := as.Submit(ctx, firing("during", t0, "rs", "r", nil, 1)); err != nil {
			wrote <- err
			return
		}
		inv := byID["old19"].Invocations[0]
		wrote <- as.Update(ctx, &engine.InvocationState{Invocation: inv, Status: engine.StatusRunning, Updated: t0})
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-deadline:
		t.Fatal("submit and update blocked while the compaction was scanning")
	}

	release()
	select {
	case r := <-compacted:
		// old19 was made running before the scan reached it; "during" is
		// unfinished.
		if r.err != nil || r.n != 19 {
			t.Fatalf("compact = %d, %v; want 19", r.n, r.err)
		}
	case <-deadline:
		t.Fatal("compaction did not finish")
	}
	if left := storedIDs(t, as); left != "old19 during" {
		t.Fatalf("left: %q", left)
	}
}

// BenchmarkAuditCompact is the background compaction's common case: a
// compaction every minute of a store whose 50 000 firings are all newer
// than the audit retention.
//
//	go test ./journal -run '^$' -bench AuditCompact -benchtime 3x
func BenchmarkAuditCompact(b *testing.B) {
	const firings = 50_000
	ctx := context.Background()
	s, err := Open(Options{Dir: b.TempDir(), Clock: engine.NewFakeClock(t0), Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	as := s.actions
	batch := make([]*engine.Firing, 0, 1000)
	for i := range firings {
		f := firing(fmt.Sprintf("f%06d", i), t0.Add(time.Duration(i)*time.Second), "web", "restart nginx", []string{fmt.Sprintf("e%06d", i)}, 2)
		if batch = append(batch, f); len(batch) == cap(batch) {
			if err := as.SubmitAll(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	before := t0.Add(-time.Minute)
	for b.Loop() {
		if n, err := as.Compact(ctx, before); err != nil || n != 0 {
			b.Fatalf("compact = %d, %v", n, err)
		}
	}
}
