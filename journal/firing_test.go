package journal

import (
	"context"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestFiringByID(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Clock: engine.NewFakeClock(time.Unix(1e9, 0))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	as := s.Actions().(*actionStore)
	for _, id := range []string{"f1", "f2"} {
		f := &engine.Firing{ID: id, Ruleset: "rs", Rule: "r", Invocations: []*engine.Invocation{{ID: id + "-0", FiringID: id, Action: "none"}}}
		if err := as.Submit(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	got, err := as.Firing(ctx, "f1")
	if err != nil || got == nil {
		t.Fatalf("Firing(f1) = %v, %v", got, err)
	}
	if got.Firing.ID != "f1" || len(got.Invocations) != 1 || got.Invocations[0].Invocation.ID != "f1-0" || got.Invocations[0].Status != engine.StatusQueued {
		t.Fatalf("Firing(f1) = %+v", got)
	}
	if missing, err := as.Firing(ctx, "nope"); err != nil || missing != nil {
		t.Fatalf("Firing(nope) = %v, %v; want nil, nil", missing, err)
	}
}

func TestSubmitAllStoresABatchOnceEach(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Clock: engine.NewFakeClock(time.Unix(1e9, 0))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	as := s.Actions().(engine.BatchActionStore)
	mk := func(id string) *engine.Firing {
		return &engine.Firing{ID: id, Ruleset: "rs", Rule: "r", Invocations: []*engine.Invocation{{ID: id + "-0", FiringID: id, Action: "none"}}}
	}
	if err := as.Submit(ctx, mk("a")); err != nil {
		t.Fatal(err)
	}
	// "a" is stored already (and comes again from a redelivered record),
	// "b" appears twice: each is stored once.
	again := mk("a")
	again.Redelivered = true
	if err := as.SubmitAll(ctx, []*engine.Firing{again, mk("b"), mk("b"), mk("c")}); err != nil {
		t.Fatal(err)
	}
	entries, err := as.Query(ctx, engine.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Firing.ID)
	}
	if len(ids) != 3 || ids[0] != "c" || ids[1] != "b" || ids[2] != "a" {
		t.Fatalf("stored firings %v, want c b a", ids)
	}
	left, err := as.Unfinished(ctx)
	if err != nil || len(left) != 3 {
		t.Fatalf("unfinished %d (%v), want 3", len(left), err)
	}
}
