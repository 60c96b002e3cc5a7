package engine

import (
	"cmp"
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultEventsTTL is how long partial matches are kept when neither the rule
// nor the ruleset says.
const DefaultEventsTTL = 2 * time.Hour

// Options configure an Engine.
type Options struct {
	Clock Clock
	// Dispatcher receives every firing (also those with engine actions only,
	// for the audit trail). Nil: firings are only reported to OnFiring.
	Dispatcher Dispatcher
	// Stdout receives debug and print_event output (default os.Stdout).
	Stdout io.Writer
	Log    zerolog.Logger
	// OnFiring, when set, sees every firing with all its rendered actions,
	// the engine's own included, before it is submitted.
	OnFiring func(f *Firing, actions []RenderedAction)
	// OnShutdown is called when a shutdown action runs.
	OnShutdown func(ShutdownRequest)
	// MaxCascade bounds how many items (events, facts) one input may
	// produce through post_event and set_fact, so a rule that posts what it
	// matches cannot loop forever. Default 10000.
	MaxCascade int
	// Stream names what this engine evaluates when a process runs several
	// (a bus partition, "topic/3"); it is stamped on every invocation
	// (Invocation.Stream), so an action's feedback returns to this engine.
	Stream string
}

// RenderedAction is one action of a firing with its arguments rendered.
type RenderedAction struct {
	Type string         `json:"action"`
	Args map[string]any `json:"args,omitempty"`
	// Error is set when the arguments could not be rendered.
	Error string `json:"error,omitempty"`
}

// ShutdownRequest is what a shutdown action asked for.
type ShutdownRequest struct {
	Message string
	Delay   time.Duration
	// Now skips draining running actions (kind: now).
	Now     bool
	Ruleset string
	Rule    string
}

// Engine evaluates rulesets over a stream of events and keeps their state:
// facts, partial matches of multi-event rules, throttle windows. All methods
// are safe for concurrent use; evaluation itself is serialised.
type Engine struct {
	mu       sync.Mutex
	opts     Options
	rulesets []*rsState
	byName   map[string]*rsState
	st       *evalState
	queue    []queued
	// rec is the journal record being processed, zero in Tick and Inject:
	// firing IDs derive from its Stream and Seq, firings inherit its
	// Redelivered, and a replayed record's Accepted is the time.
	rec   Record
	fired int
	// queuing is the firing whose built-in actions run now: the items they
	// queue carry it. evaluating is the cause of the item being evaluated,
	// and causeFired counts the firings of each cause since begin. created
	// counts the events and facts queuing (or the record) created, for
	// their IDs (itemID).
	queuing, evaluating cause
	causeFired          map[string]int
	created             int
	// replaying suppresses firings' effects outside the engine (dispatch,
	// output, shutdown) while state is rebuilt from history.
	replaying bool
	// liveSince is when this engine began processing live (SetLiveSince,
	// or its creation): a timer due at or before it may have fired in an
	// earlier run, so its firing is marked Redelivered.
	liveSince time.Time
	stats     map[string]*RuleStats
	// current names the rule being evaluated, for the debug line of a
	// condition that failed at run time.
	current string
	// scratch is the map of matches bound reuses, admBuf and candBuf the
	// slices of joinCandidates, factBuf factCandidates', victimBuf
	// consume's.
	scratch   map[string]any
	admBuf    []bool
	candBuf   []*partial
	factBuf   []*item
	victimBuf []*partial
	// factChanges are the fact changes since TakeFactChanges, signalled on
	// factsChanged, kept from RestoreFacts on (trackFacts: a Runner stores
	// them); factOrder numbers the next fact (facts.go).
	factChanges  []FactChange
	factsChanged chan struct{}
	factOrder    uint64
	trackFacts   bool
	// batching collects firings in pending instead of submitting each
	// (ProcessBatch).
	batching bool
	pending  []*Firing
}

// RuleStats counts a rule's activity.
type RuleStats struct {
	Ruleset string `json:"ruleset"`
	Rule    string `json:"rule"`
	// Evaluated counts the events and facts the rule was tested against.
	Evaluated int64     `json:"evaluated"`
	Fired     int64     `json:"fired"`
	LastFired time.Time `json:"last_fired,omitempty"`
}

type item struct {
	id   string
	data map[string]any
	fact bool
	// holders are the partial matches (of any rule) that hold the item,
	// when it is an event: consuming a completed match removes those of
	// its rule, found here rather than by a walk over the rule's partials.
	holders []*partial
	// order numbers a fact among its ruleset's (FactChange.Order).
	order uint64
}

type queued struct {
	rs *rsState
	it *item
	// cause is the firing whose set_fact or post_event queued the item
	// (empty for the record's own event): firings it causes take their IDs
	// from it, and its Redelivered.
	cause cause
	// negation, when set, is a rule whose condition is only `not
	// defined(fact.PATH)`: it is the retracted fact it that is queued, to
	// fire that rule if no fact carries PATH any more (retractFact).
	negation *ruleState
}

// cause is a firing that queued items for evaluation.
type cause struct {
	id          string
	redelivered bool
}

type rsState struct {
	rs    *Ruleset
	facts []*item
	// factIDs counts the facts by meta.uuid: a fact set again under an ID
	// it already has (a timer's set_fact firing again after a restart that
	// restored its fact) is not doubled.
	factIDs map[string]int
	// factIndexes find facts by value (joins.go), built on demand and
	// dropped whenever facts change.
	factIndexes map[string]*factIndex
	rules       []*ruleState
}

type ruleState struct {
	rule *Rule
	// stats is the rule's counters (shared with Engine.stats).
	stats *RuleStats
	// partials are the partial matches of all, and the open windows of
	// not_all.
	partials []*partial
	groups   map[string]*throttleGroup
	// deadlines holds the expiry of every partial and the window end of
	// every group, earliest first (timers.go).
	deadlines deadlines
	// open counts, per condition, the partials whose slot for it is
	// empty: an item no such slot admits joins no partial, and the walk
	// over them is skipped.
	open []int
	// joins index the partials by the value a condition joins on
	// (joins.go); seq numbers the partials in the order they are added.
	joins []*joinIndex
	seq   uint64
	// loose holds, per slot, the partials with that slot empty that no
	// join index files by value for it (joins.go).
	loose []map[*partial]struct{}
	// deps lists, per condition, the slots whose matches it reads: it is
	// tested once they are all filled (joins.go, place).
	deps [][]int
	// factAdm caches admitted for the ruleset's facts (fillFromFacts);
	// cleared when facts are retracted or restored.
	factAdm map[*item][]bool
}

type partial struct {
	slots []*item
	dl    deadline   // dl.at: when it expires
	seq   uint64     // order among its rule's partials (ruleState.seq)
	owner *ruleState // the rule it is a partial match of
}

type throttleGroup struct {
	dl      deadline // dl.at: when its window ends
	trigger *item
	bound   map[string]*item
	// times are the matches of a sliding accumulate_within window, count
	// those of a fixed one.
	times []time.Time
	count int
	// members are the groups seen in a once_after window of the whole
	// rule, in the order they were first seen, each with its newest
	// match; byKey finds them by group key.
	members []*throttleMember
	byKey   map[string]*throttleMember
}

// throttleMember is one group's match in a once_after window of the rule.
type throttleMember struct {
	trigger *item
	bound   map[string]*item
}

// New builds an engine for the compiled rulesets.
func New(rulesets []*Ruleset, opts Options) *Engine {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.MaxCascade <= 0 {
		opts.MaxCascade = 10000
	}
	e := &Engine{opts: opts, byName: map[string]*rsState{}, stats: map[string]*RuleStats{}, liveSince: opts.Clock.Now(),
		factsChanged: make(chan struct{}, 1)}
	e.st = newEvalState(func(err error) {
		// A type error (a string compared with a number) is no match; it
		// is not worth more than a debug line.
		e.opts.Log.Debug().Str("rule", e.current).Err(err).Msg("condition did not evaluate; no match")
	})
	for _, rs := range rulesets {
		s := newRulesetState(rs)
		e.rulesets = append(e.rulesets, s)
		e.byName[rs.Name] = s
		for _, r := range rs.Rules {
			e.stats[rs.Name+"\x00"+r.Name] = &RuleStats{Ruleset: rs.Name, Rule: r.Name}
		}
	}
	e.linkStats()
	return e
}

// linkStats points every rule state at its counters.
func (e *Engine) linkStats() {
	for _, s := range e.rulesets {
		for _, r := range s.rules {
			r.stats = e.stats[s.rs.Name+"\x00"+r.rule.Name]
		}
	}
}

func newRulesetState(rs *Ruleset) *rsState {
	s := &rsState{rs: rs, factIDs: map[string]int{}}
	for _, r := range rs.Rules {
		rs := &ruleState{rule: r, groups: map[string]*throttleGroup{}, open: make([]int, len(r.Conditions)), joins: newJoins(r), deps: newDeps(r)}
		for range r.Conditions {
			rs.loose = append(rs.loose, map[*partial]struct{}{})
		}
		s.rules = append(s.rules, rs)
	}
	return s
}

// ReloadSummary says what Replace kept.
type ReloadSummary struct {
	Rulesets    int `json:"rulesets"`
	Rules       int `json:"rules"`
	KeptRules   int `json:"kept_rules"`
	ResetRules  int `json:"reset_rules"`
	KeptFacts   int `json:"kept_facts"`
	DroppedSets int `json:"dropped_rulesets"`
}

// CompareRulesets says what replacing the rulesets prev by next keeps: the
// summary Replace returns, but for KeptFacts, which only an engine holds.
// A rule is kept when its ruleset keeps its name and a rule of that
// ruleset had the same name and fingerprint.
func CompareRulesets(prev, next []*Ruleset) ReloadSummary {
	var sum ReloadSummary
	byName := make(map[string]*Ruleset, len(prev))
	for _, rs := range prev {
		byName[rs.Name] = rs
	}
	kept := make(map[string]bool, len(next))
	for _, rs := range next {
		sum.Rulesets++
		sum.Rules += len(rs.Rules)
		kept[rs.Name] = true
		if old := byName[rs.Name]; old != nil {
			for _, r := range rs.Rules {
				for _, pr := range old.Rules {
					if sameRule(pr, r) {
						sum.KeptRules++
						break
					}
				}
			}
		}
	}
	for _, rs := range prev {
		if !kept[rs.Name] {
			sum.DroppedSets++
		}
	}
	sum.ResetRules = sum.Rules - sum.KeptRules
	return sum
}

// sameRule reports whether next is prev unchanged, so its state carries
// over a reload.
func sameRule(prev, next *Rule) bool {
	return prev.Name == next.Name && prev.Fingerprint != "" && prev.Fingerprint == next.Fingerprint
}

// Replace swaps in new rulesets atomically: events processed before it see
// the old rules, events after it the new ones. Facts of rulesets that keep
// their name are kept, and so is the state (partial matches, throttle
// windows, counters) of every rule whose name and fingerprint are unchanged;
// changed and new rules start empty.
func (e *Engine) Replace(rulesets []*Ruleset) ReloadSummary {
	e.mu.Lock()
	defer e.mu.Unlock()
	prev := make([]*Ruleset, len(e.rulesets))
	for i, s := range e.rulesets {
		prev[i] = s.rs
	}
	sum := CompareRulesets(prev, rulesets)
	old := e.byName
	e.rulesets = nil
	e.byName = map[string]*rsState{}
	stats := map[string]*RuleStats{}
	for _, rs := range rulesets {
		s := newRulesetState(rs)
		if prev := old[rs.Name]; prev != nil {
			s.facts, s.factIDs = prev.facts, prev.factIDs
			sum.KeptFacts += len(prev.facts)
			for i, r := range s.rules {
				for _, pr := range prev.rules {
					if sameRule(pr.rule, r.rule) {
						pr.rule = r.rule
						pr.factAdm = nil // vars may differ
						s.rules[i] = pr
						break
					}
				}
			}
		}
		for _, r := range rs.Rules {
			key := rs.Name + "\x00" + r.Name
			if st := e.stats[key]; st != nil {
				stats[key] = st
			} else {
				stats[key] = &RuleStats{Ruleset: rs.Name, Rule: r.Name}
			}
		}
		e.rulesets = append(e.rulesets, s)
		e.byName[rs.Name] = s
	}
	for name, prev := range old {
		if e.byName[name] == nil {
			for _, f := range prev.facts { // its facts go with it
				e.logFact(prev, f, false)
			}
		}
	}
	e.stats = stats
	e.linkStats()
	return sum
}

// Rulesets returns the compiled rulesets.
func (e *Engine) Rulesets() []*Ruleset {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Ruleset, len(e.rulesets))
	for i, s := range e.rulesets {
		out[i] = s.rs
	}
	return out
}

// Process evaluates one journal record in its ruleset, after firing whatever
// timers are due. It returns an error only when a firing could not be
// submitted before ctx ended; the record must then not be marked done.
func (e *Engine) Process(ctx context.Context, rec Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.process(ctx, rec)
}

// ProcessBatch processes records in order like Process, but stores the
// firings of the whole batch together before it returns (one durable write
// when the Dispatcher is a BatchDispatcher). The records may be marked done
// once it returned nil.
func (e *Engine) ProcessBatch(ctx context.Context, recs []Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batching = true
	defer func() { e.batching = false; e.pending = nil }()
	for _, rec := range recs {
		if err := e.process(ctx, rec); err != nil {
			return err
		}
	}
	return e.flush(ctx)
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

// Replay evaluates a record that was already processed elsewhere (a Kafka
// partition that moved to this process) to rebuild rule state: partial
// matches, throttle windows and facts are updated, but firings are neither
// dispatched nor reported, and debug, print_event and shutdown do nothing.
// Time is the record's acceptance time, so windows line up with history.
func (e *Engine) Replay(ctx context.Context, rec Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.replaying = true
	defer func() { e.replaying = false }()
	return e.process(ctx, rec)
}

func (e *Engine) process(ctx context.Context, rec Record) error {
	e.begin(rec)
	if err := e.expire(ctx); err != nil {
		return err
	}
	s := e.byName[rec.Source.Ruleset]
	if s == nil {
		e.opts.Log.Warn().Str("ruleset", rec.Source.Ruleset).Str("event_id", EventID(rec.Event)).Msg("event for unknown ruleset dropped")
		return nil
	}
	if rec.Source.Type == FeedbackSourceType {
		// An action's feedback, journaled: its facts and events enter the
		// ruleset as Inject would add them, but in journal order, and again
		// when the journal is replayed after a restart.
		facts, events, err := feedbackOf(rec.Event)
		if err != nil {
			e.opts.Log.Error().Err(err).Str("ruleset", s.rs.Name).Uint64("seq", rec.Seq).Msg("malformed action feedback record dropped")
			return nil
		}
		for _, f := range facts {
			e.assertFact(s, f)
		}
		for _, ev := range events {
			e.postEvent(s, ev, "feedback")
		}
		return e.drain(ctx)
	}
	e.queue = append(e.queue, queued{rs: s, it: &item{id: EventID(rec.Event), data: rec.Event}})
	return e.drain(ctx)
}

// begin starts the evaluation of rec (a zero Record for Tick and Inject).
func (e *Engine) begin(rec Record) {
	e.rec = rec
	e.fired = 0
	e.created = 0
	clear(e.causeFired)
}

// itemID gives the meta.uuid of an event or fact the engine creates
// (post_event, set_fact, journaled feedback) without one. It derives from
// the firing that creates it, or from the record, and its rank, so the
// replay after a restart recreates the same IDs, and timers over partial
// matches of such items fire under the same firing IDs as before. Items of
// Inject, which has neither, get random IDs.
func (e *Engine) itemID() string {
	e.created++
	switch {
	case e.queuing.id != "":
		return derivedID(fmt.Sprintf("item\x00%s\x00%d", e.queuing.id, e.created))
	case e.rec.Seq != 0:
		return derivedID(fmt.Sprintf("item\x00%s\x00%d\x00%d", e.rec.Stream, e.rec.Seq, e.created))
	}
	return NewID()
}

// Tick fires the timers due at the clock's current time (not_all timeouts,
// once_after windows) and drops expired state.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.begin(Record{})
	if err := e.expire(ctx); err != nil {
		return err
	}
	return e.drain(ctx)
}

// SetLiveSince says when the engine began processing live, after rebuilding
// its state from history (Replay): a timer due at or before t may have
// fired before a restart, so its firing is marked Redelivered and stored
// only if its ID is not stored yet. New sets it to the clock's time.
func (e *Engine) SetLiveSince(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.liveSince = t
}

// AdvanceTo moves a fake clock forward to `to`, stopping at each deadline on
// the way so timers fire in time order at their own time, as they would on
// the wall clock. It is how rulebook tests run in virtual time.
func (e *Engine) AdvanceTo(ctx context.Context, clock *FakeClock, to time.Time) error {
	for {
		d, ok := e.NextDeadline()
		if !ok || d.After(to) {
			break
		}
		if d.After(clock.Now()) {
			clock.Set(d)
		}
		if err := e.Tick(ctx); err != nil {
			return err
		}
		if next, ok := e.NextDeadline(); ok && !next.After(d) {
			break // nothing moved; do not spin
		}
	}
	if to.After(clock.Now()) {
		clock.Set(to)
	}
	return nil
}

// NextDeadline returns the earliest time at which Tick has something to do.
func (e *Engine) NextDeadline() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, s := range e.rulesets {
		for _, r := range s.rules {
			consider(r.next())
		}
	}
	return next, !next.IsZero()
}

// Inject adds facts and events to a ruleset as set_fact and post_event would
// (an action's feedback, an admin's test event) and evaluates them.
func (e *Engine) Inject(ctx context.Context, ruleset string, facts, events []map[string]any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.byName[ruleset]
	if s == nil {
		return fmt.Errorf("no ruleset named %q", ruleset)
	}
	e.begin(Record{})
	for _, f := range facts {
		e.assertFact(s, f)
	}
	for _, ev := range events {
		e.postEvent(s, ev, "inject")
	}
	return e.drain(ctx)
}

// Facts returns a copy of a ruleset's facts.
func (e *Engine) Facts(ruleset string) []map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.byName[ruleset]
	if s == nil {
		return nil
	}
	out := make([]map[string]any, len(s.facts))
	for i, f := range s.facts {
		out[i], _ = deepCopy(f.data).(map[string]any)
	}
	return out
}

// Stats returns every rule's counters, in rulebook order.
func (e *Engine) Stats() []RuleStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []RuleStats
	for _, s := range e.rulesets {
		for _, r := range s.rs.Rules {
			out = append(out, *e.stats[s.rs.Name+"\x00"+r.Name])
		}
	}
	return out
}

func (e *Engine) drain(ctx context.Context) error {
	n := 0
	for len(e.queue) > 0 {
		q := e.queue[0]
		e.queue[0] = queued{}
		e.queue = e.queue[1:]
		n++
		if n > e.opts.MaxCascade {
			e.opts.Log.Error().Str("ruleset", q.rs.rs.Name).Int("limit", e.opts.MaxCascade).
				Msg("post_event/set_fact cascade over the limit; the rest is dropped")
			e.queue = nil
			return nil
		}
		e.evaluating = q.cause
		var err error
		if q.negation != nil {
			err = e.negationMet(ctx, q.rs, q.negation, q.it)
		} else {
			err = e.evaluate(ctx, q.rs, q.it)
		}
		e.evaluating = cause{}
		if err != nil {
			e.queue = nil
			return err
		}
	}
	e.queue = nil
	return nil
}

func (e *Engine) vars(s *rsState) map[string]any {
	if s.rs.Vars == nil {
		return map[string]any{}
	}
	return s.rs.Vars
}

func (e *Engine) test(s *rsState, c *Condition, it *item, bound map[string]any) Tri {
	e.st.bind(it.data, bound, e.vars(s))
	return c.eval(e.st)
}

// noBindings is what a condition sees as events before anything matched; it
// is never written to.
var noBindings = map[string]any{}

// evaluate runs one item through a ruleset's rules in order. A rule that
// matches in full (whether its throttle lets it fire or not) consumes the
// events it matched: unless the ruleset matches multiple rules, later
// rules do not see the item, and the partial matches of every rule that
// hold one of those events are dropped, as Event-Driven Ansible removes a
// matched event from working memory. Joining a partial match consumes
// nothing, and facts are never consumed: a fact goes through every rule.
func (e *Engine) evaluate(ctx context.Context, s *rsState, it *item) error {
	now := e.now()
	for _, r := range s.rules {
		if !r.rule.Enabled {
			continue
		}
		e.current = r.rule.Name
		r.stats.Evaluated++
		var bound map[string]*item
		switch r.rule.Kind {
		case Single:
			if e.test(s, r.rule.Conditions[0], it, noBindings) == True {
				bound = map[string]*item{r.rule.Names[0]: it}
			}
		case Any:
			for i, c := range r.rule.Conditions {
				if e.test(s, c, it, noBindings) == True {
					bound = map[string]*item{r.rule.Names[i]: it}
					break
				}
			}
		case All:
			bound = e.matchAll(s, r, it, now)
		case NotAll:
			e.matchNotAll(s, r, it, now)
		}
		if bound == nil {
			continue
		}
		if s.rs.MatchMultiple {
			e.consumeEvents(s, r, bound)
		} else {
			e.consumeEvents(s, nil, bound)
		}
		if err := e.matched(ctx, s, r, it, bound, now); err != nil {
			return err
		}
		if !s.rs.MatchMultiple && !it.fact {
			break
		}
	}
	return nil
}

// bound returns the matches p holds by name, for a condition to read. The
// map is reused by the next call.
func (e *Engine) bound(p *partial, names []string) map[string]any {
	if e.scratch == nil {
		e.scratch = make(map[string]any, len(p.slots))
	}
	clear(e.scratch)
	for i, sl := range p.slots {
		if sl != nil {
			e.scratch[names[i]] = sl.data
		}
	}
	return e.scratch
}

// admitted returns, for each condition of r, whether it admits it
// (Condition.admits): whether it may take it into some partial match. It
// uses buf when it is long enough.
func (e *Engine) admitted(s *rsState, r *ruleState, it *item, buf []bool) []bool {
	conds := r.rule.Conditions
	adm := buf[:0]
	if cap(buf) < len(conds) {
		adm = make([]bool, 0, len(conds))
	}
	e.st.bind(it.data, noBindings, e.vars(s))
	for _, c := range conds {
		adm = append(adm, c.admits(e.st))
	}
	return adm
}

// joinCandidates returns which conditions of r admit it (admitted) and,
// in the order they were opened, the partials of r it may join: none when
// no partial has an empty slot it is admitted to, those its join indexes
// find, or else all. Both slices are reused by the next call.
func (e *Engine) joinCandidates(s *rsState, r *ruleState, it *item) ([]bool, []*partial) {
	adm := e.admitted(s, r, it, e.admBuf)
	e.admBuf = adm
	if !r.joinable(adm) {
		return adm, nil
	}
	cands, ok := r.candidates(it, adm, e.candBuf)
	if !ok {
		return adm, r.partials
	}
	e.candBuf = cands
	return adm, cands
}

// joinable reports whether a partial match of r has an empty slot whose
// condition admits the item (adm, from admitted).
func (r *ruleState) joinable(adm []bool) bool {
	for i, ok := range adm {
		if ok && r.open[i] > 0 {
			return true
		}
	}
	return false
}

// setSlot fills slot i of p, counting and indexing it when p is one of
// r's partials.
func (r *ruleState) setSlot(p *partial, i int, it *item) {
	if p.dl.idx < 0 {
		p.slots[i] = it
		return
	}
	r.unindex(p)
	p.slots[i] = it
	if !it.fact {
		it.holders = append(it.holders, p)
	}
	r.open[i]--
	r.index(p)
}

// removeExpired takes the partials whose deadline passed (out of the heap
// already) out of r.partials, and sorts them in the order they were
// opened.
func (r *ruleState) removeExpired(expired []*partial) {
	slices.SortFunc(expired, func(a, b *partial) int { return cmp.Compare(a.seq, b.seq) })
	r.removePartials(expired)
}

// removePartials takes ps (some of r's partials, in seq order) out of
// r.partials and everything that counts them: a few found by their seq,
// many with one pass.
func (r *ruleState) removePartials(ps []*partial) {
	if len(ps) <= 8 {
		for _, p := range ps {
			r.removePartial(p)
		}
		return
	}
	for _, p := range ps {
		r.dropPartialDeadline(p) // out of the heap: the pass knows them so
	}
	keep := r.partials[:0]
	for _, p := range r.partials {
		if p.dl.idx >= 0 {
			keep = append(keep, p)
			continue
		}
		r.leave(p)
	}
	clear(r.partials[len(keep):])
	r.partials = keep
}

// removePartial takes p out of r.partials, found by its seq (r.partials is
// in seq order), and out of everything that counts it.
func (r *ruleState) removePartial(p *partial) {
	if i, ok := slices.BinarySearchFunc(r.partials, p.seq, func(q *partial, seq uint64) int { return cmp.Compare(q.seq, seq) }); ok {
		r.partials = slices.Delete(r.partials, i, i+1)
	}
	r.leave(p)
}

// leave takes p, leaving r.partials, out of r's deadlines, open counts and
// join indexes.
func (r *ruleState) leave(p *partial) {
	r.dropPartialDeadline(p)
	for i, sl := range p.slots {
		if sl == nil {
			r.open[i]--
		} else if !sl.fact {
			sl.holders = slices.DeleteFunc(sl.holders, func(q *partial) bool { return q == p })
		}
	}
	r.unindex(p)
}

func (p *partial) complete() bool {
	for _, sl := range p.slots {
		if sl == nil {
			return false
		}
	}
	return true
}

func (p *partial) holds(it *item) bool {
	for _, sl := range p.slots {
		if sl == it {
			return true
		}
	}
	return false
}

// fill puts it into the first empty slot of p it may take (place); adm
// (from admitted) rules out the conditions it cannot meet.
func (e *Engine) fill(s *rsState, r *ruleState, p *partial, it *item, adm []bool) bool {
	if p.holds(it) {
		return false
	}
	for i, sl := range p.slots {
		if sl == nil && adm[i] && e.place(s, r, p, i, it) {
			return true
		}
	}
	return false
}

// place puts it into the empty slot i of p when the conditions allow: the
// condition of slot i holds once the matches it reads are all in p (until
// then, in an all rule, the item waits, its condition's parts that read
// no match holding: the caller checked it is admitted), and so does every condition of a
// filled slot that reads slot i's match and now has all it reads. A
// waiting item is how an event that refers to one not yet arrived is kept.
// A fact is placed only where its condition can be tested.
func (e *Engine) place(s *rsState, r *ruleState, p *partial, i int, it *item) bool {
	if it.fact && !r.resolved(p, i, i) {
		// A fact never waits: it lasts, and fillFromFacts joins it to
		// the match once what its condition reads is there.
		return false
	}
	p.slots[i] = it
	ok := true
	for j, sl := range p.slots {
		if sl == nil || (j != i && !slices.Contains(r.deps[j], i)) {
			continue
		}
		// Only all keeps an item waiting: a not_all window opens on a
		// condition that holds.
		if r.rule.Kind == All && !r.resolved(p, j, -1) {
			continue
		}
		c := r.rule.Conditions[j]
		if c.unbound && j == i {
			continue // admitted: it holds
		}
		if e.test(s, c, sl, e.bound(p, r.rule.Names)) != True {
			ok = false
			break
		}
	}
	p.slots[i] = nil
	if ok {
		r.setSlot(p, i, it)
	}
	return ok
}

// fillFromFacts completes empty slots with current facts: facts persist, so
// they join any match that needs them.
func (e *Engine) fillFromFacts(s *rsState, r *ruleState, p *partial) {
	var buf [8]bool
	facts, ok := e.factCandidates(s, r, p)
	if !ok {
		facts = s.facts
	}
	for _, f := range facts {
		if p.complete() {
			return
		}
		adm := r.factAdm[f]
		if adm == nil {
			// Which conditions admit a fact does not change while it
			// lasts: worked out once, not for every partial match.
			adm = slices.Clone(e.admitted(s, r, f, buf[:]))
			if r.factAdm == nil {
				r.factAdm = map[*item][]bool{}
			}
			r.factAdm[f] = adm
		}
		e.fill(s, r, p, f, adm)
	}
}

// ttl is how long a partial match of a multi-event rule of rs waits for
// its other events: the rule's timeout, else the ruleset's
// default_events_ttl, else DefaultEventsTTL.
func (r *Rule) ttl(rs *Ruleset) time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	if rs.DefaultEventsTTL > 0 {
		return rs.DefaultEventsTTL
	}
	return DefaultEventsTTL
}

// StateWindow is the longest time any rule of rulesets keeps state for (a
// throttle window, a multi-event rule's wait): how much history must be
// replayed to rebuild rule state, on start or when a bus partition moves.
func StateWindow(rulesets []*Ruleset) time.Duration {
	var d time.Duration
	for _, rs := range rulesets {
		for _, r := range rs.Rules {
			if r.Throttle != nil {
				d = max(d, r.Throttle.Window)
			}
			if r.Kind == All || r.Kind == NotAll {
				d = max(d, r.ttl(rs))
			}
		}
	}
	return d
}

// matchAll joins it to the partial matches of r as a Rete join does: it
// joins every partial match it may complete (candidates, in the order they
// were opened) as a copy, the partial staying for other events, and starts
// partial matches of its own; the first copy it completes is the match,
// returned with the events it holds by name (nil: none). A partial match
// keeps the deadline of the one it copies, set by its first event.
func (e *Engine) matchAll(s *rsState, r *ruleState, it *item, now time.Time) map[string]*item {
	adm, cands := e.joinCandidates(s, r, it)
	if !slices.Contains(adm, true) {
		return nil
	}
	var forks []*partial
	var done *partial
	extend := func(base *partial, at time.Time) bool {
		for i, sl := range base.slots {
			if sl != nil || !adm[i] {
				continue
			}
			f := newPartial(r, at)
			copy(f.slots, base.slots)
			if !e.place(s, r, f, i, it) {
				continue
			}
			e.fillFromFacts(s, r, f)
			if f.complete() {
				done = f
				return true
			}
			forks = append(forks, f)
		}
		return false
	}
	for _, p := range cands {
		if p.holds(it) {
			continue
		}
		if extend(p, p.dl.at) {
			break
		}
	}
	if done == nil {
		extend(newPartial(r, time.Time{}), now.Add(r.rule.ttl(s.rs)))
	}
	if done != nil {
		bound := map[string]*item{}
		for i, sl := range done.slots {
			bound[r.rule.Names[i]] = sl
		}
		return bound
	}
	for _, f := range forks {
		if !it.fact || !e.partialRedundant(r, f) {
			r.addPartial(f)
		}
	}
	return nil
}

// partialRedundant: a fact starting a partial that an identical one already
// holds would only duplicate it.
func (e *Engine) partialRedundant(r *ruleState, p *partial) bool {
	for _, q := range r.partials {
		same := true
		for i := range p.slots {
			if p.slots[i] != q.slots[i] {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// consumeEvents drops the partial matches holding one of the events of a
// match (facts are not consumed): those of rule only, or of every rule of
// s when only is nil. They are found through the events' holders.
func (e *Engine) consumeEvents(s *rsState, only *ruleState, bound map[string]*item) {
	victims := e.victimBuf[:0]
	for _, it := range bound {
		if it.fact {
			continue
		}
		for _, p := range it.holders {
			if only == nil || p.owner == only {
				victims = append(victims, p)
			}
		}
	}
	if len(victims) == 0 {
		return
	}
	slices.SortFunc(victims, func(a, b *partial) int {
		if a.owner != b.owner {
			return cmp.Compare(ruleIndex(s, a.owner), ruleIndex(s, b.owner))
		}
		return cmp.Compare(a.seq, b.seq)
	})
	victims = slices.Compact(victims)
	for len(victims) > 0 {
		n := 1
		for n < len(victims) && victims[n].owner == victims[0].owner {
			n++
		}
		victims[0].owner.removePartials(victims[:n])
		victims = victims[n:]
	}
	clear(e.victimBuf[:cap(e.victimBuf)])
	e.victimBuf = e.victimBuf[:0]
}

func ruleIndex(s *rsState, r *ruleState) int {
	return slices.Index(s.rules, r)
}

// consume removes a completed not_all window and every other partial of
// r sharing one of its events.
func (e *Engine) consume(r *ruleState, done *partial) {
	victims := e.victimBuf[:0]
	if done.dl.idx >= 0 {
		victims = append(victims, done)
	}
	for _, sl := range done.slots {
		if sl == nil || sl.fact {
			continue
		}
		for _, p := range sl.holders {
			if p.owner == r && p != done && p.dl.idx >= 0 {
				victims = append(victims, p)
			}
		}
	}
	slices.SortFunc(victims, func(a, b *partial) int { return cmp.Compare(a.seq, b.seq) })
	victims = slices.Compact(victims)
	r.removePartials(victims)
	clear(victims)
	e.victimBuf = victims[:0]
}

// matchNotAll keeps one window per first match: an item joins the first
// open window that has an empty slot it meets, or opens a window of its
// own. A window whose slots all fill before its timeout ends quietly; one
// that times out fires (see expire).
func (e *Engine) matchNotAll(s *rsState, r *ruleState, it *item, now time.Time) bool {
	adm, cands := e.joinCandidates(s, r, it)
	for _, w := range cands {
		if e.fill(s, r, w, it, adm) {
			e.fillFromFacts(s, r, w)
			if w.complete() {
				e.consume(r, w)
			}
			return true
		}
	}
	w := newPartial(r, now.Add(r.rule.ttl(s.rs)))
	if !e.fill(s, r, w, it, adm) {
		return false
	}
	e.fillFromFacts(s, r, w)
	if !w.complete() {
		r.addPartial(w)
	}
	return true
}

// matched applies the rule's throttle and fires when it lets the match
// through.
func (e *Engine) matched(ctx context.Context, s *rsState, r *ruleState, trigger *item, bound map[string]*item, now time.Time) error {
	th := r.rule.Throttle
	if th == nil {
		return e.fire(ctx, s, r, trigger, bound, now, false)
	}
	key := e.groupKey(s, th, trigger, bound)
	g := r.groups[key]
	switch th.Kind {
	case OnceWithin:
		if g != nil && now.Before(g.dl.at) {
			return nil
		}
		r.setGroup(key, newGroup(nil, nil), now.Add(th.Window))
		return e.fire(ctx, s, r, trigger, bound, now, false)
	case OnceAfter:
		if !th.PerGroup {
			// One window for the rule, as in Event-Driven Ansible: it
			// fires once when it ends, with each group's newest match.
			w := r.groups[ruleWindow]
			if w == nil {
				w = newGroup(nil, nil)
				w.byKey = map[string]*throttleMember{}
				r.setGroup(ruleWindow, w, now.Add(th.Window))
			}
			if m := w.byKey[key]; m != nil {
				m.trigger, m.bound = trigger, bound
				return nil
			}
			m := &throttleMember{trigger: trigger, bound: bound}
			w.byKey[key] = m
			w.members = append(w.members, m)
			return nil
		}
		if g == nil {
			r.setGroup(key, newGroup(trigger, bound), now.Add(th.Window))
			return nil
		}
		// Keep the newest event; the firing reports every event of the window.
		g.trigger = trigger
		for k, v := range bound {
			g.bound[k] = v
		}
		return nil
	case AccumulateWithin:
		if !th.Sliding {
			// The window opens at the group's first match and ends
			// accumulate_within later (expire closes it), as in
			// Event-Driven Ansible; the next match opens a new one.
			if g == nil {
				g = newGroup(nil, nil)
				r.setGroup(key, g, now.Add(th.Window))
			}
			g.count++
			if g.count >= th.Threshold {
				r.deleteGroup(key)
				return e.fire(ctx, s, r, trigger, bound, now, false)
			}
			return nil
		}
		if g == nil {
			g = newGroup(nil, nil)
		}
		cut := now.Add(-th.Window)
		keep := g.times[:0]
		for _, t := range g.times {
			if t.After(cut) {
				keep = append(keep, t)
			}
		}
		g.times = append(keep, now)
		r.setGroup(key, g, now.Add(th.Window))
		if len(g.times) >= th.Threshold {
			r.deleteGroup(key)
			return e.fire(ctx, s, r, trigger, bound, now, false)
		}
	}
	return nil
}

// ruleWindow is the key of a rule's once_after window in its groups (no
// group key is it: group keys render every group_by value, and a rule
// without group_by has one window anyway).
const ruleWindow = "\x00rule"

// windowMatch is what a once_after window of the rule fires with: its one
// group's match as it is, or the events of every group as m_0, m_1, ...
// (each group's in the order of its names), the newest group's match as
// the event.
func windowMatch(g *throttleGroup) (*item, map[string]*item) {
	if len(g.members) == 1 {
		return g.members[0].trigger, g.members[0].bound
	}
	bound := map[string]*item{}
	var trigger *item
	for _, m := range g.members {
		names := make([]string, 0, len(m.bound))
		for k := range m.bound {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			bound[fmt.Sprintf("m_%d", len(bound))] = m.bound[k]
		}
		trigger = m.trigger
	}
	return trigger, bound
}

func (e *Engine) groupKey(s *rsState, th *Throttle, trigger *item, bound map[string]*item) string {
	if len(th.GroupBy) == 0 {
		return ""
	}
	e.st.bind(trigger.data, itemsData(bound), e.vars(s))
	parts := make([]string, len(th.GroupBy))
	for i, t := range th.GroupBy {
		v, err := t.render(e.st)
		if err != nil {
			parts[i] = "<error>"
			continue
		}
		parts[i] = Text(v)
	}
	return strings.Join(parts, "\x1f")
}

func itemsData(bound map[string]*item) map[string]any {
	m := make(map[string]any, len(bound))
	for k, v := range bound {
		m[k] = v.data
	}
	return m
}

// expire fires due timers and drops expired state. A rule's due partial
// matches are handled in the order they were opened, its due groups in key
// order, so the firings do not depend on the heap's order of equal
// deadlines.
func (e *Engine) expire(ctx context.Context) error {
	now := e.now()
	for _, s := range e.rulesets {
		for _, r := range s.rules {
			due := r.popDue(now)
			if len(due) == 0 {
				continue
			}
			var expired []*partial
			var groupsDue []string
			for _, d := range due {
				if d.p != nil {
					expired = append(expired, d.p)
				} else {
					groupsDue = append(groupsDue, d.key)
				}
			}
			r.removeExpired(expired)
			var windows []*partial
			if r.rule.Kind == NotAll {
				windows = expired
			}
			// A not_all window that timed out fires with what it holds.
			for _, w := range windows {
				bound := map[string]*item{}
				var trigger *item
				for i, sl := range w.slots {
					if sl != nil {
						bound[r.rule.Names[i]] = sl
						trigger = sl
					}
				}
				if trigger == nil {
					continue // its facts were retracted
				}
				if err := e.fire(ctx, s, r, trigger, bound, w.dl.at, true); err != nil {
					return err
				}
			}
			sort.Strings(groupsDue)
			for i, k := range groupsDue {
				g := r.groups[k]
				delete(r.groups, k) // out of the heap already
				if r.rule.Throttle.Kind != OnceAfter {
					continue
				}
				trigger, bound := g.trigger, g.bound
				if len(g.members) > 0 {
					trigger, bound = windowMatch(g)
				}
				if trigger != nil {
					if err := e.fire(ctx, s, r, trigger, bound, g.dl.at, true); err != nil {
						// The groups not reached stay due.
						for _, k := range groupsDue[i+1:] {
							heap.Push(&r.deadlines, &r.groups[k].dl)
						}
						return err
					}
				}
			}
		}
	}
	return nil
}

// firingID is derived from the journal position and the match, so the same
// record processed twice yields the same firing and invocation IDs. A
// timer's firing is derived from the timer: its rule, deadline and the
// events it holds, so a timer that fires again after a restart (its state
// rebuilt by Replay) yields the same ID whether Tick or a record found it
// due. A firing caused by another firing's set_fact or post_event derives
// its ID from that firing's, so a timer's cascade, too, gets the same IDs
// whether Tick or a record found the timer due, and does not shift the
// record's own firing IDs. Other firings without a journal position
// (Inject) get a random ID when there is a Dispatcher.
func (e *Engine) firingID(s *rsState, r *Rule, at time.Time, eventIDs []string, timer bool) string {
	var key string
	switch {
	case timer:
		// Not counted in e.fired: a record's firing IDs must not depend on
		// whether a timer fell due in its expire or in a Tick before it.
		key = fmt.Sprintf("timer\x00%s\x00%s\x00%s\x00%d\x00%s", e.opts.Stream, s.rs.Name, r.Name, at.UnixNano(), strings.Join(eventIDs, "\x00"))
	case e.evaluating.id != "":
		if e.causeFired == nil {
			e.causeFired = map[string]int{}
		}
		e.causeFired[e.evaluating.id]++
		key = fmt.Sprintf("caused\x00%s\x00%s\x00%s\x00%d", e.evaluating.id, s.rs.Name, r.Name, e.causeFired[e.evaluating.id])
	case e.rec.Seq == 0:
		e.fired++
		key = fmt.Sprintf("t\x00%d\x00%s\x00%s\x00%d", at.UnixNano(), s.rs.Name, r.Name, e.fired)
		if e.opts.Dispatcher != nil {
			// Injected firings have no journal position; keep them unique
			// across restarts.
			key += "\x00" + NewID()
		}
	default:
		e.fired++
		key = fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%d", e.rec.Stream, e.rec.Seq, s.rs.Name, r.Name, e.fired)
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
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
		v, err := a.Args.render(e.st)
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
			Ruleset: s.rs.Name, Rule: rule.Name, Args: args, Event: actEvent, Events: actEvents,
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

// submit retries a failing store until ctx ends: a firing that is not stored
// must not be lost, and the journal record stays un-done meanwhile.
// now is the clock's time, or the replayed record's while replaying.
func (e *Engine) now() time.Time {
	if e.replaying && !e.rec.Accepted.IsZero() {
		return e.rec.Accepted
	}
	return e.opts.Clock.Now()
}

func triggerDataOf(it *item) map[string]any {
	if it == nil {
		return nil
	}
	return it.data
}

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

func (e *Engine) targetRuleset(s *rsState, args map[string]any) *rsState {
	if name, ok := args["ruleset"].(string); ok && name != "" {
		if t := e.byName[name]; t != nil {
			return t
		}
		e.opts.Log.Error().Str("ruleset", name).Msg("action names an unknown ruleset")
		return nil
	}
	return s
}

func (e *Engine) builtin(s *rsState, rule *Rule, typ string, args map[string]any, event map[string]any, events map[string]Event) {
	switch typ {
	case ActionDebug:
		e.debug(s, rule, args, event, events)
	case ActionPrintEvent:
		var v any = event
		if len(events) > 1 {
			v = events
		}
		var b []byte
		if pretty, _ := args["pretty"].(bool); pretty {
			b, _ = json.MarshalIndent(v, "", "  ")
		} else {
			b, _ = json.Marshal(v)
		}
		fmt.Fprintln(e.opts.Stdout, string(b))
	case ActionSetFact:
		if t := e.targetRuleset(s, args); t != nil {
			if fact, ok := args["fact"].(map[string]any); ok {
				e.assertFact(t, fact)
			}
		}
	case ActionRetractFact:
		if t := e.targetRuleset(s, args); t != nil {
			if fact, ok := args["fact"].(map[string]any); ok {
				partial := true
				if p, ok := args["partial"].(bool); ok {
					partial = p
				}
				e.retractFact(t, fact, partial)
			}
		}
	case ActionPostEvent:
		if t := e.targetRuleset(s, args); t != nil {
			if ev, ok := args["event"].(map[string]any); ok {
				e.postEvent(t, ev, rule.Name)
			}
		}
	case ActionShutdown:
		req := ShutdownRequest{Ruleset: s.rs.Name, Rule: rule.Name}
		req.Message, _ = args["message"].(string)
		if d, ok := args["delay"]; ok {
			req.Delay, _ = ParseDuration(d)
		}
		req.Now = args["kind"] == "now"
		e.opts.Log.Info().Str("ruleset", s.rs.Name).Str("rule", rule.Name).Str("message", req.Message).Msg("shutdown requested")
		if e.opts.OnShutdown != nil {
			e.opts.OnShutdown(req)
		}
	case ActionNone:
	}
}

func (e *Engine) debug(s *rsState, rule *Rule, args map[string]any, event map[string]any, events map[string]Event) {
	w := e.opts.Stdout
	if msg, ok := args["msg"]; ok {
		switch m := msg.(type) {
		case []any:
			for _, line := range m {
				fmt.Fprintln(w, Text(line))
			}
		default:
			fmt.Fprintln(w, Text(m))
		}
		return
	}
	if name, ok := args["var"].(string); ok {
		e.st.bind(event, toAnyMap(events), e.vars(s))
		root, rest, _ := strings.Cut(name, ".")
		var keys []any
		if rest != "" {
			for _, k := range strings.Split(rest, ".") {
				keys = append(keys, k)
			}
		}
		v, ok := lookup(e.st.env.root(root), keys)
		if !ok {
			fmt.Fprintf(w, "%s: (not defined)\n", name)
			return
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "%s: %s\n", name, b)
		return
	}
	b, _ := json.MarshalIndent(map[string]any{"ruleset": s.rs.Name, "rule": rule.Name, "event": event, "events": events, "vars": e.vars(s)}, "", "  ")
	fmt.Fprintln(w, string(b))
}

func toAnyMap(m map[string]Event) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (e *Engine) assertFact(s *rsState, fact map[string]any) {
	data, _ := deepCopy(fact).(map[string]any)
	meta := Meta(data)
	if _, ok := meta[MetaUUID]; !ok {
		meta[MetaUUID] = e.itemID()
	}
	id := EventID(data)
	if s.factIDs[id] > 0 {
		return // this very fact is set already
	}
	it := &item{id: id, data: data, fact: true, order: e.factOrder}
	e.factOrder++
	s.facts = append(s.facts, it)
	s.factIDs[id]++
	s.factIndexes = nil
	e.logFact(s, it, true)
	e.queue = append(e.queue, queued{rs: s, it: it, cause: e.queuing})
}

func (e *Engine) retractFact(s *rsState, fact map[string]any, partial bool) {
	keep := s.facts[:0]
	var gone []*item
	for _, f := range s.facts {
		if factMatches(f.data, fact, partial) {
			gone = append(gone, f)
			continue
		}
		keep = append(keep, f)
	}
	for i := len(keep); i < len(s.facts); i++ {
		s.facts[i] = nil
	}
	s.facts = keep
	if len(gone) == 0 {
		return
	}
	s.factIndexes = nil
	for _, r := range s.rules {
		r.factAdm = nil
	}
	for _, f := range gone {
		if s.factIDs[f.id]--; s.factIDs[f.id] <= 0 {
			delete(s.factIDs, f.id)
		}
		e.logFact(s, f, false)
	}
	// A rule that is only `not defined(fact.PATH)` turns true when the
	// last fact carrying PATH goes, as Drools re-evaluates a negation on
	// retraction: it fires with that fact, once the retraction's firing
	// is done.
	for _, r := range s.rules {
		path := r.rule.Conditions[0].negatedFact
		if r.rule.Kind != Single || path == nil {
			continue
		}
		var last *item
		for _, f := range gone {
			if _, ok := lookup(f.data, path); ok {
				last = f
			}
		}
		if last != nil {
			e.queue = append(e.queue, queued{rs: s, it: last, cause: e.queuing, negation: r})
		}
	}
	for _, r := range s.rules {
		for _, f := range gone {
			for _, p := range r.partials {
				if !p.holds(f) {
					continue
				}
				r.unindex(p)
				for i, sl := range p.slots {
					if sl == f {
						p.slots[i] = nil
						r.open[i]++
					}
				}
				r.index(p)
			}
		}
	}
}

// negationMet fires r, whose condition is only `not defined(fact.PATH)`,
// with the retracted fact f, when no fact of s carries PATH now.
func (e *Engine) negationMet(ctx context.Context, s *rsState, r *ruleState, f *item) error {
	if !r.rule.Enabled || e.byName[s.rs.Name] != s {
		return nil
	}
	path := r.rule.Conditions[0].negatedFact
	for _, g := range s.facts {
		if _, ok := lookup(g.data, path); ok {
			return nil
		}
	}
	e.current = r.rule.Name
	r.stats.Evaluated++
	return e.matched(ctx, s, r, f, map[string]*item{r.rule.Names[0]: f}, e.now())
}

// factMatches: with partial, every key of want (meta aside) equals the
// fact's; without, the fact has exactly want's keys.
func factMatches(have, want map[string]any, partial bool) bool {
	n := 0
	for k, v := range want {
		if k == MetaKey {
			continue
		}
		n++
		hv, ok := have[k]
		if !ok || !valuesEqualDeep(hv, v) {
			return false
		}
	}
	if partial {
		return true
	}
	m := 0
	for k := range have {
		if k != MetaKey {
			m++
		}
	}
	return m == n
}

func valuesEqualDeep(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !valuesEqualDeep(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !valuesEqualDeep(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return valuesEqual(a, b)
}

func (e *Engine) postEvent(s *rsState, ev map[string]any, by string) {
	data, _ := deepCopy(ev).(map[string]any)
	if meta := Meta(data); meta[MetaUUID] == nil {
		meta[MetaUUID] = e.itemID()
	}
	data = NewEvent(data, by, "post_event", e.now())
	e.queue = append(e.queue, queued{rs: s, it: &item{id: EventID(data), data: data}, cause: e.queuing})
}

// ParseDuration reads a duration from YAML: a Go duration string ("90s",
// "2h"), EDA's "5 minutes" form, or a number of seconds.
func ParseDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case int:
		return time.Duration(x) * time.Second, nil
	case int64:
		return time.Duration(x) * time.Second, nil
	case float64:
		return time.Duration(x * float64(time.Second)), nil
	case string:
		s := strings.TrimSpace(x)
		if d, err := time.ParseDuration(s); err == nil {
			return d, nil
		}
		fields := strings.Fields(s)
		if len(fields) == 2 {
			var n float64
			if _, err := fmt.Sscanf(fields[0], "%g", &n); err == nil {
				unit := strings.TrimSuffix(strings.ToLower(fields[1]), "s")
				mult := map[string]time.Duration{"millisecond": time.Millisecond, "second": time.Second, "sec": time.Second,
					"minute": time.Minute, "min": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[unit]
				if mult > 0 {
					return time.Duration(n * float64(mult)), nil
				}
			}
		}
		return 0, fmt.Errorf("invalid duration %q (use e.g. \"90s\", \"5m\", \"2h\" or \"5 minutes\")", x)
	}
	return 0, fmt.Errorf("invalid duration %v: want a string like \"5m\" or a number of seconds", v)
}
