package engine

import "time"

// NextTimerFiring returns the earliest due time of a timer that will fire
// a rule: a not_all window (which fires when it ends unmatched) or a
// once_after window. Expiring `all` partial matches and once_within or
// accumulate_within windows fire nothing and are not counted. When every
// source has ended, Event-Driven Ansible still waits for these before it
// stops; the CLI does the same with this.
func (e *Engine) NextTimerFiring() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var next time.Time
	for _, s := range e.rulesets {
		for _, ri := range s.timed {
			r := s.rules[ri]
			for _, d := range r.deadlines {
				fires := d.p != nil && r.rule.Kind == NotAll ||
					d.g != nil && r.rule.Throttle != nil && r.rule.Throttle.Kind == OnceAfter
				if fires && (next.IsZero() || d.at.Before(next)) {
					next = d.at
				}
			}
		}
	}
	return next, !next.IsZero()
}
