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
