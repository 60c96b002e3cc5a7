package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/rulebook-dev/rulebook/engine"
)

// Under concurrent emitters (accepted, duplicate-only and position-only
// calls) and an engine that reads, stores firings and marks records done,
// a power loss at any moment keeps every acknowledged event (and, for a
// duplicate, the event it duplicates) and every firing whose SubmitAll
// returned, although the committer now publishes records before their
// sync and shares that sync with the engine's writes.
func TestPowerLossUnderConcurrentLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("stress")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem, s := openCrashable(t, nil)
	as := s.Actions().(engine.BatchActionStore)

	var mu sync.Mutex
	ackedEvents := map[string]bool{}  // dedupe key of each acknowledged event
	ackedFirings := map[string]bool{} // firing IDs whose SubmitAll returned

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// The engine.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var after uint64
		for {
			recs, err := s.Read(ctx, after, 16)
			if err != nil {
				return
			}
			var fs []*engine.Firing
			for _, r := range recs {
				if r.Seq%2 == 0 {
					id := fmt.Sprintf("f-%d", r.Seq)
					fs = append(fs, &engine.Firing{ID: id, Ruleset: "rs", Rule: "r",
						Invocations: []*engine.Invocation{{ID: id + "/0", FiringID: id, Action: "run_command"}}})
				}
			}
			if len(fs) > 0 {
				if err := as.SubmitAll(ctx, fs); err != nil {
					return
				}
				mu.Lock()
				for _, f := range fs {
					ackedFirings[f.ID] = true
				}
				mu.Unlock()
			}
			after = recs[len(recs)-1].Seq
			if err := s.Done(ctx, after); err != nil {
				return
			}
		}
	}()
	// The emitters: each event once, then again (a duplicate-only call),
	// and now and then a call that only moves a position.
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := engine.SourceRef{Ruleset: "rs", Name: fmt.Sprintf("src-%d", w), Type: "webhook"}
			for i := 0; i < 400 && ctx.Err() == nil; i++ {
				key := fmt.Sprintf("%d-%d", w, i)
				for range 2 {
					out, err := s.Emit(ctx, src, []engine.Entry{{Event: ev(i), DedupeKey: key}})
					if err != nil {
						var be *engine.BacklogError
						if errors.As(err, &be) {
							continue
						}
						return
					}
					if out[0] == engine.Accepted || out[0] == engine.Duplicate {
						mu.Lock()
						ackedEvents[src.Name+"/"+key] = true
						mu.Unlock()
					}
				}
				if i%7 == 0 {
					if _, err := s.Emit(ctx, src, []engine.Entry{{Event: ev(i), DedupeKey: key, Position: key}}); err != nil {
						return
					}
				}
			}
		}()
	}

	for crash := range 10 {
		mu.Lock()
		events := make(map[string]bool, len(ackedEvents))
		for k := range ackedEvents {
			events[k] = true
		}
		firings := make(map[string]bool, len(ackedFirings))
		for k := range ackedFirings {
			firings[k] = true
		}
		mu.Unlock()
		c, err := openAfterCrash(mem, vfs.CrashCloneCfg{})
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		var after uint64
		for after < c.LastSeq() {
			recs, err := c.Read(ctx, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				found[r.Source.Name+"/"+keyOf(t, r)] = true
			}
			after = recs[len(recs)-1].Seq
		}
		for k := range events {
			if !found[k] {
				c.Close()
				t.Fatalf("crash %d: event %s was acknowledged but is lost", crash, k)
			}
		}
		for id := range firings {
			if e, err := c.Actions().(*actionStore).Firing(ctx, id); e == nil || err != nil {
				c.Close()
				t.Fatalf("crash %d: firing %s was stored but is lost (%v)", crash, id, err)
			}
		}
		c.Close()
	}
}

// keyOf returns the dedupe key the test's emitters gave the record: the
// emitter's call number is the event's n, and the emitter's number is in
// its source name.
func keyOf(t *testing.T, r engine.Record) string {
	t.Helper()
	var w int
	if _, err := fmt.Sscanf(r.Source.Name, "src-%d", &w); err != nil {
		t.Fatalf("record %d: source %q", r.Seq, r.Source.Name)
	}
	n := r.Event["payload"].(map[string]any)["n"].(float64)
	return fmt.Sprintf("%d-%d", w, int(n))
}
