package engine

import (
	"container/heap"
	"context"
	"sort"
	"time"
)

// deadline is when a partial match expires (a not_all window times out) or
// a throttle group's window ends. Each is in its rule's heap of deadlines
// (ruleState.deadlines), so finding what is due costs the due entries, not
// a walk over every partial match and group: a rule throttled per host of a
// large fleet holds a group per host.
type deadline struct {
	at  time.Time
	idx int // position in the heap, -1 when not in it
	// Exactly one of p and g is set; key is g's key in ruleState.groups.
	p   *partial
	g   *throttleGroup
	key string
}

// deadlines is a min-heap of deadline by time (container/heap).
type deadlines []*deadline

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlines) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h *deadlines) Push(x any) {
	d := x.(*deadline)
	d.idx = len(*h)
	*h = append(*h, d)
}

func (h *deadlines) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	d.idx = -1
	return d
}

// newPartial returns an empty partial match of r expiring at `at`; it is
// in r's deadlines once added with addPartial.
func newPartial(r *ruleState, at time.Time) *partial {
	p := &partial{slots: make([]*item, len(r.rule.Conditions)), owner: r}
	p.dl = deadline{at: at, idx: -1, p: p}
	return p
}

// addPartial keeps p among r's partial matches until it is consumed or
// expires, counting its empty slots in r.open and indexing it by the
// values its conditions join on.
func (r *ruleState) addPartial(p *partial) {
	p.seq = r.seq
	r.seq++
	r.partials = append(r.partials, p)
	heap.Push(&r.deadlines, &p.dl)
	for i, sl := range p.slots {
		if sl == nil {
			r.open[i]++
		} else if !sl.fact {
			sl.holders = append(sl.holders, p)
		}
	}
	r.index(p)
}

// dropPartialDeadline takes p's deadline out of r's heap (p was consumed).
func (r *ruleState) dropPartialDeadline(p *partial) {
	if p.dl.idx >= 0 {
		heap.Remove(&r.deadlines, p.dl.idx)
	}
}

// setGroup opens (or replaces) the throttle group of key, its window ending
// at `until`.
func (r *ruleState) setGroup(key string, g *throttleGroup, until time.Time) {
	if old := r.groups[key]; old != nil && old != g {
		r.deleteGroup(key)
	}
	if r.groups == nil {
		r.groups = map[string]*throttleGroup{}
	}
	r.groups[key] = g
	g.dl.p, g.dl.g, g.dl.key = nil, g, key
	g.dl.at = until
	if g.dl.idx >= 0 {
		heap.Fix(&r.deadlines, g.dl.idx)
	} else {
		heap.Push(&r.deadlines, &g.dl)
	}
}

// deleteGroup closes the throttle group of key.
func (r *ruleState) deleteGroup(key string) {
	g := r.groups[key]
	if g == nil {
		return
	}
	delete(r.groups, key)
	if g.dl.idx >= 0 {
		heap.Remove(&r.deadlines, g.dl.idx)
	}
}

// popDue takes out of r's heap every deadline at or before now.
func (r *ruleState) popDue(now time.Time) []*deadline {
	var due []*deadline
	for len(r.deadlines) > 0 && !now.Before(r.deadlines[0].at) {
		due = append(due, heap.Pop(&r.deadlines).(*deadline))
	}
	return due
}

// next returns r's earliest deadline, or the zero time.
func (r *ruleState) next() time.Time {
	if len(r.deadlines) == 0 {
		return time.Time{}
	}
	return r.deadlines[0].at
}

// newGroup returns a throttle group, not yet in a rule's deadlines (see
// setGroup).
func newGroup(trigger *item, bound map[string]*item) *throttleGroup {
	g := &throttleGroup{trigger: trigger, bound: bound}
	g.dl.idx = -1
	return g
}

// expire fires due timers and drops expired state. A rule's due partial
// matches are handled in the order they were opened, its due groups in key
// order, so the firings do not depend on the heap's order of equal
// deadlines.
func (e *Engine) expire(ctx context.Context) error {
	now := e.now()
	for _, s := range e.rulesets {
		for _, ri := range s.timed {
			r := s.rules[ri]
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

// timedRules returns the positions of the rules that may hold deadlines
// (partial matches of all and not_all, throttle groups): expire and
// NextDeadline look at those only, so that a large ruleset of plain rules
// costs nothing per event there.
func timedRules(rules []*Rule) []int {
	var out []int
	for i, r := range rules {
		if r.Kind == All || r.Kind == NotAll || r.Throttle != nil {
			out = append(out, i)
		}
	}
	return out
}
