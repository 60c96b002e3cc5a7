package journal

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rulebook-dev/rulebook/engine"
)

var _ engine.HistoryJournal = (*Store)(nil)

// SeqSince implements engine.HistoryJournal: it returns the Seq of the first
// retained record accepted at or after t, or LastSeq()+1 when every retained
// record was accepted before t. Records done and compacted away are not
// retained; when t is before the first retained record, that record is the
// answer.
//
// It is a binary search over the records (O(log n) seeks), which relies on
// accepted times growing with Seq, as they do unless the clock stepped
// back. When it did, the answer is still a record accepted at or after t
// whose predecessor was accepted before t; the records after it that were
// accepted before t (after the step) are then part of the range too, which
// only means a little more history is replayed.
func (s *Store) SeqSince(ctx context.Context, t time.Time) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, engine.ErrClosed
	}
	last := s.lastSeq.Load()
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{pEvent},
		UpperBound: seqKey(pEvent, last+1),
	})
	if err != nil {
		return 0, fmt.Errorf("journal: seq since: %w", err)
	}
	defer it.Close()
	// at returns the first record at or after seq: its Seq and whether it
	// was accepted before t (ok false: no record there).
	at := func(seq uint64) (got uint64, before, ok bool, err error) {
		if !it.SeekGE(seqKey(pEvent, seq)) {
			return 0, false, false, it.Error()
		}
		got, err = keySeq(it.Key())
		if err != nil {
			return 0, false, false, err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, false, false, fmt.Errorf("journal: seq since: record %d: %w", got, err)
		}
		if len(v) < timeValueLen {
			return 0, false, false, fmt.Errorf("%w: record %d is %d bytes", errCorrupt, got, len(v))
		}
		return got, int64(binary.BigEndian.Uint64(v)) < t.UnixNano(), true, nil
	}
	first, before, ok, err := at(1)
	if err != nil || !ok {
		return last + 1, err
	}
	if !before {
		return first, nil
	}
	// Invariant: the record at lo was accepted before t, and the first
	// record at or after hi was accepted at or after t (or there is none:
	// hi = last+1).
	lo, hi := first, last+1
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		got, before, ok, err := at(mid)
		if err != nil {
			return 0, err
		}
		if ok && got < hi && before {
			lo = got
		} else {
			hi = mid
		}
	}
	return hi, nil
}
