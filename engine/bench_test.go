package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// benchEngine is an engine over the rulebook src, on a fake clock, that
// counts its firings, and a send that processes one event at the clock's
// time as the next journal record.
type benchEngine struct {
	b     *testing.B
	eng   *engine.Engine
	clock *engine.FakeClock
	fired int
	seq   uint64
}

func newBenchEngine(b *testing.B, src string) *benchEngine {
	return newBenchEngineOpts(b, src, false)
}

func newBenchEngineOpts(b *testing.B, src string, noIndex bool) *benchEngine {
	b.Helper()
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	be := &benchEngine{b: b, clock: engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	rb, err := rulebooks.Parse("bench.yml", []byte(src), rulebooks.Options{Registry: reg, Clock: be.clock})
	if err != nil {
		b.Fatal(err)
	}
	be.eng = engine.New(rb.Rulesets, engine.Options{Clock: be.clock, NoRuleIndex: noIndex, OnFiring: func(*engine.Firing, []engine.RenderedAction) { be.fired++ }})
	return be
}

func (be *benchEngine) send(ev map[string]any) {
	be.seq++
	ev["meta"] = map[string]any{"uuid": fmt.Sprint(be.seq)}
	rec := engine.Record{Seq: be.seq, Source: engine.SourceRef{Ruleset: "bench", Name: "generic", Type: "generic"}, Event: ev}
	if err := be.eng.Process(context.Background(), rec); err != nil {
		be.b.Fatal(err)
	}
}

// measure runs step b.N times and reports events/s, after checking that
// every step fired once.
func (be *benchEngine) measure(eventsPerStep int, step func(i int)) {
	b := be.b
	be.fired = 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		step(i)
	}
	cpu = processCPU() - cpu
	b.StopTimer()
	if be.fired != b.N {
		b.Fatalf("fired %d times in %d steps", be.fired, b.N)
	}
	b.ReportMetric(float64(eventsPerStep*b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(eventsPerStep*b.N)/cpu.Seconds(), "cpu-events/s")
	}
}

// BenchmarkEngine100Rules measures events per second through the engine:
// 100 rules, the none action, and events that only the last rule matches,
// so every event is tested against all 100 conditions (the worst case).
//
//	go test ./engine -run '^$' -bench Engine100Rules -benchtime 2s
func BenchmarkEngine100Rules(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("- name: bench\n  sources:\n    - generic: {payload: []}\n  rules:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&sb, "    - name: rule %d\n      condition: event.kind == \"k%d\" && event.value > %d\n      action: {none: {}}\n", i, i, i)
	}
	be := newBenchEngine(b, sb.String())
	be.measure(1, func(int) { be.send(map[string]any{"kind": "k99", "value": 1000.0}) })
}

// BenchmarkRulesFirstMatches measures the cost of counting consumed
// events (RuleStats.Consumed): events that the first rule matches, so the
// later conditions are tested only to count what it consumed. With 16
// rules (engine.MaxConsumedRules) they are counted: an event costs as much
// as one that matches no rule; with 17 they are not.
//
//	go test ./engine -run '^$' -bench RulesFirstMatches -benchtime 20000x
func BenchmarkRulesFirstMatches(b *testing.B) {
	for _, n := range []int{engine.MaxConsumedRules, engine.MaxConsumedRules + 1} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			var sb strings.Builder
			sb.WriteString("- name: bench\n  sources:\n    - generic: {payload: []}\n  rules:\n")
			for i := 0; i < n; i++ {
				fmt.Fprintf(&sb, "    - name: rule %d\n      condition: event.kind == \"k%d\" && event.value > %d\n      action: {none: {}}\n", i, i, i)
			}
			be := newBenchEngine(b, sb.String())
			be.measure(1, func(int) { be.send(map[string]any{"kind": "k0", "value": 1000.0}) })
		})
	}
}

// BenchmarkThrottleManyGroups processes events of a throttled rule while it
// holds many open throttle groups (one per host, as `group_by: [event.host]`
// keeps for a large fleet): the cost of an event must not grow with the
// number of groups. Each event is for a new host, one second after the
// previous, so groups also fall due continually once the window is full.
//
//	go test ./engine -run '^$' -bench ThrottleManyGroups
func BenchmarkThrottleManyGroups(b *testing.B) {
	for _, groups := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			be := newBenchEngine(b, fmt.Sprintf(`- name: bench
  sources:
    - generic: {payload: []}
  rules:
    - name: once per host
      condition: event.kind == "disk"
      throttle: {once_within: %ds, group_by: [event.host]}
      action: {none: {}}
`, groups))
			host := 0
			step := func(int) {
				host++
				be.clock.Advance(time.Second)
				be.send(map[string]any{"kind": "disk", "host": fmt.Sprintf("h%d", host)})
			}
			for range groups { // fill the window: `groups` groups open
				step(0)
			}
			be.measure(1, step)
		})
	}
}

// BenchmarkAllManyPartials processes events of a two-event rule joined on
// the host while it holds many partial matches (hosts that went down and
// have not come back): per step one host goes down (a new partial) and a
// host down since a random time comes back (completing its match).
//
//	go test ./engine -run '^$' -bench AllManyPartials
func BenchmarkAllManyPartials(b *testing.B) {
	benchFlapJoin(b, "partials", "down", "up")
}

// BenchmarkAllManyWaiting is BenchmarkAllManyPartials the other way
// round: the events that refer to an earlier match arrive first and wait
// (a host's "up" before its "down"), found by the value they need (the
// reverse join index) when the event they refer to arrives.
//
//	go test ./engine -run '^$' -bench AllManyWaiting
func BenchmarkAllManyWaiting(b *testing.B) {
	benchFlapJoin(b, "waiting", "up", "down")
}

// benchFlapJoin runs the two-event host join (a "down" then an "up" for
// the same host) holding n pending events of kind held, n = 100 and
// 10,000: per step one more host sends held and a host pending since a
// random time sends closing, completing its match.
func benchFlapJoin(b *testing.B, label, held, closing string) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("%s=%d", label, n), func(b *testing.B) {
			be := newBenchEngine(b, `- name: bench
  sources:
    - generic: {payload: []}
  rules:
    - name: flap
      condition:
        all:
          - event.k == "down"
          - event.k == "up" && event.h == events.m_0.h
      action: {none: {}}
`)
			pending := make([]int, 0, n+1) // hosts pending, in any order
			next := 0
			for range n {
				pending = append(pending, next)
				be.send(map[string]any{"k": held, "h": fmt.Sprintf("h%d", next)})
				next++
			}
			rng := rand.New(rand.NewPCG(1, 1))
			be.measure(2, func(int) {
				pending = append(pending, next)
				be.send(map[string]any{"k": held, "h": fmt.Sprintf("h%d", next)})
				next++
				j := rng.IntN(len(pending))
				host := pending[j]
				pending[j] = pending[len(pending)-1]
				pending = pending[:len(pending)-1]
				be.send(map[string]any{"k": closing, "h": fmt.Sprintf("h%d", host)})
			})
		})
	}
}

// BenchmarkManyFacts processes alerts that a two-event rule joins with
// one of many facts (an owner per host, set with set_fact): the cost of an
// alert must not grow with the number of facts.
//
//	go test ./engine -run '^$' -bench ManyFacts
func BenchmarkManyFacts(b *testing.B) {
	for _, facts := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("facts=%d", facts), func(b *testing.B) {
			be := newBenchEngine(b, `- name: bench
  sources:
    - generic: {payload: []}
  rules:
    - name: owner
      condition: event.k == "owner"
      action: {set_fact: {fact: {host: "{{ event.h }}", team: "t{{ event.h }}"}}}
    - name: page the owner
      condition:
        all:
          - event.k == "alert"
          - fact.team != "" && fact.host == events.m_0.h
      action: {none: {}}
`)
			for h := range facts {
				be.send(map[string]any{"k": "owner", "h": fmt.Sprintf("h%d", h)})
			}
			be.measure(1, func(i int) {
				be.send(map[string]any{"k": "alert", "h": fmt.Sprintf("h%d", (i*7919)%facts)}) // hosts all over the list
			})
		})
	}
}

// alertRules is a ruleset of n rules, rule i with the condition cond(i).
func alertRules(n int, cond func(i int) string) string {
	var sb strings.Builder
	sb.WriteString("- name: bench\n  sources:\n    - generic: {payload: []}\n  rules:\n")
	for i := range n {
		fmt.Fprintf(&sb, "    - name: rule %d\n      condition: %s\n      action: {none: {}}\n", i, cond(i))
	}
	return sb.String()
}

// measureAlerts processes the events of issue 17,
// {"alertname":"A<k>","host":"h<k>","cpu":<0-99>,"i":<n>} with k uniform
// over 10,000, and reports events/s.
func (be *benchEngine) measureAlerts() {
	b := be.b
	rng := rand.New(rand.NewPCG(1, 7))
	events := make([]map[string]any, 4096)
	for n := range events {
		k := rng.IntN(10_000)
		events[n] = map[string]any{"alertname": fmt.Sprintf("A%d", k), "host": fmt.Sprintf("h%d", k), "cpu": float64(rng.IntN(100)), "i": float64(n)}
	}
	runtime.GC() // the garbage of the load is not the events' cost
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		ev := events[i%len(events)]
		be.send(map[string]any{"alertname": ev["alertname"], "host": ev["host"], "cpu": ev["cpu"], "i": ev["i"]})
	}
	b.StopTimer()
	reportRates(b, processCPU()-cpu)
}

// reportRates reports events/s by wall time and, as the shared machine
// skews it, by the CPU time the process used (cpu-events/s: one core).
func reportRates(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "cpu-events/s")
	}
}

func equalityRule(i int) string { return fmt.Sprintf(`event.alertname == "A%d"`, i) }

func hostCPURule(i int) string { return fmt.Sprintf(`event.host == "h%d" && event.cpu > 90`, i) }

// BenchmarkEngine10Rules ... 10000HostCPU measure how the cost of an event
// grows with the rules when the rule index can select them (issue 17: 10,000
// equality rules at least 0.5 of the throughput of 10). Compare the
// events/s within one run:
//
//	go test ./engine -run '^$' -bench 'Engine(10|1000|10000|10000HostCPU)Rules$' -benchtime 20000x
func BenchmarkEngine10Rules(b *testing.B) {
	newBenchEngine(b, alertRules(10, equalityRule)).measureAlerts()
}

func BenchmarkEngine1000Rules(b *testing.B) {
	newBenchEngine(b, alertRules(1000, equalityRule)).measureAlerts()
}

func BenchmarkEngine10000Rules(b *testing.B) {
	newBenchEngine(b, alertRules(10_000, equalityRule)).measureAlerts()
}

func BenchmarkEngine10000HostCPURules(b *testing.B) {
	newBenchEngine(b, alertRules(10_000, hostCPURule)).measureAlerts()
}

// BenchmarkEngineUnindexable measures 100 rules the index cannot select
// by, with the index and without: "none" has no indexable test at all,
// "exists" only paths that must exist, which every event has (the index
// selects every rule: its overhead, worst case).
//
//	go test ./engine -run '^$' -bench EngineUnindexable -benchtime 20000x
func BenchmarkEngineUnindexable(b *testing.B) {
	conds := map[string]func(int) string{
		"none":   func(i int) string { return fmt.Sprintf(`(event.cpu ?? 0) > %d`, 100+i) },
		"exists": func(i int) string { return fmt.Sprintf(`event.cpu * 2 > %d`, 200+i) },
	}
	for _, kind := range []string{"none", "exists"} {
		for _, noIndex := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/index=%v", kind, !noIndex), func(b *testing.B) {
				newBenchEngineOpts(b, alertRules(100, conds[kind]), noIndex).measureAlerts()
			})
		}
	}
}

// BenchmarkLoad10000Rules parses, compiles and indexes a rulebook of
// 10,000 `event.host == "h<i>" && event.cpu > 90` rules (issue 17: under
// 0.2 s and 100 MB).
//
//	go test ./engine -run '^$' -bench Load10000Rules -benchtime 3x
func BenchmarkLoad10000Rules(b *testing.B) {
	src := []byte(alertRules(10_000, hostCPURule))
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b.ReportAllocs()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		rb, err := rulebooks.Parse("bench.yml", src, rulebooks.Options{Registry: reg, Clock: clock})
		if err != nil {
			b.Fatal(err)
		}
		engine.New(rb.Rulesets, engine.Options{Clock: clock})
	}
	if cpu := processCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
