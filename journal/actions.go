package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rulebook-dev/rulebook/engine"
)

// actionStore is the dispatcher's durable queue and the audit trail. A
// firing gets the next firing sequence number (fseq) when submitted; its
// invocation states are stored under fseq and their index, and an
// unfinished-index entry exists while an invocation is not final.
//
// Writes are decided under mu and applied without waiting for the WAL sync;
// each writer then waits for a synced empty log write outside mu, so
// concurrent writers share Pebble's WAL group commit. Pebble treats a failed
// WAL sync as fatal, so an applied but unsynced write is never reported as
// stored.
type actionStore struct {
	s    *Store
	mu   sync.Mutex
	fseq uint64

	// unfinished and unfinishedBytes count the invocations not final and
	// the size of their stored states, for the backlog bounds. Changed
	// under mu once a write is applied.
	unfinished      atomic.Int64
	unfinishedBytes atomic.Int64

	// compactMu keeps Compact runs apart; compactFrom is the fseq where
	// the next one starts scanning (every firing below it is deleted).
	compactMu   sync.Mutex
	compactFrom uint64
	hooks       *compactHooks

	// raw keeps what Invocation read, for update (see statecodec.go).
	raw rawCache

	// sizes maps the reference of an unfinished invocation to the length
	// of its stored state, under mu: an update then adjusts the backlog
	// counters without reading the old state back (two gets, a tenth of
	// the engine's CPU per command). Every write of an invocation's state
	// goes through SubmitAll or update, under mu, so an entry is always
	// the stored length; an invocation without one (the map was full, or
	// it was stored before this process) is read as before.
	sizes map[string]int
}

// sizesMax bounds the sizes map: far more than run at once, small next to
// a backlog of 100,000 invocations, which then costs the gets it did.
const sizesMax = 8192

// setSize records the stored length of an unfinished invocation; mu held.
// A full map takes no new invocations (their updates read the old state).
func (a *actionStore) setSize(ref []byte, n int) {
	if a.sizes == nil {
		a.sizes = make(map[string]int)
	}
	if _, ok := a.sizes[string(ref)]; !ok && len(a.sizes) >= sizesMax {
		return
	}
	a.sizes[string(ref)] = n
}

var _ engine.ActionStore = (*actionStore)(nil)

func newActionStore(s *Store) (*actionStore, error) {
	fseq, err := s.metaU64(metaFiring)
	if err != nil {
		return nil, err
	}
	a := &actionStore{s: s, fseq: fseq}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pUnfinished}, UpperBound: []byte{pUnfinished + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var n, size int64
	for ok := it.First(); ok; ok = it.Next() {
		v, found, err := getValue(s.db, invKey(pInvocation, it.Key()[1:]))
		if err != nil {
			return nil, err
		}
		if found {
			n++
			size += int64(len(v))
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	a.unfinished.Store(n)
	a.unfinishedBytes.Store(size)
	return a, nil
}

// pending returns the count of invocations not final and the size of
// their stored states.
func (a *actionStore) pending() (int64, int64) {
	return a.unfinished.Load(), a.unfinishedBytes.Load()
}

// read runs fn with the database open, or returns engine.ErrClosed.
func (a *actionStore) read(fn func(db *pebble.DB) error) error {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if a.s.closed {
		return engine.ErrClosed
	}
	return fn(a.s.db)
}

// write decides under mu with fn, applies the batch fn filled, then waits
// for the WAL sync. applied, when not nil, runs under mu once the batch
// is applied.
//
// With sync false the write is applied without waiting for the sync: the
// next synced write of the database (an accepted event, a Done carried by
// one, any synced action write) makes it durable, and the WAL keeps the
// order, so whatever is written after it survives a crash only if it does.
func (a *actionStore) write(ctx context.Context, sync bool, fn func(db *pebble.DB, b *pebble.Batch) error) error {
	return a.writeThen(ctx, sync, fn, nil)
}

func (a *actionStore) writeThen(ctx context.Context, sync bool, fn func(db *pebble.DB, b *pebble.Batch) error, applied func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.read(func(db *pebble.DB) error {
		a.mu.Lock()
		b := db.NewBatch()
		err := fn(db, b)
		if err == nil && !b.Empty() {
			err = b.Commit(pebble.NoSync)
		}
		if err == nil && applied != nil {
			applied()
		}
		_ = b.Close()
		a.mu.Unlock()
		if err != nil || !sync {
			return err
		}
		return a.s.syncWAL()
	})
}

// syncWAL makes every write to the database before it durable, with a
// WAL sync it may share with other callers (walSyncer); mu held shared.
func (s *Store) syncWAL() error {
	if err := s.wal.sync(0); err != nil {
		return fmt.Errorf("journal: sync: %w", err)
	}
	return nil
}

func getValue(db *pebble.DB, k []byte) ([]byte, bool, error) {
	v, closer, err := db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return slices.Clone(v), true, nil
}

// Submit implements engine.ActionStore.
func (a *actionStore) Submit(ctx context.Context, f *engine.Firing) error {
	return a.SubmitAll(ctx, []*engine.Firing{f})
}

var _ engine.BatchActionStore = (*actionStore)(nil)

// SubmitAll stores several firings and their invocations atomically, with
// one WAL sync. A firing marked Redelivered that is already stored is left
// as it is; any other is taken as new, without a lookup (see
// engine.Firing.Redelivered), since a lookup of a key that is absent costs
// a probe of every table of the database.
func (a *actionStore) SubmitAll(ctx context.Context, fs []*engine.Firing) error {
	type encoded struct {
		f      *engine.Firing
		fj     []byte
		states [][]byte
		invs   [][]byte // each invocation's JSON, kept for its updates
	}
	now := a.s.clock.Now()
	enc := make([]encoded, 0, len(fs))
	for _, f := range fs {
		if f == nil || f.ID == "" {
			return errors.New("journal: submit: firing has no id")
		}
		fj, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("journal: submit firing %q: %w", f.ID, err)
		}
		states := make([][]byte, len(f.Invocations))
		invs := make([][]byte, len(f.Invocations))
		seen := map[string]bool{}
		for i, inv := range f.Invocations {
			if inv == nil || inv.ID == "" {
				return fmt.Errorf("journal: submit firing %q: invocation %d has no id", f.ID, i)
			}
			if seen[inv.ID] {
				return fmt.Errorf("journal: submit firing %q: invocation id %q repeats", f.ID, inv.ID)
			}
			seen[inv.ID] = true
			states[i], err = json.Marshal(&engine.InvocationState{Invocation: inv, Status: engine.StatusQueued, Updated: now})
			if err != nil {
				return fmt.Errorf("journal: submit firing %q: invocation %q: %w", f.ID, inv.ID, err)
			}
			if len(states[i]) <= rawEntryMax {
				invs[i] = invocationJSON(states[i])
			}
		}
		enc = append(enc, encoded{f: f, fj: fj, states: states, invs: invs})
	}
	// Firings with nothing to run (only engine actions such as debug,
	// set_fact or none) are audit records: nothing outside the engine
	// depends on them being durable now. Their record is followed in the
	// WAL by the Done of their journal record, so a crash that loses one
	// loses the other, and the redelivered record writes them again.
	// Firings with invocations are synced before the dispatcher may run
	// anything.
	sync := a.s.opts.SyncAllFirings
	for _, e := range enc {
		sync = sync || len(e.f.Invocations) > 0
	}
	// What the batch stores of each invocation, accounted once applied.
	type stored struct {
		inv  *engine.Invocation
		raw  rawInvocation // raw.json nil: over rawEntryMax, not kept
		size int           // of its stored state
	}
	var written []stored
	return a.writeThen(ctx, sync, func(db *pebble.DB, b *pebble.Batch) error {
		fseq := a.fseq
		written = written[:0]
		inBatch := map[string]bool{}
		for _, e := range enc {
			if inBatch[e.f.ID] {
				continue
			}
			if e.f.Redelivered {
				_, exists, err := getValue(db, append([]byte{pFiringID}, e.f.ID...))
				if err != nil {
					return err
				}
				if exists {
					continue
				}
			}
			inBatch[e.f.ID] = true
			fseq++
			_ = b.Set(seqKey(pFiring, fseq), e.fj, nil)
			_ = b.Set(append([]byte{pFiringID}, e.f.ID...), u64(fseq), nil)
			for i, inv := range e.f.Invocations {
				ref := invRef(fseq, i)
				_ = b.Set(invKey(pInvocation, ref), e.states[i], nil)
				_ = b.Set(append([]byte{pInvID}, inv.ID...), ref, nil)
				_ = b.Set(invKey(pUnfinished, ref), nil, nil)
				written = append(written, stored{inv, rawInvocation{json: e.invs[i], ref: ref}, len(e.states[i])})
			}
		}
		if fseq != a.fseq {
			_ = b.Set(metaKey(metaFiring), u64(fseq), nil)
		}
		// Advanced before the commit: a failed commit leaves a gap, which
		// is harmless, never a reused number.
		a.fseq = fseq
		return nil
	}, func() {
		var bytes int64
		for _, w := range written {
			bytes += int64(w.size)
			a.setSize(w.raw.ref, w.size)
			// What the dispatcher runs at once, from the states it was
			// given, is recorded without encoding the invocation again.
			if w.raw.json != nil {
				a.raw.put(w.inv, w.raw)
			}
		}
		a.unfinished.Add(int64(len(written)))
		a.unfinishedBytes.Add(bytes)
	})
}

// Update implements engine.ActionStore. The invocation must have been
// submitted.
func (a *actionStore) Update(ctx context.Context, st *engine.InvocationState) error {
	return a.update(ctx, st, true)
}

var _ engine.DeferredActionStore = (*actionStore)(nil)

// UpdateDeferred implements engine.DeferredActionStore: Update without the
// WAL sync. The batch is in the WAL's order (a later synced write makes it
// durable), but until then a crash of the process may lose it.
func (a *actionStore) UpdateDeferred(ctx context.Context, st *engine.InvocationState) error {
	return a.update(ctx, st, false)
}

// Sync implements engine.DeferredActionStore: one WAL sync, which makes
// every write before it durable. Concurrent calls share syncs.
func (a *actionStore) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.read(func(*pebble.DB) error { return a.s.syncWAL() })
}

func (a *actionStore) update(ctx context.Context, st *engine.InvocationState, sync bool) error {
	if st == nil || st.Invocation == nil || st.Invocation.ID == "" {
		return errors.New("journal: update: state has no invocation id")
	}
	id := st.Invocation.ID
	raw, cached := a.raw.get(st.Invocation)
	v, err := encodeState(st, raw.json)
	if err != nil {
		return fmt.Errorf("journal: update invocation %q: %w", id, err)
	}
	var dN, dBytes int64
	var refKey []byte
	err = a.writeThen(ctx, sync, func(db *pebble.DB, b *pebble.Batch) error {
		ref, ok := raw.ref, cached
		if !cached {
			var err error
			if ref, ok, err = getValue(db, append([]byte{pInvID}, id...)); err != nil {
				return fmt.Errorf("journal: update invocation %q: %w", id, err)
			}
		}
		if !ok {
			return fmt.Errorf("journal: update: unknown invocation %q", id)
		}
		if len(ref) != invRefLen {
			return fmt.Errorf("%w: invocation %q has a %d-byte reference", errCorrupt, id, len(ref))
		}
		// The counters of the backlog: what the state was, what it is.
		dN, dBytes = 0, 0
		if n, known := a.sizes[string(ref)]; known {
			dN, dBytes = -1, -int64(n)
		} else {
			_, wasUnfinished, err := getValue(db, invKey(pUnfinished, ref))
			if err != nil {
				return fmt.Errorf("journal: update invocation %q: %w", id, err)
			}
			if wasUnfinished {
				old, found, err := getValue(db, invKey(pInvocation, ref))
				if err != nil {
					return fmt.Errorf("journal: update invocation %q: %w", id, err)
				}
				if found {
					dN, dBytes = -1, -int64(len(old))
				}
			}
		}
		refKey = ref
		_ = b.Set(invKey(pInvocation, ref), v, nil)
		if st.Status.Final() {
			_ = b.Delete(invKey(pUnfinished, ref), nil)
		} else {
			_ = b.Set(invKey(pUnfinished, ref), nil, nil)
			dN++
			dBytes += int64(len(v))
		}
		return nil
	}, func() {
		a.unfinished.Add(dN)
		a.unfinishedBytes.Add(dBytes)
		if st.Status.Final() {
			delete(a.sizes, string(refKey))
		} else {
			a.setSize(refKey, len(v))
		}
	})
	if err == nil && cached && st.Status.Final() {
		a.raw.drop(st.Invocation)
	}
	return err
}

// Invocation reads the recorded state of one invocation by ID, or returns
// nil, nil when it is not stored. It implements dispatch.InvocationReader:
// the dispatcher keeps only IDs of queued invocations in memory and reads
// each back when it runs it.
func (a *actionStore) Invocation(ctx context.Context, id string) (*engine.InvocationState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *engine.InvocationState
	err := a.read(func(db *pebble.DB) error {
		ref, ok, err := getValue(db, append([]byte{pInvID}, id...))
		if err != nil || !ok {
			return err
		}
		v, ok, err := getValue(db, invKey(pInvocation, ref))
		if err != nil || !ok {
			return err
		}
		if out, err = decodeState(v); err != nil {
			return err
		}
		if len(v) > rawEntryMax || out.Invocation == nil || out.Status.Final() {
			return nil
		}
		if inv := invocationJSON(v); inv != nil {
			a.raw.put(out.Invocation, rawInvocation{json: inv, ref: ref})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal: read invocation %q: %w", id, err)
	}
	return out, nil
}

// Unfinished implements engine.ActionStore.
func (a *actionStore) Unfinished(ctx context.Context) ([]*engine.InvocationState, error) {
	var out []*engine.InvocationState
	err := a.eachUnfinished(ctx, func(v []byte) error {
		st, err := decodeState(v)
		if err != nil {
			return err
		}
		out = append(out, st)
		return nil
	})
	return out, err
}

// eachUnfinished calls fn with the stored state of every unfinished
// invocation, in id order. v is valid only during the call: fn must
// decode it, not keep it.
func (a *actionStore) eachUnfinished(ctx context.Context, fn func(v []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := a.read(func(db *pebble.DB) error {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{pUnfinished}, UpperBound: []byte{pUnfinished + 1}})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			v, closer, err := db.Get(invKey(pInvocation, it.Key()[1:]))
			if errors.Is(err, pebble.ErrNotFound) {
				return fmt.Errorf("%w: unfinished invocation without state", errCorrupt)
			}
			if err != nil {
				return err
			}
			err = fn(v)
			closer.Close()
			if err != nil {
				return err
			}
		}
		return it.Error()
	})
	if err != nil {
		return fmt.Errorf("journal: unfinished: %w", err)
	}
	return nil
}

// stateHead is the part of a stored invocation state that UnfinishedHeads
// decodes: encoding/json skips the rest (arguments, events) without
// building it.
type stateHead struct {
	Invocation *struct {
		ID         string        `json:"id"`
		FiringID   string        `json:"firing_id"`
		Index      int           `json:"index"`
		Action     string        `json:"action"`
		Ruleset    string        `json:"ruleset"`
		Rule       string        `json:"rule"`
		Policy     engine.Policy `json:"policy"`
		Sequential bool          `json:"sequential,omitempty"`
		Created    time.Time     `json:"created"`
		Stream     string        `json:"stream,omitempty"`
		Mode       string        `json:"mode,omitempty"`
	} `json:"invocation"`
	Status      engine.InvocationStatus `json:"status"`
	NextAttempt time.Time               `json:"next_attempt,omitempty"`
	Updated     time.Time               `json:"updated"`
}

// UnfinishedHeads is Unfinished without the invocations' arguments,
// events and attempts: what a dispatcher that reads each invocation back
// before running it (Invocation) needs to schedule them, in memory that
// does not grow with the events. It implements dispatch.HeadLister.
func (a *actionStore) UnfinishedHeads(ctx context.Context) ([]*engine.InvocationState, error) {
	var out []*engine.InvocationState
	err := a.eachUnfinished(ctx, func(v []byte) error {
		var h stateHead
		if err := json.Unmarshal(v, &h); err != nil || h.Invocation == nil {
			return fmt.Errorf("%w: invocation state: %v", errCorrupt, err)
		}
		i := h.Invocation
		out = append(out, &engine.InvocationState{
			Invocation: &engine.Invocation{ID: i.ID, FiringID: i.FiringID, Index: i.Index, Action: i.Action,
				Ruleset: i.Ruleset, Rule: i.Rule, Policy: i.Policy, Sequential: i.Sequential, Created: i.Created, Stream: i.Stream, Mode: i.Mode},
			Status: h.Status, NextAttempt: h.NextAttempt, Updated: h.Updated,
		})
		return nil
	})
	return out, err
}

func decodeState(v []byte) (*engine.InvocationState, error) {
	var st engine.InvocationState
	if err := json.Unmarshal(v, &st); err != nil {
		return nil, fmt.Errorf("%w: invocation state: %v", errCorrupt, err)
	}
	return &st, nil
}

func decodeFiring(fseq uint64, v []byte) (engine.Firing, error) {
	var fr engine.Firing
	if err := json.Unmarshal(v, &fr); err != nil {
		return engine.Firing{}, fmt.Errorf("%w: firing %d: %v", errCorrupt, fseq, err)
	}
	return fr, nil
}

// auditEntry pairs a stored firing with its invocations' states; the
// firing's Invocations are the states' (as last recorded).
func auditEntry(fr engine.Firing, states []*engine.InvocationState) engine.AuditEntry {
	fr.Invocations = make([]*engine.Invocation, len(states))
	for i, st := range states {
		fr.Invocations[i] = st.Invocation
	}
	return engine.AuditEntry{Firing: fr, Invocations: states}
}

// firingStates returns the invocation states of the firing fseq in rule
// order.
func firingStates(db *pebble.DB, fseq uint64) ([]*engine.InvocationState, error) {
	lower := seqKey(pInvocation, fseq)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*engine.InvocationState
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		st, err := decodeState(v)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, it.Error()
}

// Query implements engine.ActionStore: entries newest first (in submit
// order), Since inclusive and Until exclusive on the firing time.
func (a *actionStore) Query(ctx context.Context, f engine.AuditFilter) ([]engine.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []engine.AuditEntry
	err := a.read(func(db *pebble.DB) error {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{pFiring}, UpperBound: []byte{pFiring + 1}})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.Last(); ok && (f.Limit <= 0 || len(out) < f.Limit); ok = it.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			fseq, err := keySeq(it.Key())
			if err != nil {
				return err
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			fr, err := decodeFiring(fseq, v)
			if err != nil {
				return err
			}
			if !firingMatches(&fr, f) {
				continue
			}
			states, err := firingStates(db, fseq)
			if err != nil {
				return err
			}
			if f.Status != "" && !slices.ContainsFunc(states, func(st *engine.InvocationState) bool { return st.Status == f.Status }) {
				continue
			}
			out = append(out, auditEntry(fr, states))
		}
		return it.Error()
	})
	if err != nil {
		return nil, fmt.Errorf("journal: query audit: %w", err)
	}
	return out, nil
}

func firingMatches(fr *engine.Firing, f engine.AuditFilter) bool {
	switch {
	case f.Ruleset != "" && fr.Ruleset != f.Ruleset,
		f.Rule != "" && fr.Rule != f.Rule,
		!f.Since.IsZero() && fr.Time.Before(f.Since),
		!f.Until.IsZero() && !fr.Time.Before(f.Until),
		f.EventID != "" && !slices.Contains(fr.EventIDs, f.EventID):
		return false
	}
	return true
}

// Audit compaction works in steps so that Submit and Update, which need
// a.mu, wait at most for one small chunk of deletions: a step scans firings
// in fseq order with only the database open (a.read, not a.mu), then
// deletes the candidates it found under a.write, after checking again that
// each is still final.
const (
	// compactChunk is the most firings one write deletes.
	compactChunk = 1000
	// compactScanStep is the most firings one scan step reads before the
	// database is let go (Close waits for it) and the iterator dropped.
	compactScanStep = 8192
	// compactNewerRun is how many consecutive firings not older than the
	// cutoff end the scan; see Compact.
	compactNewerRun = 1024
)

// compactHooks let tests act at fixed points of Compact; nil in production.
type compactHooks struct {
	// scanned is called for every firing read by a scan, with the
	// database's iterator open and a.mu not held.
	scanned func(fseq uint64)
	// beforeDelete is called between a scan step and the deletion of its
	// candidates.
	beforeDelete func(fseqs []uint64)
}

// firingHead is the part of a stored firing that compaction reads;
// encoding/json skips the rest without building it.
type firingHead struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// compactCandidate is a firing that a scan found old and final.
type compactCandidate struct {
	fseq   uint64
	id     string
	invIDs []string // by invocation index; "" when a state has none
}

// Compact implements engine.ActionStore. It returns the number of firings
// removed, also with an error (those removed before it stay removed).
//
// Firings are stored in fseq order, and a firing's Time is when it fired:
// the engine's clock when an event completed the match, or the end of a
// window for a timer firing, stored right after (at the end of the
// engine's batch or expiry tick). So firing times grow with fseq, except
// for small disorder (a timer firing fired at the expiry tick after its
// window's end) and the clock stepping back. The scan
// therefore does not stop at the first firing not older than before but
// after compactNewerRun consecutive ones. That stop is safe in every case:
// it never removes a firing it should keep; at worst, an old firing stored
// behind compactNewerRun newer ones (a clock step back) is removed by a
// later run, once those have become old too, i.e. kept longer than the
// retention, never shorter.
func (a *actionStore) Compact(ctx context.Context, before time.Time) (int, error) {
	a.compactMu.Lock()
	defer a.compactMu.Unlock()
	n := 0
	next, run := a.compactFrom, 0
	for {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("journal: compact audit: %w", err)
		}
		cands, scanEnd, kept, done, err := a.compactScan(ctx, next, before, &run)
		if err != nil {
			return n, fmt.Errorf("journal: compact audit: %w", err)
		}
		if h := a.hooks; h != nil && h.beforeDelete != nil {
			fseqs := make([]uint64, len(cands))
			for i, c := range cands {
				fseqs[i] = c.fseq
			}
			h.beforeDelete(fseqs)
		}
		removed, firstKept, err := a.compactDelete(ctx, cands)
		n += removed
		if err != nil {
			return n, fmt.Errorf("journal: compact audit: %w", err)
		}
		// Every firing below compactFrom is deleted: later runs start
		// there instead of skipping the deletions' tombstones.
		if a.compactFrom == next {
			a.compactFrom = min(kept, firstKept, scanEnd)
		}
		if done {
			return n, nil
		}
		next = scanEnd
	}
}

// compactScan reads firings from fseq next on, with the database open but
// without a.mu, until it has compactChunk candidates, has read
// compactScanStep firings, or the scan is over (done). run counts the
// consecutive firings not older than before, across steps. It returns the
// candidates (old, all invocations final), the fseq where the next step
// starts, and the smallest fseq of a firing it keeps (or ^0).
func (a *actionStore) compactScan(ctx context.Context, next uint64, before time.Time, run *int) (cands []compactCandidate, scanEnd, kept uint64, done bool, err error) {
	scanEnd, kept, done = next, ^uint64(0), true
	err = a.read(func(db *pebble.DB) error {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: seqKey(pFiring, next), UpperBound: []byte{pFiring + 1}})
		if err != nil {
			return err
		}
		defer it.Close()
		read := 0
		for ok := it.First(); ok; ok = it.Next() {
			if len(cands) >= compactChunk || read >= compactScanStep {
				done = false
				return it.Error()
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			fseq, err := keySeq(it.Key())
			if err != nil {
				return err
			}
			read++
			scanEnd = fseq + 1
			if h := a.hooks; h != nil && h.scanned != nil {
				h.scanned(fseq)
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			var fh firingHead
			if err := json.Unmarshal(v, &fh); err != nil {
				return fmt.Errorf("%w: firing %d: %v", errCorrupt, fseq, err)
			}
			if !fh.Time.Before(before) {
				kept = min(kept, fseq)
				if *run++; *run >= compactNewerRun {
					return it.Error()
				}
				continue
			}
			*run = 0
			states, err := firingStates(db, fseq)
			if err != nil {
				return err
			}
			if slices.ContainsFunc(states, func(st *engine.InvocationState) bool { return !st.Status.Final() }) {
				kept = min(kept, fseq)
				continue
			}
			c := compactCandidate{fseq: fseq, id: fh.ID, invIDs: make([]string, len(states))}
			for i, st := range states {
				if st.Invocation != nil {
					c.invIDs[i] = st.Invocation.ID
				}
			}
			cands = append(cands, c)
		}
		return it.Error()
	})
	return cands, scanEnd, kept, done, err
}

// compactDelete deletes the candidates that are still final under a.mu:
// an Update since the scan may have made one unfinished again. Update keeps
// the unfinished index in step with the states under a.mu, so the index
// says it. Only Compact deletes firings, and compactMu keeps its runs
// apart, so every candidate is still stored. It returns the number deleted
// and the smallest fseq kept (or ^0).
func (a *actionStore) compactDelete(ctx context.Context, cands []compactCandidate) (int, uint64, error) {
	n, kept := 0, ^uint64(0)
	if len(cands) == 0 {
		return 0, kept, nil
	}
	err := a.write(ctx, true, func(db *pebble.DB, b *pebble.Batch) error {
		n, kept = 0, ^uint64(0)
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{pUnfinished}, UpperBound: []byte{pUnfinished + 1}})
		if err != nil {
			return err
		}
		defer it.Close()
		for _, c := range cands {
			prefix := seqKey(pUnfinished, c.fseq)
			if it.SeekGE(prefix) && bytes.HasPrefix(it.Key(), prefix) {
				kept = min(kept, c.fseq)
				continue
			}
			if err := it.Error(); err != nil {
				return err
			}
			_ = b.Delete(seqKey(pFiring, c.fseq), nil)
			_ = b.Delete(append([]byte{pFiringID}, c.id...), nil)
			for _, id := range c.invIDs {
				if id != "" {
					_ = b.Delete(append([]byte{pInvID}, id...), nil)
				}
			}
			lower := seqKey(pInvocation, c.fseq)
			_ = b.DeleteRange(lower, prefixEnd(lower), nil)
			n++
		}
		return nil
	})
	if err != nil {
		return 0, kept, err
	}
	return n, kept, nil
}

// Firing reads one firing and its invocations' states by firing ID through
// the firing-ID index, or returns nil, nil when it is not stored. It
// implements dispatch.FiringReader, so the dispatcher reads a resubmitted
// firing back without scanning the audit trail.
func (a *actionStore) Firing(ctx context.Context, id string) (*engine.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *engine.AuditEntry
	err := a.read(func(db *pebble.DB) error {
		ref, exists, err := getValue(db, append([]byte{pFiringID}, id...))
		if err != nil || !exists {
			return err
		}
		fseq, err := getU64(ref)
		if err != nil {
			return err
		}
		v, exists, err := getValue(db, seqKey(pFiring, fseq))
		if err != nil || !exists {
			return err
		}
		fr, err := decodeFiring(fseq, v)
		if err != nil {
			return err
		}
		states, err := firingStates(db, fseq)
		if err != nil {
			return err
		}
		e := auditEntry(fr, states)
		out = &e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal: read firing %q: %w", id, err)
	}
	return out, nil
}
