package engine

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// evalCond evaluates src and returns the result and the run-time errors the
// evaluator reported (what the engine logs at debug).
func evalCond(t *testing.T, c *Compiler, src string, event, events map[string]any) (Tri, []error) {
	t.Helper()
	cond, err := c.CompileCondition(src)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	var reported []error
	st := newEvalState(func(err error) { reported = append(reported, err) })
	st.bind(event, events, c.varsOrEmpty())
	return cond.eval(st), reported
}

func TestConditionMissingFields(t *testing.T) {
	c := &Compiler{Clock: NewFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)), Vars: map[string]any{"threshold": 90, "hosts": []any{"a", "b"}}}
	ev := map[string]any{
		"i": 1.0, "s": "Hello World", "n": nil, "flag": true,
		"a":    map[string]any{"b": 2.0, "list": []any{"x", 3.0}},
		"ip":   "10.1.2.3",
		"ts":   "2026-01-01T11:50:00Z",
		"tags": []any{"prod", "web"},
	}
	cases := []struct {
		name string
		src  string
		want Tri
	}{
		{"equal", "event.i == 1", True},
		{"int float equal", "event.a.b == 2", True},
		{"not equal present", "event.i != 2", True},
		{"missing equal", "event.x == 5", Unknown},
		{"missing not equal", "event.x != 5", Unknown},
		{"negated missing", "not (event.x == 5)", Unknown},
		{"bang negated missing", "!(event.x == 5)", Unknown},
		{"nested missing", "event.q.r == 1", Unknown},
		{"nested through scalar", "event.i.r == 1", Unknown},
		{"or rescues unknown", "event.x == 5 || event.i == 1", True},
		{"or with unknown and false", "event.x == 5 || event.i == 2", Unknown},
		{"and false wins", "event.x == 5 && event.i == 2", False},
		{"and unknown", "event.x == 5 && event.i == 1", Unknown},
		{"explicit null is a value", "event.n == nil", True},
		{"null not equal", "event.n != 1", True},
		{"defined present", "defined(event.a.b)", True},
		{"defined missing", "defined(event.a.zz)", False},
		{"defined through missing parent", "defined(event.q.r)", False},
		{"defined null", "defined(event.n)", True},
		{"is_not_defined", "is_not_defined(event.q.r)", True},
		{"not defined", "not defined(event.q)", True},
		{"in list", `"prod" in event.tags`, True},
		{"in missing list", `"prod" in event.nope`, Unknown},
		{"not in missing list", `"prod" not in event.nope`, Unknown},
		{"value in list literal", "event.i in [1, 2]", True},
		{"contains string", `event.s contains "World"`, True},
		{"contains list", `event.tags contains "web"`, True},
		{"contains list no", `event.tags contains "db"`, False},
		{"contains missing", `event.zz contains "x"`, Unknown},
		{"match anchored", `match(event.s, "Hello")`, True},
		{"match anchored miss", `match(event.s, "World")`, False},
		{"match ignore case", `match(event.s, "hello", true)`, True},
		{"search anywhere", `search(event.s, "wor", true)`, True},
		{"search case sensitive", `search(event.s, "wor")`, False},
		{"search missing", `search(event.zz, "x")`, Unknown},
		{"not search missing", `not search(event.zz, "x")`, Unknown},
		{"expr matches operator", `event.s matches "^H.*d$"`, True},
		{"lower", `lower(event.s) == "hello world"`, True},
		{"upper", `upper(event.s) == "HELLO WORLD"`, True},
		{"cidr", `cidr_match(event.ip, "10.0.0.0/8")`, True},
		{"cidr list", `cidr_match(event.ip, ["192.168.0.0/16", "10.1.0.0/16"])`, True},
		{"cidr no", `cidr_match(event.ip, "192.168.0.0/16")`, False},
		{"age older", `age(event.ts) > duration("5m")`, True},
		{"age younger", `age(event.ts) > duration("15m")`, False},
		{"now compare", `timestamp(event.ts) < now() - duration("5m")`, True},
		{"vars", "event.i == 1 && vars.threshold > 50", True},
		{"vars list", `"a" in vars.hosts`, True},
		{"missing var", "vars.nope == 1", Unknown},
		{"index", `event.a.list[1] == 3`, True},
		{"index out of range", `event.a.list[7] == 3`, Unknown},
		{"bracket key", `event["a"]["b"] == 2`, True},
		{"optional chain", `event?.q?.r == 1`, Unknown},
		{"coalesce missing", `(event.zz ?? 7) == 7`, True},
		{"coalesce present", `(event.i ?? 7) == 1`, True},
		{"bare bool field", "event.flag", True},
		{"bare missing field", "event.zz", Unknown},
		{"type mismatch is no match", `event.s > 5`, Unknown},
		{"events binding", `event.i == events.m_0.i`, True},
		{"events binding missing", `event.i == events.m_9.i`, Unknown},
		{"fact alias", `fact.i == 1`, True},
		{"any predicate", `any(event.tags, # == "web")`, True},
		{"len", `len(event.tags) == 2`, True},
		{"len missing", `len(event.zz) == 0`, Unknown},
	}
	events := map[string]any{"m_0": map[string]any{"i": 1.0}}
	// Only a real type error is reported; a missing field never is: no error
	// and no log line per event.
	reports := map[string]bool{"type mismatch is no match": true}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, reported := evalCond(t, c, tc.src, ev, events)
			if got != tc.want {
				t.Errorf("%s = %s, want %s", tc.src, got, tc.want)
			}
			if reports[tc.name] != (len(reported) > 0) {
				t.Errorf("%s reported %v; want a report: %v", tc.src, reported, reports[tc.name])
			}
		})
	}
}

func TestConditionCompileErrors(t *testing.T) {
	c := &Compiler{}
	cases := []struct {
		name, src, want string
		line, col       int
	}{
		{"unknown name", "evnt.i == 1", "unknown name evnt", 1, 1},
		{"not boolean", "event.i + 1", "condition must be a boolean", 1, 9},
		{"syntax", "event.i == == 1", "unexpected token", 1, 12},
		{"unknown function", "frobnicate(event.i)", "unknown name frobnicate", 1, 1},
		{"bool and int", "event.i == 1 && 5", "condition must be a boolean", 1, 17},
		{"empty", "  ", "condition is empty", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CompileCondition(tc.src)
			if err == nil {
				t.Fatalf("compile %q: no error", tc.src)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if tc.line == 0 {
				return
			}
			ee, ok := err.(*ExprError)
			if !ok {
				t.Fatalf("error %T is not *ExprError", err)
			}
			if ee.Line != tc.line || ee.Column != tc.col {
				t.Errorf("position = %d:%d, want %d:%d", ee.Line, ee.Column, tc.line, tc.col)
			}
		})
	}
}

func TestSplitAssignment(t *testing.T) {
	name, cond, off := SplitAssignment("events.first << event.i == 1")
	if name != "first" || cond != "event.i == 1" || off != 16 {
		t.Fatalf("got %q %q %d", name, cond, off)
	}
	name, cond, off = SplitAssignment("event.i << 2")
	if name != "" || cond != "event.i << 2" || off != 0 {
		t.Fatalf("got %q %q %d", name, cond, off)
	}
}

func FuzzCompileCondition(f *testing.F) {
	for _, s := range []string{"event.i == 1", `match(event.s, "a.*", true)`, "not defined(event.a.b)", "event.x ?? 1 > 0", "events.m_0.h == event.h",
		`event.s == "x" && event.h == events.m_0.h && event.i <= events.m_0.i`} {
		f.Add(s)
	}
	c := &Compiler{Clock: NewFakeClock(time.Unix(0, 0))}
	f.Fuzz(func(t *testing.T, src string) {
		cond, err := c.CompileCondition(src)
		if err != nil {
			return
		}
		item := map[string]any{"i": 1.0, "s": "x", "h": "x", "a": map[string]any{}}
		st := newEvalState(nil)
		st.bind(item, map[string]any{}, map[string]any{})
		_ = cond.eval(st)
		// What admits rules out never holds, whatever the matches.
		st.bind(item, map[string]any{"m_0": map[string]any{"h": "x", "i": 1.0}}, map[string]any{})
		holds := cond.eval(st) == True
		st.bind(item, noBindings, map[string]any{})
		if holds && !cond.admits(st) {
			t.Fatalf("%q holds with a match, but admits rules the item out", src)
		}
	})
}

// A condition's top-level && parts that read no match are tested once per
// item (admits), and an equality between an item path and a match path is
// its join.
func TestConditionAlphaAndJoin(t *testing.T) {
	c := &Compiler{Clock: NewFakeClock(time.Unix(0, 0))}
	cases := []struct {
		src     string
		unbound bool
		alpha   int
		join    string // item keys | match | match keys
	}{
		{`event.k == "up"`, true, 0, ""},
		{`event.k == "up" and event.v > 1`, true, 0, ""},
		{`event.k == "up" && event.h == events.m_0.h`, false, 1, "[h] m_0 [h]"},
		{`events.first.host.name == fact.host && event.v > 1 && event.ok`, false, 2, "[host] first [host name]"},
		{`facts.m_1.ids[0] == event.ids[1]`, false, 0, "[ids 1] m_1 [ids 0]"},
		{`event.h != events.m_0.h && event.k == "b"`, false, 1, ""},
		{`event.k == "b" && (event.h == events.m_0.h || event.v == events.m_0.v)`, false, 1, ""},
		{`event.h == events.m_0[event.key]`, false, 0, ""},
		{`not (event.k == "b" && event.h == events.m_0.h)`, false, 0, ""},
		{`event.k == "b" && $env["events"].m_0.h == event.h`, false, 1, ""},
	}
	for _, tc := range cases {
		cond, err := c.CompileCondition(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		join := ""
		if cond.join != nil {
			join = fmt.Sprintf("%v %s %v", cond.join.item, cond.join.match, cond.join.path)
		}
		if cond.unbound != tc.unbound || len(cond.alpha) != tc.alpha || join != tc.join {
			t.Errorf("%s: unbound %v, %d alpha parts, join %q; want %v, %d, %q", tc.src, cond.unbound, len(cond.alpha), join, tc.unbound, tc.alpha, tc.join)
		}
	}

	// admits: false only when the condition cannot hold whatever the
	// matches.
	st := newEvalState(nil)
	cond, err := c.CompileCondition(`event.k == "b" && event.h == events.m_0.h`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		event map[string]any
		want  bool
	}{
		{map[string]any{"k": "b", "h": "x"}, true},
		{map[string]any{"k": "a", "h": "x"}, false},
		{map[string]any{"h": "x"}, false}, // k missing: unknown, never true
	} {
		st.bind(tc.event, noBindings, map[string]any{})
		if got := cond.admits(st); got != tc.want {
			t.Errorf("admits(%v) = %v, want %v", tc.event, got, tc.want)
		}
	}
}

func TestJoinKey(t *testing.T) {
	same := [][2]any{{1, 1.0}, {int64(7), float32(7)}, {0.0, math.Copysign(0, -1)}, {"a", "a"}, {true, true}, {nil, nil}, {uint(3), 3.0}}
	for _, p := range same {
		a, aok := joinKey(p[0])
		b, bok := joinKey(p[1])
		if !aok || !bok || a != b {
			t.Errorf("joinKey(%#v) = %q, joinKey(%#v) = %q: equal values, different keys", p[0], a, p[1], b)
		}
	}
	negZero := math.Copysign(0, -1)
	if a, _ := joinKey(negZero); a != "d0" {
		t.Errorf("joinKey(-0) = %q, want d0", a)
	}
	differ := [][2]any{{1, "1"}, {true, "true"}, {nil, ""}, {false, 0}, {"s", "t"}}
	for _, p := range differ {
		a, _ := joinKey(p[0])
		b, _ := joinKey(p[1])
		if a == b {
			t.Errorf("joinKey(%#v) == joinKey(%#v) == %q", p[0], p[1], a)
		}
	}
	for _, v := range []any{[]any{1}, map[string]any{}, math.NaN()} {
		if _, ok := joinKey(v); ok {
			t.Errorf("joinKey(%#v) has a key", v)
		}
	}
}

func TestNegatedFact(t *testing.T) {
	c := &Compiler{}
	for src, want := range map[string]string{
		"not defined(fact.x)":         "[x]",
		"!defined(fact.a.b)":          "[a b]",
		"is_not_defined(fact.x)":      "[x]",
		"not is_defined(fact.x)":      "[x]",
		"not defined(event.x)":        "[]",
		"defined(fact.x)":             "[]",
		"not defined(fact.x) && true": "[]",
		"is_not_defined(fact)":        "[]",
	} {
		cond, err := c.CompileCondition(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := fmt.Sprint(cond.negatedFact); got != want {
			t.Errorf("%s: negated fact %s, want %s", src, got, want)
		}
	}
}

// TestIsFunction: IsFunction knows the expr builtins the engine keeps and
// the functions it adds, and not its internal helpers, the predicate
// builtins, or names no condition may call.
func TestIsFunction(t *testing.T) {
	for name, want := range map[string]bool{
		"upper": true, "len": true, "sort": true, "int": true, // expr builtins
		"match": true, "cidr_match": true, "now": true, "select": true, "regex_replace": true, // the engine's
		"__get": false, "__capitalize": false, // internal
		"map": false, "filter": false, // predicate builtins
		"default": false, "to_nice_yaml": false, "": false,
	} {
		if got := IsFunction(name); got != want {
			t.Errorf("IsFunction(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestRegexCacheKeepsPatternsApart: the compiled-pattern cache tells a
// pattern from the same pattern anchored (match) or ignoring case, so one
// condition's regular expression is never reused for another's.
func TestRegexCacheKeepsPatternsApart(t *testing.T) {
	c := &Compiler{Clock: NewFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))}
	// Each pair: the first fills the cache, the second must not take
	// its entry (the patterns are unique to this test).
	cases := []struct {
		src  string
		s    string
		want Tri
	}{
		{`search(event.s, "cachekey", true)`, "CACHEKEY", True},
		{`search(event.s, "icachekey")`, "CACHEKEY", False},
		{`match(event.s, "cachea|cacheb")`, "x cacheb", False},
		{`search(event.s, "^cachea|cacheb")`, "x cacheb", True},
	}
	for _, tc := range cases {
		if got, errs := evalCond(t, c, tc.src, map[string]any{"s": tc.s}, nil); got != tc.want || len(errs) > 0 {
			t.Errorf("%s with s=%q: got %v (errors %v), want %v", tc.src, tc.s, got, errs, tc.want)
		}
	}
}
