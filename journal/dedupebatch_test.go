package journal

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// TestDedupeBatchLookupMatchesModel checks the dedupe outcomes of calls
// with many keys (looked up with one iterator, lookupDedupe) and with few
// (one Get each) against a plain model: keys dense and sparse, repeated
// within a call, stored by another source in between, expired, in the
// memtable and in flushed tables.
func TestDedupeBatchLookupMatchesModel(t *testing.T) {
	clock := engine.NewFakeClock(t0)
	s := openTest(t, t.TempDir(), clock, func(o *Options) { o.DedupeWindow = time.Hour; o.MaxBacklog = -1 })
	rng := rand.New(rand.NewPCG(17, 3))
	type mk struct {
		src engine.SourceRef
		key string
	}
	model := map[mk]time.Time{} // key → expiry
	key := func() string {
		if rng.IntN(2) == 0 {
			return fmt.Sprintf("%016x", rng.IntN(400)) // dense: offsets of a file
		}
		return fmt.Sprintf("%x", rng.Uint64()%1000003) // sparse
	}
	batched := 0
	for call := 0; call < 300; call++ {
		src := srcA
		if rng.IntN(4) == 0 {
			src = srcB
		}
		n := 1 + rng.IntN(3)
		if rng.IntN(2) == 0 {
			n = batchLookup + rng.IntN(48)
			batched++
		}
		entries := make([]engine.Entry, n)
		want := make([]engine.Outcome, n)
		now := clock.Now()
		inCall := map[mk]bool{}
		for i := range entries {
			k := key()
			if i > 0 && rng.IntN(8) == 0 {
				k = entries[rng.IntN(i)].DedupeKey
			}
			e := engine.Entry{Event: ev(call), DedupeKey: k}
			if rng.IntN(3) == 0 {
				e.DedupeWindow = time.Minute
			}
			entries[i] = e
			m := mk{src, k}
			if exp, ok := model[m]; inCall[m] || (ok && exp.After(now)) {
				want[i] = engine.Duplicate
				continue
			}
			w := e.DedupeWindow
			if w == 0 {
				w = time.Hour
			}
			inCall[m] = true
			model[m] = now.Add(w)
			want[i] = engine.Accepted
		}
		got := emit(t, s, src, entries...)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("call %d (%d entries), entry %d key %q: %v, want %v", call, n, i, entries[i].DedupeKey, got[i], want[i])
			}
		}
		if rng.IntN(40) == 0 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(time.Duration(rng.IntN(20)) * time.Second)
	}
	if batched < 100 {
		t.Fatalf("only %d calls took the batched lookup", batched)
	}
}
