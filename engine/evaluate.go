package engine

import (
	"cmp"
	"context"
	"slices"
)

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
	for _, r := range e.candidates(s, it) {
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
			e.countConsumed(s, r, it)
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

func itemsData(bound map[string]*item) map[string]any {
	m := make(map[string]any, len(bound))
	for k, v := range bound {
		m[k] = v.data
	}
	return m
}
