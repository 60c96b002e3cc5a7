package engine

import (
	"cmp"
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
type joinIndex struct {
	slot, match int   // the condition's slot, and the joined match's
	item        []any // keys into the item
	path        []any // keys into the joined match
	byKey       map[string]map[*partial]struct{}
	loose       map[*partial]struct{}
	at          map[*partial]joinEntry
}

type joinEntry struct {
	key   string
	loose bool
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
		out = append(out, &joinIndex{slot: i, match: m, item: c.join.item, path: c.join.path,
			byKey: map[string]map[*partial]struct{}{}, loose: map[*partial]struct{}{}, at: map[*partial]joinEntry{}})
	}
	return out
}

// joinKey is the index key of a value: values that `==` finds equal get
// the same key (numbers of every type by their float64 value, so 1 and
// 1.0 meet; -0 as 0). ok is false for values without one (lists, maps).
func joinKey(v any) (string, bool) {
	num := func(f float64) (string, bool) {
		if f == 0 {
			f = 0 // -0 == 0
		}
		return "d" + strconv.FormatFloat(f, 'g', -1, 64), true
	}
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
	case float64:
		if math.IsNaN(x) {
			return "", false
		}
		return num(x)
	case float32:
		return num(float64(x))
	case int:
		return num(float64(x))
	case int64:
		return num(float64(x))
	case int32:
		return num(float64(x))
	case uint:
		return num(float64(x))
	case uint64:
		return num(float64(x))
	case uint32:
		return num(float64(x))
	}
	return "", false
}

// index adds p (one of r's partials) to the join indexes it belongs in.
func (r *ruleState) index(p *partial) {
	for _, j := range r.joins {
		if p.slots[j.slot] != nil || p.slots[j.match] == nil {
			continue
		}
		v, found := lookup(p.slots[j.match].data, j.path)
		key, ok := joinKey(v)
		if !found || !ok {
			j.loose[p] = struct{}{}
			j.at[p] = joinEntry{loose: true}
			continue
		}
		set := j.byKey[key]
		if set == nil {
			set = map[*partial]struct{}{}
			j.byKey[key] = set
		}
		set[p] = struct{}{}
		j.at[p] = joinEntry{key: key}
	}
}

// unindex takes p out of every join index.
func (r *ruleState) unindex(p *partial) {
	for _, j := range r.joins {
		e, ok := j.at[p]
		if !ok {
			continue
		}
		delete(j.at, p)
		if e.loose {
			delete(j.loose, p)
			continue
		}
		set := j.byKey[e.key]
		delete(set, p)
		if len(set) == 0 {
			delete(j.byKey, e.key)
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
		var j *joinIndex
		for _, x := range r.joins {
			if x.slot == i {
				j = x
				break
			}
		}
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
