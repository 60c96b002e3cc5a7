package engine

import (
	"cmp"
	"context"
	"slices"
)

// FactChange is one change of a ruleset's facts: set (Fact) or retracted
// (Fact nil). Order identifies the fact within its ruleset and orders the
// facts as they were set.
type FactChange struct {
	Ruleset string         `json:"ruleset"`
	Order   uint64         `json:"order"`
	Fact    map[string]any `json:"fact,omitempty"`
}

// FactJournal is a Journal that keeps the engine's facts across restarts.
// The Runner hands it the fact changes made since the last Done with the
// next one, and on start restores the facts it returns, after rebuilding
// rule state from history (Runner.Lookback): facts older than that history
// survive a restart too.
type FactJournal interface {
	Journal
	// DoneWithFacts is Done (seq may repeat the last done one), storing
	// changes with it, atomically: a crash keeps both or neither.
	DoneWithFacts(ctx context.Context, seq uint64, changes []FactChange) error
	// Facts returns the stored facts (Fact set), by ruleset in order.
	Facts(ctx context.Context) ([]FactChange, error)
}

// logFact records a change of s's facts for TakeFactChanges, when a
// Runner stores them (trackFacts) and the engine is not rebuilding state
// (the facts it rebuilds are stored already).
func (e *Engine) logFact(s *rsState, it *item, set bool) {
	if !e.trackFacts || e.replaying {
		return
	}
	c := FactChange{Ruleset: s.rs.Name, Order: it.order}
	if set {
		c.Fact = it.data
	}
	e.factChanges = append(e.factChanges, c)
	e.signalFacts()
}

// signalFacts signals factsChanged, unless a signal is pending already.
func (e *Engine) signalFacts() {
	select {
	case e.factsChanged <- struct{}{}:
	default:
	}
}

// TakeFactChanges returns the fact changes made since the last call, in
// order, and forgets them.
func (e *Engine) TakeFactChanges() []FactChange {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.factChanges
	e.factChanges = nil
	return out
}

// FactsChanged is signalled (without blocking: one signal may stand for
// several changes) when facts change outside a replay, so that a Runner
// stores changes that no record brought (Inject) without waiting for the
// next record.
func (e *Engine) FactsChanged() <-chan struct{} { return e.factsChanged }

// RestoreFacts makes the stored facts (FactJournal.Facts) the engine's
// facts, after Replay rebuilt rule state from recent history, and from
// then on keeps the changes of facts for TakeFactChanges. A fact the
// replay set again (the same meta.uuid: the IDs of the facts the engine
// creates derive from what created them) keeps its item, and with it the
// partial matches it is in; the others come back as they were stored,
// older than the replayed history. Facts of rulesets no longer loaded are
// dropped. Stored facts are not evaluated again: they join the matches
// that need them from now on, as facts do.
func (e *Engine) RestoreFacts(stored []FactChange) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.trackFacts = true
	byRuleset := map[string][]FactChange{}
	for _, c := range stored {
		if c.Fact != nil {
			byRuleset[c.Ruleset] = append(byRuleset[c.Ruleset], c)
		}
		e.factOrder = max(e.factOrder, c.Order+1)
	}
	for name, saved := range byRuleset {
		if e.byName[name] == nil {
			// Its ruleset is gone: forget its facts in the store too.
			for _, c := range saved {
				e.factChanges = append(e.factChanges, FactChange{Ruleset: name, Order: c.Order})
			}
		}
	}
	for _, s := range e.rulesets {
		saved := byRuleset[s.rs.Name]
		slices.SortFunc(saved, func(a, b FactChange) int { return cmp.Compare(a.Order, b.Order) })
		// A ruleset holds one fact per ID (assertFact), so the replay set
		// each at most once.
		replayed := make(map[string]*item, len(s.facts))
		for _, f := range s.facts {
			replayed[f.id] = f
		}
		facts := make([]*item, 0, len(saved)+len(s.facts))
		for _, c := range saved {
			id := EventID(c.Fact)
			it := replayed[id]
			if it != nil {
				delete(replayed, id)
			} else {
				it = &item{id: id, data: c.Fact, fact: true}
			}
			it.order = c.Order
			facts = append(facts, it)
		}
		// Set by the replay but not stored: only when the store lagged
		// behind. Keep them, and store them.
		for _, f := range s.facts {
			if replayed[f.id] == f {
				f.order = e.factOrder
				e.factOrder++
				facts = append(facts, f)
				e.logFact(s, f, true)
			}
		}
		s.facts = facts
		s.factIndexes = nil
		for _, r := range s.rules {
			r.factAdm = nil
		}
		clear(s.factIDs)
		for _, f := range facts {
			s.factIDs[f.id]++
		}
	}
	if len(e.factChanges) > 0 {
		e.signalFacts()
	}
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
