package engine

import (
	"fmt"
	"slices"
)

// CheckDeadlines reports whether every rule's deadlines heap holds exactly
// its partial matches and throttle groups, each at its own index, in heap
// order, and whether its count of open slots per condition and its join
// indexes are right. Tests call it after every step.
func (e *Engine) CheckDeadlines() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	holders := map[*item][]*partial{}
	for _, s := range e.rulesets {
		for _, r := range s.rules {
			for _, p := range r.partials {
				if p.owner != r {
					return fmt.Errorf("%s/%s: a partial match of another rule", s.rs.Name, r.rule.Name)
				}
				for _, sl := range p.slots {
					if sl != nil && !sl.fact {
						holders[sl] = append(holders[sl], p)
					}
				}
			}
		}
	}
	for it, want := range holders {
		if len(it.holders) != len(want) {
			return fmt.Errorf("event %s is held by %d partials, lists %d", it.id, len(want), len(it.holders))
		}
		for _, p := range want {
			if !slices.Contains(it.holders, p) {
				return fmt.Errorf("event %s does not list a partial that holds it", it.id)
			}
		}
	}
	for _, s := range e.rulesets {
		for _, r := range s.rules {
			name := s.rs.Name + "/" + r.rule.Name
			if got, want := len(r.deadlines), len(r.partials)+len(r.groups); got != want {
				return fmt.Errorf("%s: %d deadlines for %d partials and %d groups", name, got, len(r.partials), len(r.groups))
			}
			for i, d := range r.deadlines {
				if d.idx != i {
					return fmt.Errorf("%s: deadline at %d has index %d", name, i, d.idx)
				}
				if i > 0 && d.at.Before(r.deadlines[(i-1)/2].at) {
					return fmt.Errorf("%s: heap order broken at %d", name, i)
				}
			}
			open := make([]int, len(r.rule.Conditions))
			for _, p := range r.partials {
				if p.dl.idx < 0 || r.deadlines[p.dl.idx] != &p.dl {
					return fmt.Errorf("%s: a partial match is not in the heap", name)
				}
				for i, sl := range p.slots {
					if sl == nil {
						open[i]++
					}
				}
			}
			if fmt.Sprint(open) != fmt.Sprint(r.open) {
				return fmt.Errorf("%s: open slots counted %v, partials have %v", name, r.open, open)
			}
			if len(r.joins) > 0 {
				want, size := 0, 0
				for _, p := range r.partials {
					for t, sl := range p.slots {
						if sl != nil {
							continue
						}
						want++
						j, key := r.filing(p, t)
						if j == nil {
							if _, in := r.loose[t][p]; !in {
								return fmt.Errorf("%s: slot %d: a loose partial is not loose", name, t)
							}
							continue
						}
						if _, in := j.byKey[key][p]; !in {
							return fmt.Errorf("%s: slot %d: a partial is not filed under %q", name, t, key)
						}
					}
				}
				for _, l := range r.loose {
					size += len(l)
				}
				for _, j := range r.joins {
					for _, set := range j.byKey {
						size += len(set)
					}
				}
				if size != want {
					return fmt.Errorf("%s: join indexes file %d partials, want %d", name, size, want)
				}
			}
			for k, g := range r.groups {
				if g.dl.idx < 0 || r.deadlines[g.dl.idx] != &g.dl || g.dl.key != k {
					return fmt.Errorf("%s: group %q is not in the heap under its key", name, k)
				}
			}
		}
	}
	return nil
}

// StateCounts returns the number of partial matches and groups per rule
// that holds any.
func (e *Engine) StateCounts() map[string][2]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string][2]int{}
	for _, s := range e.rulesets {
		for _, r := range s.rules {
			if len(r.partials)+len(r.groups) > 0 {
				out[r.rule.Name] = [2]int{len(r.partials), len(r.groups)}
			}
		}
	}
	return out
}

// DropJoinIndexes makes the engine test every partial match, as it did
// before join indexes: tests compare its firings with an indexed engine's.
func (e *Engine) DropJoinIndexes() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.rulesets {
		for _, r := range s.rules {
			r.joins = nil
		}
	}
}
