package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// modeTable is a Config.Mode whose answers a test can change (a reload).
type modeTable struct {
	mu    sync.Mutex
	modes map[string]string
	pol   *engine.ApprovalPolicy
}

func (m *modeTable) set(rule, mode string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.modes[rule] = mode
}

func (m *modeTable) get(ruleset, rule string) (string, *engine.ApprovalPolicy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.modes[rule], m.pol
}

func modeHarness(t *testing.T, modes map[string]string, pol *engine.ApprovalPolicy) (*harness, *script, *modeTable) {
	act := &script{results: []engine.Result{engine.Success("ok")}}
	mt := &modeTable{modes: modes, pol: pol}
	h := start(t, newMemStore(), newFakeClock(), Config{Actions: ActionMap(map[string]engine.Action{"x": act}), Mode: mt.get})
	return h, act, mt
}

func TestShadowModeRecordsAndNeverRuns(t *testing.T) {
	h, act, _ := modeHarness(t, map[string]string{"rule-rs": engine.ModeShadow}, nil)
	h.submit(newFiring("f1", "rs", true, invSpec{action: "x", args: map[string]any{"cmd": "touch /tmp/x"}}, invSpec{action: "x"}))
	waitFor(t, "both shadowed", func() bool {
		return h.store.status("f1/0") == engine.StatusShadowed && h.store.status("f1/1") == engine.StatusShadowed
	})
	if n := act.count(); n != 0 {
		t.Fatalf("a shadow-mode action ran %d times", n)
	}
	st := h.store.state("f1/0")
	if st.Invocation.Mode != engine.ModeShadow || st.Invocation.Args["cmd"] != "touch /tmp/x" || len(st.Attempts) != 0 {
		t.Errorf("shadowed state %+v: want mode shadow, the rendered args, no attempt", st)
	}
}

func TestApproveModeWaitsThenRunsOnce(t *testing.T) {
	pol := &engine.ApprovalPolicy{Timeout: 30 * time.Minute, OnTimeout: engine.DecisionRejected}
	h, act, _ := modeHarness(t, map[string]string{"rule-rs": engine.ModeApprove}, pol)
	h.submit(newFiring("f1", "rs", true, invSpec{action: "x", policy: engine.Policy{Lock: "host-1"}}))
	waitFor(t, "pending", func() bool { return h.store.status("f1/0") == engine.StatusPendingApproval })
	if act.count() != 0 {
		t.Fatal("ran before approval")
	}
	if p := h.d.Pending(); len(p) != 1 || p[0].Invocation.ID != "f1/0" || !p[0].Approval.Deadline.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("pending %+v", p)
	}
	h.d.locks.mu.Lock()
	_, locked := h.d.locks.m["host-1"]
	h.d.locks.mu.Unlock()
	if locked {
		t.Fatal("the lock is held while waiting for approval")
	}
	h.clock.Advance(5 * time.Minute)
	st, err := h.d.Decide(context.Background(), "f1/0", engine.DecisionApproved, "alice", "looks right")
	if err != nil {
		t.Fatal(err)
	}
	if st.Approval.By != "alice" || !st.Approval.At.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("decision recorded as %+v", st.Approval)
	}
	waitFor(t, "succeeded", func() bool { return h.store.status("f1/0") == engine.StatusSucceeded })
	if n := act.count(); n != 1 {
		t.Errorf("ran %d times, want once", n)
	}
	if _, err := h.d.Decide(context.Background(), "f1/0", engine.DecisionApproved, "bob", ""); !errors.Is(err, ErrNotPending) {
		t.Errorf("second decision: %v, want ErrNotPending", err)
	}
	final := h.store.state("f1/0")
	if final.Approval == nil || final.Approval.Decision != engine.DecisionApproved || final.Approval.By != "alice" || final.Approval.Reason != "looks right" {
		t.Errorf("audit approval %+v", final.Approval)
	}
}

func TestApproveModeRejectAndExpiry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		onTimeout string
		decide    string // "" lets it expire
		want      engine.InvocationStatus
		runs      int
	}{
		{"rejected", engine.DecisionRejected, engine.DecisionRejected, engine.StatusRejected, 0},
		{"expired on_timeout reject", engine.DecisionRejected, "", engine.StatusRejected, 0},
		{"expired on_timeout approve", engine.DecisionApproved, "", engine.StatusSucceeded, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, act, _ := modeHarness(t, map[string]string{"rule-rs": engine.ModeApprove}, &engine.ApprovalPolicy{Timeout: 10 * time.Minute, OnTimeout: tc.onTimeout})
			h.submit(newFiring("f1", "rs", false, invSpec{action: "x"}))
			waitFor(t, "pending", func() bool { return h.store.status("f1/0") == engine.StatusPendingApproval })
			if tc.decide != "" {
				if _, err := h.d.Decide(context.Background(), "f1/0", tc.decide, "carol", ""); err != nil {
					t.Fatal(err)
				}
			} else {
				waitFor(t, "expiry timer", func() bool { return h.clock.pending() == 1 })
				h.clock.Advance(9 * time.Minute)
				if s := h.store.status("f1/0"); s != engine.StatusPendingApproval {
					t.Fatalf("decided before its deadline: %s", s)
				}
				h.clock.Advance(time.Minute)
			}
			waitFor(t, string(tc.want), func() bool { return h.store.status("f1/0") == tc.want })
			if n := act.count(); n != tc.runs {
				t.Errorf("ran %d times, want %d", n, tc.runs)
			}
			ap := h.store.state("f1/0").Approval
			if tc.decide == "" && (!ap.Expired || ap.By != "timeout" || ap.Decision != tc.onTimeout) {
				t.Errorf("expiry recorded as %+v", ap)
			}
		})
	}
}

// A pending approval survives a restart with its deadline, and the start
// that finds it waiting asks for its notification again (whether the
// earlier process sent it is not recorded).
func TestApprovalPendingSurvivesRestart(t *testing.T) {
	store := newMemStore()
	act := &script{results: []engine.Result{engine.Success("ok")}}
	mt := &modeTable{modes: map[string]string{"rule-rs": engine.ModeApprove}}
	var nmu sync.Mutex
	var notified []string
	cfg := Config{Actions: ActionMap(map[string]engine.Action{"x": act}), Mode: mt.get,
		OnApprovalRequested: func(st *engine.InvocationState) {
			nmu.Lock()
			defer nmu.Unlock()
			notified = append(notified, st.Invocation.ID+" "+string(st.Status))
		}}
	notifications := func() []string {
		nmu.Lock()
		defer nmu.Unlock()
		return slices.Clone(notified)
	}
	clock := newFakeClock()
	h := start(t, store, clock, cfg)
	h.submit(newFiring("f1", "rs", false, invSpec{action: "x"}))
	waitFor(t, "pending", func() bool { return store.status("f1/0") == engine.StatusPendingApproval })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := store.state("f1/0").Approval.Deadline
	if got, want := notifications(), []string{"f1/0 pending_approval"}; !slices.Equal(got, want) {
		t.Fatalf("notifications before the restart %v, want %v", got, want)
	}

	h2 := start(t, store, clock, cfg)
	waitFor(t, "pending again", func() bool { return len(h2.d.Pending()) == 1 })
	if p := h2.d.Pending()[0]; !p.Approval.Deadline.Equal(deadline) {
		t.Errorf("deadline moved on restart: %s, was %s", p.Approval.Deadline, deadline)
	}
	waitFor(t, "notified again", func() bool { return len(notifications()) == 2 })
	if got, want := notifications(), []string{"f1/0 pending_approval", "f1/0 pending_approval"}; !slices.Equal(got, want) {
		t.Fatalf("notifications after the restart %v, want %v", got, want)
	}
	if _, err := h2.d.Decide(context.Background(), "f1/0", engine.DecisionApproved, "dave", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "succeeded", func() bool { return store.status("f1/0") == engine.StatusSucceeded })
	if n := act.count(); n != 1 {
		t.Errorf("ran %d times, want once", n)
	}
}

// A firing redelivered while its invocation waits for approval (a crash
// after the firing was stored, before its event was marked done: the
// start parks it, then the engine submits it again) leaves one wait and
// one notification: it is the same request, not a new one.
func TestRedeliveredFiringWhilePendingParksOnce(t *testing.T) {
	store := newMemStore()
	act := &script{results: []engine.Result{engine.Success("ok")}}
	mt := &modeTable{modes: map[string]string{"rule-rs": engine.ModeApprove}}
	var notified atomic.Int32
	cfg := Config{Actions: ActionMap(map[string]engine.Action{"x": act}), Mode: mt.get,
		OnApprovalRequested: func(*engine.InvocationState) { notified.Add(1) }}
	h := start(t, store, newFakeClock(), cfg)
	h.submit(newFiring("f1", "rs", false, invSpec{action: "x"}))
	waitFor(t, "pending", func() bool { return len(h.d.Pending()) == 1 })
	again := newFiring("f1", "rs", false, invSpec{action: "x"})
	again.Redelivered = true
	h.submit(again)
	// The redelivered firing's job ends at the wait it found; the
	// decision of that wait runs the action, once.
	waitFor(t, "the redelivered firing's job done", func() bool {
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		return !h.d.active["f1"]
	})
	if _, err := h.d.Decide(context.Background(), "f1/0", engine.DecisionApproved, "dave", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "succeeded", func() bool { return store.status("f1/0") == engine.StatusSucceeded })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if n := notified.Load(); n != 1 {
		t.Errorf("%d approval notifications, want 1", n)
	}
	if n := act.count(); n != 1 {
		t.Errorf("ran %d times, want once", n)
	}
}

// hookedStore is an invStore that calls afterRead (when set) each time a
// firing or an invocation is read back, with its id, before the read
// returns, and beforeUpdate (when set) with each state before it is
// written.
type hookedStore struct {
	*invStore
	afterRead    func(id string)
	beforeUpdate func(st *engine.InvocationState)
}

func (s *hookedStore) Update(ctx context.Context, st *engine.InvocationState) error {
	if s.beforeUpdate != nil {
		s.beforeUpdate(st)
	}
	return s.invStore.Update(ctx, st)
}

func (s *hookedStore) Firing(ctx context.Context, id string) (*engine.AuditEntry, error) {
	e, err := s.invStore.Firing(ctx, id)
	if s.afterRead != nil {
		s.afterRead(id)
	}
	return e, err
}

func (s *hookedStore) Invocation(ctx context.Context, id string) (*engine.InvocationState, error) {
	st, err := s.invStore.Invocation(ctx, id)
	if s.afterRead != nil {
		s.afterRead(id)
	}
	return st, err
}

// parkWaitsForDecideMu reports whether a goroutine waits in park for
// decideMu (or mu): the frame above park is a mutex's Lock.
func parkWaitsForDecideMu() bool {
	return blockedIn("dispatch.(*Dispatcher).park(", "sync.(*Mutex).Lock(")
}

// blockedIn reports whether a goroutine is in the function fn (a frame
// of its stack starts with it) and waits there on what waiting names:
// the frame above fn, or the goroutine's header when fn is its top frame
// (the runtime leaves its own frames out: "[chan receive]"), holds it.
func blockedIn(fn, waiting string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		i := bytes.Index(g, []byte(fn))
		if i < 0 {
			continue
		}
		lines := bytes.Split(g[:i], []byte("\n"))
		// lines ends with "" (fn's own line starts at i); before it the
		// frame above fn (its function, then its file line), or the
		// header alone.
		above := lines[0]
		if n := len(lines); n >= 3 {
			above = lines[n-3]
		}
		if bytes.Contains(above, []byte(waiting)) {
			return true
		}
	}
	return false
}

// redelivery is a dispatcher over a hookedStore whose rule "r" of
// ruleset rs is in approve mode; it counts the approval notifications.
// The tests below submit a firing f1, then the same firing again as
// redelivered after a crash, and hold one step with a gate.
type redelivery struct {
	*harness
	mem      *memStore
	hooked   *hookedStore
	act      *script
	modes    *modeTable
	clock    *fakeClock
	notified atomic.Int32
}

// newRedelivery starts it with n approve-mode actions in f1 (each runs
// with success) and waits for f1/0 to wait for approval.
func newRedelivery(t *testing.T, n int) *redelivery {
	r := &redelivery{mem: newMemStore(), modes: &modeTable{modes: map[string]string{"rule-rs": engine.ModeApprove}}, clock: newFakeClock()}
	r.hooked = &hookedStore{invStore: &invStore{readerStore: &readerStore{memStore: r.mem}}}
	r.act = &script{}
	for range n {
		r.act.results = append(r.act.results, engine.Success("ok"))
	}
	r.harness = start(t, r.mem, r.clock, Config{Store: r.hooked, Actions: ActionMap(map[string]engine.Action{"x": r.act}), Mode: r.modes.get,
		OnApprovalRequested: func(*engine.InvocationState) { r.notified.Add(1) }})
	r.submit(r.firing(n, false))
	waitFor(t, "f1/0 pending", func() bool { return len(r.d.Pending()) == 1 })
	return r
}

// firing is f1 with n actions, marked redelivered or not.
func (r *redelivery) firing(n int, redelivered bool) *engine.Firing {
	specs := make([]invSpec, n)
	for i := range specs {
		specs[i] = invSpec{action: "x"}
	}
	f := newFiring("f1", "rs", false, specs...)
	f.Redelivered = redelivered
	return f
}

// redeliver submits f1 again as redelivered, in the background; the
// returned channel gets Submit's error.
func (r *redelivery) redeliver(n int) <-chan error {
	submitted := make(chan error, 1)
	go func() { submitted <- r.d.Submit(context.Background(), r.firing(n, true)) }()
	return submitted
}

// onlyPending reports whether id alone waits for approval.
func (r *redelivery) onlyPending(id string) bool {
	p := r.d.Pending()
	return len(p) == 1 && p[0].Invocation.ID == id
}

// jobsDone waits until no job of f1 is active.
func (r *redelivery) jobsDone(t *testing.T, what string) {
	t.Helper()
	waitFor(t, what, func() bool {
		r.d.mu.Lock()
		defer r.d.mu.Unlock()
		return !r.d.active["f1"]
	})
}

// afterTheDeadline lets the approvals' deadline pass, stops the
// dispatcher and checks what stands: the statuses of f1/0, f1/1, ...,
// how many actions ran and how many notifications were sent.
func (r *redelivery) afterTheDeadline(t *testing.T, want []engine.InvocationStatus, ran, notifications int) {
	t.Helper()
	r.clock.Advance(engine.DefaultApprovalTimeout + time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if s := r.mem.status(fmt.Sprintf("f1/%d", i)); s != w {
			t.Errorf("f1/%d %s after the deadline, want %s", i, s, w)
		}
	}
	if n := r.act.count(); n != ran {
		t.Errorf("ran %d actions, want %d (each once)", n, ran)
	}
	if n := r.notified.Load(); int(n) != notifications {
		t.Errorf("%d approval notifications, want %d", n, notifications)
	}
}

// holdPoint holds the first call of hold until open; reached is closed
// once a call is held. The test's cleanup opens it, before the
// dispatcher stops (start's cleanup runs after it).
type holdPoint struct {
	reached, release chan struct{}
	held, opened     sync.Once
}

func newHoldPoint(t *testing.T) *holdPoint {
	g := &holdPoint{reached: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *holdPoint) hold() { g.held.Do(func() { close(g.reached); <-g.release }) }
func (g *holdPoint) open() { g.opened.Do(func() { close(g.release) }) }

// A decision in flight while a redelivered firing's job parks the
// pending state it read is not undone by that park: decide (and a switch
// to shadow mode, ModesChanged) holds decideMu from taking the wait until
// its state is stored, and park reads the state again under it. Without
// it, park came between the two, read the state still pending, found no
// wait and waited again: a second approval notification, a wait left in
// Pending and, at its deadline, the decision recorded over as rejected.
// Each case holds the decision's write, redelivers the firing and waits
// until its park waits for the lock (or has parked again).
func TestDecisionInFlightWhileRedeliveredFiringParks(t *testing.T) {
	cases := []struct {
		name    string
		written engine.InvocationStatus // the decision's state
		decide  func(r *redelivery) error
		ran     int
	}{
		{"approved", engine.StatusQueued, func(r *redelivery) error {
			_, err := r.d.Decide(context.Background(), "f1/0", engine.DecisionApproved, "dave", "")
			return err
		}, 1},
		{"switched to shadow", engine.StatusCancelled, func(r *redelivery) error {
			r.modes.set("rule-rs", engine.ModeShadow)
			r.d.ModesChanged()
			return nil
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRedelivery(t, 1)
			// The decision is held while it stores its state.
			g := newHoldPoint(t)
			r.hooked.beforeUpdate = func(st *engine.InvocationState) {
				if st.Invocation.ID == "f1/0" && st.Status == c.written {
					g.hold()
				}
			}
			decided := make(chan error, 1)
			go func() { decided <- c.decide(r) }()
			<-g.reached

			if err := <-r.redeliver(1); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the redelivered job waits for the decision, or parks", func() bool {
				return r.notified.Load() > 1 || parkWaitsForDecideMu()
			})
			g.open()
			if err := <-decided; err != nil {
				t.Fatal(err)
			}
			want := engine.StatusCancelled
			if c.ran > 0 {
				want = engine.StatusSucceeded
				waitFor(t, "f1/0 run", func() bool { return r.mem.status("f1/0") == want })
			}
			r.jobsDone(t, "the firing's jobs done")
			if p := r.d.Pending(); len(p) != 0 {
				t.Errorf("waiting for approval: %d, want none", len(p))
			}
			r.afterTheDeadline(t, []engine.InvocationStatus{want}, c.ran, 1)
		})
	}
}

// A decision that comes while a redelivered firing holds the pending
// state it read back is not undone by that stale state: its job neither
// waits for approval again (nor notifies, nor expires the approved action
// later), nor runs twice what the decision ran, nor leaves it unrun. The
// decision comes after the firing's states are read (the job that waited
// runs the action), or after its job, active, read the invocation (the
// job that waited is not rescheduled: the redelivered one runs it).
func TestDecisionWhileRedeliveredFiringReadsItsState(t *testing.T) {
	for _, at := range []string{"f1", "f1/0"} {
		t.Run("decided after reading "+at, func(t *testing.T) { decisionWhileRedelivered(t, at) })
	}
}

func decisionWhileRedelivered(t *testing.T, readID string) {
	// f1: two approve-mode actions, the second waiting behind the first.
	r := newRedelivery(t, 2)
	g := newHoldPoint(t)
	r.hooked.afterRead = func(id string) {
		if id == readID {
			g.hold()
		}
	}
	submitted := r.redeliver(2)
	<-g.reached // the redelivered firing read f1/0 pending

	// f1/0 approved now; then it runs, and f1/1 waits for approval. (Were
	// the read held here park's, under decideMu, the decision would wait
	// for it: fail, not hang.)
	decided := make(chan error, 1)
	go func() {
		_, err := r.d.Decide(context.Background(), "f1/0", engine.DecisionApproved, "dave", "")
		decided <- err
	}()
	var err error
	waitFor(t, "the decision", func() bool {
		select {
		case err = <-decided:
			return true
		default:
			return false
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ranThenF1Waits := func() bool { return r.mem.status("f1/0") == engine.StatusSucceeded && r.onlyPending("f1/1") }
	if readID == "f1" {
		// The job that waited runs it, before the redelivered one goes on.
		waitFor(t, "f1/0 run, f1/1 pending", ranThenF1Waits)
	}
	g.open()
	if err := <-submitted; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "f1/0 run, f1/1 pending", ranThenF1Waits)
	r.jobsDone(t, "the redelivered firing's job done")
	if !r.onlyPending("f1/1") {
		t.Fatalf("waiting for approval: %v, want f1/1 only", r.d.Pending())
	}
	if _, err := r.d.Decide(context.Background(), "f1/1", engine.DecisionApproved, "dave", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "f1/1 run", func() bool { return r.mem.status("f1/1") == engine.StatusSucceeded })
	// Past the approvals' deadline: nothing expires the approved actions;
	// one notification per action.
	r.afterTheDeadline(t, []engine.InvocationStatus{engine.StatusSucceeded, engine.StatusSucceeded}, 2, 2)
}

// A redelivered firing whose invocations all ran, each approved, after it
// read them back (pending, queued) runs none of them again: each state is
// read when its turn comes (scheduleSubmitted builds the job with
// full=false). Kept as read, the queued one, never parked before, would
// be parked as a new request: a third notification, its pending state
// written over its success, and at the deadline recorded rejected.
func TestRedeliveredFiringReadsEachStateWhenItRuns(t *testing.T) {
	r := newRedelivery(t, 2)
	g := newHoldPoint(t)
	r.hooked.afterRead = func(id string) {
		if id == "f1" {
			g.hold()
		}
	}
	submitted := r.redeliver(2)
	<-g.reached // f1/0 pending, f1/1 queued

	for _, id := range []string{"f1/0", "f1/1"} {
		waitFor(t, id+" pending", func() bool { return r.onlyPending(id) })
		if _, err := r.d.Decide(context.Background(), id, engine.DecisionApproved, "dave", ""); err != nil {
			t.Fatal(err)
		}
		waitFor(t, id+" run", func() bool { return r.mem.status(id) == engine.StatusSucceeded })
	}
	r.jobsDone(t, "the job that waited done")
	g.open()
	if err := <-submitted; err != nil {
		t.Fatal(err)
	}
	r.jobsDone(t, "the redelivered firing's job done")
	if p := r.d.Pending(); len(p) != 0 {
		t.Errorf("waiting for approval: %d, want none", len(p))
	}
	r.afterTheDeadline(t, []engine.InvocationStatus{engine.StatusSucceeded, engine.StatusSucceeded}, 2, 2)
}

func TestModesChangedOnReload(t *testing.T) {
	h, act, mt := modeHarness(t, map[string]string{"rule-a": engine.ModeApprove, "rule-b": engine.ModeApprove}, nil)
	h.submit(newFiring("fa", "a", false, invSpec{action: "x"}))
	h.submit(newFiring("fb", "b", false, invSpec{action: "x"}))
	waitFor(t, "both pending", func() bool { return len(h.d.Pending()) == 2 })
	mt.set("rule-a", engine.ModeAuto)
	mt.set("rule-b", engine.ModeShadow)
	h.d.ModesChanged()
	waitFor(t, "a ran, b cancelled", func() bool {
		return h.store.status("fa/0") == engine.StatusSucceeded && h.store.status("fb/0") == engine.StatusCancelled
	})
	if n := act.count(); n != 1 {
		t.Errorf("ran %d times, want once (a only)", n)
	}
	if ap := h.store.state("fb/0").Approval; ap.By != "reload" {
		t.Errorf("cancellation recorded as %+v", ap)
	}
}

// A firing waiting for approval in a sequential ruleset does not hold up
// the ruleset's later firings.
func TestPendingApprovalDoesNotBlockSequentialRuleset(t *testing.T) {
	h, act, _ := modeHarness(t, map[string]string{"restart": engine.ModeApprove}, nil)
	f1 := newFiring("f1", "rs", true, invSpec{action: "x"})
	f1.Rule, f1.Invocations[0].Rule = "restart", "restart"
	h.submit(f1)
	waitFor(t, "pending", func() bool { return h.store.status("f1/0") == engine.StatusPendingApproval })
	h.submit(newFiring("f2", "rs", true, invSpec{action: "x"}))
	waitFor(t, "the auto firing ran", func() bool { return h.store.status("f2/0") == engine.StatusSucceeded })
	if n := act.count(); n != 1 || h.store.status("f1/0") != engine.StatusPendingApproval {
		t.Errorf("ran %d, f1 %s", n, h.store.status("f1/0"))
	}
}

// A state handed to OnResult is a snapshot: deciding the invocation later
// does not change the pending_approval state a listener already holds.
func TestOnResultStateIsNotChangedByTheDecision(t *testing.T) {
	act := &script{results: []engine.Result{engine.Success("ok")}}
	mt := &modeTable{modes: map[string]string{"rule-rs": engine.ModeApprove}}
	var mu sync.Mutex
	var seen []*engine.InvocationState
	h := start(t, newMemStore(), newFakeClock(), Config{
		Actions: ActionMap(map[string]engine.Action{"x": act}), Mode: mt.get,
		OnResult: func(st *engine.InvocationState) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, st)
		},
	})
	h.submit(newFiring("f1", "rs", true, invSpec{action: "x"}))
	waitFor(t, "pending", func() bool { return h.store.status("f1/0") == engine.StatusPendingApproval })
	if _, err := h.d.Decide(context.Background(), "f1/0", engine.DecisionApproved, "alice", "ok"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "succeeded", func() bool { return h.store.status("f1/0") == engine.StatusSucceeded })
	mu.Lock()
	defer mu.Unlock()
	for _, st := range seen {
		if st.Status == engine.StatusPendingApproval {
			if a := st.Approval; a == nil || a.Decision != "" || a.By != "" {
				t.Fatalf("the pending_approval state OnResult got now reads %+v; want no decision", a)
			}
			return
		}
	}
	t.Fatalf("OnResult never got the pending_approval state: %d states", len(seen))
}

// Pending lists the waiting invocations oldest first.
func TestPendingOldestFirst(t *testing.T) {
	h, _, _ := modeHarness(t, map[string]string{"rule-a": engine.ModeApprove, "rule-b": engine.ModeApprove, "rule-c": engine.ModeApprove}, nil)
	for i, rs := range []string{"c", "a", "b"} {
		h.submit(newFiring("f"+rs, rs, false, invSpec{action: "x"}))
		waitFor(t, "pending", func() bool { return len(h.d.Pending()) == i+1 })
		h.clock.Advance(time.Minute)
	}
	var got []string
	for _, st := range h.d.Pending() {
		got = append(got, st.Invocation.ID)
	}
	if want := []string{"fc/0", "fa/0", "fb/0"}; !slices.Equal(got, want) {
		t.Fatalf("Pending order %v, want %v", got, want)
	}
}

// pendingGateStore holds the write of a pending-approval state until
// released, as a slow disk would.
type pendingGateStore struct {
	*memStore
	writing chan struct{} // receives when the pending state is being written
	release chan struct{}
}

func (s *pendingGateStore) Update(ctx context.Context, st *engine.InvocationState) error {
	if st.Status == engine.StatusPendingApproval {
		s.writing <- struct{}{}
		<-s.release
	}
	return s.memStore.Update(ctx, st)
}

// An invocation can be decided as soon as it waits, even while its
// pending state is still being written: the decision waits for that write
// and is not overwritten by it. (Before, Decide answered "not waiting"
// until the dispatcher had registered it, after the write: a client that
// saw it pending in the audit could not decide it.)
func TestDecideWhilePendingStateIsWritten(t *testing.T) {
	store := newMemStore()
	gs := &pendingGateStore{memStore: store, writing: make(chan struct{}), release: make(chan struct{})}
	act := &script{results: []engine.Result{engine.Success("ok")}}
	mt := &modeTable{modes: map[string]string{"rule-rs": engine.ModeApprove}, pol: &engine.ApprovalPolicy{Timeout: time.Hour}}
	h := start(t, store, newFakeClock(), Config{Store: gs, Actions: ActionMap(map[string]engine.Action{"x": act}), Mode: mt.get})
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(gs.release) }) }
	t.Cleanup(release) // before the dispatcher stops, should the test fail
	h.submit(newFiring("f1", "rs", false, invSpec{action: "x"}))
	<-gs.writing
	decided := make(chan error, 1)
	go func() {
		_, err := h.d.Decide(context.Background(), "f1/0", engine.DecisionRejected, "carol", "")
		decided <- err
	}()
	// Decide waits for the write (the pending state marked stored), not
	// for time to pass.
	waitFor(t, "Decide waiting for the pending state's write", func() bool {
		select {
		case err := <-decided:
			t.Fatalf("Decide returned (%v) while the pending state was being written", err)
		default:
		}
		return blockedIn("dispatch.(*Dispatcher).decide(", "[chan receive")
	})
	release()
	if err := <-decided; err != nil {
		t.Fatalf("Decide: %v", err)
	}
	h.waitFinal("f1/0")
	if st := store.state("f1/0"); st.Status != engine.StatusRejected || st.Approval == nil || st.Approval.By != "carol" {
		t.Fatalf("final state %s %+v, want rejected by carol", st.Status, st.Approval)
	}
	if n := act.count(); n != 0 {
		t.Fatalf("a rejected invocation ran %d times", n)
	}
}
