package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
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
