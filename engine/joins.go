package engine

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// joinIndex finds, by value, the partial matches of a rule that an item
// may join at one empty slot (target), from a condition with a join
// (`event.h == events.first.h`, Condition.join) between its own slot and
// the joined match:
//
//   - forward (target is the condition's slot): the partials whose joined
//     match is filled, under the value that match has at the joined path;
//     an item is looked up by its value at the condition's item path;
//   - reverse (target is the joined match's slot): the partials whose
//     condition slot holds an event still waiting for the match it refers
//     to (an event that arrived first), under that event's value at the
//     item path; an item is looked up by its value at the joined path.
//
// A partial is filed once per empty slot: in the first index of that slot
// whose join will be tested when an item fills the slot (the condition's
// other matches are all there), under its key, or else loose
// (ruleState.loose), a candidate for every item. A partial whose value
// has no key (missing, or not a scalar) is loose too.
//
// The index only narrows the partial matches tested: each candidate is
// still tested with the whole condition, so equal values must get equal
// keys (joinKey), and unequal values may share one.
//
// Where a partial is filed follows from its slots (filing), and every
// change of a member partial's slots goes through unindex and index, so
// unindex finds it where index put it.
type joinIndex struct {
	slot, match int    // the condition's slot, and the joined match's
	target      int    // the empty slot this index serves: slot, or match when rev
	rev         bool   // reverse: see above
	item        []any  // keys into the item of slot
	itemPath    string // item, as a map key of rsState.factIndexes
	path        []any  // keys into the joined match
	byKey       map[string]map[*partial]struct{}
}

// newJoins builds the join indexes of r's conditions that join a match of
// r (by name, not their own slot), forward and reverse.
func newJoins(r *Rule) []*joinIndex {
	var out []*joinIndex
	for _, rev := range []bool{false, true} {
		for i, c := range r.Conditions {
			if c.join == nil {
				continue
			}
			m := slices.Index(r.Names, c.join.match)
			if m < 0 || m == i {
				continue
			}
			j := &joinIndex{slot: i, match: m, target: i, rev: rev, item: c.join.item, itemPath: fmt.Sprintf("%#v", c.join.item), path: c.join.path,
				byKey: map[string]map[*partial]struct{}{}}
			if rev {
				j.target = m
			}
			out = append(out, j)
		}
	}
	return out
}

// newDeps returns, per condition of r, the slots whose matches it reads:
// those it names, or every other slot when it may read any.
func newDeps(r *Rule) [][]int {
	deps := make([][]int, len(r.Conditions))
	for i, c := range r.Conditions {
		all := c.readsAny
		var d []int
		for _, name := range c.reads {
			k := slices.Index(r.Names, name)
			if k < 0 {
				all = true // a name no slot has: test it only when all are there
				continue
			}
			d = append(d, k)
		}
		if all {
			d = d[:0]
			for k := range r.Conditions {
				if k != i {
					d = append(d, k)
				}
			}
		}
		deps[i] = d
	}
	return deps
}

// resolved reports whether every match condition i reads is in p, but
// for slot except (-1: none).
func (r *ruleState) resolved(p *partial, i, except int) bool {
	for _, k := range r.deps[i] {
		if k != except && p.slots[k] == nil {
			return false
		}
	}
	return true
}

// joinKey is the index key of a value: values that `==` finds equal get
// the same key (numbers of every type by their float64 value, so 1 and
// 1.0 meet; -0 as 0). ok is false for values without one (lists, maps).
func joinKey(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return "s" + x, true
	case bool:
		if x {
			return "t", true
		}
		return "f", true
	case nil:
		return "n", true
	}
	f, ok := toFloat(v) // the numbers valuesEqual treats alike
	if !ok || math.IsNaN(f) {
		return "", false
	}
	if f == 0 {
		f = 0 // -0 == 0
	}
	return "d" + strconv.FormatFloat(f, 'g', -1, 64), true
}

// joinAt returns the forward join index of slot i, or nil.
func (r *ruleState) joinAt(i int) *joinIndex {
	for _, j := range r.joins {
		if j.slot == i && !j.rev {
			return j
		}
	}
	return nil
}

// filing says where p, whose slot t is empty, is filed for t: under key in
// j, or loose (j nil).
func (r *ruleState) filing(p *partial, t int) (j *joinIndex, key string) {
	for _, j := range r.joins {
		if j.target != t {
			continue
		}
		var v any
		var found bool
		if j.rev {
			// The waiting event's join is tested once the item fills t.
			if p.slots[j.slot] == nil || !r.resolved(p, j.slot, t) {
				continue
			}
			v, found = lookup(p.slots[j.slot].data, j.item)
		} else {
			if p.slots[j.match] == nil || !r.resolved(p, j.slot, j.slot) {
				continue
			}
			v, found = lookup(p.slots[j.match].data, j.path)
		}
		key, ok := joinKey(v)
		if !found || !ok {
			return nil, ""
		}
		return j, key
	}
	return nil, ""
}

// index adds p (one of r's partials) to the join indexes it belongs in.
func (r *ruleState) index(p *partial) {
	if len(r.joins) == 0 {
		return
	}
	for t, sl := range p.slots {
		if sl != nil {
			continue
		}
		j, key := r.filing(p, t)
		if j == nil {
			if r.loose[t] == nil {
				r.loose[t] = map[*partial]struct{}{}
			}
			r.loose[t][p] = struct{}{}
			continue
		}
		set := j.byKey[key]
		if set == nil {
			set = map[*partial]struct{}{}
			j.byKey[key] = set
		}
		set[p] = struct{}{}
	}
}

// unindex takes p out of every join index, before its slots change.
func (r *ruleState) unindex(p *partial) {
	if len(r.joins) == 0 {
		return
	}
	for t, sl := range p.slots {
		if sl != nil {
			continue
		}
		j, key := r.filing(p, t)
		if j == nil {
			delete(r.loose[t], p)
			continue
		}
		set := j.byKey[key]
		delete(set, p)
		if len(set) == 0 {
			delete(j.byKey, key)
		}
	}
}

// candidates returns, in the order they were opened, the partial matches
// that item it may join (adm from admitted): for each admitted open slot,
// those its join indexes find and the loose ones. ok is false when the
// rule has no join index, or the item lacks a key for one: then any
// partial may be one.
func (r *ruleState) candidates(it *item, adm []bool, buf []*partial) (out []*partial, ok bool) {
	if len(r.joins) == 0 {
		return nil, false
	}
	out = buf[:0]
	for t, admitted := range adm {
		if !admitted || r.open[t] == 0 {
			continue
		}
		for _, j := range r.joins {
			if j.target != t {
				continue
			}
			path := j.item
			if j.rev {
				path = j.path
			}
			v, found := lookup(it.data, path)
			key, keyed := joinKey(v)
			if !found || !keyed {
				return nil, false
			}
			for p := range j.byKey[key] {
				out = append(out, p)
			}
		}
		for p := range r.loose[t] {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *partial) int { return cmp.Compare(a.seq, b.seq) })
	return slices.Compact(out), true
}

// factIndex finds a ruleset's facts by their value at one path: the facts
// a partial match may take into a slot whose condition joins on that path
// (fillFromFacts). Facts without a key there are loose, candidates always.
// Both lists keep the facts' order.
type factIndex struct {
	byKey map[string][]*item
	loose []*item
}

// minIndexedFacts is how many facts a ruleset holds before fillFromFacts
// looks them up by value rather than testing each.
const minIndexedFacts = 8

// factIndex returns s's facts indexed by their value at the item path of
// j, building it when the facts changed since (factIndexes is dropped on
// every change).
func (s *rsState) factIndex(j *joinIndex) *factIndex {
	if idx := s.factIndexes[j.itemPath]; idx != nil {
		return idx
	}
	idx := &factIndex{byKey: map[string][]*item{}}
	for _, f := range s.facts {
		v, found := lookup(f.data, j.item)
		if key, ok := joinKey(v); found && ok {
			idx.byKey[key] = append(idx.byKey[key], f)
		} else {
			idx.loose = append(idx.loose, f)
		}
	}
	if s.factIndexes == nil {
		s.factIndexes = map[string]*factIndex{}
	}
	s.factIndexes[j.itemPath] = idx
	return idx
}

// factCandidates returns, in their order, the facts of s that may fill an
// empty slot of p: when every empty slot's condition joins on a match p
// holds, those the fact indexes find for the match's values. ok is false
// when some empty slot has no such join, or the match's value no key, or
// s holds few facts: then any fact may be one.
func (e *Engine) factCandidates(s *rsState, r *ruleState, p *partial) (out []*item, ok bool) {
	if len(r.joins) == 0 || len(s.facts) < minIndexedFacts {
		return nil, false
	}
	out = e.factBuf[:0]
	for i, sl := range p.slots {
		if sl != nil {
			continue
		}
		j := r.joinAt(i)
		if j == nil || p.slots[j.match] == nil || !r.resolved(p, i, i) {
			return nil, false
		}
		v, found := lookup(p.slots[j.match].data, j.path)
		key, keyed := joinKey(v)
		if !found || !keyed {
			return nil, false
		}
		idx := s.factIndex(j)
		out = append(out, idx.byKey[key]...)
		out = append(out, idx.loose...)
	}
	slices.SortFunc(out, func(a, b *item) int { return cmp.Compare(a.order, b.order) })
	out = slices.Compact(out)
	e.factBuf = out
	return out, true
}
