package engine

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// joinIndex finds, by value, the partial matches of a rule that an item
// may join at one slot whose condition has a join (`event.h ==
// events.first.h`, Condition.join): it holds every partial match whose
// slot is empty and whose joined match is filled, under the value the
// match has at the joined path. A partial match whose value has no key
// (missing, or not a scalar) is kept loose, and is a candidate for every
// item.
//
// The index only narrows the partial matches tested: each candidate is
// still tested with the whole condition, so equal values must get equal
// keys (joinKey), and unequal values may share one.
//
// Where a partial is filed follows from its slots (entry), and every
// change of a member partial's slots goes through unindex and index, so
// unindex finds it where index put it.
type joinIndex struct {
	slot, match int    // the condition's slot, and the joined match's
	item        []any  // keys into the item
	itemPath    string // item, as a map key of rsState.factIndexes
	path        []any  // keys into the joined match
	byKey       map[string]map[*partial]struct{}
	loose       map[*partial]struct{}
}

// entry says where j files p: nowhere (in false), loose, or under key.
func (j *joinIndex) entry(p *partial) (key string, loose, in bool) {
	if p.slots[j.slot] != nil || p.slots[j.match] == nil {
		return "", false, false
	}
	v, found := lookup(p.slots[j.match].data, j.path)
	key, ok := joinKey(v)
	if !found || !ok {
		return "", true, true
	}
	return key, false, true
}

// newJoins builds the join indexes of r's conditions that join a match of
// r (by name, not their own slot).
func newJoins(r *Rule) []*joinIndex {
	var out []*joinIndex
	for i, c := range r.Conditions {
		if c.join == nil {
			continue
		}
		m := slices.Index(r.Names, c.join.match)
		if m < 0 || m == i {
			continue
		}
		out = append(out, &joinIndex{slot: i, match: m, item: c.join.item, itemPath: fmt.Sprintf("%#v", c.join.item), path: c.join.path,
			byKey: map[string]map[*partial]struct{}{}, loose: map[*partial]struct{}{}})
	}
	return out
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

// joinAt returns the join index of slot i, or nil.
func (r *ruleState) joinAt(i int) *joinIndex {
	for _, j := range r.joins {
		if j.slot == i {
			return j
		}
	}
	return nil
}

// index adds p (one of r's partials) to the join indexes it belongs in.
func (r *ruleState) index(p *partial) {
	for _, j := range r.joins {
		key, loose, in := j.entry(p)
		switch {
		case !in:
		case loose:
			j.loose[p] = struct{}{}
		default:
			set := j.byKey[key]
			if set == nil {
				set = map[*partial]struct{}{}
				j.byKey[key] = set
			}
			set[p] = struct{}{}
		}
	}
}

// unindex takes p out of every join index, before its slots change.
func (r *ruleState) unindex(p *partial) {
	for _, j := range r.joins {
		key, loose, in := j.entry(p)
		switch {
		case !in:
		case loose:
			delete(j.loose, p)
		default:
			set := j.byKey[key]
			delete(set, p)
			if len(set) == 0 {
				delete(j.byKey, key)
			}
		}
	}
}

// candidates returns, in the order they were opened, the partial matches
// that item it may join (adm from admitted): those a join index finds for
// each admitted open slot. ok is false when an admitted open slot has no
// index, or it lacks a key for it: then any partial may be one.
func (r *ruleState) candidates(it *item, adm []bool, buf []*partial) (out []*partial, ok bool) {
	if len(r.joins) == 0 {
		return nil, false
	}
	out = buf[:0]
	for i, admitted := range adm {
		if !admitted || r.open[i] == 0 {
			continue
		}
		j := r.joinAt(i)
		if j == nil {
			return nil, false
		}
		v, found := lookup(it.data, j.item)
		key, keyed := joinKey(v)
		if !found || !keyed {
			return nil, false
		}
		for p := range j.byKey[key] {
			out = append(out, p)
		}
		for p := range j.loose {
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
		if j == nil || p.slots[j.match] == nil {
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
