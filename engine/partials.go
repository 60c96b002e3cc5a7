package engine

import (
	"cmp"
	"slices"
	"time"
)

type partial struct {
	slots []*item
	dl    deadline   // dl.at: when it expires
	seq   uint64     // order among its rule's partials (ruleState.seq)
	owner *ruleState // the rule it is a partial match of
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
