package engine

// ReloadSummary says what Replace kept.
type ReloadSummary struct {
	Rulesets    int `json:"rulesets"`
	Rules       int `json:"rules"`
	KeptRules   int `json:"kept_rules"`
	ResetRules  int `json:"reset_rules"`
	KeptFacts   int `json:"kept_facts"`
	DroppedSets int `json:"dropped_rulesets"`
}

// CompareRulesets says what replacing the rulesets prev by next keeps: the
// summary Replace returns, but for KeptFacts, which only an engine holds.
// A rule is kept when its ruleset keeps its name and a rule of that
// ruleset had the same name and fingerprint.
func CompareRulesets(prev, next []*Ruleset) ReloadSummary {
	var sum ReloadSummary
	byName := make(map[string]*Ruleset, len(prev))
	for _, rs := range prev {
		byName[rs.Name] = rs
	}
	kept := make(map[string]bool, len(next))
	for _, rs := range next {
		sum.Rulesets++
		sum.Rules += len(rs.Rules)
		kept[rs.Name] = true
		if old := byName[rs.Name]; old != nil {
			for _, r := range rs.Rules {
				for _, pr := range old.Rules {
					if sameRule(pr, r) {
						sum.KeptRules++
						break
					}
				}
			}
		}
	}
	for _, rs := range prev {
		if !kept[rs.Name] {
			sum.DroppedSets++
		}
	}
	sum.ResetRules = sum.Rules - sum.KeptRules
	return sum
}

// sameRule reports whether next is prev unchanged, so its state carries
// over a reload.
func sameRule(prev, next *Rule) bool {
	return prev.Name == next.Name && prev.Fingerprint != "" && prev.Fingerprint == next.Fingerprint
}

// Replace swaps in new rulesets atomically: events processed before it see
// the old rules, events after it the new ones. Facts of rulesets that keep
// their name are kept, and so is the state (partial matches, throttle
// windows, counters) of every rule whose name and fingerprint are unchanged;
// changed and new rules start empty.
func (e *Engine) Replace(rulesets []*Ruleset) ReloadSummary {
	e.mu.Lock()
	defer e.mu.Unlock()
	prev := make([]*Ruleset, len(e.rulesets))
	for i, s := range e.rulesets {
		prev[i] = s.rs
	}
	sum := CompareRulesets(prev, rulesets)
	old := e.byName
	e.rulesets = nil
	e.byName = map[string]*rsState{}
	stats := map[string]*RuleStats{}
	for _, rs := range rulesets {
		s := newRulesetState(rs)
		if prev := old[rs.Name]; prev != nil {
			s.facts, s.factIDs = prev.facts, prev.factIDs
			sum.KeptFacts += len(prev.facts)
			for i, r := range s.rules {
				for _, pr := range prev.rules {
					if sameRule(pr.rule, r.rule) {
						pr.rule = r.rule
						pr.factAdm = nil // vars may differ
						s.rules[i] = pr
						break
					}
				}
			}
		}
		for _, r := range rs.Rules {
			key := rs.Name + "\x00" + r.Name
			if st := e.stats[key]; st != nil {
				stats[key] = st
			} else {
				stats[key] = &RuleStats{Ruleset: rs.Name, Rule: r.Name}
			}
		}
		e.rulesets = append(e.rulesets, s)
		e.byName[rs.Name] = s
	}
	for name, prev := range old {
		if e.byName[name] == nil {
			for _, f := range prev.facts { // its facts go with it
				e.logFact(prev, f, false)
			}
		}
	}
	e.stats = stats
	e.linkStats()
	return sum
}
