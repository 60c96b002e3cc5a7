package journal

import (
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

// The ring holds a contiguous run of the newest records, within its count
// and byte bounds, and answers only reads that start inside it.
func TestRecentRing(t *testing.T) {
	rec := func(seq uint64, size int) engine.Record {
		return engine.Record{Seq: seq, Event: engine.Event{"n": float64(seq)}, Size: size}
	}
	check := func(t *testing.T, r *recent, after, last uint64, max int, want []uint64) {
		t.Helper()
		got, ok := r.get(after, last, max)
		if want == nil {
			if ok {
				t.Fatalf("get(%d, %d, %d) = %d records, want a miss", after, last, max, len(got))
			}
			return
		}
		if !ok || len(got) != len(want) {
			t.Fatalf("get(%d, %d, %d) = %d records (ok %v), want %v", after, last, max, len(got), ok, want)
		}
		for i, g := range got {
			if g.Seq != want[i] || g.Event["n"] != float64(want[i]) {
				t.Fatalf("get(%d, %d, %d)[%d] = seq %d %v, want %d", after, last, max, i, g.Seq, g.Event, want[i])
			}
		}
	}

	t.Run("wraps around keeping the newest", func(t *testing.T) {
		r := &recent{}
		n := uint64(recentRecords*2 + 7)
		for s := uint64(1); s <= n; s++ {
			r.add(rec(s, 10))
		}
		if r.lo != n-recentRecords+1 || r.hi != n || r.bytes != recentRecords*10 {
			t.Fatalf("ring holds %d..%d (%d bytes), want %d..%d", r.lo, r.hi, r.bytes, n-recentRecords+1, n)
		}
		check(t, r, n-recentRecords, n, 3, []uint64{n - recentRecords + 1, n - recentRecords + 2, n - recentRecords + 3})
		check(t, r, n-2, n, 100, []uint64{n - 1, n})
		check(t, r, n-3, n-1, 100, []uint64{n - 2, n - 1}) // not beyond last
		check(t, r, n-recentRecords-1, n, 3, nil)          // starts before the ring
		check(t, r, n, n, 3, nil)                          // nothing newer
	})

	t.Run("byte bound", func(t *testing.T) {
		r := &recent{}
		size := recentBytes / 20
		for s := uint64(1); s <= 30; s++ {
			r.add(rec(s, size))
		}
		if r.bytes > recentBytes || r.hi != 30 || r.lo != 11 {
			t.Fatalf("ring holds %d..%d, %d bytes, want 11..30 within %d", r.lo, r.hi, r.bytes, recentBytes)
		}
		check(t, r, 10, 30, 2, []uint64{11, 12})
		check(t, r, 9, 30, 2, nil)
	})

	t.Run("gap or oversized record empties it", func(t *testing.T) {
		r := &recent{}
		for s := uint64(1); s <= 5; s++ {
			r.add(rec(s, 10))
		}
		r.add(rec(9, 10))
		check(t, r, 4, 9, 10, nil)
		check(t, r, 8, 9, 10, []uint64{9})
		r.add(rec(10, recentBytes))
		check(t, r, 8, 10, 10, nil)
		r.add(rec(11, 10))
		check(t, r, 10, 11, 10, []uint64{11})
		if r.bytes != 10 {
			t.Fatalf("%d bytes held, want 10", r.bytes)
		}
	})
}
