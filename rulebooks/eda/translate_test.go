package eda

import (
	"errors"
	"strings"
	"testing"
)

func TestTranslate(t *testing.T) {
	vars := map[string]any{"threshold": 5, "person": map[string]any{"age": 3}, "levels": []any{"A"}, "name": "x"}
	cases := []struct{ src, want, name string }{
		{`event.x is defined`, `defined(event.x)`, ""},
		{`fact.msg is not defined`, `is_not_defined(fact.msg)`, ""},
		{`vars.nope is defined`, `defined(vars.nope)`, ""},
		{`nope is not defined`, `is_not_defined(vars.nope)`, ""},
		{`not event.a == 1`, `not (event.a == 1)`, ""},
		{`event.i == 1 or event.i == 2 and event.j == 3`, `(event.i == 1 or event.i == 2) and event.j == 3`, ""},
		{`event.i == 1 and event.i == 2 or event.j == 3`, `event.i == 1 and event.i == 2 or event.j == 3`, ""},
		{`event.url is search("example.com", ignorecase=true)`, `search(event.url, "(?i)example.com")`, ""},
		{`event.url is not match("a", multiline=true, ignorecase=true)`, `not match(event.url, "(?im)a")`, ""},
		{`event.url is regex("example\.com")`, `search(event.url, "example\\.com")`, ""},
		{`event.levels is select('>=', 10)`, `select(event.levels, ">=", 10)`, ""},
		{`event.levels is not select('regex', 'a.c')`, `not select(event.levels, "regex", "a.c")`, ""},
		{`event.o is selectattr('age', 'not in', [1, 2.5, "x"])`, `selectattr(event.o, "age", "not in", [1, 2.5, "x"])`, ""},
		{`event.level not in vars.levels`, `event.level not in vars.levels`, ""},
		{`event.l not contains "a"`, `event.l not contains "a"`, ""},
		{`events.first << event.i == 0`, `event.i == 0`, "first"},
		{`facts.f << fact.x is defined`, `defined(fact.x)`, "f"},
		{`event.x == True and event.y == null and event.z != False`, `event.x == true and event.y == nil and event.z != false`, ""},
		{`event.i > threshold`, `event.i > vars.threshold`, ""},
		{`event.n == "{{ name }}"`, `event.n == vars.name`, ""},
		{`event.n == "a-{{ person.age }}"`, `event.n == "a-" + string(vars.person.age)`, ""},
		{`event["a-b"].c[0] == -1.5`, `event["a-b"].c[0] == -1.5`, ""},
		{`event.in == 1`, `event["in"] == 1`, ""},
		{`event.a + 2 * event.b == 7`, `event.a + 2 * event.b == 7`, ""},
		{`(event.a + 2) * event.b == .5`, `(event.a + 2) * event.b == 0.5`, ""},
		{`event.s IN ["a"]`, `event.s in ["a"]`, ""},
	}
	for _, tc := range cases {
		c, err := Translate(tc.src, vars)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if c.Expr != tc.want || c.Name != tc.name {
			t.Errorf("%s\n got  %s [%s]\n want %s [%s]", tc.src, c.Expr, c.Name, tc.want, tc.name)
		}
	}
}

func TestTranslateErrors(t *testing.T) {
	cases := []struct {
		src    string
		offset int
		msg    string
	}{
		{`event.i > nope`, 10, `unknown name "nope": a condition reads event, events, fact, facts, vars, or a variable given in vars, --vars or --env-vars`},
		{`vars.person.agee == 1`, 0, `vars does not contain key "person.agee"`},
		{`event.x is foo`, 11, `unknown test "foo" (want defined, match, search, regex, select or selectattr)`},
		{`event.x ==`, 10, `unexpected end of the condition`},
		{`event.x == "a`, 11, `unterminated string`},
		{`event.x is match("(")`, 17, "invalid regular expression \"(\": missing closing ): `(`"},
		{`event.x is match("a", icase=true)`, 22, `unknown option "icase" of match (want ignorecase, multiline)`},
		{`event.x is select('=~', 1)`, 18, `select: the operator must be one of ==, !=, >, >=, <, <=, regex, search, match`},
		{`event.x is select('in', [1])`, 18, `select: the operator must be one of ==, !=, >, >=, <, <=, regex, search, match`},
		{`event.x is selectattr('a', '==')`, 8, `selectattr takes (key, operator, value)`},
		{`event.x == 1 << events.a`, 13, `an assignment (<<) goes at the start: events.NAME << condition`},
		{`events.a.b << event.x == 1`, 0, `the assignment "events.a.b" is invalid: write events.NAME << or facts.NAME <<`},
		{`vars.a << event.x == 1`, 0, `only events and facts can be used in an assignment, not "vars.a"`},
		{`event.x == "{{ missing }}"`, 11, `unknown name "missing": a condition reads event, events, fact, facts, vars, or a variable given in vars, --vars or --env-vars`},
		{``, 0, `condition is empty`},
	}
	for _, tc := range cases {
		_, err := Translate(tc.src, map[string]any{"person": map[string]any{}})
		var e *Error
		if !errors.As(err, &e) || e.Offset != tc.offset || e.Msg != tc.msg {
			t.Errorf("%s: got %v (%+v), want @%d %s", tc.src, err, e, tc.offset, tc.msg)
		}
	}
}

func TestTemplate(t *testing.T) {
	cases := []struct{ src, want string }{
		{`{{ event.x }}`, `{{ event.x }}`},
		{`a {{ event.host | upper }} b`, `a {{ upper(event.host) }} b`},
		{`{{ event.x | default('n') | lower }}`, `{{ lower((event.x ?? "n")) }}`},
		{`{{ event.h.startswith("w") }}`, `{{ hasPrefix(event.h, "w") }}`},
		{`{{ event.a ~ "-" ~ 1 }}`, `{{ string(event.a) + string("-") + string(1) }}`},
		{`{{ "y" if event.n > 1 else "n" }}`, `{{ event.n > 1 ? "y" : "n" }}`},
		{`{{ event.x is not defined }}`, `{{ not (defined(event.x)) }}`},
		{`{{ event.l | join(", ") }}`, `{{ join(map(event.l, string(#)), ", ") }}`},
		{`{{ event.p | regex_replace("a(b)", "\\1") }}`, `{{ regex_replace(event.p, "a(b)", "\\\\1") }}`},
		{`{{ {"a": event.x, "b": [1, None]} }}`, `{{ {"a": event.x, "b": [1, nil]} }}`},
		{`{{ my_var | upper }} {{ person.name }}`, `{{ upper(vars.my_var) }} {{ vars.person.name }}`},
	}
	for _, tc := range cases {
		got, err := Template(tc.src)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s\n got  %s\n want %s", tc.src, got, tc.want)
		}
	}
	for _, bad := range []string{`{{ x | shout }}`, `{% if x %}y{% endif %}`, `{{ x | default(a=1) }}`, `{{ x.frobnicate() }}`, `{{ x }`} {
		if _, err := Template(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func FuzzTranslate(f *testing.F) {
	for _, s := range []string{`event.x is defined`, `not event.a == 1 or event.b is match("x", ignorecase=true)`,
		`events.m << event.l is selectattr('a', 'in', [1, "b"])`, `event["k"][0] + 1 == threshold`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Translate(src, map[string]any{"threshold": 1})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(src) {
				t.Fatalf("%q: error without a valid offset: %v", src, err)
			}
			return
		}
		if off := c.SourceOffset(len(c.Expr)); off < 0 || off > len(src) {
			t.Fatalf("%q: source offset %d out of range", src, off)
		}
	})
}

func FuzzTemplate(f *testing.F) {
	f.Add(`{{ event.host | upper }} and {{ event.x | default("y") }}`)
	f.Fuzz(func(t *testing.T, src string) {
		if _, err := Template(src); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(src) {
				t.Fatalf("%q: error without a valid offset: %v", src, err)
			}
		}
	})
}

func BenchmarkTranslate(b *testing.B) {
	vars := map[string]any{"expected_levels": []any{"WARNING", "ERROR"}}
	src := `event.level in vars.expected_levels and event.host is match("web", ignorecase=true) and not event.objects is selectattr('age', '>=', 20)`
	for b.Loop() {
		if _, err := Translate(src, vars); err != nil {
			b.Fatal(err)
		}
	}
}

// Deep nesting is an error, not a stack overflow.
func TestNestingIsBounded(t *testing.T) {
	for _, src := range []string{
		strings.Repeat("(", 100000) + "event.x" + strings.Repeat(")", 100000),
		strings.Repeat("not ", 100000) + "event.x",
		"event.x == " + strings.Repeat("-", 100000) + "1",
		"event.x in " + strings.Repeat("[", 100000),
	} {
		if _, err := Translate(src, nil); err == nil || !strings.Contains(err.Error(), "nests deeper than 200 levels") {
			t.Errorf("%.20s...: %v", src, err)
		}
	}
	for _, src := range []string{
		"{{ " + strings.Repeat("(", 100000) + "x" + strings.Repeat(")", 100000) + " }}",
		"{{ " + strings.Repeat("not ", 100000) + "x }}",
		"{{ " + strings.Repeat("-", 100000) + "x }}",
		"{{ " + strings.Repeat("[", 100000) + " }}",
		"{{ x" + strings.Repeat(" ** x", 100000) + " }}",
	} {
		if _, err := Template(src); err == nil || !strings.Contains(err.Error(), "nests deeper than 200 levels") {
			t.Errorf("%.20s...: %v", src, err)
		}
	}
}

// TestLooksSkipsLexing: Looks answers without lexing only where lexing
// would have answered false; conditions with and without EDA's words, in
// strings, paths and templates.
func TestLooksSkipsLexing(t *testing.T) {
	cases := []struct {
		src  string
		want bool
	}{
		{`event.host == "h1" && event.cpu > 90`, false},
		{`event.i is defined`, true},
		{`event.disk.list == "x"`, false}, // "is" inside names only
		{`event.x == True`, true},
		{`event.x != False`, true},
		{`event.x == null`, true},
		{`event.nullable == 1`, false},
		{`event.msg == "this is it"`, false}, // words in a string
		{`event.i == "{{ expected }}"`, true},
		{`event.i == "{{ open"`, false},
		{`event.i == '{{ a }}'`, true},
		{`event.i == "a\t{{ b }}"`, true},
		{`lower(event.alertname) == "a1"`, false},
		{`event.x == 1 or event.y is not defined`, true},
		{`"unterminated is`, false},
	}
	for _, tc := range cases {
		if got := Looks(tc.src); got != tc.want {
			t.Errorf("Looks(%q) = %v, want %v", tc.src, got, tc.want)
		}
		if got := looksLexed(tc.src); got != tc.want {
			t.Errorf("looksLexed(%q) = %v, want %v", tc.src, got, tc.want)
		}
	}
}
