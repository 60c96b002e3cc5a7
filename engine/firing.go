package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// RenderedAction is one action of a firing with its arguments rendered.
type RenderedAction struct {
	Type string         `json:"action"`
	Args map[string]any `json:"args,omitempty"`
	// Error is set when the arguments could not be rendered.
	Error string `json:"error,omitempty"`
}

// flush stores the firings collected while batching.
func (e *Engine) flush(ctx context.Context) error {
	if len(e.pending) == 0 || e.opts.Dispatcher == nil {
		return nil
	}
	fs := e.pending
	e.pending = nil
	bd, ok := e.opts.Dispatcher.(BatchDispatcher)
	if !ok {
		for _, f := range fs {
			if err := e.submit(ctx, f); err != nil {
				return err
			}
		}
		return nil
	}
	return e.retry(ctx, fmt.Sprintf("%d firings", len(fs)), fs, func() error { return bd.SubmitAll(ctx, fs) })
}

// fire fires rule r at `at`. A timer's firing (a not_all timeout, the end of
// a once_after window, found due by Tick or by the record being processed)
// takes its ID from the timer, not from the record.
func (e *Engine) fire(ctx context.Context, s *rsState, r *ruleState, trigger *item, bound map[string]*item, at time.Time, timer bool) error {
	rule := r.rule
	f := &Firing{Time: at, Ruleset: s.rs.Name, Rule: rule.Name, Redelivered: e.rec.Redelivered || e.evaluating.redelivered}
	names := make([]string, 0, len(bound))
	for k := range bound {
		names = append(names, k)
	}
	sort.Strings(names)
	events := make(map[string]Event, len(bound))
	var hosts []string
	seen := map[string]bool{}
	for _, k := range names {
		it := bound[k]
		events[k] = it.data
		if it.id != "" {
			f.EventIDs = append(f.EventIDs, it.id)
		}
		for _, h := range EventHosts(it.data) {
			if !seen[h] {
				seen[h] = true
				hosts = append(hosts, h)
			}
		}
	}
	f.Events = events
	var triggerData map[string]any
	if trigger != nil {
		triggerData = trigger.data
	}
	st := r.stats
	st.Fired++
	st.LastFired = at
	// Replay computes the ID too: the items this firing creates derive
	// their IDs from it.
	f.ID = e.firingID(s, rule, at, f.EventIDs, timer)
	if timer && !at.After(e.liveSince) {
		// Due before this engine went live: it may have fired in an
		// earlier run, under the same ID.
		f.Redelivered = true
	}
	// What this firing's set_fact and post_event queue is caused by it.
	outer, outerCreated := e.queuing, e.created
	e.queuing, e.created = cause{id: f.ID, redelivered: f.Redelivered}, 0
	defer func() { e.queuing, e.created = outer, outerCreated }()
	if e.replaying {
		// Rebuild state only: the engine's own state actions run, nothing
		// leaves the engine.
		e.st.bind(nil, nil, nil)
		for _, a := range rule.Actions {
			switch a.Type {
			case ActionSetFact, ActionRetractFact, ActionPostEvent:
				e.st.bind(triggerDataOf(trigger), itemsData(bound), e.vars(s))
				if v, err := a.Args.render(e.st); err == nil {
					args, _ := v.(map[string]any)
					e.builtin(s, rule, a.Type, args, triggerDataOf(trigger), events)
				}
			}
		}
		return nil
	}
	ev := e.opts.Log.Info().Str("ruleset", s.rs.Name).Str("rule", rule.Name).Str("firing_id", f.ID).Strs("event_ids", f.EventIDs)
	if trigger != nil && trigger.id != "" {
		ev = ev.Str("event_id", trigger.id)
	}
	ev.Msg("rule fired")

	rendered := make([]RenderedAction, 0, len(rule.Actions))
	single := (rule.Kind == Single || rule.Kind == Any) && len(events) == 1
	for i, a := range rule.Actions {
		// var_root replaces the events this action and its templates see.
		actEvent, actEvents := ApplyVarRoot(a.VarRoot, single, triggerData, events)
		if a.VarRoot != nil {
			e.st.bind(actEvent, toAnyMap(actEvents), e.vars(s))
		} else {
			e.st.bind(triggerData, itemsData(bound), e.vars(s))
		}
		v, refs, err := a.Args.renderRefs(e.st)
		args, _ := v.(map[string]any)
		if args == nil {
			args = map[string]any{}
		}
		ra := RenderedAction{Type: a.Type, Args: args}
		if err != nil {
			ra.Error = err.Error()
			e.opts.Log.Error().Err(err).Str("ruleset", s.rs.Name).Str("rule", rule.Name).Str("action", a.Type).Msg("action arguments did not render")
		}
		rendered = append(rendered, ra)
		if IsBuiltinAction(a.Type) {
			if err == nil {
				e.builtin(s, rule, a.Type, args, actEvent, actEvents)
			}
			continue
		}
		inv := &Invocation{
			ID: fmt.Sprintf("%s-%d", f.ID, i), FiringID: f.ID, Index: i, Action: a.Type,
			Ruleset: s.rs.Name, Rule: rule.Name, Args: args, SecretRefs: refs, RefsListed: true, Event: actEvent, Events: actEvents,
			Hosts: hosts, HostPattern: s.rs.Hosts, Policy: a.Policy, Sequential: s.rs.Sequential, Created: at,
			Stream: e.opts.Stream,
		}
		if err != nil {
			inv.RenderError = err.Error()
		}
		if a.Lock != nil {
			lv, lerr := a.Lock.render(e.st)
			if lerr == nil {
				inv.Policy.Lock = Text(lv)
			} else if inv.RenderError == "" {
				inv.RenderError = "lock: " + lerr.Error()
			}
		}
		f.Invocations = append(f.Invocations, inv)
	}
	if e.opts.OnFiring != nil {
		e.opts.OnFiring(f, rendered)
	}
	if e.opts.Dispatcher == nil {
		return nil
	}
	if e.batching {
		e.pending = append(e.pending, f)
		return nil
	}
	return e.submit(ctx, f)
}

func triggerDataOf(it *item) map[string]any {
	if it == nil {
		return nil
	}
	return it.data
}

// submit retries a failing store until ctx ends: a firing that is not stored
// must not be lost, and the journal record stays un-done meanwhile.
func (e *Engine) submit(ctx context.Context, f *Firing) error {
	return e.retry(ctx, "firing "+f.ID, []*Firing{f}, func() error { return e.opts.Dispatcher.Submit(ctx, f) })
}

// retry calls store, which stores fs, until it succeeds or ctx ends. After a
// failure the firings are marked Redelivered: whether a failed call stored
// anything is not known.
func (e *Engine) retry(ctx context.Context, what string, fs []*Firing, store func() error) error {
	delay := 50 * time.Millisecond
	for {
		err := store()
		if err == nil {
			return nil
		}
		for _, f := range fs {
			f.Redelivered = true
		}
		e.opts.Log.Error().Err(err).Str("what", what).Msg("cannot store firing; retrying")
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 5*time.Second {
			delay *= 2
		}
	}
}
