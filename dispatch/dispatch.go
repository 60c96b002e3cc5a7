// Package dispatch runs the actions of rule firings. A firing's invocations
// are stored durably in an engine.ActionStore before Submit returns; the
// dispatcher then runs them with timeouts, retries with backoff, global and
// per-action concurrency limits and lock keys, and records every attempt in
// the store, which is also the audit trail.
//
// # Order
//
// The invocations of one firing run in order: invocation i+1 starts only once
// invocation i reached a final state. When i fails for good (a Failed
// result, retries exhausted, an unknown action type, a secret reference that
// does not resolve, arguments that did not render), every later invocation
// of that firing is marked failed with the error "skipped: earlier action
// failed" and never runs.
//
// Firings whose invocations are Sequential (the ruleset's
// execution_strategy: sequential) run one firing at a time per ruleset, in
// submit order. Other firings run concurrently.
//
// # Retries
//
// Only Retryable results are retried, at most Policy.Retries times. The wait
// before retry n uses "equal jitter": with base = min(Delay*2^(n-1),
// MaxDelay), the wait is drawn uniformly from [base/2, base), and it is never
// shorter than the result's RetryAfter. Delay defaults to 1s and MaxDelay to
// 5m. After the last attempt the invocation is failed: a dead letter, logged
// at error level and kept in the audit trail.
//
// # Concurrency
//
// An attempt first takes its lock key (Policy.Lock, when not empty), then a
// slot of its action type (Config.PerAction), then a global slot
// (Config.MaxConcurrency); it holds them only while it runs, not while it
// backs off. An invocation waiting for a lock holds no slot.
//
// # Durability and restarts
//
// Before an attempt starts the invocation is recorded as running; when it
// ends, the attempt is appended and the status becomes retrying (with
// NextAttempt), succeeded or failed. An action that keeps its own record
// of every attempt (engine.AttemptRecorder: the supervised programs) has
// both written without waiting for a sync when the store can defer
// (engine.DeferredActionStore): the settler syncs the final results waiting,
// once for all of them, and only then lets the action drop its records;
// until then the records say what a crash may have lost (a queued
// invocation with a record left behind is resumed as found running). Start
// resumes what the store reports as unfinished. An invocation found
// running was interrupted by a crash. Start
// takes its lock key before anything else can; when its action is an
// engine.Reattacher (it runs a program that may outlive the engine), the
// action first waits for what the crashed process left running, and a
// result it knows stands for the attempt, which does not run again.
// Otherwise the interrupted attempt is recorded as Retryable ("interrupted
// by restart") and runs again: the crash was the engine's, so the first three such attempts
// of an invocation do not use up its retries (an action that takes the
// process down every time counts from the fourth on). Actions are therefore
// run at least once; the invocation id lets them be idempotent.
//
// Stop works in two phases: no new attempt starts (queued invocations and
// backoffs stay in the store), running attempts may finish until the
// context's deadline, then they are cancelled. A cancelled attempt is
// recorded with the error "cancelled by shutdown", the invocation stays
// retrying and runs again on the next start; such attempts do not count
// against the retries. So is an attempt whose process was killed by a
// signal (engine.Result.Signal) when a shutdown begins (BeginShutdown)
// within SignalGrace: the signal was sent to the whole service.
//
// # Memory
//
// With a store that implements InvocationReader, a queued invocation is
// held in memory as its ID, action type and lock key only; it takes its
// lock and slots first and is read back from the store when it can run.
//
// # Secrets
//
// Just before each attempt the invocation's Args are resolved with
// Invocation.ResolveArgs into a copy that only the action sees: a value is
// substituted only at the places the rulebook's literal text put a
// reference (Invocation.SecretRefs), never where rendered event data merely
// looks like one. The stored invocation keeps the references; the attempt's output, error and details
// are masked with Invocation.Redact before they are stored or logged.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// Defaults applied by New to zero Config fields and by the dispatcher to
// zero Policy fields.
const (
	DefaultMaxConcurrency  = 16
	DefaultTimeout         = 30 * time.Minute
	DefaultOutputLimit     = 4096
	DefaultDelay           = time.Second
	DefaultMaxDelay        = 5 * time.Minute
	DefaultCompactInterval = time.Hour
)

// Error texts recorded in attempts and skipped invocations.
const (
	ErrTextInterrupted = "interrupted by restart"
	ErrTextShutdown    = "cancelled by shutdown"
	ErrTextSkipped     = "skipped: earlier action failed"
)

// detailInterrupted marks an attempt cut short by Stop in Attempt.Details;
// such attempts do not count against the retries.
const detailInterrupted = "interrupted"

// ErrStopped is returned by Submit once Stop was called.
var ErrStopped = errors.New("dispatcher is stopped")

// Clock is the dispatcher's source of time: attempt timestamps and backoff
// waits. Tests inject a fake one so backoff needs no sleeping.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Dispatcher.
type Config struct {
	// Store is the durable queue and audit trail. Required.
	Store engine.ActionStore
	// Actions returns the built action for an action type (run_playbook,
	// http, ...). Required. An invocation of a type it does not know fails
	// permanently.
	Actions func(typ string) (engine.Action, bool)
	// Clock defaults to the system clock.
	Clock Clock
	// Rand returns a number in [0, 1) for the backoff jitter; defaults to
	// math/rand/v2's Float64. It is called from several goroutines.
	Rand func() float64
	// MaxConcurrency bounds the attempts running at once (default 16).
	MaxConcurrency int
	// PerAction bounds the attempts of one action type running at once;
	// types not listed are bounded by MaxConcurrency only.
	PerAction map[string]int
	// DefaultTimeout bounds an attempt whose Policy.Timeout is zero
	// (default 30m).
	DefaultTimeout time.Duration
	// OutputLimit is how many bytes of an attempt's output (and error) the
	// audit trail keeps (default 4096).
	OutputLimit int
	// Retention, when positive, makes the dispatcher delete firings older
	// than this whose invocations are all final, every CompactInterval
	// (default 1h).
	Retention       time.Duration
	CompactInterval time.Duration
	// Feedback receives the Facts and Events of a succeeded attempt (a
	// playbook's set_stats) with the invocation they come from (its Ruleset
	// and Stream say where they go back to). It is called from the
	// invocation's goroutine after the success is recorded.
	Feedback func(inv *engine.Invocation, facts, events []map[string]any)
	// ActionTypes, when set, lists the action types in use: at Start the
	// dispatcher asks those that keep records of their attempts
	// (engine.AttemptRecorder) to prune the records of attempts that
	// ended before a crash.
	ActionTypes func() []string
	// OnResult, when set, receives a copy of every state the dispatcher
	// records (running, retrying, succeeded, failed): for logs, metrics or
	// a live stream. It must not block for long.
	OnResult func(*engine.InvocationState)
	// Mode, when set, returns a rule's mode (engine.ModeAuto, ModeShadow,
	// ModeApprove) and approval policy as the current rulebook says; it is
	// asked at submit and by ModesChanged. Nil: every rule is auto.
	Mode func(ruleset, rule string) (string, *engine.ApprovalPolicy)
	// OnApprovalRequested, when set, is called when an invocation starts
	// waiting for approval (after its pending state is stored), and again
	// when a start finds it still waiting, to notify someone: a
	// notification lost in a crash is sent then, and one sent just before
	// a crash or a restart comes twice. It must not block.
	OnApprovalRequested func(st *engine.InvocationState)
	Log                 zerolog.Logger
}

// maxWaitingRunners is how many firings beyond MaxConcurrency may wait for
// a lock or a slot in goroutines of their own; later ones wait in a queue
// in submit order. A runner waiting for a busy lock key holds up the queue
// behind it only once this many wait at once.
const maxWaitingRunners = 1024

// ActionMap adapts a map of built actions to Config.Actions.
func ActionMap(m map[string]engine.Action) func(string) (engine.Action, bool) {
	return func(typ string) (engine.Action, bool) {
		a, ok := m[typ]
		return a, ok
	}
}

const (
	stateNew = iota
	stateStarting
	stateStarted
	stateStopped
)

// Dispatcher runs the invocations of submitted firings. Build it with New,
// then Start, Submit, Stop.
type Dispatcher struct {
	cfg       Config
	store     engine.ActionStore
	deferred  engine.DeferredActionStore // the store, when it can defer; else nil
	clock     Clock
	log       zerolog.Logger
	global    chan struct{}
	perAction map[string]chan struct{}
	locks     *keyLocks

	mu     sync.Mutex
	state  int
	ready  chan struct{} // closed when Start has scheduled the unfinished work
	active map[string]bool
	seq    map[string][]*job
	// awaiting are the approve-mode invocations waiting for a decision,
	// by invocation id.
	awaiting map[string]*awaitingApproval
	// decideMu orders a decision (decide, from taking the wait to
	// scheduling its job; cancelApproval, to storing the cancellation)
	// with a park of a pending state read from the store, which reads it
	// again under it (see park). Taken before mu.
	decideMu sync.Mutex
	// jobRunners counts the goroutines running firings that are not
	// sequential; beyond maxRunners, further firings wait in parked (a
	// few hundred bytes each, against a goroutine's stack) until one of
	// them is free.
	jobRunners int
	maxRunners int
	parked     []*job

	// held are the lock keys and slots taken by Start for the invocations
	// found running, by invocation ID, until reattach has dealt with them.
	held map[string]heldFor

	shutdownBegun chan struct{} // closed by BeginShutdown or Stop
	shutdownOnce  sync.Once

	// The settler (see persistResult): settleCh is made by Start when
	// the store can defer; settled counts the results reserved in it and
	// not yet settled.
	settleMu     sync.Mutex
	settleCh     chan settleItem
	settleClosed bool
	settled      sync.WaitGroup
	settlerDone  chan struct{}
	settleAbort  chan struct{} // closed by Stop when its deadline passes
	settleNow    chan struct{} // closed by Stop: sync what waits at once

	quit      chan struct{} // closed by Stop: start no new attempt
	runCtx    context.Context
	cancelRun context.CancelFunc
	stopOnce  sync.Once
	wg        sync.WaitGroup
}

var _ engine.Dispatcher = (*Dispatcher)(nil)

// New checks cfg, applies defaults and returns a dispatcher that runs
// nothing until Start.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("dispatch: config: store is required")
	}
	if cfg.Actions == nil {
		return nil, errors.New("dispatch: config: actions is required")
	}
	if cfg.MaxConcurrency < 0 {
		return nil, fmt.Errorf("dispatch: config: max_concurrency %d is negative", cfg.MaxConcurrency)
	}
	if cfg.MaxConcurrency == 0 {
		cfg.MaxConcurrency = DefaultMaxConcurrency
	}
	if cfg.DefaultTimeout < 0 {
		return nil, fmt.Errorf("dispatch: config: default_timeout %s is negative", cfg.DefaultTimeout)
	}
	if cfg.DefaultTimeout == 0 {
		cfg.DefaultTimeout = DefaultTimeout
	}
	if cfg.OutputLimit < 0 {
		return nil, fmt.Errorf("dispatch: config: output_limit %d is negative", cfg.OutputLimit)
	}
	if cfg.OutputLimit == 0 {
		cfg.OutputLimit = DefaultOutputLimit
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("dispatch: config: retention %s is negative", cfg.Retention)
	}
	if cfg.CompactInterval < 0 {
		return nil, fmt.Errorf("dispatch: config: compact_interval %s is negative", cfg.CompactInterval)
	}
	if cfg.CompactInterval == 0 {
		cfg.CompactInterval = DefaultCompactInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	per := make(map[string]chan struct{}, len(cfg.PerAction))
	for typ, n := range cfg.PerAction {
		if n <= 0 {
			return nil, fmt.Errorf("dispatch: config: per_action %q: limit %d must be positive", typ, n)
		}
		per[typ] = make(chan struct{}, n)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	deferred, _ := cfg.Store.(engine.DeferredActionStore)
	return &Dispatcher{
		cfg:           cfg,
		store:         cfg.Store,
		deferred:      deferred,
		clock:         cfg.Clock,
		log:           cfg.Log.With().Str("component", "dispatch").Logger(),
		global:        make(chan struct{}, cfg.MaxConcurrency),
		perAction:     per,
		locks:         &keyLocks{m: map[string]*keyLock{}},
		ready:         make(chan struct{}),
		active:        map[string]bool{},
		seq:           map[string][]*job{},
		held:          map[string]heldFor{},
		maxRunners:    cfg.MaxConcurrency + maxWaitingRunners,
		shutdownBegun: make(chan struct{}),
		settlerDone:   make(chan struct{}),
		settleAbort:   make(chan struct{}),
		settleNow:     make(chan struct{}),
		quit:          make(chan struct{}),
		runCtx:        runCtx,
		cancelRun:     cancel,
	}, nil
}

// job is one firing's invocations, ordered by Index. Final ones are kept so
// an earlier failure skips the later ones.
type job struct {
	firingID   string
	ruleset    string
	sequential bool
	items      []jobItem
}

// jobItem is one invocation of a job. With a store that reads invocations
// back (InvocationReader) only its ID and status are held while it waits:
// its state (arguments, events) is read from the store when it runs, so a
// long queue costs memory by the invocation, not by the event.
type jobItem struct {
	id     string
	status engine.InvocationStatus
	action string                  // what a queued one waits for: its action's slot
	lock   string                  // and its lock key
	mode   string                  // the invocation's mode (engine.ModeShadow, ModeApprove; "" auto)
	st     *engine.InvocationState // nil while the store holds it
}

// InvocationReader is an optional interface of an engine.ActionStore: it
// reads one invocation's recorded state by ID, or returns nil, nil when it
// is not stored. With it the dispatcher keeps queued invocations on disk.
type InvocationReader interface {
	Invocation(ctx context.Context, id string) (*engine.InvocationState, error)
}

// HeadLister is an optional interface of an engine.ActionStore that is
// also an InvocationReader: UnfinishedHeads is Unfinished with only what
// scheduling needs of each invocation (IDs, index, action, ruleset, rule,
// policy, sequential, status), not its arguments, events and attempts,
// so that a restart with a long queue does not read it all into memory.
type HeadLister interface {
	UnfinishedHeads(ctx context.Context) ([]*engine.InvocationState, error)
}

// light reports whether queued invocations wait in the store (see
// InvocationReader).
func (d *Dispatcher) light() bool {
	_, ok := d.store.(InvocationReader)
	return ok
}

// newJob makes the job of a firing's invocation states. With full states
// (as submitted, or read whole from the store) a light dispatcher keeps
// them until scheduleLocked finds the job must wait (shed): one run at
// once needs no read of what it was just given. Others (the heads of a
// restart) are read from the store when they run.
func (d *Dispatcher) newJob(firingID string, states []*engine.InvocationState, full bool) *job {
	sort.SliceStable(states, func(i, j int) bool { return states[i].Invocation.Index < states[j].Invocation.Index })
	light := d.light() && !full
	j := &job{firingID: firingID, items: make([]jobItem, len(states))}
	for i, st := range states {
		j.ruleset = st.Invocation.Ruleset
		if st.Invocation.Sequential {
			j.sequential = true
		}
		j.items[i] = jobItem{id: st.Invocation.ID, status: st.Status, action: st.Invocation.Action, lock: st.Invocation.Policy.Lock, mode: st.Invocation.Mode}
		if !light {
			j.items[i].st = st
		}
	}
	return j
}

func (j *job) unfinished() bool {
	for _, it := range j.items {
		if !it.status.Final() {
			return true
		}
	}
	return false
}

// load reads an invocation's state back from the store, retrying with
// backoff while the dispatcher runs; nil when stopping or when the store
// does not hold it (logged).
func (d *Dispatcher) load(id string) *engine.InvocationState {
	r := d.store.(InvocationReader)
	var st *engine.InvocationState
	err := d.retry(d.quit, func() (err error) {
		st, err = r.Invocation(context.Background(), id)
		return err
	}, func(err error) {
		d.log.Error().Err(err).Str("invocation_id", id).Msg("cannot read queued invocation")
	})
	if err != nil {
		return nil
	}
	if st == nil || st.Invocation == nil {
		d.log.Error().Str("invocation_id", id).Msg("queued invocation not found in the store; skipped")
	}
	return st
}

// Start resumes every unfinished invocation of the store and starts
// retention. It returns once they are scheduled; an error means nothing was
// started.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.state != stateNew {
		d.mu.Unlock()
		return errors.New("dispatch: start called twice or after stop")
	}
	d.state = stateStarting
	d.mu.Unlock()

	var unfinished []*engine.InvocationState
	var err error
	if hl, ok := d.store.(HeadLister); ok && d.light() {
		unfinished, err = hl.UnfinishedHeads(ctx)
	} else {
		unfinished, err = d.store.Unfinished(ctx)
	}
	if err != nil {
		d.mu.Lock()
		d.state = stateNew
		d.mu.Unlock()
		return fmt.Errorf("dispatch: load unfinished invocations: %w", err)
	}
	d.findLeftovers(unfinished)
	var order []string
	byFiring := map[string][]*engine.InvocationState{}
	for _, st := range unfinished {
		if st == nil || st.Invocation == nil {
			d.log.Error().Msg("store returned an invocation state without invocation; ignored")
			continue
		}
		id := st.Invocation.FiringID
		if _, ok := byFiring[id]; !ok {
			order = append(order, id)
		}
		byFiring[id] = append(byFiring[id], st)
	}
	jobs := make([]*job, 0, len(order))
	for _, id := range order {
		states := byFiring[id]
		first := states[0].Invocation
		for _, st := range states[1:] {
			if st.Invocation.Index < first.Index {
				first = st.Invocation
			}
		}
		// The store returns only unfinished invocations; the finished ones
		// of the same firing say whether an earlier action failed. Index 0
		// has no earlier one.
		if first.Index == 0 {
			jobs = append(jobs, d.newJob(id, states, false))
			continue
		}
		if e, err := d.storedFiring(ctx, id, first.Ruleset, first.Rule, engine.EventID(first.Event), first.Created); err != nil {
			d.log.Warn().Err(err).Str("firing_id", id).Msg("cannot read firing from audit trail; resuming its unfinished invocations only")
		} else if e != nil {
			states = mergeStates(e.Invocations, states)
		}
		jobs = append(jobs, d.newJob(id, states, false))
	}

	d.mu.Lock()
	if d.state != stateStarting { // stopped meanwhile
		d.mu.Unlock()
		return ErrStopped
	}
	d.state = stateStarted
	// An invocation found running may have left a process behind that
	// runs on: its lock key and slots are taken now, before any other
	// invocation can take them, and held until reattach has made sure that
	// process is gone.
	for _, st := range unfinished {
		if st == nil || st.Invocation == nil || st.Status != engine.StatusRunning {
			continue
		}
		var h heldFor
		if key := st.Invocation.Policy.Lock; key != "" && d.locks.tryAcquire(key) {
			h.lock = key
		}
		h.slots = d.tryAcquireSlots(st.Invocation.Action)
		if h.lock != "" || h.slots != nil {
			d.held[st.Invocation.ID] = h
		}
	}
	if d.deferred != nil {
		d.settleMu.Lock()
		d.settleCh = make(chan settleItem, 1024)
		d.settleMu.Unlock()
		go d.settler()
	} else {
		close(d.settlerDone)
	}
	for _, j := range jobs {
		d.scheduleLocked(j)
	}
	if d.cfg.Retention > 0 {
		d.wg.Add(1)
		go d.compactLoop()
	}
	close(d.ready)
	d.mu.Unlock()
	d.log.Info().Int("invocations", len(unfinished)).Int("firings", len(jobs)).Msg("dispatcher started")
	return nil
}

// mergeStates returns the stored states of a firing, preferring the
// unfinished ones (the store's Unfinished view) for the same invocation.
func mergeStates(all, unfinished []*engine.InvocationState) []*engine.InvocationState {
	byID := make(map[string]*engine.InvocationState, len(unfinished))
	for _, st := range unfinished {
		byID[st.Invocation.ID] = st
	}
	out := make([]*engine.InvocationState, 0, len(all)+len(unfinished))
	for _, st := range all {
		if st == nil || st.Invocation == nil {
			continue
		}
		if u, ok := byID[st.Invocation.ID]; ok {
			out = append(out, u)
			delete(byID, st.Invocation.ID)
			continue
		}
		out = append(out, st)
	}
	for _, st := range unfinished {
		if _, ok := byID[st.Invocation.ID]; ok {
			out = append(out, st)
		}
	}
	return out
}

// FiringReader is an optional interface of an engine.ActionStore: it reads
// one firing and its invocations' states by firing ID, or returns nil, nil
// when the firing is not stored. The dispatcher reads every submitted firing
// back (a resubmitted firing must not run again) and, on start, every firing
// with unfinished invocations; without this interface it finds them with
// Query (ruleset, rule, event ID and a time window around the firing).
type FiringReader interface {
	Firing(ctx context.Context, id string) (*engine.AuditEntry, error)
}

// storedFiring finds one firing in the audit trail, or nil when the store
// does not return it.
func (d *Dispatcher) storedFiring(ctx context.Context, id, ruleset, rule, eventID string, at time.Time) (*engine.AuditEntry, error) {
	if fr, ok := d.store.(FiringReader); ok {
		return fr.Firing(ctx, id)
	}
	// Query returns newest first and a store may scan until the limit is
	// reached, so ask for the newest match first: a firing just submitted
	// is that one. Only when another firing shares ruleset, rule and event
	// look further.
	f := engine.AuditFilter{Ruleset: ruleset, Rule: rule, EventID: eventID}
	if !at.IsZero() {
		f.Since = at.Add(-time.Second)
		f.Until = at.Add(time.Second)
	}
	for _, limit := range []int{1, 64} {
		f.Limit = limit
		entries, err := d.store.Query(ctx, f)
		if err != nil {
			return nil, err
		}
		for i := range entries {
			if entries[i].Firing.ID == id {
				return &entries[i], nil
			}
		}
		if len(entries) < limit {
			break
		}
	}
	return nil, nil
}

// Submit stores the firing and its invocations durably, then schedules
// them; it returns once the store returned. An error means nothing was
// stored. Submitting a firing again (after a crash, before the engine marked
// its event done) is harmless: what the store already recorded for it wins,
// and finished invocations do not run again.
func (d *Dispatcher) Submit(ctx context.Context, f *engine.Firing) error {
	return d.SubmitAll(ctx, []*engine.Firing{f})
}

var _ engine.BatchDispatcher = (*Dispatcher)(nil)

// SubmitAll stores several firings and schedules them, like Submit for
// each. When the store is an engine.BatchActionStore they are stored with
// one durable write, so a batch of journal records costs one sync. An error
// means none of them may be taken as stored.
func (d *Dispatcher) SubmitAll(ctx context.Context, fs []*engine.Firing) error {
	for _, f := range fs {
		if err := checkFiring(f); err != nil {
			return err
		}
	}
	if err := d.waitStarted(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	fresh := make([]*engine.Firing, 0, len(fs))
	for _, f := range fs {
		if !d.active[f.ID] {
			fresh = append(fresh, f)
		}
	}
	d.mu.Unlock()
	if len(fresh) == 0 {
		return nil
	}
	d.stampModes(fresh)
	if bs, ok := d.store.(engine.BatchActionStore); ok && len(fresh) > 1 {
		if err := bs.SubmitAll(ctx, fresh); err != nil {
			return fmt.Errorf("dispatch: store %d firings: %w", len(fresh), err)
		}
	} else {
		for _, f := range fresh {
			if err := d.store.Submit(ctx, f); err != nil {
				return fmt.Errorf("dispatch: store firing %q: %w", f.ID, err)
			}
		}
	}
	for _, f := range fresh {
		d.scheduleSubmitted(ctx, f)
	}
	return nil
}

func checkFiring(f *engine.Firing) error {
	if f == nil || f.ID == "" {
		return errors.New("dispatch: submit: firing has no id")
	}
	for i, inv := range f.Invocations {
		if inv == nil || inv.ID == "" {
			return fmt.Errorf("dispatch: submit: firing %q: invocation %d has no id", f.ID, i)
		}
		if inv.FiringID != f.ID {
			return fmt.Errorf("dispatch: submit: firing %q: invocation %q names firing %q", f.ID, inv.ID, inv.FiringID)
		}
	}
	return nil
}

// scheduleSubmitted schedules a stored firing's invocations as the store
// recorded them: a firing submitted again keeps what already happened.
func (d *Dispatcher) scheduleSubmitted(ctx context.Context, f *engine.Firing) {
	if len(f.Invocations) == 0 {
		return
	}
	var states []*engine.InvocationState
	eventID := ""
	if len(f.EventIDs) > 0 {
		eventID = f.EventIDs[0]
	}
	// Only a redelivered firing can have been stored before, with some of
	// its invocations already run.
	if f.Redelivered {
		e, err := d.storedFiring(ctx, f.ID, f.Ruleset, f.Rule, eventID, f.Time)
		switch {
		case err != nil:
			d.log.Warn().Err(err).Str("firing_id", f.ID).Msg("cannot read submitted firing back; running it as submitted")
		case e != nil && len(e.Invocations) > 0:
			states = e.Invocations
		}
	}
	if states == nil {
		for _, inv := range f.Invocations {
			states = append(states, &engine.InvocationState{Invocation: inv, Status: engine.StatusQueued, Updated: f.Time})
		}
	}
	// A redelivered firing's states are read again when each runs (with
	// a store that can): what they were when read here may change before
	// then (its first run, parked for approval, decided and run on).
	j := d.newJob(f.ID, states, !f.Redelivered)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != stateStarted {
		// Stored: the next start runs it.
		return
	}
	// scheduleLocked leaves alone a firing whose invocations are all final.
	d.scheduleLocked(j)
}

func (d *Dispatcher) waitStarted(ctx context.Context) error {
	d.mu.Lock()
	st := d.state
	d.mu.Unlock()
	switch st {
	case stateNew:
		return errors.New("dispatch: submit before start")
	case stateStopped:
		return ErrStopped
	}
	select {
	case <-d.ready:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.quit:
		return ErrStopped
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != stateStarted {
		return ErrStopped
	}
	return nil
}

// scheduleLocked starts a job, or queues it behind its ruleset's earlier
// firings when sequential. d.mu is held and the state is started.
func (d *Dispatcher) scheduleLocked(j *job) {
	if d.active[j.firingID] || !j.unfinished() {
		return
	}
	d.active[j.firingID] = true
	if len(d.global) == cap(d.global) {
		d.shed(j) // it waits for a slot
	}
	if !j.sequential {
		if d.jobRunners >= d.maxRunners {
			d.shed(j)
			d.parked = append(d.parked, j)
			return
		}
		d.startRunnerLocked(j)
		return
	}
	q, running := d.seq[j.ruleset]
	if running {
		d.shed(j) // it waits for the ruleset's earlier firings
	}
	d.seq[j.ruleset] = append(q, j)
	if !running {
		d.wg.Add(1)
		go d.sequentialWorker(j.ruleset)
	}
}

// shed lets the store hold the states of a job that waits behind others
// (see InvocationReader): a long queue costs memory by the invocation,
// not by the event.
func (d *Dispatcher) shed(j *job) {
	if !d.light() {
		return
	}
	for i := range j.items {
		j.items[i].st = nil
	}
}

// startRunnerLocked runs j in a goroutine of its own which, when done,
// takes the next parked job, if any. d.mu is held.
func (d *Dispatcher) startRunnerLocked(j *job) {
	d.jobRunners++
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for j != nil {
			d.runJob(j)
			d.mu.Lock()
			j = nil
			if len(d.parked) > 0 && d.state == stateStarted {
				j = d.parked[0]
				d.parked[0] = nil
				d.parked = d.parked[1:]
			} else {
				d.jobRunners--
			}
			d.mu.Unlock()
		}
	}()
}

// sequentialWorker runs a sequential ruleset's firings one after the other;
// d.seq[ruleset] exists exactly while a worker runs.
func (d *Dispatcher) sequentialWorker(ruleset string) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		q := d.seq[ruleset]
		if len(q) == 0 || d.stopping() {
			delete(d.seq, ruleset)
			d.mu.Unlock()
			return
		}
		j := q[0]
		d.seq[ruleset] = q[1:]
		d.mu.Unlock()
		d.runJob(j)
	}
}

func (d *Dispatcher) stopping() bool {
	select {
	case <-d.quit:
		return true
	default:
		return false
	}
}

// runJob runs a firing's invocations in order.
func (d *Dispatcher) runJob(j *job) {
	parkedJob := false
	defer func() {
		if parkedJob {
			return // park already took it out of the active set
		}
		d.mu.Lock()
		delete(d.active, j.firingID)
		d.mu.Unlock()
	}()
	earlierFailed := false
	for i := range j.items {
		it := &j.items[i]
		if it.status.Final() {
			if it.status == engine.StatusFailed {
				earlierFailed = true
			}
			continue
		}
		st := it.st
		var held func()
		// A queued invocation to run now takes its lock and slots here;
		// one of a shadow or approve rule takes them only when it runs
		// (runInvocation), after its approval.
		takesSlots := it.status == engine.StatusQueued && !earlierFailed && it.mode == ""
		if st != nil && d.light() && takesSlots {
			// Kept since it was submitted (newJob): run from it only
			// when it can start now. One that must wait for its lock
			// or a slot is read from the store when its turn comes,
			// as every queued invocation of a light dispatcher is.
			if held = d.tryAcquire(it.action, it.lock); held == nil {
				st, it.st = nil, nil
			}
		}
		if st == nil {
			if takesSlots {
				// It waits for its lock and slots holding only its
				// ID; its state is read once it can run.
				release, ok := d.acquire(it.action, it.lock)
				if !ok {
					return
				}
				held = release
			}
			if st = d.load(it.id); st == nil {
				if held != nil {
					held()
				}
				if d.stopping() {
					return
				}
				continue
			}
		}
		if it.status == engine.StatusRunning && (st.Status == engine.StatusQueued || st.Status == engine.StatusRetrying) {
			// A leftover (findLeftovers): running at Start, though
			// the store, read back, still has it waiting.
			st.Status = engine.StatusRunning
			st.Updated = d.clock.Now()
		}
		it.st = nil // the store holds it from here
		if held != nil && st.Status != engine.StatusQueued {
			held()
			held = nil
		}
		if st.Status.Final() {
			it.status = st.Status
			earlierFailed = earlierFailed || st.Status == engine.StatusFailed
			continue
		}
		if earlierFailed {
			if held != nil {
				held()
			}
			d.skip(st)
			it.status = st.Status
			continue
		}
		if st.Invocation.Mode == engine.ModeShadow {
			d.shadow(st)
			it.status = st.Status
			continue
		}
		if needsApproval(st) {
			// The job leaves the active set and comes back when
			// decided; later invocations wait behind this one. Its
			// lock and slots were not taken (jobItem.mode).
			if !d.light() {
				it.st = st
			}
			var now *engine.InvocationState
			if parkedJob, now = d.park(j, st); now == nil {
				return
			}
			// Decided since this job read it: go on with the state
			// the store holds now.
			st, it.st = now, nil
			if st.Status.Final() {
				it.status = st.Status
				earlierFailed = earlierFailed || st.Status == engine.StatusFailed
				continue
			}
		}
		if !d.runInvocation(st, held) {
			return // stopping: the rest stays queued in the store
		}
		it.status = st.Status
		if st.Status == engine.StatusFailed {
			earlierFailed = true
		}
	}
}

// Stop stops the dispatcher in two phases: no new attempt starts, running
// attempts may finish until ctx ends, then they are cancelled (and recorded
// as such, to run again on the next start). It waits for every goroutine and
// may be called more than once. It returns an error when attempts had to be
// cancelled.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.BeginShutdown()
	d.stopOnce.Do(func() {
		d.mu.Lock()
		d.state = stateStopped
		close(d.quit)
		d.mu.Unlock()
	})
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		d.cancelRun()
		d.stopSettler(ctx)
		return nil
	case <-ctx.Done():
	}
	d.log.Warn().Msg("stop deadline reached; cancelling running actions")
	d.cancelRun()
	<-done
	d.stopSettler(ctx)
	return fmt.Errorf("dispatch: stop: running actions cancelled: %w", ctx.Err())
}

// stopSettler syncs and settles the results still waiting, once no
// attempt runs any more, giving up on a store that cannot sync when ctx
// ends (the records stay for the next start).
func (d *Dispatcher) stopSettler(ctx context.Context) {
	d.settleMu.Lock()
	if d.settleCh == nil || d.settleClosed {
		d.settleMu.Unlock()
		return
	}
	d.settleClosed = true
	d.settleMu.Unlock()
	close(d.settleNow)
	all := make(chan struct{})
	go func() {
		d.settled.Wait() // every reserved result was sent and settled
		close(all)
	}()
	select {
	case <-all:
	case <-ctx.Done():
		close(d.settleAbort)
		<-all
	}
	close(d.settleCh)
	<-d.settlerDone
}

// findLeftovers marks as running, in the states Start schedules from,
// the queued and retrying invocations of which an earlier process left
// an attempt's record (engine.AttemptRecorder.LeftBehind), and prunes the
// records of attempts that ended. An attempt of an AttemptRecorder is
// recorded as running without a sync, so the store may have lost that it
// started; the action's record did not. Their jobs' items are running
// while the store, which runJob may read them back from, says otherwise.
func (d *Dispatcher) findLeftovers(unfinished []*engine.InvocationState) {
	keep := make(map[string]bool, len(unfinished))
	recs := map[string]engine.AttemptRecorder{}
	recorder := func(typ string) engine.AttemptRecorder {
		r, seen := recs[typ]
		if !seen {
			a, _ := d.cfg.Actions(typ)
			r = recorderOf(a)
			recs[typ] = r
		}
		return r
	}
	now := d.clock.Now()
	for _, st := range unfinished {
		if st == nil || st.Invocation == nil {
			continue
		}
		keep[st.Invocation.ID] = true
		if st.Status != engine.StatusQueued && st.Status != engine.StatusRetrying {
			continue
		}
		if r := recorder(st.Invocation.Action); r != nil && r.LeftBehind(st.Invocation.ID) {
			st.Status = engine.StatusRunning
			// Its timeout counts from now: when it started is the
			// record's to know.
			st.Updated = now
		}
	}
	if d.cfg.ActionTypes != nil {
		for _, typ := range d.cfg.ActionTypes() {
			recorder(typ)
		}
	}
	pruned := map[engine.AttemptRecorder]bool{}
	for typ, r := range recs {
		if r == nil || pruned[r] {
			continue
		}
		pruned[r] = true
		if n := r.Prune(keep); n > 0 {
			d.log.Info().Str("action", typ).Int("records", n).Msg("removed records of attempts that ended before a restart")
		}
	}
}

// BeginShutdown tells the dispatcher that the process is shutting down,
// as soon as it is decided (a signal arrived), which may be well before
// Stop. An attempt whose process was killed by a signal around then (the
// signal was sent to the whole service: systemd's KillMode=control-group,
// `tini -g`, a container runtime) is recorded as cancelled by shutdown and
// runs again on the next start, instead of failing. It may be called more
// than once.
func (d *Dispatcher) BeginShutdown() {
	d.shutdownOnce.Do(func() { close(d.shutdownBegun) })
}

// heldFor is what Start took for an invocation found running: its lock
// key ("" if none) and a release of its slots (nil if none).
type heldFor struct {
	lock  string
	slots func()
}

// takeHeld returns, and forgets, what Start took for the invocation id.
func (d *Dispatcher) takeHeld(id string) heldFor {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.held[id]
	delete(d.held, id)
	return h
}

// tryAcquire is acquire without waiting: the release of the invocation's
// lock key, action slot and global slot when all are free, nil otherwise.
func (d *Dispatcher) tryAcquire(action, lock string) func() {
	if lock != "" && !d.locks.tryAcquire(lock) {
		return nil
	}
	slots := d.tryAcquireSlots(action)
	if slots == nil {
		if lock != "" {
			d.locks.release(lock)
		}
		return nil
	}
	return func() {
		slots()
		if lock != "" {
			d.locks.release(lock)
		}
	}
}

// tryAcquireSlots takes a slot of action and a global slot if both are
// free, and returns their release; nil otherwise.
func (d *Dispatcher) tryAcquireSlots(action string) func() {
	sem := d.perAction[action]
	if sem != nil {
		select {
		case sem <- struct{}{}:
		default:
			return nil
		}
	}
	select {
	case d.global <- struct{}{}:
	default:
		if sem != nil {
			<-sem
		}
		return nil
	}
	return func() {
		<-d.global
		if sem != nil {
			<-sem
		}
	}
}

// Stats is a snapshot of the dispatcher's load.
type Stats struct {
	// Firings is how many firings have invocations in hand (running,
	// waiting for a slot, a lock, a backoff or an earlier firing).
	Firings int
	// Running is how many attempts hold a global slot.
	Running int
}

// Stats returns the current load, for health checks and metrics.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Stats{Firings: len(d.active), Running: len(d.global)}
}
