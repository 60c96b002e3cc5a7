package engine

import (
	"context"
	"fmt"
	"io"
	"os"
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
	// NoRuleIndex tests every item against every rule of its ruleset, as
	// if no rule index (index.go) existed. The differential test compares
	// the two.
	NoRuleIndex bool
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
	Evaluated int64 `json:"evaluated"`
	// Matched counts the rule's full matches, whether its throttle let
	// them fire or not.
	Matched   int64     `json:"matched"`
	Fired     int64     `json:"fired"`
	LastFired time.Time `json:"last_fired,omitempty"`
	// Throttle names the rule's throttle kind (once_within, once_after,
	// accumulate_within), empty without one.
	Throttle string `json:"throttle,omitempty"`
	// The matches the throttle kept from firing: within a once_within
	// window; replaced by a newer match of the same group in a once_after
	// window (which fires once, at its end); below an accumulate_within
	// threshold.
	SuppressedOnceWithin       int64 `json:"suppressed_once_within"`
	SuppressedOnceAfter        int64 `json:"suppressed_once_after"`
	SuppressedAccumulateWithin int64 `json:"suppressed_accumulate_within"`
	// Consumed counts the events an earlier rule matched and consumed
	// (match_multiple_rules: false) that this rule's condition meets on
	// its own, when ConsumedCounted: for single-condition and any rules
	// of rulesets with at most MaxConsumedRules of them (all and not_all
	// are not counted).
	Consumed        int64 `json:"consumed"`
	ConsumedCounted bool  `json:"consumed_counted"`
}

// Add adds o's counts to s (engines that run the same rules, one per bus
// partition), keeping the later LastFired.
func (s *RuleStats) Add(o RuleStats) {
	s.Evaluated += o.Evaluated
	s.Matched += o.Matched
	s.Fired += o.Fired
	if o.LastFired.After(s.LastFired) {
		s.LastFired = o.LastFired
	}
	s.SuppressedOnceWithin += o.SuppressedOnceWithin
	s.SuppressedOnceAfter += o.SuppressedOnceAfter
	s.SuppressedAccumulateWithin += o.SuppressedAccumulateWithin
	s.Consumed += o.Consumed
	if s.Throttle == "" {
		s.Throttle = o.Throttle
	}
	s.ConsumedCounted = s.ConsumedCounted || o.ConsumedCounted
}

// Suppressed returns the throttle's suppressions: the counter of the
// rule's throttle kind.
func (s RuleStats) Suppressed() int64 {
	return s.SuppressedOnceWithin + s.SuppressedOnceAfter + s.SuppressedAccumulateWithin
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
	rs *Ruleset
	// index selects the rules that may match an item (index.go); nil
	// when no rule can be selected by value. timed are the positions in
	// rules of those that may hold deadlines (timedRules).
	index *ruleSelector
	timed []int
	facts []*item
	// factIDs counts the facts by meta.uuid: a fact set again under an ID
	// it already has (a timer's set_fact firing again after a restart that
	// restored its fact) is not doubled.
	factIDs map[string]int
	// factIndexes find facts by value (joins.go), built on demand and
	// dropped whenever facts change.
	factIndexes map[string]*factIndex
	rules       []*ruleState
	// consumed caches countsConsumed: 0 not known yet, 1 yes, 2 no.
	consumed int8
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
	rules := 0
	for _, rs := range rulesets {
		rules += len(rs.Rules)
	}
	e := &Engine{opts: opts, byName: map[string]*rsState{}, stats: make(map[string]*RuleStats, rules), liveSince: opts.Clock.Now(),
		factsChanged: make(chan struct{}, 1)}
	e.st = newEvalState(func(err error) {
		// A type error (a string compared with a number) is no match; it
		// is not worth more than a debug line.
		e.opts.Log.Debug().Str("rule", e.current).Err(err).Msg("condition did not evaluate; no match")
	})
	// The counters of all rules in one array, and their keys kept to
	// link them: an allocation and a key per rule was a fifth of the
	// build of 10,000 rules.
	slab := make([]RuleStats, 0, rules)
	keys := make([]string, 0, rules)
	for _, rs := range rulesets {
		s := newRulesetState(rs)
		e.rulesets = append(e.rulesets, s)
		e.byName[rs.Name] = s
		for _, r := range rs.Rules {
			slab = append(slab, RuleStats{Ruleset: rs.Name, Rule: r.Name})
			key := rs.Name + "\x00" + r.Name
			keys = append(keys, key)
			e.stats[key] = &slab[len(slab)-1]
		}
	}
	// As linkStats, with the keys made above.
	i := 0
	for _, s := range e.rulesets {
		for _, r := range s.rules {
			r.stats = e.stats[keys[i]]
			i++
		}
	}
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
	s := &rsState{rs: rs, factIDs: map[string]int{}, index: newRuleIndex(rs.Rules), timed: timedRules(rs.Rules),
		rules: make([]*ruleState, 0, len(rs.Rules))}
	for _, r := range rs.Rules {
		// groups and loose's maps are made on first use: most rules
		// have no throttle and no join, and a rulebook may have 10,000.
		rs := &ruleState{rule: r, open: make([]int, len(r.Conditions)), joins: newJoins(r), deps: newDeps(r)}
		if len(rs.joins) > 0 {
			rs.loose = make([]map[*partial]struct{}, len(r.Conditions))
		}
		s.rules = append(s.rules, rs)
	}
	return s
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
		for _, ri := range s.timed {
			consider(s.rules[ri].next())
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

// Stats returns every rule's counters, in rulebook order.
func (e *Engine) Stats() []RuleStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []RuleStats
	for _, s := range e.rulesets {
		for _, r := range s.rs.Rules {
			st := *e.stats[s.rs.Name+"\x00"+r.Name]
			st.Throttle = throttleReason(r.Throttle)
			st.ConsumedCounted = s.consumedCounted(r)
			out = append(out, st)
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

// now is the clock's time, or the replayed record's while replaying.
func (e *Engine) now() time.Time {
	if e.replaying && !e.rec.Accepted.IsZero() {
		return e.rec.Accepted
	}
	return e.opts.Clock.Now()
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
