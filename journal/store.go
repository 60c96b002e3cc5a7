package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxBacklog   = 100_000
	DefaultMaxBacklogMB = 256
	DefaultRetryAfter   = 5 * time.Second
	DefaultDedupeWindow = 24 * time.Hour
	DefaultRetention    = 24 * time.Hour
	DefaultCompactEvery = time.Minute
)

// maxGroup bounds how many Emit/Done calls one group commit takes.
const maxGroup = 1024

// blockCache is the size of Pebble's block cache.
const blockCache = 64 << 20

// purgeChunk bounds how many expired keys one purge step deletes, so that a
// purge never holds up ingest for long.
const purgeChunk = 1000

// ErrInUse is returned by Open when another Store, in this process or
// another one, has the data directory open.
var ErrInUse = errors.New("data directory is in use by another rulebook process")

// lockHeld reports whether err is Pebble failing to take its directory lock.
func lockHeld(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")
}

// Options configure a Store.
type Options struct {
	// Dir is the data directory (--data-dir); the store lives in its
	// "journal" subdirectory. Both are created when missing.
	Dir string
	// MaxBacklog is how many records may be accepted but not yet done,
	// plus invocations not yet final, before Emit returns a
	// *engine.BacklogError. Zero: DefaultMaxBacklog; negative: no bound.
	MaxBacklog int
	// MaxBacklogBytes bounds the bytes of what was accepted and is not
	// finished: the stored events not yet done plus the stored states of
	// the invocations not yet final. An Emit that would go beyond it gets
	// a *engine.BacklogError (unless nothing at all is pending, so that one
	// event larger than the bound still goes through). Zero:
	// DefaultMaxBacklogMB MiB; negative: no bound. Action feedback
	// (engine.FeedbackSourceType) is never refused: it comes from work
	// already accepted.
	MaxBacklogBytes int64
	// RetryAfter is the advice carried by a *engine.BacklogError.
	// Zero: DefaultRetryAfter.
	RetryAfter time.Duration
	// DedupeWindow is how long a dedupe key, and the newest timestamp of an
	// order key, are remembered when the Entry does not say. Zero:
	// DefaultDedupeWindow.
	DedupeWindow time.Duration
	// Retention is how long done records are kept before compaction removes
	// them. Zero: DefaultRetention.
	Retention time.Duration
	// CompactEvery is the period of the background compaction started by
	// Start. Zero: DefaultCompactEvery.
	CompactEvery time.Duration
	// Tick, when set, drives the background compaction instead of a ticker
	// of CompactEvery: one compaction per value received.
	Tick <-chan time.Time
	// AuditRetention, when positive, makes the background compaction also
	// delete audit entries (firings whose invocations are all final) older
	// than this. Zero: the audit trail is compacted only by explicit calls
	// to Actions().Compact.
	AuditRetention time.Duration
	// Clock stamps records and expires dedupe keys. Nil: the system clock.
	Clock engine.Clock
	// Log receives the store's own messages and Pebble's.
	Log zerolog.Logger
	// OnCommit, when set, is called after every synced group commit with
	// its duration (fsync included), for the commit-latency metric. It runs
	// on the committer and must not block.
	OnCommit func(d time.Duration)

	// SyncAllFirings makes every stored firing synced before Submit returns,
	// audit-only ones (no invocations) included. Set it when the records
	// firings come from are not in this store (the Kafka bus): an
	// audit-only firing is otherwise made durable with the next synced
	// write, which is safe only when the Done of its record is written
	// after it in this store's WAL.
	SyncAllFirings bool

	// fs, when set (by tests), replaces the operating system's file system:
	// a crashable in-memory one shows what survives a power loss.
	fs vfs.FS
	// syncGather, when set (by tests), replaces the bound of syncGather.
	syncGather time.Duration
}

// Store is the embedded journal: a durable, ordered event log with
// per-source dedupe and order state, plus the dispatcher's durable queue and
// audit trail (Actions), all in one Pebble database in <Options.Dir>/journal.
//
// Emit and Done calls go through one committer goroutine that takes every
// call queued while the previous commit was syncing, decides each call
// atomically (backlog bound, dedupe, stale) and writes the whole group with a
// single Pebble batch and one WAL fsync per group, not per call, which the
// engine's firings of those records may share (walSyncer).
type Store struct {
	opts  Options
	db    *pebble.DB
	log   zerolog.Logger
	clock engine.Clock

	// mu guards closed and every use of db or reqs: readers hold it shared,
	// Close holds it exclusively.
	mu     sync.RWMutex
	closed bool
	reqs   chan *request
	// committerDone is closed when the committer goroutine has returned.
	committerDone chan struct{}

	// lastSeq is the Seq of the newest record written (durable once its
	// group's sync ends); lastDone the newest Done written. Written only by
	// the committer once a group is applied.
	lastSeq  atomic.Uint64
	lastDone atomic.Uint64
	// wal runs the WAL syncs (walSyncer); hasReader is set by the first
	// Read: only then does a group commit wait for a reader to act.
	wal       *walSyncer
	hasReader atomic.Bool
	// readMax is the highest Seq Read has returned, or the last record at
	// Open: a record at or below it may have been processed before
	// (engine.Record.Redelivered).
	readMax atomic.Uint64
	// recent holds the newest records for Read.
	recent recent
	// sizeHint is the buffer size Emit starts a record with: a little more
	// than the last record took, so that encoding rarely grows it.
	sizeHint atomic.Int64
	// pending holds the stored sizes of the records after lastDone, in
	// order; pendingBytes is their sum. Only the committer (and Open,
	// before it starts) changes them.
	pending      []int32
	pendingBytes atomic.Int64

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced when records are added or on Close
	// doneNotify is closed and replaced when the last done moves or on
	// Close (Pace waits on it).
	doneNotify chan struct{}

	loopMu     sync.Mutex
	loopCancel context.CancelFunc
	loopDone   chan struct{}

	closeOnce sync.Once
	closeErr  error

	actions *actionStore
}

var _ engine.Journal = (*Store)(nil)

type requestKind int

const (
	reqEmit requestKind = iota
	reqDone
	reqApply
)

// request is one call handed to the committer.
type request struct {
	kind requestKind
	// emit
	source   engine.SourceRef
	scope    []byte
	entries  []engine.Entry
	values   [][]byte       // record values, with timeValueLen bytes reserved in front
	events   []engine.Event // the events as Read returns them (see encodeValue)
	outcomes []engine.Outcome
	// done
	seq   uint64
	facts []factWrite
	// apply runs inside the committer with the group's batch.
	apply func(g *group) error

	err   error
	ready chan struct{}
	// released: ready was closed before the group's sync (a Done that
	// carries no facts); the committer's only.
	released bool
}

// group is the state of one group commit.
type group struct {
	b   *pebble.Batch
	now int64
	// dedupe and order hold the keys written by this group (scoped key →
	// expiry, and → newest timestamp), which the database does not show yet.
	dedupe map[string]int64
	order  map[string]int64
	// recs are the records this group appends, for the recent ring once
	// the group is durable.
	recs []engine.Record
	// sync: the group must be synced (it accepts events or applies a
	// change); a group of Done calls only is not (engine.Journal.Done).
	sync bool
	// addedBytes is the size of the records this group appends so far.
	addedBytes int64
}

// Open opens (or creates) the store in <opts.Dir>/journal and recovers its
// state: the last sequence, the last done, the dedupe and order keys and the
// action queue are as the last acknowledged call left them.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("journal: data directory is empty")
	}
	if opts.MaxBacklog == 0 {
		opts.MaxBacklog = DefaultMaxBacklog
	}
	if opts.MaxBacklogBytes == 0 {
		opts.MaxBacklogBytes = DefaultMaxBacklogMB << 20
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = DefaultDedupeWindow
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.CompactEvery <= 0 {
		opts.CompactEvery = DefaultCompactEvery
	}
	if opts.Clock == nil {
		opts.Clock = engine.SystemClock{}
	}
	path := filepath.Join(opts.Dir, "journal")
	if opts.fs == nil {
		if err := os.MkdirAll(path, 0o750); err != nil {
			return nil, fmt.Errorf("journal: create data directory: %w", err)
		}
	}
	log := opts.Log.With().Str("component", "journal").Logger()
	popts := pebbleOptions(log)
	if opts.fs != nil {
		popts.FS = opts.fs
	}
	db, err := pebble.Open(path, popts)
	// The database holds its own reference to the cache.
	popts.Cache.Unref()
	if err != nil {
		if lockHeld(err) {
			err = ErrInUse
		}
		return nil, fmt.Errorf("journal: open %q: %w", path, err)
	}
	s := &Store{
		opts:          opts,
		db:            db,
		log:           log,
		clock:         opts.Clock,
		reqs:          make(chan *request, maxGroup),
		committerDone: make(chan struct{}),
		notify:        make(chan struct{}),
		doneNotify:    make(chan struct{}),
		wal:           newWALSyncer(db, opts.syncGather),
	}
	seq, err := s.metaU64(metaSeq)
	if err == nil {
		var done uint64
		done, err = s.metaU64(metaDone)
		if err == nil && done > seq {
			err = fmt.Errorf("%w: done %d is beyond the last record %d", errCorrupt, done, seq)
		}
		s.lastSeq.Store(seq)
		s.lastDone.Store(done)
		s.readMax.Store(seq)
	}
	if err == nil {
		err = s.loadPending()
	}
	if err == nil {
		s.actions, err = newActionStore(s)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: open %q: %w", path, err)
	}
	go s.commitLoop()
	log.Info().Str("dir", path).Uint64("last_seq", s.lastSeq.Load()).
		Uint64("last_done", s.lastDone.Load()).Msg("journal opened")
	return s, nil
}

// loadPending sums the sizes of the records accepted and not yet done, for
// the byte bound of the backlog.
func (s *Store) loadPending() error {
	done, last := s.lastDone.Load(), s.lastSeq.Load()
	if last <= done {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: seqKey(pEvent, done+1), UpperBound: seqKey(pEvent, last+1)})
	if err != nil {
		return err
	}
	defer it.Close()
	var total int64
	for ok := it.First(); ok; ok = it.Next() {
		n := int32(len(it.Value()))
		s.pending = append(s.pending, n)
		total += int64(n)
	}
	if err := it.Error(); err != nil {
		return err
	}
	if uint64(len(s.pending)) != last-done {
		// Records done and compacted cannot be after lastDone; keep the
		// count of what is there.
		s.log.Warn().Int("found", len(s.pending)).Uint64("expected", last-done).Msg("unprocessed records missing")
	}
	s.pendingBytes.Store(total)
	return nil
}

// advancePending forgets the sizes of the records up to done (from
// prevDone) and adds those of recs, after a successful commit.
func (s *Store) advancePending(prevDone, done uint64, recs []engine.Record) {
	var delta int64
	for _, r := range recs {
		s.pending = append(s.pending, int32(r.Size))
		delta += int64(r.Size)
	}
	if n := done - prevDone; n > 0 {
		k := int(min(n, uint64(len(s.pending))))
		for _, sz := range s.pending[:k] {
			delta -= int64(sz)
		}
		s.pending = s.pending[k:]
		if len(s.pending) == 0 {
			s.pending = nil // let the array go
		}
	}
	s.pendingBytes.Add(delta)
}

// Pending returns what was accepted and is not finished: records not yet
// done plus invocations not yet final, in count and in stored bytes. The
// backlog bounds (Options.MaxBacklog, MaxBacklogBytes) apply to it.
func (s *Store) Pending() (count int, bytes int64) {
	c, b := s.actions.pending()
	return s.Backlog() + int(c), s.pendingBytes.Load() + b
}

var _ engine.BacklogProbe = (*Store)(nil)

// BacklogFull implements engine.BacklogProbe: a *engine.BacklogError when
// what is pending is at the bounds already, so that no Emit from src
// (other than action feedback) could be accepted now.
func (s *Store) BacklogFull(src engine.SourceRef) *engine.BacklogError {
	if src.Type == engine.FeedbackSourceType {
		return nil
	}
	count, bytes := s.Pending()
	// The smallest call adds one byte: full when even that would not fit.
	if s.overBacklog(int64(count), bytes+1) {
		return &engine.BacklogError{RetryAfter: s.opts.RetryAfter}
	}
	return nil
}

// overBacklog is the one test of the backlog bounds, for the probe and for
// Emit alike: pending is what is accepted and not finished, withCall its
// bytes plus those of the call being decided. A call over the byte bound is
// still accepted when nothing is pending, so that no event is too large to
// ever get in.
func (s *Store) overBacklog(pending, withCall int64) bool {
	return s.opts.MaxBacklog > 0 && pending >= int64(s.opts.MaxBacklog) ||
		s.opts.MaxBacklogBytes > 0 && pending > 0 && withCall > s.opts.MaxBacklogBytes
}

// metaU64 reads a counter of the meta keyspace; a missing one is 0.
func (s *Store) metaU64(name string) (uint64, error) {
	v, ok, err := getValue(s.db, metaKey(name))
	if err != nil || !ok {
		return 0, err
	}
	return getU64(v)
}

// pebbleOptions tunes Pebble for the journal's workload.
func pebbleOptions(log zerolog.Logger) *pebble.Options {
	o := &pebble.Options{
		Logger: pebbleLogger{log: log},
		// A larger memtable than Pebble's 4 MiB default means fewer flushes
		// under a burst of 1 KiB events, and a shorter latency tail.
		MemTableSize:       32 << 20,
		FormatMajorVersion: pebble.FormatNewest,
	}
	// Stalls and slow disks are what an operator needs to see when ingest
	// latency climbs.
	o.EventListener = &pebble.EventListener{
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			log.Warn().Str("reason", info.Reason).Msg("journal writes stalled")
		},
		WriteStallEnd: func() { log.Info().Msg("journal writes resumed") },
		DiskSlow: func(info pebble.DiskSlowInfo) {
			log.Warn().Str("path", info.Path).Str("op", info.OpType.String()).
				Dur("duration", info.Duration).Msg("journal disk slow")
		},
	}
	// Most dedupe lookups are for keys never seen: bloom filters answer
	// them without reading (and decompressing) data blocks, and a block
	// cache larger than the 8 MiB default keeps the filter and index blocks
	// of every table in memory.
	o.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	o.Cache = pebble.NewCache(blockCache)
	return o
}

// Emit implements engine.Emitter: the entries of one call are decided
// together (backlog bound, then per entry dedupe and stale checks) and made
// durable before Emit returns.
func (s *Store) Emit(ctx context.Context, source engine.SourceRef, entries []engine.Entry) ([]engine.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		if s.isClosed() {
			return nil, engine.ErrClosed
		}
		return []engine.Outcome{}, nil
	}
	src, err := json.Marshal(source)
	if err != nil {
		return nil, fmt.Errorf("journal: encode source: %w", err)
	}
	values := make([][]byte, len(entries))
	events := make([]engine.Event, len(entries))
	for i, e := range entries {
		v, dec, err := encodeRecord(src, e.Event, int(s.sizeHint.Load()))
		if err != nil {
			return nil, fmt.Errorf("journal: encode event %d: %w", i, err)
		}
		values[i] = v
		events[i], _ = dec.(map[string]any)
		s.sizeHint.Store(int64(min(len(v)+len(v)/4, 64<<10)))
	}
	r := &request{kind: reqEmit, source: source, scope: scope(source), entries: entries, values: values, events: events}
	if err := s.submit(r); err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.outcomes, nil
}

// submit hands r to the committer and waits for its decision. Once handed
// over, r is decided even when the caller's context ends, so that an error
// always means that nothing of the call was accepted.
func (s *Store) submit(r *request) error {
	r.ready = make(chan struct{})
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return engine.ErrClosed
	}
	s.reqs <- r
	s.mu.RUnlock()
	<-r.ready
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// recordJSON is the stored form of a record, after the accepted time.
type recordJSON struct {
	Source engine.SourceRef `json:"source"`
	Event  engine.Event     `json:"event"`
}

// encodeRecord builds a record value with room for the accepted time in
// front, which the committer fills in, and returns with it the event as a
// reader decodes it.
func encodeRecord(src []byte, ev engine.Event, hint int) ([]byte, any, error) {
	const head, mid, tail = `{"source":`, `,"event":`, `}`
	b := make([]byte, timeValueLen, max(hint, timeValueLen+len(head)+len(src)+len(mid)+256))
	b = append(b, head...)
	b = append(b, src...)
	b = append(b, mid...)
	b, dec, err := encodeValue(b, ev)
	if err != nil {
		return nil, nil, err
	}
	return append(b, tail...), dec, nil
}

func decodeRecord(seq uint64, v []byte) (engine.Record, error) {
	if len(v) < timeValueLen {
		return engine.Record{}, fmt.Errorf("%w: record %d is %d bytes", errCorrupt, seq, len(v))
	}
	var rj recordJSON
	if err := json.Unmarshal(v[timeValueLen:], &rj); err != nil {
		return engine.Record{}, fmt.Errorf("%w: record %d: %v", errCorrupt, seq, err)
	}
	return engine.Record{
		Seq:      seq,
		Source:   rj.Source,
		Event:    rj.Event,
		Accepted: time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(),
		Size:     len(v),
	}, nil
}

// commitLoop is the committer: it owns the sequence and done counters and
// is the only writer of records, dedupe and order keys.
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	seq, done := s.lastSeq.Load(), s.lastDone.Load()
	reqs := make([]*request, 0, maxGroup)
	for r := range s.reqs {
		reqs = append(reqs[:0], r)
	drain:
		for len(reqs) < maxGroup {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				reqs = append(reqs, r)
			default:
				break drain
			}
		}
		seq, done = s.commitGroup(reqs, seq, done)
	}
}

// commitGroup decides and writes one group and returns the new counters.
func (s *Store) commitGroup(reqs []*request, seq, done uint64) (uint64, uint64) {
	g := &group{
		b:      s.db.NewBatch(),
		now:    unixNano(s.clock.Now()),
		dedupe: map[string]int64{},
		order:  map[string]int64{},
	}
	defer g.b.Close()
	startSeq, startDone := seq, done
	// factsDone: a Done carrying facts is in the group, and waits for its
	// sync; its caller, the engine's runner, cannot act on the records
	// meanwhile.
	factsDone := false
	for _, r := range reqs {
		switch r.kind {
		case reqEmit:
			seq = s.decideEmit(g, r, seq, done)
		case reqDone:
			if r.seq > seq {
				r.err = fmt.Errorf("journal: done %d is beyond the last accepted record %d", r.seq, seq)
				break
			}
			done = max(done, r.seq)
			factsDone = factsDone || len(r.facts) > 0
			for _, f := range r.facts {
				g.sync = true
				if f.value == nil {
					_ = g.b.Delete(f.key, nil)
				} else {
					_ = g.b.Set(f.key, f.value, nil)
				}
			}
		case reqApply:
			g.sync = true
			r.err = r.apply(g)
		}
	}
	if seq != startSeq {
		_ = g.b.Set(metaKey(metaSeq), u64(seq), nil)
	}
	if done != startDone {
		_ = g.b.Set(metaKey(metaDone), u64(done), nil)
	}
	// Applied without a sync, and published to Read at once (see
	// walSyncer): a reader that keeps up acts on the records while the
	// group waits for the sync that acknowledges them, and what it writes
	// meanwhile shares that sync. A group of Done calls only is not
	// synced: a crash may forget them, and the records are then read
	// again, marked Redelivered; the next synced commit makes them
	// durable (the WAL is written in order).
	var err error
	start := time.Now()
	wrote := !g.b.Empty()
	if wrote {
		err = g.b.Commit(pebble.NoSync)
	}
	published := err == nil
	if published {
		s.publish(g, startSeq, startDone, seq, done)
		// A Done without facts needs no sync (see Done): its caller, the
		// engine's runner, goes on now, to act on the records this group
		// may wait for.
		for _, r := range reqs {
			if r.kind == reqDone && len(r.facts) == 0 {
				r.released = true
				close(r.ready)
			}
		}
		if g.sync && wrote {
			var until uint64
			if seq != startSeq && !factsDone && s.hasReader.Load() && s.readMax.Load() >= startSeq && s.wal.worthWaiting() {
				until = seq
			}
			// A failed WAL sync stops the process (Pebble's fatal commit
			// error); should one return, the records stay published but
			// no caller is told they were accepted.
			if err = s.wal.sync(until); err == nil && s.opts.OnCommit != nil {
				s.opts.OnCommit(time.Since(start))
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("journal: commit: %w", err)
		s.log.Error().Err(err).Int("calls", len(reqs)).Msg("group commit failed")
		if !published {
			seq, done = startSeq, startDone
		}
	}
	for _, r := range reqs {
		if r.released {
			continue
		}
		if err != nil && r.err == nil {
			r.err = err
			r.outcomes = nil
		}
		close(r.ready)
	}
	return seq, done
}

// publish makes what a group applied visible: its records to Read, its
// Done calls to LastDone, Pace and the backlog.
func (s *Store) publish(g *group, startSeq, startDone, seq, done uint64) {
	s.lastDone.Store(done)
	if done != startDone {
		s.wakeDone()
	}
	s.advancePending(startDone, done, g.recs)
	for _, rec := range g.recs {
		s.recent.add(rec)
	}
	if seq != startSeq {
		s.lastSeq.Store(seq)
		s.wake()
	}
}

// plannedEntry is one accepted entry of an Emit call, before it is written.
type plannedEntry struct {
	value        []byte
	event        engine.Event
	dedupeKey    []byte // nil: the entry carries no dedupe key
	dedupeExpiry int64
	orderKey     []byte // nil: the entry carries no order key and timestamp
	orderNewest  int64
	orderExpiry  int64
}

// decideEmit decides one Emit call as a whole: either every entry gets an
// outcome and the accepted ones are added to the batch, or r.err is set and
// nothing of the call is written. It returns the new last sequence.
func (s *Store) decideEmit(g *group, r *request, seq, done uint64) uint64 {
	if r.source.Type != engine.FeedbackSourceType && s.backlogFull(g, r, seq, done) {
		r.err = &engine.BacklogError{RetryAfter: s.opts.RetryAfter}
		return seq
	}
	outcomes := make([]engine.Outcome, len(r.entries))
	planned := make([]plannedEntry, 0, len(r.entries))
	// Keys written by earlier entries of this same call.
	var callDedupe map[string]int64
	var callOrder map[string]int64
	stored, dkeys, err := s.lookupDedupe(r)
	if err != nil {
		r.err = err
		return seq
	}
	for i, e := range r.entries {
		window := e.DedupeWindow
		if window <= 0 {
			window = s.opts.DedupeWindow
		}
		p := plannedEntry{value: r.values[i], event: r.events[i]}
		if e.DedupeKey != "" {
			var k []byte
			if dkeys != nil {
				k = dkeys[i]
			} else {
				k = scopedKey(pDedupe, r.scope, e.DedupeKey)
			}
			seen, err := s.dedupeSeen(g, callDedupe, stored, k)
			if err != nil {
				r.err = err
				return seq
			}
			if seen {
				outcomes[i] = engine.Duplicate
				continue
			}
			p.dedupeKey, p.dedupeExpiry = k, g.now+int64(window)
		}
		if e.OrderKey != "" && !e.Timestamp.IsZero() {
			k := scopedKey(pOrder, r.scope, e.OrderKey)
			ts := unixNano(e.Timestamp)
			newest, found, err := s.orderNewest(g, callOrder, k)
			if err != nil {
				r.err = err
				return seq
			}
			if found && ts < newest {
				outcomes[i] = engine.Stale
				continue
			}
			if found {
				ts = max(ts, newest)
			}
			p.orderKey, p.orderNewest, p.orderExpiry = k, ts, g.now+int64(window)
		}
		outcomes[i] = engine.Accepted
		if p.dedupeKey != nil {
			if callDedupe == nil {
				callDedupe = map[string]int64{}
			}
			callDedupe[string(p.dedupeKey)] = p.dedupeExpiry
		}
		if p.orderKey != nil {
			if callOrder == nil {
				callOrder = map[string]int64{}
			}
			callOrder[string(p.orderKey)] = p.orderNewest
		}
		planned = append(planned, p)
	}
	if len(planned) > 0 {
		g.sync = true
	}
	// The source's position after this call is written in the same batch
	// as its events, whatever their outcomes: a duplicate or stale entry
	// was delivered too, and must not be asked for again.
	for i := len(r.entries) - 1; i >= 0; i-- {
		if pos := r.entries[i].Position; pos != "" {
			_ = g.b.Set(scopedKey(pPosition, r.scope, ""), []byte(pos), nil)
			g.sync = true
			break
		}
	}
	// Each kind of key in a run of its own: Pebble inserts a batch into its
	// memtable in batch order and reuses the previous insert's position when
	// the next key follows it, which records (ascending) and the dedupe
	// keys of a bulk source (close together) then do; interleaved, every
	// insert searched the memtable from the top.
	for _, p := range planned {
		seq++
		binary.BigEndian.PutUint64(p.value, uint64(g.now))
		_ = g.b.Set(seqKey(pEvent, seq), p.value, nil)
		g.recs = append(g.recs, engine.Record{Seq: seq, Source: r.source, Event: p.event, Accepted: time.Unix(0, g.now).UTC(), Size: len(p.value)})
		g.addedBytes += int64(len(p.value))
	}
	for _, p := range planned {
		if p.dedupeKey != nil {
			_ = g.b.Set(p.dedupeKey, u64(uint64(p.dedupeExpiry)), nil)
			g.dedupe[string(p.dedupeKey)] = p.dedupeExpiry
		}
	}
	for _, p := range planned {
		if p.dedupeKey != nil {
			_ = g.b.Set(expiryKey(pDedupeExp, p.dedupeExpiry, p.dedupeKey), nil, nil)
		}
	}
	for _, p := range planned {
		if p.orderKey != nil {
			v := binary.BigEndian.AppendUint64(u64(uint64(p.orderNewest)), uint64(p.orderExpiry))
			_ = g.b.Set(p.orderKey, v, nil)
			_ = g.b.Set(expiryKey(pOrderExp, p.orderExpiry, p.orderKey), nil, nil)
			g.order[string(p.orderKey)] = p.orderNewest
		}
	}
	r.outcomes = outcomes
	return seq
}

// batchLookup is the number of dedupe keys in one Emit call from which
// they are looked up in the database together (lookupDedupe), not one Get
// each.
const batchLookup = 16

// storedKeys is what lookupDedupe found in the database: the expiry of
// every key of the call that is stored. Nil: nothing was looked up.
type storedKeys map[string]int64

// lookupDedupe looks the dedupe keys of a call with many of them up in the
// database at once: the keys sorted, one iterator bounded by the first and
// the last, walked forward. Bulk sources (a file's lines, a Kafka
// partition's offsets) emit keys that are close together and new, so the
// walk finds an empty range at once, where a Get per key probes every
// table that may hold it; that Get was most of the CPU of such a call.
// It also returns the scoped keys it built, by entry (nil for an entry
// without one), for the caller to use rather than build again. It returns
// nils for a call with fewer keys, which dedupeSeen then reads one Get
// each.
func (s *Store) lookupDedupe(r *request) (storedKeys, [][]byte, error) {
	n := 0
	for _, e := range r.entries {
		if e.DedupeKey != "" {
			n++
		}
	}
	if n < batchLookup {
		return nil, nil, nil
	}
	byEntry := make([][]byte, len(r.entries))
	keys := make([][]byte, 0, n)
	for i, e := range r.entries {
		if e.DedupeKey != "" {
			byEntry[i] = scopedKey(pDedupe, r.scope, e.DedupeKey)
			keys = append(keys, byEntry[i])
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	last := keys[len(keys)-1]
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: keys[0], UpperBound: append(last[:len(last):len(last)], 0)})
	if err != nil {
		return nil, nil, fmt.Errorf("journal: read dedupe keys: %w", err)
	}
	found := storedKeys{}
	ok := it.First()
	for _, k := range keys {
		// A few steps forward, then a seek: keys far apart (random ids)
		// cost one seek each, not a walk over everything between them.
		for steps := 0; ok && bytes.Compare(it.Key(), k) < 0; steps++ {
			if steps == 8 {
				ok = it.SeekGE(k)
				break
			}
			ok = it.Next()
		}
		if !ok {
			break
		}
		if bytes.Equal(it.Key(), k) {
			expiry, err := getU64(it.Value())
			if err != nil {
				_ = it.Close()
				return nil, nil, err
			}
			found[string(k)] = int64(expiry)
		}
	}
	if err := it.Close(); err != nil {
		return nil, nil, fmt.Errorf("journal: read dedupe keys: %w", err)
	}
	return found, byEntry, nil
}

// backlogFull reports whether accepting r would take what is pending
// (records not done, invocations not final) beyond the bounds.
func (s *Store) backlogFull(g *group, r *request, seq, done uint64) bool {
	invCount, invBytes := s.actions.pending()
	bytes := s.pendingBytes.Load() + g.addedBytes + invBytes
	for _, v := range r.values {
		bytes += int64(len(v))
	}
	return s.overBacklog(int64(seq-done)+invCount, bytes)
}

// dedupeSeen reports whether the scoped dedupe key k is remembered and not
// expired, looking at this call, this group, then the database (through
// stored when the call's keys were looked up together).
func (s *Store) dedupeSeen(g *group, call map[string]int64, stored storedKeys, k []byte) (bool, error) {
	if _, ok := call[string(k)]; ok {
		return true, nil
	}
	if _, ok := g.dedupe[string(k)]; ok {
		return true, nil
	}
	if stored != nil {
		expiry, ok := stored[string(k)]
		return ok && expiry > g.now, nil
	}
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("journal: read dedupe key: %w", err)
	}
	defer closer.Close()
	expiry, err := getU64(v)
	if err != nil {
		return false, err
	}
	return int64(expiry) > g.now, nil
}

// orderNewest returns the newest accepted timestamp of the scoped order key
// k, if it is remembered and not expired.
func (s *Store) orderNewest(g *group, call map[string]int64, k []byte) (int64, bool, error) {
	if ts, ok := call[string(k)]; ok {
		return ts, true, nil
	}
	if ts, ok := g.order[string(k)]; ok {
		return ts, true, nil
	}
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("journal: read order key: %w", err)
	}
	defer closer.Close()
	if len(v) != 16 {
		return 0, false, fmt.Errorf("%w: order value of %d bytes", errCorrupt, len(v))
	}
	newest, expiry := int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))
	if expiry <= g.now {
		return 0, false, nil
	}
	return newest, true, nil
}

func (s *Store) wakeDone() {
	s.notifyMu.Lock()
	close(s.doneNotify)
	s.doneNotify = make(chan struct{})
	s.notifyMu.Unlock()
}

// paceWindow is the backlog Pace keeps bulk sources within: half the
// recent ring, so that the engine, reading a batch at a time right behind
// them, is served from memory rather than by decoding from the database.
const paceWindow = recentRecords / 2

var _ engine.Pacer = (*Store)(nil)

// Pace implements engine.Pacer: it returns once n more records keep the
// backlog (accepted, not done) within paceWindow, or at once when it is
// empty, or with ctx's error, or at once after Close (Emit then answers
// ErrClosed).
func (s *Store) Pace(ctx context.Context, n int) error {
	for {
		s.notifyMu.Lock()
		moved := s.doneNotify
		s.notifyMu.Unlock()
		backlog := s.Backlog()
		if backlog == 0 || backlog+n <= paceWindow || s.isClosed() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-moved:
		}
	}
}

func (s *Store) wake() {
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}

// Read implements engine.Journal: it blocks until a record with Seq > after
// exists, ctx ends or the store closes (engine.ErrClosed), and returns up
// to max records in order (max < 1 reads one). Records that were done and
// compacted are skipped. A record is returned as soon as it is written,
// possibly before the sync that acknowledges it ends (see walSyncer): a
// synced write after it makes it durable too.
func (s *Store) Read(ctx context.Context, after uint64, max int) ([]engine.Record, error) {
	if max < 1 {
		max = 1
	}
	if !s.hasReader.Load() {
		s.hasReader.Store(true) // once: not a shared write per Read
	}
	for {
		s.notifyMu.Lock()
		changed := s.notify
		s.notifyMu.Unlock()
		last := s.lastSeq.Load()
		if after < last {
			if s.isClosed() {
				return nil, engine.ErrClosed
			}
			recs, ok := s.recent.get(after, last, max)
			if !ok {
				var err error
				if recs, err = s.readRange(after, last, max); err != nil {
					return nil, err
				}
			}
			if len(recs) > 0 {
				s.markRedelivered(recs)
				return recs, nil
			}
		} else if s.isClosed() {
			return nil, engine.ErrClosed
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

// markRedelivered sets Redelivered on the records at or below readMax and
// raises readMax to the last of them; recs is not empty.
func (s *Store) markRedelivered(recs []engine.Record) {
	prev := s.readMax.Load()
	for i := range recs {
		recs[i].Redelivered = recs[i].Seq <= prev
	}
	raise(&s.readMax, recs[len(recs)-1].Seq)
}

// raise sets a to v unless it already holds more.
func raise(a *atomic.Uint64, v uint64) {
	prev := a.Load()
	for prev < v && !a.CompareAndSwap(prev, v) {
		prev = a.Load()
	}
}

// readRange returns up to max records with after < Seq <= last.
func (s *Store) readRange(after, last uint64, max int) ([]engine.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, engine.ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: seqKey(pEvent, after+1),
		UpperBound: seqKey(pEvent, last+1),
	})
	if err != nil {
		return nil, fmt.Errorf("journal: read: %w", err)
	}
	defer it.Close()
	var recs []engine.Record
	for ok := it.First(); ok && len(recs) < max; ok = it.Next() {
		seq, err := keySeq(it.Key())
		if err != nil {
			return nil, err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("journal: read record %d: %w", seq, err)
		}
		rec, err := decodeRecord(seq, v)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("journal: read: %w", err)
	}
	return recs, nil
}

// Done implements engine.Journal: every record up to and including seq is
// processed. It is durable with the next synced write of the database (an
// accepted event, an action store write that syncs, a compaction that
// purged something) or a clean Close, not when Done returns: a crash may
// forget it, and the records are then read again with Redelivered set. A
// seq at or below LastDone is a no-op; a seq beyond the last accepted
// record is an error.
func (s *Store) Done(ctx context.Context, seq uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.wal.askDone(seq)
	r := &request{kind: reqDone, seq: seq}
	if err := s.submit(r); err != nil {
		return err
	}
	return r.err
}

// LastDone implements engine.Journal.
func (s *Store) LastDone(context.Context) (uint64, error) { return s.lastDone.Load(), nil }

// Position implements engine.PositionReader: the position of the last
// durable Emit call of src that carried one ("" when none did).
func (s *Store) Position(_ context.Context, src engine.SourceRef) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return "", engine.ErrClosed
	}
	v, ok, err := getValue(s.db, scopedKey(pPosition, scope(src), ""))
	if err != nil {
		return "", fmt.Errorf("journal: read position: %w", err)
	}
	if !ok {
		return "", nil
	}
	return string(v), nil
}

var _ engine.PositionReader = (*Store)(nil)

// LastSeq returns the Seq of the newest record written (0: none yet).
func (s *Store) LastSeq() uint64 { return s.lastSeq.Load() }

// Backlog implements engine.Journal: records accepted and not yet done.
func (s *Store) Backlog() int { return int(s.lastSeq.Load() - s.lastDone.Load()) }

// Close implements engine.Journal: it stops the background compaction,
// decides every call already handed to the committer, makes Emit and Done
// return engine.ErrClosed, wakes blocked readers and closes the database.
// Calling it again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Stop(stopCtx); err != nil {
			s.log.Error().Err(err).Msg("stop compaction")
		}
		s.wal.stop() // a group waiting for the reader syncs now
		s.mu.Lock()
		s.closed = true
		close(s.reqs)
		s.mu.Unlock()
		<-s.committerDone
		s.wake()
		s.wakeDone()
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("journal: close: %w", err)
		}
		s.log.Info().Uint64("last_seq", s.lastSeq.Load()).Uint64("last_done", s.lastDone.Load()).Msg("journal closed")
	})
	return s.closeErr
}

// Actions returns the dispatcher's durable queue and audit trail, kept in
// the same database as the journal.
func (s *Store) Actions() engine.ActionStore { return s.actions }

// pebbleLogger sends Pebble's messages to zerolog: its routine flush and
// compaction reports at debug level.
type pebbleLogger struct{ log zerolog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) { l.log.Debug().Msgf(format, args...) }

func (l pebbleLogger) Errorf(format string, args ...any) { l.log.Error().Msgf(format, args...) }

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error().Msg(msg)
	panic("journal: pebble: " + msg)
}
