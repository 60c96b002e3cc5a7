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
	// logged says a suppressed match of this window was logged: the log
	// says so once per window and group, the counter counts every one.
	logged bool
}

// throttleMember is one group's match in a once_after window of the rule.
type throttleMember struct {
	trigger *item
	bound   map[string]*item
	logged  bool
}

// matched applies the rule's throttle and fires when it lets the match
// through.
func (e *Engine) matched(ctx context.Context, s *rsState, r *ruleState, trigger *item, bound map[string]*item, now time.Time) error {
	r.stats.Matched++
	th := r.rule.Throttle
	if th == nil {
		return e.fire(ctx, s, r, trigger, bound, now, false)
	}
	key := e.groupKey(s, th, trigger, bound)
	g := r.groups[key]
	switch th.Kind {
	case OnceWithin:
		if g != nil && now.Before(g.dl.at) {
			e.suppressed(s, r, key, &g.logged, g.dl.at, trigger, 0)
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
				// The group's earlier match will not fire: this one
				// replaces it.
				e.suppressed(s, r, key, &m.logged, w.dl.at, trigger, 0)
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
		// Keep the newest event; the firing reports every event of the
		// window. The earlier trigger will not fire: count it suppressed.
		e.suppressed(s, r, key, &g.logged, g.dl.at, trigger, 0)
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
			e.suppressed(s, r, key, &g.logged, g.dl.at, trigger, g.count)
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
		e.suppressed(s, r, key, &g.logged, g.dl.at, trigger, len(g.times))
	}
	return nil
}

// Why a match did not fire (RuleStats, rulebook_rule_suppressed_total).
const (
	SuppressedOnceWithin       = "once_within"
	SuppressedOnceAfter        = "once_after"
	SuppressedAccumulateWithin = "accumulate_within"
	// SuppressedConsumed: an earlier rule matched the event and consumed
	// it (match_multiple_rules: false); see RuleStats.Consumed.
	SuppressedConsumed = "consumed"
)

// throttleReason names a throttle kind as a suppression reason.
func throttleReason(th *Throttle) string {
	if th == nil {
		return ""
	}
	switch th.Kind {
	case OnceWithin:
		return SuppressedOnceWithin
	case OnceAfter:
		return SuppressedOnceAfter
	}
	return SuppressedAccumulateWithin
}

// suppressed counts a match r's throttle kept from firing, and logs it at
// info the first time in the group's window (*logged says it was). count,
// for accumulate_within, is the group's matches so far in the window.
func (e *Engine) suppressed(s *rsState, r *ruleState, key string, logged *bool, until time.Time, trigger *item, count int) {
	th := r.rule.Throttle
	reason := throttleReason(th)
	switch th.Kind {
	case OnceWithin:
		r.stats.SuppressedOnceWithin++
	case OnceAfter:
		r.stats.SuppressedOnceAfter++
	default:
		r.stats.SuppressedAccumulateWithin++
	}
	if *logged || e.replaying {
		return
	}
	*logged = true
	ev := e.opts.Log.Info().Str("ruleset", s.rs.Name).Str("rule", r.rule.Name).Str("reason", reason).
		Time("window_ends", until)
	if len(th.GroupBy) > 0 {
		ev = ev.Strs("group", groupValues(key))
	}
	if th.Kind == AccumulateWithin {
		ev = ev.Int("count", count).Int("threshold", th.Threshold)
	}
	if trigger != nil && trigger.id != "" {
		ev = ev.Str("event_id", trigger.id)
	}
	ev.Msg("rule match suppressed by throttle; further ones in this window are counted, not logged")
}

// MaxConsumedRules bounds the rulesets whose consumed events are counted
// (RuleStats.Consumed): those with at most this many single-condition and
// any rules. Counting tests the later rules' conditions on every consumed
// event, so an event the first rule takes costs as much as one no rule
// matches; a larger ruleset is not counted (RuleStats.ConsumedCounted is
// false) rather than slowed down that much. `explain` answers for one
// event whatever the size.
const MaxConsumedRules = 16

// countsConsumed reports whether s's consumed events are counted.
func (s *rsState) countsConsumed() bool {
	if s.consumed == 0 {
		n := 0
		for _, r := range s.rules {
			if r.rule.Kind == Single || r.rule.Kind == Any {
				n++
			}
		}
		s.consumed = 2
		if !s.rs.MatchMultiple && n <= MaxConsumedRules {
			s.consumed = 1
		}
	}
	return s.consumed == 1
}

// consumedCounted reports whether rule r of s has its consumed events
// counted.
func (s *rsState) consumedCounted(r *Rule) bool {
	return (r.Kind == Single || r.Kind == Any) && s.countsConsumed()
}

// countConsumed counts, after rule r matched item it and consumed it
// (match_multiple_rules: false), every later enabled rule whose condition
// the item meets on its own: a single-condition rule or an any rule, tested
// as evaluate would have. A later all or not_all rule is not counted: that
// the item would have completed or opened one of its matches depends on its
// partial matches, and finding out would cost a join per consumed item.
// Rulesets with more than MaxConsumedRules such rules are not counted.
func (e *Engine) countConsumed(s *rsState, r *ruleState, it *item) {
	if !s.countsConsumed() {
		return
	}
	after := false
	for _, later := range s.rules {
		if !after {
			after = later == r
			continue
		}
		if !later.rule.Enabled || (later.rule.Kind != Single && later.rule.Kind != Any) {
			continue
		}
		e.current = later.rule.Name
		for _, c := range later.rule.Conditions {
			if e.test(s, c, it, noBindings) == True {
				later.stats.Consumed++
				break
			}
		}
	}
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

// groupSep joins a throttle group's group_by values into its key
// (groupKey); groupValues splits the key back into them, for the log and
// explain.
const groupSep = "\x1f"

// groupValues returns the group_by values a groupKey joined.
func groupValues(key string) []string { return strings.Split(key, groupSep) }

// groupKey is the key of the throttle group of a match: its group_by
// values, rendered and joined.
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
	return strings.Join(parts, groupSep)
}
