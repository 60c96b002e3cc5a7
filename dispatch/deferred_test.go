package dispatch

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// deferStore is an invStore that can defer updates: durable is what a
// crash would leave of each invocation's status (a synced write makes
// every earlier one durable, as a WAL does).
type deferStore struct {
	*invStore
	dmu      sync.Mutex
	durable  map[string]engine.InvocationStatus
	syncs    int
	syncGate chan struct{} // when set, Sync waits for it
	// syncWaiting, when set, gets a value as a Sync starts waiting on
	// syncGate (dropped when full).
	syncWaiting chan struct{}
	syncErr     error
	// writes says how each state was written: "running deferred",
	// "succeeded synced", ... by invocation ID.
	writes map[string][]string
}

func (s *deferStore) noteWrite(st *engine.InvocationState, how string) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if s.writes == nil {
		s.writes = map[string][]string{}
	}
	s.writes[st.Invocation.ID] = append(s.writes[st.Invocation.ID], string(st.Status)+" "+how)
}

func (s *deferStore) writesOf(id string) []string {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return slices.Clone(s.writes[id])
}

var _ engine.DeferredActionStore = (*deferStore)(nil)

func newDeferStore() (*deferStore, *memStore) {
	mem := newMemStore()
	return &deferStore{invStore: &invStore{readerStore: &readerStore{memStore: mem}}, durable: map[string]engine.InvocationStatus{}}, mem
}

// snapshot makes everything written so far durable.
func (s *deferStore) snapshot() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dmu.Lock()
	defer s.dmu.Unlock()
	for id, st := range s.states {
		s.durable[id] = st.Status
	}
}

func (s *deferStore) durableStatus(id string) engine.InvocationStatus {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return s.durable[id]
}

// synced ends a synced write (Submit, Update, Sync): when it succeeded,
// everything written so far is durable.
func (s *deferStore) synced(err error) error {
	if err != nil {
		return err
	}
	s.snapshot()
	return nil
}

func (s *deferStore) Submit(ctx context.Context, f *engine.Firing) error {
	return s.synced(s.memStore.Submit(ctx, f))
}

// Update and UpdateDeferred note the write before they make it visible:
// a test that sees the state has seen the note.
func (s *deferStore) Update(ctx context.Context, st *engine.InvocationState) error {
	s.noteWrite(st, "synced")
	return s.synced(s.memStore.Update(ctx, st))
}

func (s *deferStore) UpdateDeferred(ctx context.Context, st *engine.InvocationState) error {
	s.noteWrite(st, "deferred")
	return s.memStore.Update(ctx, st)
}

func (s *deferStore) Sync(ctx context.Context) error {
	if s.syncGate != nil {
		select {
		case s.syncWaiting <- struct{}{}:
		default:
		}
		<-s.syncGate
	}
	s.dmu.Lock()
	err := s.syncErr
	s.syncs++
	s.dmu.Unlock()
	return s.synced(err)
}

// recorder is an engine.AttemptRecorder: Run waits on gate when set; it
// checks that Settle comes only once the invocation's final result is
// durable.
type recorder struct {
	store    *deferStore
	gate     chan struct{}
	left     map[string]bool
	reResult engine.Result
	reKnown  bool

	mu          sync.Mutex
	ran         []string
	reattached  []string
	settled     []string
	early       []string // settled before the final result was durable
	duringRun   []engine.InvocationStatus
	pruneKeep   []map[string]bool
	running     chan string
	reattachAll chan struct{}
}

func (r *recorder) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	if r.running != nil {
		r.running <- inv.ID
	}
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, inv.ID)
	r.duringRun = append(r.duringRun, r.store.durableStatus(inv.ID))
	return engine.Success("ran")
}

func (r *recorder) Reattach(ctx context.Context, inv *engine.Invocation) (engine.Result, bool) {
	r.mu.Lock()
	r.reattached = append(r.reattached, inv.ID)
	r.mu.Unlock()
	if r.reattachAll != nil {
		<-r.reattachAll
	}
	return r.reResult, r.reKnown
}

func (r *recorder) LeftBehind(id string) bool { return r.left[id] }

func (r *recorder) Records() bool { return true }

func (r *recorder) Settle(inv *engine.Invocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.settled = append(r.settled, inv.ID)
	if !r.store.durableStatus(inv.ID).Final() {
		r.early = append(r.early, inv.ID)
	}
}

func (r *recorder) Prune(keep map[string]bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneKeep = append(r.pruneKeep, keep)
	return 0
}

func (r *recorder) snapshot() (ran, reattached, settled, early []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ran), slices.Clone(r.reattached), slices.Clone(r.settled), slices.Clone(r.early)
}

// An AttemptRecorder's attempts are recorded as running, and their final
// results, without waiting for a sync (its own records cover a crash), and
// its records of an attempt go only once the result is durable; any other
// action's running state is durable before it runs.
func TestRecorderDefersSyncsAndSettlesWhenDurable(t *testing.T) {
	store, mem := newDeferStore()
	rec := &recorder{store: store}
	var plainDuring []engine.InvocationStatus
	var pmu sync.Mutex
	plain := actionFunc(func(ctx context.Context, inv *engine.Invocation) engine.Result {
		pmu.Lock()
		defer pmu.Unlock()
		plainDuring = append(plainDuring, store.durableStatus(inv.ID))
		return engine.Success("ok")
	})
	clock := newFakeClock()
	h := start(t, mem, clock, Config{Store: store, Actions: ActionMap(map[string]engine.Action{"cmd": rec, "http": plain})})
	var ids []string
	for _, id := range []string{"f1", "f2", "f3", "f4", "f5"} {
		h.submit(newFiring(id, "rs", true, invSpec{action: "cmd"}, invSpec{action: "http"}))
		ids = append(ids, id+"/0", id+"/1")
	}
	h.waitFinal(ids...)
	waitFor(t, "every recorded attempt settled", func() bool {
		clock.Advance(settleDelay) // the settler gathers results that long
		_, _, settled, _ := rec.snapshot()
		return len(settled) == 5
	})
	ran, _, settled, early := rec.snapshot()
	if len(ran) != 5 || len(early) != 0 {
		t.Fatalf("ran %v, settled %v, settled before durable %v", ran, settled, early)
	}
	slices.Sort(settled)
	if want := []string{"f1/0", "f2/0", "f3/0", "f4/0", "f5/0"}; !slices.Equal(settled, want) {
		t.Fatalf("settled %v, want %v once each", settled, want)
	}
	// (Another write's sync may make a deferred state durable early: what
	// counts is that the dispatcher did not wait for one.)
	for _, id := range ids {
		want := []string{"running synced", "succeeded synced"}
		if strings.HasSuffix(id, "/0") {
			want = []string{"running deferred", "succeeded deferred"}
		}
		if got := store.writesOf(id); !slices.Equal(got, want) {
			t.Errorf("%s written %v, want %v", id, got, want)
		}
	}
	for i, st := range plainDuring {
		if st != engine.StatusRunning {
			t.Errorf("plain attempt %d ran with %s durable, want running", i, st)
		}
	}
	for _, id := range ids {
		if got := store.durableStatus(id); got != engine.StatusSucceeded {
			t.Errorf("%s durable status %s, want succeeded", id, got)
		}
	}
}

// The settler lets results gather for settleDelay on the dispatcher's
// clock and makes them durable with one sync: results are not synced one
// by one as they come, and none is settled before its sync.
func TestSettlerGathersResultsForOneSync(t *testing.T) {
	store, mem := newDeferStore()
	rec := &recorder{store: store, gate: make(chan struct{})}
	clock := newFakeClock()
	h := start(t, mem, clock, Config{Store: store, Actions: ActionMap(map[string]engine.Action{"cmd": rec})})
	var ids []string
	for _, id := range []string{"f1", "f2", "f3", "f4"} {
		h.submit(newFiring(id, "rs-"+id, false, invSpec{action: "cmd"}))
		ids = append(ids, id+"/0")
	}
	close(rec.gate)
	// (Not h.waitFinal, which advances the clock to the settler's timer.)
	waitFor(t, "every result recorded", func() bool {
		for _, id := range ids {
			if !h.store.status(id).Final() {
				return false
			}
		}
		return true
	})
	// The first result started the settler's wait; the others join it.
	waitFor(t, "the settler waiting with every result", func() bool {
		return slices.Contains(clock.waits(), settleDelay) && len(h.d.settleCh) == 0
	})
	store.dmu.Lock()
	before := store.syncs
	store.dmu.Unlock()
	if _, _, settled, _ := rec.snapshot(); len(settled) != 0 || before != 0 {
		t.Fatalf("before the delay passed: settled %v, %d syncs; want none", settled, before)
	}
	waitFor(t, "every result settled", func() bool {
		clock.Advance(settleDelay)
		_, _, settled, _ := rec.snapshot()
		return len(settled) == len(ids)
	})
	_, _, _, early := rec.snapshot()
	store.dmu.Lock()
	syncs := store.syncs
	store.dmu.Unlock()
	if len(early) != 0 || syncs >= len(ids) {
		t.Fatalf("%d syncs for %d results, settled before durable %v; want fewer syncs than results, none early", syncs, len(ids), early)
	}
}

// Stop waits for the results recorded without a sync to be synced and
// settled; when the store cannot sync before Stop's deadline, the records
// stay (they are not settled).
func TestStopSettlesDeferredResults(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := "sync works"
		if fail {
			name = "sync fails"
		}
		t.Run(name, func(t *testing.T) {
			store, mem := newDeferStore()
			gate := make(chan struct{})
			store.syncGate = gate
			store.syncWaiting = make(chan struct{}, 1)
			if fail {
				store.syncErr = errors.New("disk gone")
			}
			rec := &recorder{store: store}
			clock := newFakeClock()
			h := start(t, mem, clock, Config{Store: store, Actions: ActionMap(map[string]engine.Action{"cmd": rec})})
			h.submit(newFiring("f1", "rs", false, invSpec{action: "cmd"}))
			h.waitFinal("f1/0")
			stopped := make(chan error, 1)
			ctx, cancel := context.WithCancel(context.Background())
			go func() { stopped <- h.d.Stop(ctx) }()
			// Stop asks the settler to sync now; the sync waits on gate.
			select {
			case <-store.syncWaiting:
			case err := <-stopped:
				t.Fatalf("Stop returned (%v) without syncing the result recorded without a sync", err)
			case <-time.After(10 * time.Second):
				t.Fatal("Stop did not sync the result recorded without a sync")
			}
			select {
			case err := <-stopped:
				t.Fatalf("Stop returned (%v) while a result waited for its sync", err)
			default:
			}
			close(gate)
			if fail {
				cancel() // Stop gives up on the sync
			}
			if err := <-stopped; err != nil {
				t.Fatalf("Stop: %v", err)
			}
			cancel()
			_, _, settled, early := rec.snapshot()
			if fail {
				if len(settled) != 0 {
					t.Fatalf("settled %v though the store never synced", settled)
				}
				return
			}
			if !slices.Equal(settled, []string{"f1/0"}) || len(early) != 0 {
				t.Fatalf("after Stop: settled %v (early %v), want f1/0 once it was durable", settled, early)
			}
		})
	}
}

// A queued invocation of which an earlier process left an attempt's
// record (it was recorded as running without a sync, then the engine
// died) is resumed as found running: reattached with its lock key held
// before any other invocation takes it, and its known result stands. The
// records of attempts that ended are pruned, keeping the unfinished ones.
func TestLeftBehindResumedAsRunning(t *testing.T) {
	for _, known := range []bool{true, false} {
		t.Run(map[bool]string{true: "result known", false: "result lost"}[known], func(t *testing.T) {
			store, mem := newDeferStore()
			lock := engine.Policy{Lock: "host-1", Timeout: time.Hour}
			f2 := newFiring("f2", "rs", false, invSpec{action: "cmd", policy: lock})
			f1 := newFiring("f1", "rs", false, invSpec{action: "cmd", policy: lock})
			f3 := newFiring("f3", "rs", false, invSpec{action: "cmd"})
			mem.put(f2, stateOf(f2, 0, engine.StatusQueued))
			mem.put(f1, stateOf(f1, 0, engine.StatusQueued))
			mem.put(f3, stateOf(f3, 0, engine.StatusQueued))
			rec := &recorder{store: store, left: map[string]bool{"f1/0": true},
				reResult: engine.Success("orphan done"), reKnown: known, reattachAll: make(chan struct{})}
			h := start(t, mem, newFakeClock(), Config{Store: store, MaxConcurrency: 2,
				Actions: ActionMap(map[string]engine.Action{"cmd": rec}), ActionTypes: func() []string { return []string{"cmd"} }})
			waitFor(t, "f1/0 reattached", func() bool {
				_, re, _, _ := rec.snapshot()
				return len(re) == 1
			})
			waitFor(t, "f3/0 ran", func() bool {
				ran, _, _, _ := rec.snapshot()
				return len(ran) == 1
			})
			if ran, re, _, _ := rec.snapshot(); !slices.Equal(ran, []string{"f3/0"}) || !slices.Equal(re, []string{"f1/0"}) {
				t.Fatalf("while f1/0's orphan runs: ran %v, reattached %v; f2/0 must wait for the lock", ran, re)
			}
			close(rec.reattachAll)
			h.waitFinal("f1/0", "f2/0", "f3/0")
			ran, re, _, _ := rec.snapshot()
			want := []string{"f3/0", "f2/0"}
			if !known {
				want = []string{"f3/0", "f1/0", "f2/0"}
			}
			slices.Sort(ran)
			slices.Sort(want)
			if !slices.Equal(ran, want) || len(re) != 1 {
				t.Fatalf("ran %v, reattached %v; want ran %v and one reattach", ran, re, want)
			}
			st := mem.state("f1/0")
			if known && (len(st.Attempts) != 1 || st.Attempts[0].Details["reattached"] != true) {
				t.Fatalf("f1/0 attempts %+v, want the reattached result only", st.Attempts)
			}
			if !known && (len(st.Attempts) != 2 || st.Attempts[0].Error != ErrTextInterrupted) {
				t.Fatalf("f1/0 attempts %+v, want interrupted then a run", st.Attempts)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.pruneKeep) != 1 || len(rec.pruneKeep[0]) != 3 || !rec.pruneKeep[0]["f1/0"] {
				t.Fatalf("prune calls %v, want one keeping the three unfinished invocations", rec.pruneKeep)
			}
		})
	}
}

// When the store's syncs fail for long, the settler's queue fills up;
// attempts still finish (they do not wait on the queue), and Stop returns
// at its deadline: the results' records stay for the next start.
func TestSettlerBehindDoesNotBlock(t *testing.T) {
	store, mem := newDeferStore()
	store.syncErr = errors.New("disk gone")
	rec := &recorder{store: store}
	clock := newFakeClock()
	h := start(t, mem, clock, Config{Store: store, MaxConcurrency: 64, Actions: ActionMap(map[string]engine.Action{"cmd": rec})})
	var ids []string
	for i := range 1100 {
		id := "f" + strconv.Itoa(i)
		h.submit(newFiring(id, "rs", false, invSpec{action: "cmd"}))
		ids = append(ids, id+"/0")
	}
	waitFor(t, "every attempt recorded", func() bool {
		for _, id := range ids {
			if !mem.status(id).Final() {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = h.d.Stop(ctx)
	if _, _, settled, _ := rec.snapshot(); len(settled) != 0 {
		t.Fatalf("%d results settled though the store never synced", len(settled))
	}
}
