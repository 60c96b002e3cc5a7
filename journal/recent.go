package journal

import (
	"sync"

	"github.com/rulebook-dev/rulebook/engine"
)

// Bounds of the recent-records ring.
const (
	recentRecords = 4096
	recentBytes   = 16 << 20
)

// recent holds the newest durable records as Read returns them (events as
// encodeValue decoded them while encoding), so that the engine, which reads
// right behind the writers, is not handed back by decoding what was just
// encoded. It holds a contiguous run of sequence numbers, bounded by count
// and by the records' encoded size; Read falls back to the database for
// anything older.
type recent struct {
	mu     sync.Mutex
	recs   [recentRecords]engine.Record // recs[seq % recentRecords]
	lo, hi uint64                       // held: lo..hi; none when hi == 0
	bytes  int                          // their Size, summed
}

// add appends rec, which must follow the newest held record; a gap or an
// oversized record empties the ring.
func (r *recent) add(rec engine.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := rec.Size
	if r.hi != 0 && rec.Seq != r.hi+1 || size > recentBytes/16 {
		r.clearLocked()
		if size > recentBytes/16 {
			return
		}
	}
	// Make room first: the slot of the new record is that of the oldest
	// one once the ring is full.
	for r.hi != 0 && (rec.Seq-r.lo+1 > recentRecords || r.bytes+size > recentBytes) {
		j := r.lo % recentRecords
		r.bytes -= r.recs[j].Size
		r.recs[j] = engine.Record{}
		r.lo++
		if r.lo > r.hi {
			r.lo, r.hi = 0, 0
		}
	}
	if r.hi == 0 {
		r.lo = rec.Seq
	}
	i := rec.Seq % recentRecords
	r.recs[i] = rec
	r.hi = rec.Seq
	r.bytes += size
}

func (r *recent) clearLocked() {
	for s := r.lo; r.hi != 0 && s <= r.hi; s++ {
		r.recs[s%recentRecords] = engine.Record{}
	}
	r.lo, r.hi, r.bytes = 0, 0, 0
}

// get returns up to max held records with after < Seq <= last, when the
// ring holds the first of them (after+1); ok is false otherwise.
func (r *recent) get(after, last uint64, max int) ([]engine.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hi == 0 || after+1 < r.lo || after+1 > r.hi {
		return nil, false
	}
	end := min(r.hi, last, after+uint64(max))
	out := make([]engine.Record, 0, end-after)
	for s := after + 1; s <= end; s++ {
		out = append(out, r.recs[s%recentRecords])
	}
	return out, true
}
