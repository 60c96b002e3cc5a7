package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// Join indexes only narrow the partial matches an item is tested against:
// an engine with them fires exactly what an engine testing every partial
// fires (times, rules, firing IDs, event IDs), over random runs of rules
// that join on values of both number types, on facts, with ||, and across
// three events, with events that lack the joined field or hold a list.
func TestJoinIndexesChangeNoFiring(t *testing.T) {
	rules := `    - name: triple
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
    - name: remember
      condition: event.k == "fact"
      action: {set_fact: {fact: {k: "known", h: "{{ event.h }}", v: "{{ event.v }}"}}}
    - name: forget
      condition: event.k == "forget"
      action: {retract_fact: {fact: {k: "known", h: "{{ event.h }}"}}}
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
	for seed := range uint64(3) {
		indexed, scanning := joinRun(t, rules, seed, false), joinRun(t, rules, seed, true)
		if indexed != scanning {
			t.Fatalf("seed %d: the indexed engine fired differently:\n%s", seed, firstDiff(indexed, scanning))
		}
		if !strings.Contains(indexed, " same value ") || !strings.Contains(indexed, " with fact ") || !strings.Contains(indexed, " missing end ") {
			t.Fatalf("seed %d: a joining rule never fired, the run proves little", seed)
		}
	}
}

// joinRun processes a random run through rules and returns its firings,
// one per line.
func joinRun(t *testing.T, rules string, seed uint64, scan bool) string {
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	clock := engine.NewFakeClock(t0)
	rb, err := rulebooks.Parse("test.yml", []byte(rulebook(rules)), rulebooks.Options{Registry: reg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	rec := &firingRecorder{}
	eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, Dispatcher: rec})
	if scan {
		eng.DropJoinIndexes()
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 6))
	kinds := []string{"a", "b", "c", "start", "end", "fact", "forget", "probe", "x", "y", "z"}
	seq := uint64(0)
	process := func(event map[string]any) {
		seq++
		event["meta"] = map[string]any{"uuid": fmt.Sprint(seq)}
		r := engine.Record{Seq: seq, Source: engine.SourceRef{Ruleset: "r"}, Event: engine.NewEvent(event, "s", "t", clock.Now())}
		if err := eng.Process(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for range 20000 {
		clock.Advance(time.Duration(rng.IntN(20)) * time.Second)
		if rng.IntN(500) == 0 {
			// Windows of hosts no end comes for: they all time out
			// together, and fire in the order they opened.
			for h := range 20 {
				process(ev("k", "start", "h", fmt.Sprintf("b%d", h)))
			}
			clock.Advance(10 * time.Minute)
		}
		if rng.IntN(10) == 0 {
			if err := eng.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		} else {
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
			process(event)
		}
	}
	var log strings.Builder
	for _, f := range rec.firings {
		fmt.Fprintf(&log, "%s %s %s %v\n", f.Time.Sub(t0), f.Rule, f.ID, f.EventIDs)
	}
	return log.String()
}

// firstDiff shows the first line where a and b differ.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  %s\n  %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines against %d", len(al), len(bl))
}
