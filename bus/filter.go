package bus

import (
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// filter decides, for one partition, which records are duplicates or stale,
// as the embedded journal does at ingest: a DedupeKey seen within its window
// (measured from the accepted time of the record that first carried it)
// makes a Duplicate; a Timestamp older than the newest accepted for the same
// OrderKey, within the window, makes it Stale. Keys are scoped by source
// (ruleset and name). Time is the records' accepted time, never the
// consumer's clock, so every owner of the partition decides the same way.
type filter struct {
	window time.Duration
	dedupe map[string]time.Time // scoped key → expiry
	order  map[string]orderMark
	// queue holds keys in the order they were written, for expiry.
	queue []queued
}

type orderMark struct {
	newest, expiry time.Time
}

type queued struct {
	key    string
	order  bool
	expiry time.Time
}

func newFilter(window time.Duration) *filter {
	return &filter{window: window, dedupe: map[string]time.Time{}, order: map[string]orderMark{}}
}

func scoped(m *message, key string) string {
	return m.Source.Ruleset + "\x00" + m.Source.Name + "\x00" + key
}

// decide returns the outcome of m and, when it is Accepted, remembers its
// keys.
func (f *filter) decide(m *message) engine.Outcome {
	now := m.Accepted
	f.expire(now)
	window := time.Duration(m.DedupeWindow)
	if window <= 0 {
		window = f.window
	}
	var dk, ok string
	if m.DedupeKey != "" {
		dk = scoped(m, m.DedupeKey)
		if exp, found := f.dedupe[dk]; found && now.Before(exp) {
			return engine.Duplicate
		}
	}
	newest := m.Timestamp
	if m.OrderKey != "" && !m.Timestamp.IsZero() {
		ok = scoped(m, m.OrderKey)
		if mark, found := f.order[ok]; found && now.Before(mark.expiry) {
			if m.Timestamp.Before(mark.newest) {
				return engine.Stale
			}
			if mark.newest.After(newest) {
				newest = mark.newest
			}
		}
	}
	exp := now.Add(window)
	if dk != "" {
		f.dedupe[dk] = exp
		f.queue = append(f.queue, queued{key: dk, expiry: exp})
	}
	if ok != "" {
		f.order[ok] = orderMark{newest: newest, expiry: exp}
		f.queue = append(f.queue, queued{key: ok, order: true, expiry: exp})
	}
	return engine.Accepted
}

// expire forgets keys whose window ended by now. Keys are dropped in the
// order they were written; one with a long window holds back the ones
// behind it, which lookups still see as expired.
func (f *filter) expire(now time.Time) {
	n := 0
	for n < len(f.queue) && !now.Before(f.queue[n].expiry) {
		q := f.queue[n]
		if q.order {
			if m, found := f.order[q.key]; found && !now.Before(m.expiry) {
				delete(f.order, q.key)
			}
		} else if exp, found := f.dedupe[q.key]; found && !now.Before(exp) {
			delete(f.dedupe, q.key)
		}
		n++
	}
	if n > 0 {
		clear(f.queue[:n])
		f.queue = f.queue[n:]
		if cap(f.queue) > 1024 && len(f.queue) < cap(f.queue)/4 {
			f.queue = append([]queued(nil), f.queue...)
		}
	}
}

// size is the number of keys remembered.
func (f *filter) size() int { return len(f.dedupe) + len(f.order) }
