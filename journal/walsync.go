package journal

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// syncGather bounds how long a group commit of events waits, once its
// records are published to a reader that keeps up, for that reader to act
// on them before the WAL sync that acknowledges them (see walSyncer).
// syncMisses: after that many waits in a row that did not pay, only one
// group in syncProbe waits.
const (
	syncGather = time.Millisecond
	syncMisses = 4
	syncProbe  = 16
)

// walSyncer runs the store's WAL syncs: a sync makes every write before it
// durable, so every caller waiting at that moment is served by one.
//
// Its point is the event and the firing it causes. The committer writes a
// group of events without a sync and publishes them to Read at once; the
// engine evaluates them while the committer gathers, and the firings it
// stores (the action store's synced write) join the same sync as their
// events: one fdatasync where there were two in a row, each 50-150 us of
// CPU in this VM and a few hundred of latency. A gathering committer
// stops waiting when a firing asks for a sync, when the engine marks the
// group done (events that fired nothing: Done is called, not yet
// committed), or after syncGather.
//
// What this changes: the engine may read a record before it is durable.
// Nothing it causes outside the store comes before a sync that covers the
// record: the dispatcher runs a firing only once the firing is synced,
// and the WAL keeps the order, so the sync that covers a firing covers
// the events before it. Only what the engine shows or prints itself (the
// live stream, debug) may come first; a crash before the sync loses both
// the record and what it caused, and its sender, never acknowledged,
// sends it again. A failed WAL sync stops the process (Pebble's fatal
// commit error), so no caller goes on after one.
//
// Waiting pays only when the engine writes something synced (a firing
// with something to run) from the records: for events that fire nothing,
// or only audit records, it puts the engine's work and the sync in a row
// where they ran side by side (a flood of events through a rule with the
// none action: 10,400 requests/s against 15,000). So the committer stops
// waiting after syncMisses waits in a row ended without a synced write
// joining them, and then waits only one group in syncProbe, to notice
// when firings come again. One miss alone does not stop it: with a
// firing per event, the engine now and then not acting within the bound
// (204 waits of 2,441 at 600 commands/s) stopped the waits for the 15
// groups after each miss, and their firings synced on their own (2,843
// groups of 5,800 did not wait; 1.4-1.7 WAL syncs per command, 1.3 since).
type walSyncer struct {
	db *pebble.DB
	// gatherMax is syncGather, or what a test sets.
	gatherMax time.Duration

	mu sync.Mutex
	// round is the sync being gathered, not started yet: a caller joins
	// it rather than start another.
	round *syncRound
	// hurry wakes a gathering round: someone joined it or marked the
	// records it waits for done.
	hurry chan struct{}
	// doneAsked is the highest seq a Done call asked for, before the
	// committer decides it.
	doneAsked atomic.Uint64
	// quit ends every wait: the store is closing.
	quit     chan struct{}
	quitOnce sync.Once
	// misses counts the waits in a row that ended without a synced write
	// joining them; skipped, the groups since that made the committer
	// stop waiting. The committer's only.
	misses, skipped int
}

// worthWaiting reports whether the committer's next group should wait for
// the reader: fewer than syncMisses waits in a row did not pay, or it is
// a probe. The committer's only.
func (w *walSyncer) worthWaiting() bool {
	if w.misses < syncMisses {
		return true
	}
	w.skipped++
	return w.skipped%syncProbe == 0
}

// waited notes how a wait ended. The committer's only.
func (w *walSyncer) waited(paid bool) {
	if paid {
		w.misses, w.skipped = 0, 0
	} else {
		w.misses++
	}
}

type syncRound struct {
	done   chan struct{}
	err    error
	joined bool // another caller waits for this round; under walSyncer.mu
}

func newWALSyncer(db *pebble.DB, gatherMax time.Duration) *walSyncer {
	if gatherMax <= 0 {
		gatherMax = syncGather
	}
	return &walSyncer{db: db, gatherMax: gatherMax, hurry: make(chan struct{}, 1), quit: make(chan struct{})}
}

// stop ends the waits, for Close.
func (w *walSyncer) stop() { w.quitOnce.Do(func() { close(w.quit) }) }

// sync makes every write applied before the call durable. A call with
// until > 0 (the committer, for records up to until that a reader will
// act on) first waits for doneAsked to reach until, for another caller to
// join, or for syncGather to pass.
func (w *walSyncer) sync(until uint64) error {
	w.mu.Lock()
	if r := w.round; r != nil {
		r.joined = true
		w.mu.Unlock()
		w.nudge()
		<-r.done
		return r.err
	}
	r := &syncRound{done: make(chan struct{})}
	w.round = r
	w.mu.Unlock()
	if until > 0 {
		w.waited(w.gather(r, until))
	}
	w.mu.Lock()
	w.round = nil // callers from now on need a sync after this one
	w.mu.Unlock()
	r.err = w.db.LogData(nil, pebble.Sync)
	close(r.done)
	return r.err
}

// gather waits as sync says; it reports whether a synced write joined.
func (w *walSyncer) gather(r *syncRound, until uint64) bool {
	// A stale nudge, from a caller that joined an earlier round or a Done
	// of earlier records, must not end this wait: drain it, then look.
	select {
	case <-w.hurry:
	default:
	}
	joined := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return r.joined
	}
	// ended: a synced write joined (paid), or the records are done.
	ended := func() (paid, over bool) {
		if joined() {
			return true, true
		}
		return false, w.doneAsked.Load() >= until
	}
	if paid, over := ended(); over {
		return paid
	}
	t := time.NewTimer(w.gatherMax)
	defer t.Stop()
	for {
		select {
		case <-w.hurry:
			if paid, over := ended(); over {
				return paid
			}
		case <-t.C:
			return joined()
		case <-w.quit:
			return joined()
		}
	}
}

// nudge wakes a gathering round, without blocking.
func (w *walSyncer) nudge() {
	select {
	case w.hurry <- struct{}{}:
	default:
	}
}

// askDone notes that a Done up to seq is on its way to the committer.
func (w *walSyncer) askDone(seq uint64) {
	raise(&w.doneAsked, seq)
	w.nudge()
}
