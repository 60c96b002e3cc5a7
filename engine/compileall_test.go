package engine

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestStartConditionsAsSequential: compiled on several goroutines, each
// condition is what CompileCondition makes of it, errors included, in
// the order given; every condition judges the events alike. Run with
// -race, it also shows the goroutines share nothing they write.
func TestStartConditionsAsSequential(t *testing.T) {
	shapes := []string{
		`event.host == "h%d" && event.cpu > 90`,
		`event.alertname == "A%d"`,
		`event.i in [%d, 2.5, "x"] || defined(event.missing)`,
		`lower(event.alertname) == "a%d" and now() > timestamp("2020-01-01T00:00:00Z")`,
		`event.x == events.m_0.x && event.i > %d`,
		`event.cpu > vars.threshold + %d`,
		`not (event.host contains "h%d") && fact.owner == "ops"`,
		`event.host matches "^h%d$" ?? false`,
		`event.i == %d +`,         // a syntax error
		`event.i + %d`,            // not a boolean
		`nosuch(event.i) == %d`,   // an unknown function
		`event.host == "h%d" && `, // cut short
		`events.first.x == %d`,
	}
	var srcs []string
	for i := 0; len(srcs) < 3*parallelMin; i++ {
		srcs = append(srcs, fmt.Sprintf(shapes[i%len(shapes)], i))
	}
	clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	vars := map[string]any{"threshold": 80}
	comp := &Compiler{Clock: clock, Vars: vars}
	batch := comp.StartConditions(srcs)
	got, gotErrs := make([]*Condition, len(srcs)), make([]error, len(srcs))
	for i := range srcs {
		if i%7 == 0 {
			// The caller compiles other things meanwhile.
			if _, err := comp.CompileTemplate("{{ event.host }}"); err != nil {
				t.Fatal(err)
			}
		}
		got[i], gotErrs[i] = batch.Get(i)
	}
	batch.Stop()
	seq := &Compiler{Clock: clock, Vars: vars}
	events := []map[string]any{
		{"host": "h0", "cpu": 95, "alertname": "A1", "i": 1, "x": "y"},
		{"host": "h5", "cpu": 50.5, "alertname": "A5", "i": 5.0, "owner": "ops"},
		{"host": 7, "i": "x"},
		{},
	}
	matches := map[string]any{"m_0": map[string]any{"x": "y"}, "first": map[string]any{"x": 1}}
	for i, src := range srcs {
		want, wantErr := seq.CompileCondition(src)
		if fmt.Sprint(gotErrs[i]) != fmt.Sprint(wantErr) || !reflect.DeepEqual(gotErrs[i], wantErr) {
			t.Fatalf("%q: error %v, want %v", src, gotErrs[i], wantErr)
		}
		if wantErr != nil {
			if got[i] != nil {
				t.Fatalf("%q: a condition with the error", src)
			}
			continue
		}
		g, w := got[i], want
		if g.Source != w.Source || g.unbound != w.unbound || g.readsAny != w.readsAny ||
			!reflect.DeepEqual(g.reads, w.reads) || !reflect.DeepEqual(g.negatedFact, w.negatedFact) ||
			!reflect.DeepEqual(g.index, w.index) || !reflect.DeepEqual(g.join, w.join) || len(g.alpha) != len(w.alpha) {
			t.Fatalf("%q: compiled\n%+v\nwant\n%+v", src, g, w)
		}
		for _, ev := range events {
			var gotRep, wantRep []string
			gs := newEvalState(func(err error) { gotRep = append(gotRep, err.Error()) })
			ws := newEvalState(func(err error) { wantRep = append(wantRep, err.Error()) })
			gs.bind(ev, matches, vars)
			ws.bind(ev, matches, vars)
			if a, b := g.eval(gs), w.eval(ws); a != b {
				t.Fatalf("%q on %v: %v, want %v", src, ev, a, b)
			}
			if a, b := g.admits(gs), w.admits(ws); a != b {
				t.Fatalf("%q on %v: admits %v, want %v", src, ev, a, b)
			}
			if !reflect.DeepEqual(gotRep, wantRep) {
				t.Fatalf("%q on %v: reported %q, want %q", src, ev, gotRep, wantRep)
			}
		}
	}
}

// TestConditionBatchPartly: a batch read in part, out of order, and
// stopped early gives each condition it is asked for, and Stop returns.
func TestConditionBatchPartly(t *testing.T) {
	var srcs []string
	for i := 0; i < 2*parallelMin+5; i++ {
		srcs = append(srcs, fmt.Sprintf("event.i == %d", i))
	}
	for _, order := range [][]int{{len(srcs) - 1, 0, 40}, {}, {3, 2, 1}, {parallelMin, parallelMin + 1}} {
		b := (&Compiler{}).StartConditions(srcs)
		for _, i := range order {
			c, err := b.Get(i)
			if err != nil || c.Source != srcs[i] {
				t.Fatalf("Get(%d): %v, %v", i, c, err)
			}
		}
		b.Stop()
	}
	small := (&Compiler{}).StartConditions(srcs[:3]) // no helpers
	if c, err := small.Get(2); err != nil || c.Source != srcs[2] {
		t.Fatalf("small Get(2): %v, %v", c, err)
	}
	small.Stop()
}
