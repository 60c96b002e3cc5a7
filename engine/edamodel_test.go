package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// Differential tests of issue 15: random sequences of events through a
// rulebook, checked against a small reference model of Event-Driven
// Ansible's semantics written out below, firing by firing.

// diffRun is an engine fed by a test, recording its firings.
type diffRun struct {
	t     *testing.T
	eng   *engine.Engine
	clock *engine.FakeClock
	rec   *firingRecorder
	seq   uint64
}

func newDiffRun(t *testing.T, rb string) *diffRun {
	t.Helper()
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	clock := engine.NewFakeClock(t0)
	parsed, err := rulebooks.Parse("test.yml", []byte(rb), rulebooks.Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	rec := &firingRecorder{}
	return &diffRun{t: t, clock: clock, rec: rec, eng: engine.New(parsed.Rulesets, engine.Options{Clock: clock, Dispatcher: rec})}
}

// send processes event at `at` (timers due before fire first) and returns
// its ID.
func (d *diffRun) send(at time.Duration, event map[string]any) string {
	d.t.Helper()
	d.advance(at)
	d.seq++
	id := fmt.Sprint(d.seq)
	event["meta"] = map[string]any{"uuid": id}
	rec := engine.Record{Seq: d.seq, Source: engine.SourceRef{Ruleset: "r"}, Event: engine.NewEvent(event, "s", "t", d.clock.Now())}
	if err := d.eng.Process(context.Background(), rec); err != nil {
		d.t.Fatal(err)
	}
	if err := d.eng.CheckDeadlines(); err != nil {
		d.t.Fatal(err)
	}
	return id
}

func (d *diffRun) advance(at time.Duration) {
	d.t.Helper()
	if err := d.eng.AdvanceTo(context.Background(), d.clock, t0.Add(at)); err != nil {
		d.t.Fatal(err)
	}
}

// log renders the engine's firings as the model does: time, rule, the
// matched event IDs sorted.
func (d *diffRun) log() []string {
	var out []string
	for _, f := range d.rec.firings {
		out = append(out, firingLine(f.Time.Sub(t0), f.Rule, f.EventIDs))
	}
	return out
}

func firingLine(at time.Duration, rule string, ids []string) string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return fmt.Sprintf("%s %s %v", at, rule, ids)
}

func compareLogs(t *testing.T, seed uint64, got, want []string) {
	t.Helper()
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Fatalf("seed %d: engine and model differ:\n%s", seed, firstDiff(g+"\n", w+"\n"))
	}
}

// modelEvent is an event as the reference model sees it.
type modelEvent struct {
	id   string
	k    string
	v    int
	at   time.Duration
	gone bool // consumed by a firing
}

// TestDifferentialConsumeAndJoin: rules in order, no
// match_multiple_rules. EDA keeps every event a rule saw in working memory
// until a firing takes it (or its TTL ends); an all rule fires as soon as
// some events in memory meet all its conditions together, in any order of
// arrival, and each firing removes its events for every rule. The model
// searches the events in memory directly; the generator keeps (k, v)
// unique among live events, so at most one match can complete.
func TestDifferentialConsumeAndJoin(t *testing.T) {
	const ttl = time.Minute
	rules := `    - name: early
      condition: event.k == "b" && event.v == 2
      action: {none: {}}
    - name: chain
      condition:
        all:
          - event.k == "a"
          - event.k == "b" && event.v == events.m_0.v
          - event.k == "c" && event.v == events.m_1.v
        timeout: 1m
      action: {none: {}}
    - name: back
      condition:
        all:
          - event.k == "x"
          - event.k == "y" && event.v == events.m_0.v
        timeout: 1m
      action: {none: {}}
    - name: first
      condition: event.v == 0
      action: {none: {}}
`
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 15))
		d := newDiffRun(t, rulebook(rules))
		var want []string
		// seen[rule] are the events the rule saw, in arrival order.
		seen := map[string][]*modelEvent{}
		alive := func(e *modelEvent, now time.Duration) bool { return !e.gone && now < e.at+ttl }
		find := func(rule, k string, v int, now, since time.Duration) *modelEvent {
			for _, e := range seen[rule] {
				if e.k == k && e.v == v && alive(e, now) && e.at >= since {
					return e
				}
			}
			return nil
		}
		var at time.Duration
		for range 300 {
			at += time.Duration(rng.IntN(15)) * time.Second
			k := []string{"a", "b", "c", "x", "y", "n"}[rng.IntN(6)]
			v := rng.IntN(4)
			dup := false
			for _, es := range seen {
				for _, e := range es {
					dup = dup || (e.k == k && e.v == v && alive(e, at))
				}
			}
			if dup {
				continue
			}
			e := &modelEvent{id: d.send(at, ev("k", k, "v", v)), k: k, v: v, at: at}
			// The model, rule by rule.
			fire := func(rule string, es ...*modelEvent) {
				var ids []string
				for _, x := range es {
					x.gone = true
					ids = append(ids, x.id)
				}
				want = append(want, firingLine(at, rule, ids))
			}
			if k == "b" && v == 2 {
				fire("early", e)
				continue
			}
			if k == "a" || k == "b" || k == "c" {
				seen["chain"] = append(seen["chain"], e)
				a, b, c := find("chain", "a", v, at, 0), find("chain", "b", v, at, 0), find("chain", "c", v, at, 0)
				if a != nil && b != nil && c != nil && at < min(a.at, b.at, c.at)+ttl {
					fire("chain", a, b, c)
					continue
				}
			}
			if k == "x" || k == "y" {
				seen["back"] = append(seen["back"], e)
				x, y := find("back", "x", v, at, 0), find("back", "y", v, at, 0)
				if x != nil && y != nil && at < min(x.at, y.at)+ttl {
					fire("back", x, y)
					continue
				}
			}
			if v == 0 {
				fire("first", e)
			}
		}
		d.advance(at + time.Hour)
		got := d.log()
		compareLogs(t, seed, got, want)
		for _, rule := range []string{" chain ", " back ", " first ", " early "} {
			if !strings.Contains(strings.Join(want, "\n"), rule) {
				t.Fatalf("seed %d: %s never fired, the run proves little", seed, rule)
			}
		}
	}
}

// TestDifferentialThrottles: one event stream through the four throttle
// windows (match_multiple_rules, so each rule sees every event), against a
// model of each written from EDA's description: once_after opens one
// window for the rule at the first match and fires once when it ends,
// with the newest event of every group seen; accumulate_within counts a
// group's matches in the window its first match opened, firing at the
// threshold, a match after the window opening a new one. The engine's
// options are modelled too: once_after_per_group (a window per group) and
// accumulate_sliding (threshold matches within any window).
func TestDifferentialThrottles(t *testing.T) {
	const onceAfter, accWindow, threshold = 90 * time.Second, 10 * time.Second, 3
	rules := `    - name: after
      condition: event.x == 1
      throttle: {once_after: 90s, group_by: [event.h]}
      action: {none: {}}
    - name: after per group
      condition: event.x == 1
      throttle: {once_after: 90s, group_by: [event.h], once_after_per_group: true}
      action: {none: {}}
    - name: accumulate
      condition: event.x == 1
      throttle: {accumulate_within: 10s, threshold: 3, group_by: [event.h]}
      action: {none: {}}
    - name: sliding
      condition: event.x == 1
      throttle: {accumulate_within: 10s, threshold: 3, group_by: [event.h], accumulate_sliding: true}
      action: {none: {}}
`
	rb := strings.Replace(rulebook(rules), "  rules:\n", "  match_multiple_rules: true\n  rules:\n", 1)
	type window struct {
		end    time.Duration
		order  []string          // groups in the order first seen
		newest map[string]string // group → newest event ID
	}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 34))
		d := newDiffRun(t, rb)
		var want []string
		var rule *window                 // after
		perGroup := map[string]*window{} // after per group
		type count struct {
			start time.Duration
			n     int
		}
		acc := map[string]*count{}
		sliding := map[string][]time.Duration{}
		// due fires the once_after windows ending at or before now, in
		// time order (the rule's first at equal times, then groups by key).
		due := func(now time.Duration) {
			for {
				var next *window
				var key string
				if rule != nil && rule.end <= now {
					next, key = rule, ""
				}
				for _, h := range slices.Sorted(mapsKeys(perGroup)) {
					w := perGroup[h]
					if w.end <= now && (next == nil || w.end < next.end) {
						next, key = w, h
					}
				}
				if next == nil {
					return
				}
				var ids []string
				for _, h := range next.order {
					ids = append(ids, next.newest[h])
				}
				if next == rule {
					want = append(want, firingLine(next.end, "after", ids))
					rule = nil
				} else {
					want = append(want, firingLine(next.end, "after per group", ids))
					delete(perGroup, key)
				}
			}
		}
		var at time.Duration
		for range 400 {
			at += time.Duration(rng.IntN(8)) * time.Second
			h := fmt.Sprintf("h%d", rng.IntN(3))
			x := 1
			if rng.IntN(6) == 0 {
				x = 0
			}
			due(at)
			id := d.send(at, ev("x", x, "h", h))
			if x != 1 {
				continue
			}
			if rule == nil {
				rule = &window{end: at + onceAfter, newest: map[string]string{}}
			}
			if rule.newest[h] == "" {
				rule.order = append(rule.order, h)
			}
			rule.newest[h] = id
			if perGroup[h] == nil {
				perGroup[h] = &window{end: at + onceAfter, order: []string{h}, newest: map[string]string{}}
			}
			perGroup[h].newest[h] = id
			if c := acc[h]; c != nil && at >= c.start+accWindow {
				delete(acc, h)
			}
			if acc[h] == nil {
				acc[h] = &count{start: at}
			}
			if acc[h].n++; acc[h].n >= threshold {
				want = append(want, firingLine(at, "accumulate", []string{id}))
				delete(acc, h)
			}
			var recent []time.Duration
			for _, m := range sliding[h] {
				if m > at-accWindow {
					recent = append(recent, m)
				}
			}
			sliding[h] = append(recent, at)
			if len(sliding[h]) >= threshold {
				want = append(want, firingLine(at, "sliding", []string{id}))
				delete(sliding, h)
			}
		}
		at += time.Hour
		due(at)
		d.advance(at)
		// Firings at one time come in an order of their own (a record's
		// rules in order, timers before the record); compare them sorted
		// within each time.
		got := d.log()
		sortWithinTime(got)
		sortWithinTime(want)
		compareLogs(t, seed, got, want)
		for _, rule := range []string{" after [", " after per group ", " accumulate ", " sliding "} {
			if !strings.Contains(strings.Join(want, "\n"), rule) {
				t.Fatalf("seed %d: %s never fired, the run proves little", seed, rule)
			}
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sortWithinTime sorts log lines by time, keeping nothing of the order
// within one time.
func sortWithinTime(lines []string) {
	slices.SortStableFunc(lines, func(a, b string) int {
		ta, _, _ := strings.Cut(a, " ")
		tb, _, _ := strings.Cut(b, " ")
		da, _ := time.ParseDuration(ta)
		db, _ := time.ParseDuration(tb)
		if da != db {
			return int(da - db)
		}
		return strings.Compare(a, b)
	})
}

// TestDifferentialFacts: facts are not consumed (a fact fires every rule
// it matches, an event only the first), and retracting the last fact
// carrying x fires `not defined(fact.x)` with that fact. The model keeps
// the facts' x values and walks the rules in order.
func TestDifferentialFacts(t *testing.T) {
	rules := `    - name: set
      condition: event.k == "set"
      action: {set_fact: {fact: {x: "{{ event.n }}"}}}
    - name: clear
      condition: event.k == "clear"
      action: {retract_fact: {fact: {x: "{{ event.n }}"}}}
    - name: no x
      condition: not defined(fact.x)
      action: {none: {}}
    - name: pos
      condition: fact.x >= 1
      action: {none: {}}
    - name: big
      condition: fact.x >= 2
      action: {none: {}}
`
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 67))
		d := newDiffRun(t, rulebook(rules))
		var want []string
		var facts []int // x of each fact, in the order set
		line := func(at time.Duration, rule string, x any) string { return fmt.Sprintf("%s %s x=%v", at, rule, x) }
		var at time.Duration
		for range 300 {
			at += time.Duration(rng.IntN(5)) * time.Second
			n := rng.IntN(4)
			switch k := []string{"set", "clear", "clear", "other", "x"}[rng.IntN(5)]; k {
			case "set":
				d.send(at, ev("k", k, "n", n))
				want = append(want, line(at, "set", nil))
				facts = append(facts, n)
				// The fact goes through every rule.
				if n >= 1 {
					want = append(want, line(at, "pos", n))
				}
				if n >= 2 {
					want = append(want, line(at, "big", n))
				}
			case "clear":
				d.send(at, ev("k", k, "n", n))
				want = append(want, line(at, "clear", nil))
				gone := false
				facts = slices.DeleteFunc(facts, func(x int) bool {
					gone = gone || x == n
					return x == n
				})
				if gone && len(facts) == 0 {
					want = append(want, line(at, "no x", n))
				}
			case "other":
				d.send(at, ev("k", k))
				want = append(want, line(at, "no x", nil))
			case "x":
				d.send(at, ev("k", k, "x", n))
				if n >= 1 {
					want = append(want, line(at, "pos", n)) // the event is consumed
				}
			}
		}
		var got []string
		for _, f := range d.rec.firings {
			var x any
			if m, ok := f.Events["m_0"]; ok && f.Rule != "set" && f.Rule != "clear" {
				x = m["x"]
			}
			got = append(got, line(f.Time.Sub(t0), f.Rule, x))
		}
		compareLogs(t, seed, got, want)
		if !regexp.MustCompile(`no x x=\d`).MatchString(strings.Join(want, "\n")) {
			t.Fatalf("seed %d: no retraction fired no x, the run proves little", seed)
		}
	}
}
