package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rulebook-dev/rulebook/engine"
)

// CompactStats says what one compaction removed.
type CompactStats struct {
	// Records are done records older than the retention.
	Records int
	// DedupeKeys and OrderKeys are expired dedupe keys and order timestamps.
	DedupeKeys int
	OrderKeys  int
	// Firings are audit entries removed because of Options.AuditRetention
	// (background compaction only).
	Firings int
}

// Start runs the background compaction: every Options.CompactEvery (or on
// every value of Options.Tick) it calls Compact, and Actions().Compact when
// Options.AuditRetention is set. It runs until ctx ends, Stop or Close.
func (s *Store) Start(ctx context.Context) error {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	if s.isClosed() {
		return engine.ErrClosed
	}
	if s.loopDone != nil {
		return errors.New("journal: compaction already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	s.loopCancel, s.loopDone = cancel, make(chan struct{})
	tick := s.opts.Tick
	var ticker *time.Ticker
	if tick == nil {
		ticker = time.NewTicker(s.opts.CompactEvery)
		tick = ticker.C
	}
	go func(done chan struct{}) {
		defer close(done)
		if ticker != nil {
			defer ticker.Stop()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
			st, err := s.Compact(ctx)
			if err == nil && s.opts.AuditRetention > 0 {
				st.Firings, err = s.actions.Compact(ctx, s.clock.Now().Add(-s.opts.AuditRetention))
			}
			switch {
			case err != nil && ctx.Err() == nil && !errors.Is(err, engine.ErrClosed):
				s.log.Error().Err(err).Msg("compaction failed")
			case st != (CompactStats{}):
				s.log.Debug().Int("records", st.Records).Int("dedupe_keys", st.DedupeKeys).
					Int("order_keys", st.OrderKeys).Int("firings", st.Firings).Msg("compacted")
			}
		}
	}(s.loopDone)
	return nil
}

// Stop ends the background compaction and waits for it, or for ctx. It is
// safe to call more than once and without Start; Start may follow it.
func (s *Store) Stop(ctx context.Context) error {
	s.loopMu.Lock()
	cancel, done := s.loopCancel, s.loopDone
	s.loopMu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		s.loopMu.Lock()
		if s.loopDone == done {
			s.loopCancel, s.loopDone = nil, nil
		}
		s.loopMu.Unlock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("journal: stop compaction: %w", ctx.Err())
	}
}

// Compact removes done records accepted more than Options.Retention ago and
// the dedupe keys and order timestamps whose window has passed. Purging goes
// through the committer in small steps, so ingest keeps flowing.
func (s *Store) Compact(ctx context.Context) (CompactStats, error) {
	var st CompactStats
	n, err := s.compactRecords(ctx)
	st.Records = n
	if err != nil {
		return st, err
	}
	for _, p := range []struct {
		index, main byte
		count       *int
	}{{pDedupeExp, pDedupe, &st.DedupeKeys}, {pOrderExp, pOrder, &st.OrderKeys}} {
		for {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			var scanned, purged int
			r := &request{kind: reqApply, apply: func(g *group) error {
				var err error
				scanned, purged, err = s.purgeExpired(g, p.index, p.main)
				return err
			}}
			if err := s.submit(r); err != nil {
				return st, err
			}
			if r.err != nil {
				return st, r.err
			}
			*p.count += purged
			if scanned < purgeChunk {
				break
			}
		}
	}
	return st, nil
}

// compactRecords deletes done records accepted at or before now-Retention,
// oldest first, stopping at the first record that must stay.
func (s *Store) compactRecords(ctx context.Context) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, engine.ErrClosed
	}
	done := s.lastDone.Load()
	if done == 0 {
		return 0, nil
	}
	cutoff := unixNano(s.clock.Now().Add(-s.opts.Retention))
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{pEvent},
		UpperBound: seqKey(pEvent, done+1),
	})
	if err != nil {
		return 0, fmt.Errorf("journal: compact: %w", err)
	}
	defer it.Close()
	var first, last uint64
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, fmt.Errorf("journal: compact: %w", err)
		}
		if len(v) < timeValueLen || int64(binary.BigEndian.Uint64(v)) > cutoff {
			break
		}
		seq, err := keySeq(it.Key())
		if err != nil {
			return 0, err
		}
		if n == 0 {
			first = seq
		}
		last = seq
		n++
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("journal: compact: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	// Records at or below done are never written again, so deleting them
	// need not go through the committer; nor need it be synced: a deletion
	// lost in a crash is simply done again.
	if err := s.db.DeleteRange(seqKey(pEvent, first), seqKey(pEvent, last+1), pebble.NoSync); err != nil {
		return 0, fmt.Errorf("journal: compact: %w", err)
	}
	return n, nil
}

// purgeExpired runs in the committer: it deletes up to purgeChunk expiry
// index entries that are due, and the keys they point to unless those were
// renewed since. It returns how many index entries it scanned and how many
// keys it deleted.
func (s *Store) purgeExpired(g *group, index, main byte) (scanned, purged int, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{index},
		UpperBound: binary.BigEndian.AppendUint64([]byte{index}, uint64(g.now)+1),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("journal: purge: %w", err)
	}
	defer it.Close()
	renewed := g.dedupe
	if main == pOrder {
		renewed = g.order
	}
	for ok := it.First(); ok && scanned < purgeChunk; ok = it.Next() {
		ik := it.Key()
		if len(ik) < 1+timeValueLen {
			return scanned, purged, fmt.Errorf("%w: expiry key %x", errCorrupt, ik)
		}
		mk := append([]byte{main}, ik[1+timeValueLen:]...)
		_ = g.b.Delete(ik, nil)
		scanned++
		if _, ok := renewed[string(mk)]; ok {
			continue
		}
		v, closer, err := s.db.Get(mk)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return scanned, purged, fmt.Errorf("journal: purge: %w", err)
		}
		expired := len(v) >= 8 && int64(binary.BigEndian.Uint64(v[len(v)-8:])) <= g.now
		_ = closer.Close()
		if expired {
			_ = g.b.Delete(mk, nil)
			purged++
		}
	}
	return scanned, purged, it.Error()
}
