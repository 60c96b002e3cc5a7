package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

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
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rb, err := rulebooks.Parse("bench.yml", []byte(sb.String()), rulebooks.Options{Registry: reg, Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	fired := 0
	eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, OnFiring: func(*engine.Firing, []engine.RenderedAction) { fired++ }})
	ref := engine.SourceRef{Ruleset: "bench", Name: "generic", Type: "generic"}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := map[string]any{"kind": "k99", "value": 1000.0, "meta": map[string]any{"uuid": "x"}}
		if err := eng.Process(ctx, engine.Record{Seq: uint64(i + 1), Source: ref, Event: ev}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if fired != b.N {
		b.Fatalf("fired %d times for %d events", fired, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
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
			src := fmt.Sprintf(`- name: bench
  sources:
    - generic: {payload: []}
  rules:
    - name: once per host
      condition: event.kind == "disk"
      throttle: {once_within: %ds, group_by: [event.host]}
      action: {none: {}}
`, groups)
			reg := engine.NewRegistry()
			reg.RegisterSource(generic.Spec())
			clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			rb, err := rulebooks.Parse("bench.yml", []byte(src), rulebooks.Options{Registry: reg, Clock: clock})
			if err != nil {
				b.Fatal(err)
			}
			fired := 0
			eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, OnFiring: func(*engine.Firing, []engine.RenderedAction) { fired++ }})
			ref := engine.SourceRef{Ruleset: "bench", Name: "generic", Type: "generic"}
			ctx := context.Background()
			seq := uint64(0)
			step := func() {
				seq++
				clock.Advance(time.Second)
				ev := map[string]any{"kind": "disk", "host": fmt.Sprintf("h%d", seq), "meta": map[string]any{"uuid": "x"}}
				if err := eng.Process(ctx, engine.Record{Seq: seq, Source: ref, Event: ev}); err != nil {
					b.Fatal(err)
				}
			}
			for range groups { // fill the window: `groups` groups open
				step()
			}
			fired = 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			b.StopTimer()
			if fired != b.N {
				b.Fatalf("fired %d times for %d events", fired, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAllManyPartials processes events of a two-event rule joined on
// the host while it holds many partial matches (hosts that went down and
// have not come back): per step one host goes down (a new partial) and the
// oldest one comes back (completing its match).
//
//	go test ./engine -run '^$' -bench AllManyPartials
func BenchmarkAllManyPartials(b *testing.B) {
	for _, partials := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("partials=%d", partials), func(b *testing.B) {
			src := `- name: bench
  sources:
    - generic: {payload: []}
  rules:
    - name: flap
      condition:
        all:
          - event.k == "down"
          - event.k == "up" && event.h == events.m_0.h
      action: {none: {}}
`
			reg := engine.NewRegistry()
			reg.RegisterSource(generic.Spec())
			clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			rb, err := rulebooks.Parse("bench.yml", []byte(src), rulebooks.Options{Registry: reg, Clock: clock})
			if err != nil {
				b.Fatal(err)
			}
			fired := 0
			eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, OnFiring: func(*engine.Firing, []engine.RenderedAction) { fired++ }})
			ref := engine.SourceRef{Ruleset: "bench", Name: "generic", Type: "generic"}
			ctx := context.Background()
			seq := uint64(0)
			send := func(k string, host int) {
				seq++
				ev := map[string]any{"k": k, "h": fmt.Sprintf("h%d", host), "meta": map[string]any{"uuid": fmt.Sprint(seq)}}
				if err := eng.Process(ctx, engine.Record{Seq: seq, Source: ref, Event: ev}); err != nil {
					b.Fatal(err)
				}
			}
			for h := range partials {
				send("down", h)
			}
			fired = 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				send("down", partials+i)
				send("up", i)
			}
			b.StopTimer()
			if fired != b.N {
				b.Fatalf("fired %d times for %d pairs", fired, b.N)
			}
			b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
