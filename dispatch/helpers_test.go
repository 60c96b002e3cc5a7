package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

var t0 = time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)

// memStore is an in-memory engine.ActionStore: it copies everything it is
// given through JSON, as a durable store would serialize it.
type memStore struct {
	mu      sync.Mutex
	firings map[string]engine.Firing
	forder  []string
	states  map[string]*engine.InvocationState
	iorder  []string
	// history holds every Update, in order.
	history []engine.InvocationState
	// failUpdates makes that many next Update calls fail.
	failUpdates int
	failSubmit  error
	compacted   []time.Time
}

var _ engine.ActionStore = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{firings: map[string]engine.Firing{}, states: map[string]*engine.InvocationState{}}
}

func clone[T any](v T) T {
	var out T
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func (s *memStore) Submit(ctx context.Context, f *engine.Firing) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSubmit != nil {
		return s.failSubmit
	}
	if _, ok := s.firings[f.ID]; ok {
		return nil
	}
	s.firings[f.ID] = clone(*f)
	s.forder = append(s.forder, f.ID)
	for _, inv := range f.Invocations {
		st := &engine.InvocationState{Invocation: clone(inv), Status: engine.StatusQueued, Updated: f.Time}
		s.states[inv.ID] = st
		s.iorder = append(s.iorder, inv.ID)
	}
	return nil
}

func (s *memStore) Unfinished(ctx context.Context) ([]*engine.InvocationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*engine.InvocationState
	for _, id := range s.iorder {
		if st := s.states[id]; st != nil && !st.Status.Final() {
			out = append(out, clone(st))
		}
	}
	return out, nil
}

func (s *memStore) Update(ctx context.Context, st *engine.InvocationState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failUpdates > 0 {
		s.failUpdates--
		return errors.New("disk on fire")
	}
	if _, ok := s.states[st.Invocation.ID]; !ok {
		return fmt.Errorf("unknown invocation %q", st.Invocation.ID)
	}
	c := clone(st)
	s.states[st.Invocation.ID] = c
	s.history = append(s.history, *clone(st))
	return nil
}

func (s *memStore) Query(ctx context.Context, f engine.AuditFilter) ([]engine.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []engine.AuditEntry
	for i := len(s.forder) - 1; i >= 0; i-- {
		fr := s.firings[s.forder[i]]
		if f.Ruleset != "" && fr.Ruleset != f.Ruleset || f.Rule != "" && fr.Rule != f.Rule ||
			f.EventID != "" && !slices.Contains(fr.EventIDs, f.EventID) ||
			!f.Since.IsZero() && fr.Time.Before(f.Since) || !f.Until.IsZero() && fr.Time.After(f.Until) {
			continue
		}
		e := engine.AuditEntry{Firing: fr}
		match := f.Status == ""
		for _, id := range s.iorder {
			st := s.states[id]
			if st.Invocation.FiringID != fr.ID {
				continue
			}
			e.Invocations = append(e.Invocations, clone(st))
			match = match || st.Status == f.Status
		}
		if !match {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

func (s *memStore) Compact(ctx context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compacted = append(s.compacted, before)
	return 0, nil
}

// state returns a copy of an invocation's recorded state.
func (s *memStore) state(id string) *engine.InvocationState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states[id]
	if st == nil {
		return nil
	}
	return clone(st)
}

func (s *memStore) status(id string) engine.InvocationStatus {
	if st := s.state(id); st != nil {
		return st.Status
	}
	return ""
}

// put stores a state directly, as an earlier process left it.
func (s *memStore) put(f *engine.Firing, states ...*engine.InvocationState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firings[f.ID] = clone(*f)
	s.forder = append(s.forder, f.ID)
	for _, st := range states {
		s.states[st.Invocation.ID] = clone(st)
		s.iorder = append(s.iorder, st.Invocation.ID)
	}
}

func (s *memStore) historyJSON() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(s.history)
	return string(b)
}

// fakeClock moves only when told; After records every requested wait.
type fakeClock struct {
	mu        sync.Mutex
	now       time.Time
	timers    []fakeTimer
	requested []time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.requested = append(c.requested, d)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(c.now) {
			tm.ch <- c.now
			continue
		}
		kept = append(kept, tm)
	}
	c.timers = kept
}

// next returns the wait until the earliest pending timer.
func (c *fakeClock) next() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return 0, false
	}
	at := c.timers[0].at
	for _, tm := range c.timers[1:] {
		if tm.at.Before(at) {
			at = tm.at
		}
	}
	return at.Sub(c.now), true
}

func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requested)
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// actionFunc adapts a function to engine.Action.
type actionFunc func(ctx context.Context, inv *engine.Invocation) engine.Result

func (f actionFunc) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	return f(ctx, inv)
}

// script returns its results in order (the last one repeats) and counts
// calls.
type script struct {
	mu      sync.Mutex
	results []engine.Result
	calls   []*engine.Invocation
}

func (s *script) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *inv
	s.calls = append(s.calls, &cp)
	i := min(len(s.calls)-1, len(s.results)-1)
	return s.results[i]
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// gate blocks every run until released and measures concurrency.
type gate struct {
	mu      sync.Mutex
	release chan struct{}
	cur     map[string]int
	max     map[string]int
	started []string
	done    []string
	keys    func(inv *engine.Invocation) []string
}

func newGate(keys func(inv *engine.Invocation) []string) *gate {
	return &gate{release: make(chan struct{}), cur: map[string]int{}, max: map[string]int{}, keys: keys}
}

func (g *gate) Run(ctx context.Context, inv *engine.Invocation) engine.Result {
	keys := append([]string{"*"}, g.keys(inv)...)
	g.mu.Lock()
	g.started = append(g.started, inv.ID)
	for _, k := range keys {
		g.cur[k]++
		g.max[k] = max(g.max[k], g.cur[k])
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		for _, k := range keys {
			g.cur[k]--
		}
		g.done = append(g.done, inv.ID)
		g.mu.Unlock()
	}()
	select {
	case <-g.release:
		return engine.Success("released " + inv.ID)
	case <-ctx.Done():
		return engine.RetryableFailure("cancelled: %v", ctx.Err())
	}
}

func (g *gate) running(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur[key]
}

func (g *gate) maxOf(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max[key]
}

func (g *gate) startedIDs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.started)
}

// step releases one running action.
func (g *gate) step(t testing.TB) {
	t.Helper()
	select {
	case g.release <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("no action running to release")
	}
}

type invSpec struct {
	action string
	policy engine.Policy
	args   map[string]any
	// legacy builds the invocation as a version before SecretRefs did:
	// args as they are, RefsListed false.
	legacy bool
}

// newFiring builds a firing whose invocations are id/0, id/1, ...
func newFiring(id, ruleset string, sequential bool, invs ...invSpec) *engine.Firing {
	f := &engine.Firing{ID: id, Time: t0, Ruleset: ruleset, Rule: "rule-" + ruleset, EventIDs: []string{"ev-" + id}}
	for i, s := range invs {
		// Args are rulebook text, as the engine renders them: the secret
		// references in them are listed.
		args, refs := s.args, []engine.SecretUse(nil)
		if args != nil && !s.legacy {
			args, refs = engine.LiteralArgs(s.args)
		}
		f.Invocations = append(f.Invocations, &engine.Invocation{
			ID: fmt.Sprintf("%s/%d", id, i), FiringID: id, Index: i, Action: s.action,
			Ruleset: ruleset, Rule: f.Rule, Args: args, SecretRefs: refs, RefsListed: !s.legacy, Policy: s.policy, Sequential: sequential,
			Created: t0, Event: engine.Event{"meta": map[string]any{"uuid": "ev-" + id}},
		})
	}
	return f
}

type harness struct {
	t     testing.TB
	store *memStore
	clock *fakeClock
	d     *Dispatcher
}

// readerStore is a memStore that also implements FiringReader.
type readerStore struct {
	*memStore
	reads atomic.Int64
}

var _ FiringReader = (*readerStore)(nil)

func (s *readerStore) Firing(ctx context.Context, id string) (*engine.AuditEntry, error) {
	s.reads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	fr, ok := s.firings[id]
	if !ok {
		return nil, nil
	}
	e := &engine.AuditEntry{Firing: fr}
	for _, iid := range s.iorder {
		if st := s.states[iid]; st.Invocation.FiringID == id {
			e.Invocations = append(e.Invocations, clone(st))
		}
	}
	return e, nil
}

// invStore is a readerStore that also implements InvocationReader: the
// dispatcher keeps queued invocations in it, not in memory.
type invStore struct {
	*readerStore
	invReads atomic.Int64
}

var (
	_ InvocationReader = (*invStore)(nil)
	_ HeadLister       = (*invStore)(nil)
)

// UnfinishedHeads returns the unfinished states without arguments,
// events and attempts, as the journal does.
func (s *invStore) UnfinishedHeads(ctx context.Context) ([]*engine.InvocationState, error) {
	all, err := s.Unfinished(ctx)
	for _, st := range all {
		inv := *st.Invocation
		inv.Args, inv.Event, inv.Events = nil, nil, nil
		st.Invocation, st.Attempts = &inv, nil
	}
	return all, err
}

func (s *invStore) Invocation(ctx context.Context, id string) (*engine.InvocationState, error) {
	s.invReads.Add(1)
	return s.state(id), nil
}

// storeKinds runs a test against a store with and without FiringReader
// and InvocationReader.
var storeKinds = []struct {
	name string
	wrap func(*memStore) engine.ActionStore
}{
	{"query", func(s *memStore) engine.ActionStore { return s }},
	{"firing reader", func(s *memStore) engine.ActionStore { return &readerStore{memStore: s} }},
	{"invocation reader", func(s *memStore) engine.ActionStore { return &invStore{readerStore: &readerStore{memStore: s}} }},
}

// start builds and starts a dispatcher over store with the fake clock and
// a jitter of 0.5, stopped at the end of the test.
func start(t testing.TB, store *memStore, clock *fakeClock, cfg Config) *harness {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = store
	}
	cfg.Clock = clock
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return 0.5 }
	}
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Stop(ctx)
	})
	return &harness{t: t, store: store, clock: clock, d: d}
}

func (h *harness) submit(f *engine.Firing) {
	h.t.Helper()
	if err := h.d.Submit(context.Background(), f); err != nil {
		h.t.Fatalf("Submit %s: %v", f.ID, err)
	}
}

// waitFinal waits until every invocation of ids is final, advancing the
// fake clock to the next timer whenever one is pending.
func (h *harness) waitFinal(ids ...string) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("%v final", ids), func() bool {
		all := true
		for _, id := range ids {
			if !h.store.status(id).Final() {
				all = false
			}
		}
		if all {
			return true
		}
		if d, ok := h.clock.next(); ok {
			h.clock.Advance(d)
		}
		return false
	})
}

// waitIdle waits until the dispatcher has no firing in hand.
func (h *harness) waitIdle() {
	h.t.Helper()
	waitFor(h.t, "dispatcher idle", func() bool {
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		return len(h.d.active) == 0
	})
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
