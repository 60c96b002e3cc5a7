package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

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
	newest  *throttleMember // the group matched last
}

// throttleMember is one group's match in a once_after window of the rule.
type throttleMember struct {
	trigger *item
	bound   map[string]*item
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
				w.newest = m
				return nil
			}
			m := &throttleMember{trigger: trigger, bound: bound}
			w.byKey[key] = m
			w.members = append(w.members, m)
			w.newest = m
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
// (each group's in the order of its names), the newest match as the
// event.
func windowMatch(g *throttleGroup) (*item, map[string]*item) {
	if len(g.members) == 1 {
		return g.members[0].trigger, g.members[0].bound
	}
	bound := map[string]*item{}
	for _, m := range g.members {
		names := make([]string, 0, len(m.bound))
		for k := range m.bound {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			bound[fmt.Sprintf("m_%d", len(bound))] = m.bound[k]
		}
	}
	return g.newest.trigger, bound
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
