package dispatch

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/rulebook-dev/rulebook/engine"
)

// runInvocation drives one invocation to a final state. It returns false
// when the dispatcher is stopping and the invocation stays unfinished.
// held, when not nil, releases the lock and slots the caller already took
// for the first attempt.
func (d *Dispatcher) runInvocation(st *engine.InvocationState, held func()) bool {
	inv := st.Invocation
	log := d.invLog(inv)
	defer func() {
		if held != nil {
			held()
		}
	}()

	if st.Status == engine.StatusRunning {
		// Recorded as running but no attempt of ours runs it: the process
		// that ran it died. What it started may still run.
		cont, done := d.reattach(st, log)
		if !cont || done {
			return cont
		}
	}

	for {
		if st.Status == engine.StatusRetrying {
			if wait := st.NextAttempt.Sub(d.clock.Now()); wait > 0 {
				select {
				case <-d.clock.After(wait):
				case <-d.quit:
					return false
				}
			}
		}
		if held != nil && st.Status != engine.StatusQueued {
			held()
			held = nil
		}
		if d.stopping() {
			return false
		}
		n := len(st.Attempts) + 1
		if inv.RenderError != "" {
			d.failWithoutRun(st, "arguments did not render: "+inv.RenderError)
			return d.persist(st) == nil
		}
		action, ok := d.cfg.Actions(inv.Action)
		if !ok {
			d.failWithoutRun(st, fmt.Sprintf("unknown action type %q", inv.Action))
			return d.persist(st) == nil
		}
		// Secrets are resolved per attempt into a copy only the action sees.
		run, err := resolved(inv)
		if err != nil {
			d.failWithoutRun(st, "args: "+err.Error())
			return d.persist(st) == nil
		}

		release := held
		held = nil
		if release == nil {
			var ok bool
			if release, ok = d.acquire(inv.Action, inv.Policy.Lock); !ok {
				return false
			}
		}
		st.Status = engine.StatusRunning
		// An action that records its attempts itself (AttemptRecorder)
		// does not wait for the running state to be durable: its record,
		// written before the program starts, is what a restart finds.
		if err := d.persistWith(st, d.defers(action)); err != nil {
			release()
			return false
		}
		start := d.clock.Now()
		log.Debug().Int("attempt", n).Msg("attempt started")
		res := d.callAction(action, run)
		release()
		cont, done := d.record(st, action, run, res, n, start, log)
		if !cont || done {
			return cont
		}
	}
}

// resolved returns a copy of inv with its secret references resolved,
// which only the action sees.
func resolved(inv *engine.Invocation) (*engine.Invocation, error) {
	run := *inv
	args, secrets, err := inv.ResolveArgs()
	if err != nil {
		return nil, err
	}
	run.Args = args
	run.Secrets = secrets
	return &run, nil
}

// reattach deals with an invocation recorded as running when the
// dispatcher started: the process that ran it died. An action that can
// outlive the engine (engine.Reattacher) is asked first, with the
// invocation's lock key held, so that nothing of the interrupted attempt
// runs when the invocation runs again, and so that its result, when
// known, stands for the attempt. Otherwise the attempt is recorded as
// interrupted by restart. cont false: stopping; done: final.
func (d *Dispatcher) reattach(st *engine.InvocationState, log zerolog.Logger) (cont, done bool) {
	n := len(st.Attempts) + 1
	if cont, done, known := d.reattachOrphan(st, d.takeHeld(st.Invocation.ID), n, log); known || !cont {
		return cont, done
	}
	st.Attempts = append(st.Attempts, engine.Attempt{
		N: n, Start: st.Updated, Status: engine.Retryable, Error: ErrTextInterrupted,
		Details: map[string]any{detailInterrupted: "restart"},
	})
	log.Warn().Int("attempt", n).Msg("attempt interrupted by restart")
	d.afterFailure(st, engine.Result{Status: engine.Retryable, Error: ErrTextInterrupted}, log)
	if err := d.persist(st); err != nil {
		return false, false
	}
	return true, st.Status.Final()
}

// reattachOrphan asks the invocation's action, when it is an
// engine.Reattacher, about the orphaned attempt n, with the invocation's
// lock key and the action's slots held, and records its result when known.
// It releases what held holds, and what it takes, before it returns.
// known: the result was recorded, and cont and done are record's; cont
// false: stopping.
func (d *Dispatcher) reattachOrphan(st *engine.InvocationState, held heldFor, n int, log zerolog.Logger) (cont, done, known bool) {
	inv := st.Invocation
	lock := held.lock
	releaseHeld := func() {
		if held.slots != nil {
			held.slots()
		}
		if lock != "" {
			d.locks.release(lock)
		}
	}
	action, ok := d.cfg.Actions(inv.Action)
	ra, isRA := action.(engine.Reattacher)
	if !ok || !isRA {
		releaseHeld()
		return true, false, false
	}
	run, err := resolved(inv)
	if err != nil {
		releaseHeld()
		return true, false, false
	}
	if lock == "" && inv.Policy.Lock != "" {
		if !d.locks.acquire(inv.Policy.Lock, d.quit) {
			releaseHeld()
			return false, false, false
		}
		lock = inv.Policy.Lock
	}
	// The orphan is an attempt running: it takes its slots.
	releaseSlots := held.slots
	held.slots = nil
	if releaseSlots == nil {
		if releaseSlots, ok = d.acquire(inv.Action, ""); !ok {
			releaseHeld()
			return false, false, false
		}
	}
	timeout := d.timeout(inv)
	left := st.Updated.Add(timeout).Sub(d.clock.Now())
	ctx, cancel := context.WithTimeout(d.runCtx, max(left, 0))
	res, known := ra.Reattach(ctx, run)
	releaseSlots()
	noteTimeout(ctx, &res, timeout)
	cancel()
	if !known {
		releaseHeld()
		return true, false, false
	}
	if res.Details == nil {
		res.Details = map[string]any{}
	}
	res.Details["reattached"] = true
	start := st.Updated
	if !d.clock.Now().After(start) {
		start = d.clock.Now()
	}
	cont, done = d.record(st, action, run, res, n, start, log)
	releaseHeld()
	return cont, done, true
}

// record records the result of attempt n of action, which started at
// start, and feeds a success's facts and events back. cont false:
// stopping (the invocation stays unfinished); done: it is final.
func (d *Dispatcher) record(st *engine.InvocationState, action engine.Action, run *engine.Invocation, res engine.Result, n int, start time.Time, log zerolog.Logger) (cont, done bool) {
	dur := d.clock.Now().Sub(start)
	shutdown := d.runCtx.Err() != nil && res.Status != engine.Succeeded
	if !shutdown && res.Status != engine.Succeeded && res.Signal != "" {
		// The action's process was killed by a signal it did not send:
		// when the engine begins to shut down at the same moment, the
		// signal was sent to the whole service (a cgroup or process group
		// kill), and the attempt is the shutdown's, not a failure.
		shutdown = d.shutdownFollows()
	}
	att := engine.Attempt{
		N:          n,
		Start:      start,
		Duration:   dur,
		Status:     res.Status,
		Error:      d.clip(run.Redact(res.Error)),
		Output:     d.clip(run.Redact(res.Output)),
		ExitCode:   res.ExitCode,
		HTTPStatus: res.HTTPStatus,
	}
	if res.Details != nil {
		att.Details, _ = run.RedactValue(res.Details).(map[string]any)
	}
	switch {
	case res.Status == engine.Succeeded:
		st.Status = engine.StatusSucceeded
		st.NextAttempt = time.Time{}
	case shutdown:
		att.Status = engine.Retryable
		if att.Error == "" {
			att.Error = ErrTextShutdown
		} else {
			att.Error = ErrTextShutdown + ": " + att.Error
		}
		if att.Details == nil {
			att.Details = map[string]any{}
		}
		att.Details[detailInterrupted] = "shutdown"
		st.Status = engine.StatusRetrying
		st.NextAttempt = d.clock.Now()
	}
	st.Attempts = append(st.Attempts, att)
	if !st.Status.Final() && !shutdown {
		d.afterFailure(st, res, log)
	}
	if st.Status == engine.StatusSucceeded && d.cfg.Feedback != nil && (len(res.Facts) > 0 || len(res.Events) > 0) {
		// Before the success is recorded: whoever waits for the
		// invocation to finish then finds its feedback journaled, and a
		// crash in between repeats the attempt (the feedback's dedupe key
		// is the invocation's) instead of losing the feedback.
		to := st.Invocation
		if res.FeedbackRuleset != "" && res.FeedbackRuleset != to.Ruleset {
			c := *to
			c.Ruleset = res.FeedbackRuleset
			to = &c
		}
		d.cfg.Feedback(to, res.Facts, res.Events)
	}
	if err := d.persistResult(st, action); err != nil {
		return false, false
	}
	ev := log.Info()
	if st.Status == engine.StatusFailed {
		ev = log.Error()
	} else if st.Status == engine.StatusRetrying {
		ev = log.Warn().Time("next_attempt", st.NextAttempt)
	}
	if att.Error != "" {
		ev = ev.Str("error", att.Error)
	}
	ev.Int("attempt", n).Int64("duration_ms", dur.Milliseconds()).Str("status", string(st.Status)).Msg("attempt finished")
	if shutdown {
		return false, false
	}
	return true, st.Status.Final()
}

// SignalGrace is how long after an action's process was killed by a
// signal the dispatcher waits for the engine's shutdown to begin (see
// BeginShutdown) before it takes the attempt as failed.
const SignalGrace = 2 * time.Second

// shutdownFollows reports whether a shutdown began or begins within
// SignalGrace.
func (d *Dispatcher) shutdownFollows() bool {
	select {
	case <-d.shutdownBegun:
		return true
	default:
	}
	select {
	case <-d.shutdownBegun:
		return true
	case <-d.clock.After(SignalGrace):
		return false
	}
}

// afterFailure sets the status after a failed attempt (the last one in
// st.Attempts): retrying with its next time while retries remain for a
// Retryable result, failed otherwise.
func (d *Dispatcher) afterFailure(st *engine.InvocationState, res engine.Result, log zerolog.Logger) {
	counted := countedAttempts(st.Attempts)
	p := st.Invocation.Policy
	if res.Status == engine.Retryable && counted <= p.Retries {
		wait := Backoff(p, counted, d.cfg.Rand())
		if res.RetryAfter > wait {
			wait = res.RetryAfter
		}
		st.Status = engine.StatusRetrying
		st.NextAttempt = d.clock.Now().Add(wait)
		return
	}
	st.Status = engine.StatusFailed
	st.NextAttempt = time.Time{}
	if res.Status == engine.Retryable {
		log.Error().Int("attempts", len(st.Attempts)).Int("retries", p.Retries).Msg("retries exhausted; invocation failed (dead letter)")
	}
}

// freeRestarts is how many attempts cut short by a crash of the engine an
// invocation gets without using up its retries. The crash was ours, not the
// action's; past this many, an action that takes the process down with it
// every time counts its attempts like any other.
const freeRestarts = 3

// countedAttempts counts the attempts that use up retries: all but those
// cancelled by a shutdown and the first freeRestarts interrupted by a crash.
func countedAttempts(atts []engine.Attempt) int {
	n, restarts := 0, 0
	for _, a := range atts {
		if a.Details != nil {
			switch a.Details[detailInterrupted] {
			case "shutdown":
				continue
			case "restart":
				restarts++
				if restarts <= freeRestarts {
					continue
				}
			}
		}
		n++
	}
	return n
}

// Backoff returns the wait before retry n (1 for the first retry) under p,
// with r in [0, 1) choosing the jitter: base = min(Delay*2^(n-1), MaxDelay)
// (Delay defaults to 1s, MaxDelay to 5m) and the wait is base/2 +
// r*base/2 ("equal jitter").
func Backoff(p engine.Policy, n int, r float64) time.Duration {
	delay, maxDelay := p.Delay, p.MaxDelay
	if delay <= 0 {
		delay = DefaultDelay
	}
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	if n < 1 {
		n = 1
	}
	base := delay
	for i := 1; i < n && base < maxDelay; i++ {
		base *= 2
	}
	if base > maxDelay {
		base = maxDelay
	}
	if r < 0 || r >= 1 {
		r = 0
	}
	half := base / 2
	return half + time.Duration(r*float64(base-half))
}

// failWithoutRun records a permanent failure found before the action ran.
func (d *Dispatcher) failWithoutRun(st *engine.InvocationState, msg string) {
	st.Attempts = append(st.Attempts, engine.Attempt{
		N: len(st.Attempts) + 1, Start: d.clock.Now(), Status: engine.Failed, Error: msg,
	})
	st.Status = engine.StatusFailed
	st.NextAttempt = time.Time{}
	log := d.invLog(st.Invocation)
	log.Error().Str("error", msg).Msg("invocation failed before running")
}

// skip marks an invocation failed because an earlier one of its firing
// failed.
func (d *Dispatcher) skip(st *engine.InvocationState) {
	st.Status = engine.StatusFailed
	st.NextAttempt = time.Time{}
	st.Attempts = append(st.Attempts, engine.Attempt{
		N: len(st.Attempts) + 1, Start: d.clock.Now(), Status: engine.Failed, Error: ErrTextSkipped,
	})
	log := d.invLog(st.Invocation)
	log.Warn().Msg(ErrTextSkipped)
	_ = d.persist(st)
}

// callAction runs one attempt with its timeout, turning a panic into a
// permanent failure.
func (d *Dispatcher) callAction(a engine.Action, inv *engine.Invocation) (res engine.Result) {
	timeout := d.timeout(inv)
	ctx, cancel := context.WithTimeout(d.runCtx, timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			res = engine.Failure("action panicked: %v", r)
		}
	}()
	res = a.Run(ctx, inv)
	switch res.Status {
	case engine.Succeeded, engine.Retryable, engine.Failed:
	default:
		res.Error = fmt.Sprintf("action returned unknown status %q: %s", res.Status, res.Error)
		res.Status = engine.Failed
	}
	noteTimeout(ctx, &res, timeout)
	return res
}

// timeout is how long an attempt of inv may run: its policy's timeout, or
// Config.DefaultTimeout.
func (d *Dispatcher) timeout(inv *engine.Invocation) time.Duration {
	if t := inv.Policy.Timeout; t > 0 {
		return t
	}
	return d.cfg.DefaultTimeout
}

// noteTimeout gives a retryable result without an error, of an attempt
// whose ctx ran out, the timeout as its error.
func noteTimeout(ctx context.Context, res *engine.Result, timeout time.Duration) {
	if res.Status == engine.Retryable && res.Error == "" && ctx.Err() == context.DeadlineExceeded {
		res.Error = fmt.Sprintf("timed out after %s", timeout)
	}
}

// persist records st in the store, retrying with backoff while the
// dispatcher runs; it gives up (and returns the error) once stopping.
func (d *Dispatcher) persist(st *engine.InvocationState) error {
	return d.persistWith(st, false)
}

// persistWith is persist, without waiting for the state to be durable
// when deferred and the store can (engine.DeferredActionStore).
func (d *Dispatcher) persistWith(st *engine.InvocationState, deferred bool) error {
	st.Updated = d.clock.Now()
	err := d.retry(d.quit, func() error {
		if deferred && d.deferred != nil {
			return d.deferred.UpdateDeferred(context.Background(), st)
		}
		return d.store.Update(context.Background(), st)
	}, func(err error) {
		log := d.invLog(st.Invocation)
		log.Error().Err(err).Str("status", string(st.Status)).Msg("cannot record invocation state")
	})
	if err != nil {
		return err
	}
	if d.cfg.OnResult != nil {
		d.cfg.OnResult(snapshot(st))
	}
	return nil
}

// snapshot copies st for a caller outside the dispatcher: its attempts and
// approval are its own, so that the dispatcher's later changes to st (an
// attempt appended, a decision recorded) never show through.
func snapshot(st *engine.InvocationState) *engine.InvocationState {
	cp := *st
	cp.Attempts = slices.Clone(st.Attempts)
	if st.Approval != nil {
		a := *st.Approval
		cp.Approval = &a
	}
	return &cp
}

// acquire takes the invocation's lock key, its action slot and a global
// slot, in this order, or gives up when the dispatcher stops.
func (d *Dispatcher) acquire(action, lock string) (release func(), ok bool) {
	var undo []func()
	releaseAll := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if key := lock; key != "" {
		if !d.locks.acquire(key, d.quit) {
			return nil, false
		}
		undo = append(undo, func() { d.locks.release(key) })
	}
	if sem := d.perAction[action]; sem != nil {
		select {
		case sem <- struct{}{}:
			undo = append(undo, func() { <-sem })
		case <-d.quit:
			releaseAll()
			return nil, false
		}
	}
	select {
	case d.global <- struct{}{}:
		undo = append(undo, func() { <-d.global })
	case <-d.quit:
		releaseAll()
		return nil, false
	}
	if d.stopping() {
		releaseAll()
		return nil, false
	}
	return releaseAll, true
}

func (d *Dispatcher) invLog(inv *engine.Invocation) zerolog.Logger {
	c := d.log.With().
		Str("ruleset", inv.Ruleset).Str("rule", inv.Rule).Str("action", inv.Action).
		Str("firing_id", inv.FiringID).Str("invocation_id", inv.ID)
	// The event that completed the match, so one event can be followed
	// from its arrival to its actions with grep.
	if id := engine.EventID(inv.Event); id != "" {
		c = c.Str("event_id", id)
	}
	return c.Logger()
}

// clip keeps the first OutputLimit bytes of s (cut at a rune boundary) and
// says how much was dropped.
func (d *Dispatcher) clip(s string) string {
	return clip(s, d.cfg.OutputLimit)
}

func clip(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n[... %d more bytes]", len(s)-cut)
}

// compactLoop deletes old finished firings every CompactInterval.
func (d *Dispatcher) compactLoop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.quit:
			return
		case <-d.clock.After(d.cfg.CompactInterval):
		}
		before := d.clock.Now().Add(-d.cfg.Retention)
		n, err := d.store.Compact(context.Background(), before)
		if err != nil {
			d.log.Error().Err(err).Msg("audit trail compaction failed")
			continue
		}
		d.log.Info().Int("firings", n).Time("before", before).Msg("audit trail compacted")
	}
}

// keyLocks holds the lock keys of running invocations.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{}
	refs int
}

func (l *keyLocks) acquire(key string, quit <-chan struct{}) bool {
	l.mu.Lock()
	k := l.m[key]
	if k == nil {
		k = &keyLock{ch: make(chan struct{}, 1)}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()
	select {
	case k.ch <- struct{}{}:
		return true
	case <-quit:
		l.mu.Lock()
		l.unref(key, k)
		l.mu.Unlock()
		return false
	}
}

// tryAcquire takes key if it is free.
func (l *keyLocks) tryAcquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.m[key]
	if k == nil {
		k = &keyLock{ch: make(chan struct{}, 1)}
		l.m[key] = k
	}
	select {
	case k.ch <- struct{}{}:
		k.refs++
		return true
	default:
		if k.refs == 0 {
			delete(l.m, key)
		}
		return false
	}
}

func (l *keyLocks) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.m[key]
	<-k.ch
	l.unref(key, k)
}

func (l *keyLocks) unref(key string, k *keyLock) {
	k.refs--
	if k.refs == 0 {
		delete(l.m, key)
	}
}

// defers reports whether action records its attempts itself
// (engine.AttemptRecorder) and the store can defer: then an attempt's
// running state and final result need not be durable before the
// dispatcher goes on.
func (d *Dispatcher) defers(action engine.Action) bool {
	return d.deferred != nil && recorderOf(action) != nil
}

// persistResult records the state an attempt of action left. The final
// result of an AttemptRecorder's attempt is recorded without waiting for
// the sync: the settler syncs the results waiting (one sync for all of
// them) and then lets the action drop its records of those attempts,
// which until then say what a crash may have lost. Any other result is
// synced here, and the action's record of the attempt goes at once.
func (d *Dispatcher) persistResult(st *engine.InvocationState, action engine.Action) error {
	rec := recorderOf(action)
	if rec == nil {
		return d.persist(st)
	}
	if st.Status.Final() && d.deferred != nil && d.settleLater() {
		if err := d.persistWith(st, true); err != nil {
			d.settled.Done()
			return err
		}
		select {
		case d.settleCh <- settleItem{rec: rec, inv: st.Invocation}:
		default:
			// The settler is that far behind (its syncs fail): one sync
			// here; should it fail too, the records stay for the next
			// start, which finds the attempt's result in them.
			if d.deferred.Sync(context.Background()) == nil {
				rec.Settle(st.Invocation)
			}
			d.settled.Done()
		}
		return nil
	}
	if err := d.persist(st); err != nil {
		return err
	}
	rec.Settle(st.Invocation)
	return nil
}

// settleItem is a final result recorded without a sync, whose action's
// record goes once a sync made it durable.
type settleItem struct {
	rec engine.AttemptRecorder
	inv *engine.Invocation
}

// settleLater reserves a place in the settler's queue; false when the
// settler is not running (before Start, after Stop): then the result is
// synced by its writer.
func (d *Dispatcher) settleLater() bool {
	d.settleMu.Lock()
	defer d.settleMu.Unlock()
	if d.settleCh == nil || d.settleClosed {
		return false
	}
	d.settled.Add(1)
	return true
}

// settleDelay is how long the settler lets results gather before one
// sync makes them all durable, and settleBatch how many make it sync at
// once. Nothing waits for a result to be settled but the action's record
// of the attempt, which holds the result until then: syncing each result
// as it came was one of the 2.5 fdatasyncs per command at 600 parallel
// commands/s, each 50-150 us of CPU in this VM.
const (
	settleDelay = 10 * time.Millisecond
	settleBatch = 256
)

// settler syncs the store for the results recorded without a sync, as
// many as gather within settleDelay with one sync, then settles their
// records. Stop beginning (settleNow) ends the wait. It returns when
// settleCh is closed and drained.
func (d *Dispatcher) settler() {
	defer close(d.settlerDone)
	var batch []settleItem
	for it := range d.settleCh {
		batch = append(batch[:0], it)
		wait := d.clock.After(settleDelay)
	gather:
		for len(batch) < settleBatch {
			select {
			case it, ok := <-d.settleCh:
				if !ok {
					break gather
				}
				batch = append(batch, it)
			case <-wait:
				break gather
			case <-d.settleNow:
				break gather
			}
		}
		// Whatever came meanwhile shares the sync.
	more:
		for {
			select {
			case it, ok := <-d.settleCh:
				if !ok {
					break more
				}
				batch = append(batch, it)
			default:
				break more
			}
		}
		synced := d.syncResults(len(batch))
		for _, it := range batch {
			if synced {
				it.rec.Settle(it.inv)
			}
			d.settled.Done()
		}
	}
}

// syncResults syncs the store, retrying with backoff until it succeeds or
// Stop gives up on it (false). Until then the records stay: a crash
// reattaches the attempts, whose results the records hold.
func (d *Dispatcher) syncResults(n int) bool {
	return d.retry(d.settleAbort, func() error { return d.deferred.Sync(context.Background()) }, func(err error) {
		d.log.Error().Err(err).Int("results", n).Msg("cannot sync recorded results")
	}) == nil
}

// retry calls fn until it succeeds, with a backoff from 100ms doubling up
// to 30s, and logs each failure with failed; it gives up, returning the
// last error, once abort is closed.
func (d *Dispatcher) retry(abort <-chan struct{}, fn func() error, failed func(error)) error {
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		failed(err)
		select {
		case <-abort:
			return err
		case <-d.clock.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// recorderOf returns action as an engine.AttemptRecorder when it keeps
// records of its attempts, else nil.
func recorderOf(action engine.Action) engine.AttemptRecorder {
	if r, ok := action.(engine.AttemptRecorder); ok && r.Records() {
		return r
	}
	return nil
}
