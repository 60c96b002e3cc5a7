package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
	"github.com/rulebook-dev/rulebook/rulebooks"
	"github.com/rulebook-dev/rulebook/sources/generic"
)

// indexGen generates random rulebooks that mix conditions the rule index
// can select by (equality, in, ranges, defined, || of those, paths that
// must exist) with conditions it cannot (negations, ??, vars, comparisons
// of two fields), over fields that events often lack or hold as an int, a
// float, a string, a bool, null or a list; and random events for them.
type indexGen struct {
	rng *rand.Rand
}

var indexFields = []string{"a", "b", "c", "n.x"}

func (g *indexGen) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }

func (g *indexGen) constant() string {
	return g.pick("1", "1.0", "2", "-0", "0", "-1.5", "2.5", `"1"`, `"x"`, `"y"`, "true", "false")
}

func (g *indexGen) field() string { return "event." + indexFields[g.rng.IntN(len(indexFields))] }

// atom is one test that reads no earlier match.
func (g *indexGen) atom() string {
	f := g.field()
	switch g.rng.IntN(14) {
	case 0, 1, 2, 3:
		return fmt.Sprintf("%s == %s", f, g.constant())
	case 4:
		return fmt.Sprintf("%s == %s", g.constant(), f)
	case 5:
		return fmt.Sprintf("%s in [%s, %s]", f, g.constant(), g.constant())
	case 6:
		return fmt.Sprintf("%s %s %s", f, g.pick(">", ">=", "<", "<="), g.pick("0", "1", "1.5", "-1", "2"))
	case 7:
		return fmt.Sprintf("%s %s %s", g.pick("0", "1", "2.5"), g.pick(">", ">=", "<", "<="), f)
	case 8:
		return fmt.Sprintf("defined(%s)", f)
	case 9:
		return fmt.Sprintf("%s != %s", f, g.constant())
	case 10:
		return fmt.Sprintf("not (%s == %s)", f, g.constant())
	case 11:
		return fmt.Sprintf("(%s ?? 1) == %s", f, g.constant())
	case 12:
		return fmt.Sprintf("vars.v == %s", g.constant())
	}
	return fmt.Sprintf("%s == %s", f, g.field())
}

// cond is an atom, or a few joined by && and ||.
func (g *indexGen) cond() string {
	switch g.rng.IntN(6) {
	case 0:
		return fmt.Sprintf("%s && %s", g.atom(), g.atom())
	case 1:
		return fmt.Sprintf("(%s || %s)", g.atom(), g.atom())
	case 2:
		return fmt.Sprintf("%s && (%s || %s)", g.atom(), g.atom(), g.atom())
	}
	return g.atom()
}

func (g *indexGen) rulebook() string {
	var sb strings.Builder
	for rs := range 1 + g.rng.IntN(3) {
		fmt.Fprintf(&sb, "- name: rs%d\n  match_multiple_rules: %v\n  vars: {v: %d}\n  sources:\n    - generic: {payload: []}\n  rules:\n",
			rs, g.rng.IntN(3) == 0, g.rng.IntN(2))
		// A rule that sets a fact, so conditions see facts too.
		fmt.Fprintf(&sb, "    - name: remember\n      condition: event.k == \"fact\"\n      action: {set_fact: {fact: {k: \"known\", a: \"{{ event.h }}\", h: \"{{ event.h }}\"}}}\n")
		for r := range 2 + g.rng.IntN(10) {
			fmt.Fprintf(&sb, "    - name: r%d\n", r)
			switch g.rng.IntN(6) {
			case 0:
				fmt.Fprintf(&sb, "      condition:\n        any: [%q, %q]\n", g.cond(), g.cond())
			case 1:
				fmt.Fprintf(&sb, "      condition:\n        all: [%q, %q]\n        timeout: 2m\n", g.cond(), g.cond()+" && event.h == events.m_0.h")
			case 2:
				fmt.Fprintf(&sb, "      condition:\n        not_all: [%q, %q]\n        timeout: 1m\n", g.cond(), g.cond()+" && event.h == events.m_0.h")
			case 3:
				fmt.Fprintf(&sb, "      condition:\n        all: [%q, %q]\n        timeout: 2m\n", "fact.k == \"known\"", g.cond()+" && event.h == events.m_0.h")
			default:
				fmt.Fprintf(&sb, "      condition: %q\n", g.cond())
			}
			if g.rng.IntN(4) == 0 {
				fmt.Fprintf(&sb, "      throttle: {%s, group_by: [event.h]}\n", g.pick("once_within: 1m", "once_after: 40s", "accumulate_within: 2m, threshold: 2"))
			}
			fmt.Fprintf(&sb, "      action: {none: {}}\n")
		}
	}
	return sb.String()
}

func (g *indexGen) value() any {
	switch g.rng.IntN(9) {
	case 0:
		return g.rng.IntN(3) - 1
	case 1:
		return float64(g.rng.IntN(3)) - 0.5*float64(g.rng.IntN(2))
	case 2:
		return []string{"1", "x", "y"}[g.rng.IntN(3)]
	case 3:
		return g.rng.IntN(2) == 0
	case 4:
		return nil
	case 5:
		return []any{1.0}
	case 6:
		return 2.5
	}
	return 1.0
}

func (g *indexGen) event() map[string]any {
	ev := map[string]any{"h": fmt.Sprintf("h%d", g.rng.IntN(3))}
	if g.rng.IntN(8) == 0 {
		ev["k"] = "fact"
	}
	for _, f := range []string{"a", "b", "c"} {
		if g.rng.IntN(3) > 0 {
			ev[f] = g.value()
		}
	}
	switch g.rng.IntN(3) {
	case 0:
		ev["n"] = map[string]any{"x": g.value()}
	case 1:
		ev["n"] = g.value()
	}
	return ev
}

// indexRun runs one rulebook twice side by side, with and without the rule
// index, and records each engine's firings.
type indexRun struct {
	t        testing.TB
	clock    *engine.FakeClock
	engs     [2]*engine.Engine
	fired    [2][]string
	rulesets []string
	seq      uint64
}

func newIndexRun(t testing.TB, src string) *indexRun {
	t.Helper()
	r := &indexRun{t: t, clock: engine.NewFakeClock(t0)}
	for i := range r.engs {
		rulesets := r.parse(src)
		r.engs[i] = engine.New(rulesets, engine.Options{Clock: r.clock, NoRuleIndex: i == 1,
			OnFiring: func(f *engine.Firing, acts []engine.RenderedAction) {
				r.fired[i] = append(r.fired[i], fmt.Sprintf("%s/%s %s %v %v %v", f.Ruleset, f.Rule, f.ID, f.EventIDs, f.Time, acts))
			}})
		if i == 0 {
			for _, rs := range rulesets {
				r.rulesets = append(r.rulesets, rs.Name)
			}
		}
	}
	return r
}

func (r *indexRun) parse(src string) []*engine.Ruleset {
	r.t.Helper()
	reg := engine.NewRegistry()
	reg.RegisterSource(generic.Spec())
	rb, err := rulebooks.Parse("index.yml", []byte(src), rulebooks.Options{Registry: reg, Clock: r.clock})
	if err != nil {
		r.t.Fatalf("%v\n%s", err, src)
	}
	return rb.Rulesets
}

// step processes one event (or ticks) in both engines and fails unless they
// fired the same.
func (r *indexRun) step(g *indexGen, src string) {
	r.t.Helper()
	r.clock.Advance(time.Duration(g.rng.IntN(30)) * time.Second)
	var ev map[string]any
	ruleset := r.rulesets[g.rng.IntN(len(r.rulesets))]
	tick := g.rng.IntN(10) == 0
	if !tick {
		ev = g.event()
	}
	if g.rng.IntN(40) == 0 {
		// A reload keeps the state of unchanged rules; the new index
		// must select them as the old did.
		// Rules move (a reordered rulebook), so the index of the new
		// rulesets must follow the states it keeps.
		shuffle := g.rng.Uint64()
		for _, eng := range r.engs {
			rulesets := r.parse(src)
			perm := rand.New(rand.NewPCG(shuffle, 1))
			for _, rs := range rulesets {
				perm.Shuffle(len(rs.Rules), func(i, j int) { rs.Rules[i], rs.Rules[j] = rs.Rules[j], rs.Rules[i] })
			}
			eng.Replace(rulesets)
		}
	}
	for i, eng := range r.engs {
		var err error
		if tick {
			err = eng.Tick(context.Background())
		} else {
			data := map[string]any{}
			for k, v := range ev {
				data[k] = v
			}
			data["meta"] = map[string]any{"uuid": fmt.Sprint(r.seq)}
			err = eng.Process(context.Background(), engine.Record{Seq: r.seq, Source: engine.SourceRef{Ruleset: ruleset}, Event: data})
		}
		if err != nil {
			r.t.Fatal(err)
		}
		_ = i
	}
	r.seq++
	if !reflect.DeepEqual(r.fired[0], r.fired[1]) {
		r.t.Fatalf("after event %d %v in %s:\nwith the index:    %q\nwithout the index: %q\nrulebook:\n%s", r.seq-1, ev, ruleset, r.fired[0], r.fired[1], src)
	}
	r.fired[0], r.fired[1] = r.fired[0][:0], r.fired[1][:0]
}

func runIndexDiff(t testing.TB, seed uint64, events int) {
	g := &indexGen{rng: rand.New(rand.NewPCG(seed, 17))}
	src := g.rulebook()
	r := newIndexRun(t, src)
	for range events {
		r.step(g, src)
	}
}

// TestRuleIndexDifferential is the proof that the rule index only prunes:
// random rulebooks and event streams give the same firings, event by
// event, with the index and with the plain every-rule loop.
func TestRuleIndexDifferential(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	for seed := range uint64(seeds) {
		runIndexDiff(t, seed, 150)
	}
}

// FuzzRuleIndex runs the differential test from fuzzed seeds.
//
//	go test ./engine -run '^$' -fuzz FuzzRuleIndex -fuzztime 30s
func FuzzRuleIndex(f *testing.F) {
	for seed := range uint64(5) {
		f.Add(seed + 1000)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		runIndexDiff(t, seed, 100)
	})
}

// TestRuleIndexSelects checks that the index does prune: a rule of 1,000
// equality rules is tested only against the events it names, while the
// rules it cannot tell see every event.
func TestRuleIndexSelects(t *testing.T) {
	var sb strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&sb, "    - name: eq %d\n      condition: event.alertname == \"A%d\" && event.cpu > 50\n      action: {none: {}}\n", i, i)
	}
	sb.WriteString("    - name: untold\n      condition: not (event.alertname == \"A1\")\n      action: {none: {}}\n")
	r := newIndexRun(t, rulebook(sb.String()))
	for i, ev := range []map[string]any{{"alertname": "A7", "cpu": 60}, {"alertname": "A7", "cpu": 40.0}, {"alertname": "A8"}, {"cpu": 99}} {
		ev["meta"] = map[string]any{"uuid": fmt.Sprint(i)}
		if err := r.engs[0].Process(context.Background(), engine.Record{Seq: uint64(i), Source: engine.SourceRef{Ruleset: "r"}, Event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int64{}
	for _, st := range r.engs[0].Stats() {
		if st.Evaluated > 0 {
			got[st.Rule] = st.Evaluated
		}
	}
	// A7 twice, A8 once; untold sees the three events eq 7 does not take
	// and fires for the two that have an alertname.
	want := map[string]int64{"eq 7": 2, "eq 8": 1, "untold": 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules evaluated: %v, want %v", got, want)
	}
	if got := strings.Join(r.fired[0], "\n"); strings.Count(got, "r/eq 7 ") != 1 || strings.Count(got, "r/untold ") != 2 {
		t.Errorf("firings:\n%s", got)
	}
}
