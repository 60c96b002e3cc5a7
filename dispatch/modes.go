package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// Modes
//
// A rule's mode (Config.Mode, stamped on each invocation at submit) decides
// what happens to its invocations:
//
//   - auto: they run.
//   - shadow: each is recorded as shadowed, with its rendered arguments,
//     and never runs; later invocations of the firing are still recorded.
//   - approve: each waits, durably, as pending_approval until Decide
//     approves or rejects it or its approval deadline passes (then its
//     on_timeout decides). A waiting invocation holds no slot, no lock and
//     does not hold up its ruleset's other firings; an approved one is
//     scheduled again and runs like an auto one (its lock is taken then).
//     The firing's later invocations wait behind it.

// Errors of Decide.
var (
	ErrNotPending = errors.New("no invocation with that id is waiting for approval")
	ErrDecision   = errors.New("decision must be approved or rejected")
)

// awaitingApproval is an approve-mode invocation waiting for its decision.
type awaitingApproval struct {
	job    *job
	st     *engine.InvocationState
	cancel chan struct{} // closed when decided: stops the expiry timer
	// stored is closed once park has recorded the pending state (ok
	// says whether it could): a decision waits for it, so that it is
	// never overwritten by the pending state, and an invocation the
	// audit shows pending can always be decided.
	stored chan struct{}
	ok     bool
}

// stampModes sets each invocation's mode from Config.Mode.
func (d *Dispatcher) stampModes(fs []*engine.Firing) {
	if d.cfg.Mode == nil {
		return
	}
	for _, f := range fs {
		for _, inv := range f.Invocations {
			mode, pol := d.cfg.Mode(inv.Ruleset, inv.Rule)
			inv.Mode, inv.Approval = "", nil
			switch mode {
			case engine.ModeShadow:
				inv.Mode = mode
			case engine.ModeApprove:
				inv.Mode = mode
				if pol == nil {
					pol = &engine.ApprovalPolicy{Timeout: engine.DefaultApprovalTimeout, OnTimeout: engine.DecisionRejected}
				}
				p := *pol
				inv.Approval = &p
			}
		}
	}
}

// shadow records a shadow-mode invocation as shadowed.
func (d *Dispatcher) shadow(st *engine.InvocationState) {
	st.Status = engine.StatusShadowed
	st.NextAttempt = time.Time{}
	log := d.invLog(st.Invocation)
	log.Info().Msg("shadow mode: action recorded, not run")
	_ = d.persist(st)
}

// needsApproval reports whether st must wait for a decision before it runs.
func needsApproval(st *engine.InvocationState) bool {
	return st.Invocation.Mode == engine.ModeApprove &&
		(st.Approval == nil || st.Approval.Decision == "")
}

// park records st as pending approval (once) and keeps it until a
// decision, which reschedules j; its deadline decides by itself. It
// reports whether it took j out of the active set (false: stopping; j
// stays active until runJob returns). A pending state read from the store
// is read again first, under decideMu: when a decision came since (a
// redelivered firing's job read it before), park returns what the store
// holds now, for j to go on with, and parks nothing.
func (d *Dispatcher) park(j *job, st *engine.InvocationState) (bool, *engine.InvocationState) {
	record := st.Status != engine.StatusPendingApproval || st.Approval == nil
	if !record && d.light() {
		d.decideMu.Lock()
		defer d.decideMu.Unlock()
		now := d.load(st.Invocation.ID)
		if now == nil {
			return false, nil // stopping, or gone from the store (logged)
		}
		if now.Status != engine.StatusPendingApproval || !needsApproval(now) {
			return false, now
		}
		st = now
	}
	if record {
		now := d.clock.Now()
		timeout := engine.DefaultApprovalTimeout
		if pol := st.Invocation.Approval; pol != nil && pol.Timeout > 0 {
			timeout = pol.Timeout
		}
		st.Status = engine.StatusPendingApproval
		st.Approval = &engine.Approval{Requested: now, Deadline: now.Add(timeout)}
	}
	// Waiting before the pending state is stored: whoever reads it there
	// may decide at once (decide waits for stored).
	p := &awaitingApproval{job: j, st: st, cancel: make(chan struct{}), stored: make(chan struct{}), ok: true}
	d.mu.Lock()
	if _, ok := d.awaiting[st.Invocation.ID]; ok {
		// A firing submitted again (redelivered) while it waits: the
		// wait there is the same request, and its decision reschedules
		// the job parked with it. A second wait would notify again and
		// replace the first, whose expiry timer would run on. This job
		// ends here, and leaves the active set now, under the lock the
		// decision schedules under: a decision coming before runJob
		// returned would find the firing active and skip the job that
		// waits for it.
		delete(d.active, j.firingID)
		d.mu.Unlock()
		return true, nil
	}
	if d.awaiting == nil {
		d.awaiting = map[string]*awaitingApproval{}
	}
	d.awaiting[st.Invocation.ID] = p
	delete(d.active, j.firingID)
	d.mu.Unlock()
	if record {
		log := d.invLog(st.Invocation)
		log.Info().Time("deadline", st.Approval.Deadline).Msg("approve mode: waiting for approval")
		if err := d.persist(st); err != nil {
			// Stopping: the next start parks it again.
			d.unpark(st.Invocation.ID)
			p.ok = false
			close(p.stored)
			return false, nil
		}
	}
	if d.cfg.OnApprovalRequested != nil {
		// A new request, or one found waiting at Start: whether the
		// earlier process notified anyone is not recorded (a crash may
		// have come first), so it is notified again. Before stored is
		// closed, so before any decision of it.
		d.cfg.OnApprovalRequested(snapshot(st))
	}
	close(p.stored)
	wait := st.Approval.Deadline.Sub(d.clock.Now())
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		select {
		case <-p.cancel:
		case <-d.quit:
		case <-d.clock.After(max(wait, 0)):
			onTimeout := engine.DecisionRejected
			if pol := st.Invocation.Approval; pol != nil && pol.OnTimeout != "" {
				onTimeout = pol.OnTimeout
			}
			_, err := d.decide(st.Invocation.ID, onTimeout, "timeout", "approval timed out", true)
			if err != nil && !errors.Is(err, ErrNotPending) {
				log := d.invLog(st.Invocation)
				log.Error().Err(err).Msg("cannot record approval expiry")
			}
		}
	}()
	return true, nil
}

// Pending returns the invocations waiting for approval, oldest first.
func (d *Dispatcher) Pending() []*engine.InvocationState {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*engine.InvocationState, 0, len(d.awaiting))
	for _, p := range d.awaiting {
		select {
		case <-p.stored: // recorded: park no longer writes p.st
			out = append(out, snapshot(p.st))
		default: // listed once its pending state is stored
		}
	}
	slices.SortFunc(out, func(a, b *engine.InvocationState) int {
		return a.Approval.Requested.Compare(b.Approval.Requested)
	})
	return out
}

// Decide approves or rejects a pending invocation on behalf of by (who
// decided, for the audit trail) and returns its new state. An approved
// invocation is scheduled to run; a rejected one is final. ErrNotPending:
// no invocation with that id waits (unknown, or already decided).
func (d *Dispatcher) Decide(ctx context.Context, id, decision, by, reason string) (*engine.InvocationState, error) {
	if decision != engine.DecisionApproved && decision != engine.DecisionRejected {
		return nil, fmt.Errorf("%w, got %q", ErrDecision, decision)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return d.decide(id, decision, by, reason, false)
}

func (d *Dispatcher) decide(id, decision, by, reason string, expired bool) (*engine.InvocationState, error) {
	d.decideMu.Lock()
	defer d.decideMu.Unlock()
	p := d.unpark(id)
	if p != nil {
		<-p.stored
	}
	if p == nil || !p.ok {
		return nil, fmt.Errorf("%w: %q", ErrNotPending, id)
	}
	st := p.st
	st.Approval.Decision = decision
	st.Approval.By = by
	st.Approval.At = d.clock.Now()
	st.Approval.Reason = reason
	st.Approval.Expired = expired
	if decision == engine.DecisionRejected {
		st.Status = engine.StatusRejected
	} else {
		st.Status = engine.StatusQueued
	}
	log := d.invLog(st.Invocation)
	log.Info().Str("decision", decision).Str("by", by).Bool("expired", expired).Msg("approval decided")
	if err := d.persist(st); err != nil {
		return nil, err
	}
	cp := snapshot(st)
	d.mu.Lock()
	if d.state == stateStarted {
		d.scheduleLocked(p.job)
	}
	d.mu.Unlock()
	return cp, nil
}

// unpark takes the invocation id out of those waiting for approval and
// stops its expiry timer; nil when it does not wait (any more).
func (d *Dispatcher) unpark(id string) *awaitingApproval {
	d.mu.Lock()
	p, ok := d.awaiting[id]
	delete(d.awaiting, id)
	d.mu.Unlock()
	if !ok {
		return nil
	}
	close(p.cancel)
	return p
}

// ModesChanged applies a reload's modes to the waiting invocations: those
// of a rule now in auto mode are approved (by "reload") and run, those of
// a rule now in shadow mode are cancelled. Call it after Config.Mode
// answers with the new rulebook.
func (d *Dispatcher) ModesChanged() {
	if d.cfg.Mode == nil {
		return
	}
	d.mu.Lock()
	var auto, shadow []*awaitingApproval
	for _, p := range d.awaiting {
		switch mode, _ := d.cfg.Mode(p.st.Invocation.Ruleset, p.st.Invocation.Rule); mode {
		case engine.ModeApprove:
		case engine.ModeShadow:
			shadow = append(shadow, p)
		default:
			auto = append(auto, p)
		}
	}
	d.mu.Unlock()
	for _, p := range auto {
		if _, err := d.decide(p.st.Invocation.ID, engine.DecisionApproved, "reload", "rule switched to auto mode", false); err != nil && !errors.Is(err, ErrNotPending) {
			d.log.Error().Err(err).Msg("cannot run an approval-pending invocation switched to auto")
		}
	}
	for _, p := range shadow {
		d.cancelApproval(p)
	}
}

// cancelApproval records p's invocation cancelled, its rule now in shadow
// mode, unless decided meanwhile. Like decide it holds decideMu from
// taking the wait until the cancellation is stored: a park of the pending
// state read from the store before (a redelivered firing's) then reads
// the cancellation, and does not wait again for it.
func (d *Dispatcher) cancelApproval(p *awaitingApproval) {
	d.decideMu.Lock()
	defer d.decideMu.Unlock()
	if d.unpark(p.st.Invocation.ID) == nil {
		return // decided meanwhile
	}
	if <-p.stored; !p.ok {
		return // its pending state could not be recorded
	}
	st := p.st
	st.Status = engine.StatusCancelled
	st.Approval.At = d.clock.Now()
	st.Approval.By = "reload"
	st.Approval.Reason = "rule switched to shadow mode"
	log := d.invLog(st.Invocation)
	log.Info().Msg("approval cancelled: rule switched to shadow mode")
	_ = d.persist(st)
}
