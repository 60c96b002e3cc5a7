package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// stateRules keep every kind of rule state: multi-event rules joined by
// value (of either number type), across three events, with || and with
// facts on either side; not_all windows with a post_event cascade; every throttle;
// set_fact and retract_fact; any. Rule order matters: the first rule an
// event matches takes it.
const stateRules = `    - name: triple
      condition:
        all:
          - event.k == "a" && event.v > 3
          - event.k == "c" && (event.h == events.m_0.h || event.v == events.m_0.v)
          - event.v < 5 && events.m_1.h != event.h
        timeout: 4m
      action: {none: {}}
    - name: same value
      condition:
        all:
          - events.first << event.k == "x"
          - event.k == "y" && event.v == events.first.v
          - events.third << event.k == "z" && events.first.h == event.h && event.v == events.first.v
        timeout: 3m
      action: {none: {}}
    - name: pair
      condition:
        all: [event.k == "a", event.k == "b" && event.h == events.m_0.h]
        timeout: 2m
      action: {none: {}}
    - name: missing end
      condition:
        not_all:
          - events.s << event.k == "start"
          - event.k == "end" && event.h == events.s.h
        timeout: 3m
      action: {post_event: {event: {k: "late", h: "{{ events.s.h }}"}}}
    - name: late
      condition: event.k == "late"
      action: {none: {}}
    - name: once per host
      condition: event.k == "disk"
      throttle: {once_within: 2m, group_by: [event.h]}
      action: {none: {}}
    - name: after per host
      condition: event.k == "cpu"
      throttle: {once_after: 90s, group_by: [event.h]}
      action: {none: {}}
    - name: two per host
      condition: event.k == "mem"
      throttle: {accumulate_within: 3m, threshold: 2, group_by: [event.h]}
      action: {none: {}}
    - name: remember
      condition: event.k == "fact"
      action: {set_fact: {fact: {k: "known", h: "{{ event.h }}", v: "{{ event.v }}"}}}
    - name: forget
      condition: event.k == "forget"
      action: {retract_fact: {fact: {k: "known", h: "{{ event.h }}"}}}
    - name: page owner
      condition:
        all:
          - event.k == "alert"
          - fact.k == "known" && fact.h == events.m_0.h
        timeout: 4m
      action: {none: {}}
    - name: with fact
      condition:
        all: [fact.k == "known", event.k == "probe" && event.h == events.m_0.h]
        timeout: 4m
      action: {none: {}}
    - name: either
      condition:
        any: [event.k == "x" && event.v > 7, event.k == "probe" && event.v == 2]
      action: {none: {}}
`

// randomRun is an engine over stateRules, and a run of it from a seed.
type randomRun struct {
	t        *testing.T
	eng      *engine.Engine
	clock    *engine.FakeClock
	rulesets []*engine.Ruleset
	rec      *firingRecorder
	rng      *rand.Rand
	seq      uint64
}

func newRandomRun(t *testing.T, seed uint64) *randomRun {
	t.Helper()
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	clock := engine.NewFakeClock(t0)
	rb, err := rulebooks.Parse("test.yml", []byte(rulebook(stateRules)), rulebooks.Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	rec := &firingRecorder{}
	return &randomRun{t: t, clock: clock, rulesets: rb.Rulesets, rec: rec, rng: rand.New(rand.NewPCG(seed, 6)),
		eng: engine.New(rb.Rulesets, engine.Options{Clock: clock, Dispatcher: rec})}
}

func (r *randomRun) process(event map[string]any) {
	r.t.Helper()
	r.seq++
	event["meta"] = map[string]any{"uuid": fmt.Sprint(r.seq)}
	rec := engine.Record{Seq: r.seq, Source: engine.SourceRef{Ruleset: "r"}, Event: engine.NewEvent(event, "s", "t", r.clock.Now())}
	if err := r.eng.Process(context.Background(), rec); err != nil {
		r.t.Fatal(err)
	}
}

// step moves the clock up to 20 s and then ticks, or processes an event of
// a random kind, host and value (an int, a float, a list, null or none).
// Now and then it first opens 20 not_all windows no end comes for, and
// moves the clock 10 minutes, so that they time out together.
func (r *randomRun) step() {
	r.t.Helper()
	rng := r.rng
	r.clock.Advance(time.Duration(rng.IntN(20)) * time.Second)
	if rng.IntN(500) == 0 {
		for h := range 20 {
			r.process(ev("k", "start", "h", fmt.Sprintf("b%d", h)))
		}
		r.clock.Advance(10 * time.Minute)
	}
	if rng.IntN(10) == 0 {
		if err := r.eng.Tick(context.Background()); err != nil {
			r.t.Fatal(err)
		}
		return
	}
	kinds := []string{"a", "b", "c", "start", "end", "disk", "cpu", "mem", "fact", "fact", "fact", "forget", "probe", "alert", "x", "y", "z", "x", "y", "z"}
	event := ev("k", kinds[rng.IntN(len(kinds))], "h", fmt.Sprintf("h%d", rng.IntN(6)))
	values := 10
	if k := event["k"]; k == "x" || k == "y" || k == "z" {
		values = 3 // joins on v meet often, across number types
	}
	switch rng.IntN(5) {
	case 0:
		event["v"] = rng.IntN(values)
	case 1:
		event["v"] = float64(rng.IntN(values))
	case 2:
		event["v"] = []any{1.0}
	case 3:
		event["v"] = nil
	}
	if rng.IntN(20) == 0 {
		delete(event, "h")
	}
	r.process(event)
}

// fired counts the firings per rule.
func (r *randomRun) fired() map[string]int {
	out := map[string]int{}
	for _, f := range r.rec.firings {
		out[f.Rule]++
	}
	return out
}
