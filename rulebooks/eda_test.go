package rulebooks

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// edaRun loads src (a rulebook written for Event-Driven Ansible), feeds it
// events one per second in virtual time, and returns the rules fired, in
// order.
func edaRun(t *testing.T, src string, vars map[string]any, events ...map[string]any) []string {
	t.Helper()
	fired, _ := edaRunArgs(t, src, vars, events...)
	return fired
}

// edaRunArgs also returns the rendered arguments of each firing's first
// action, as JSON.
func edaRunArgs(t *testing.T, src string, vars map[string]any, events ...map[string]any) ([]string, []string) {
	t.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := engine.NewFakeClock(start)
	rb, err := Parse("eda.yml", []byte(src), Options{Registry: testRegistry(), Clock: clock, ExtraVars: vars})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var fired, args []string
	eng := engine.New(rb.Rulesets, engine.Options{Clock: clock, Stdout: &bytes.Buffer{},
		OnFiring: func(f *engine.Firing, actions []engine.RenderedAction) {
			fired = append(fired, f.Rule)
			if len(actions) > 0 {
				b, _ := json.Marshal(actions[0].Args)
				args = append(args, string(b))
			}
		}})
	ctx := context.Background()
	for i, ev := range events {
		at := start.Add(time.Duration(i+1) * time.Second)
		if err := eng.AdvanceTo(ctx, clock, at); err != nil {
			t.Fatal(err)
		}
		body := map[string]any{}
		for k, v := range ev {
			body[k] = v
		}
		rec := engine.Record{Seq: uint64(i + 1), Source: engine.SourceRef{Ruleset: rb.Rulesets[0].Name, Name: "range", Type: "range"},
			Event: engine.NewEvent(body, "range", "range", at)}
		if err := eng.Process(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	return fired, args
}

func edaRules(rules string) string {
	return "- name: eda\n  hosts: all\n  sources:\n    - eda.builtin.range: {limit: 1}\n  rules:\n" + rules
}

func single(cond string) string {
	return edaRules("    - name: r\n      condition: " + cond + "\n      action:\n        debug:\n")
}

func ev(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// TestEDAConditions runs the examples of ansible-rulebook's
// docs/conditions.rst, each against events it must and must not match.
func TestEDAConditions(t *testing.T) {
	levels := map[string]any{"expected_levels": []any{"WARNING", "ERROR"}}
	cases := []struct {
		name  string
		cond  string
		vars  map[string]any
		match []map[string]any
		miss  []map[string]any
	}{
		{"single", `event.outage == true`, nil, []map[string]any{ev("outage", true)}, []map[string]any{ev("outage", false), ev()}},
		{"True", `event.outage == True`, nil, []map[string]any{ev("outage", true)}, []map[string]any{ev("outage", false)}},
		{"null", `event.x == null`, nil, []map[string]any{ev("x", nil)}, []map[string]any{ev("x", 1), ev()}},
		{"and", `event.target_os == "linux" and event.version == "1.1"`, nil,
			[]map[string]any{ev("target_os", "linux", "version", "1.1")}, []map[string]any{ev("target_os", "linux", "version", "2.0")}},
		{"or", `event.version == "2.0" or event.version == "1.1"`, nil,
			[]map[string]any{ev("version", "2.0"), ev("version", "1.1")}, []map[string]any{ev("version", "3")}},
		{"three ands", `event.version == "2.0" and event.name == "example" and event.alert_count > 10`, nil,
			[]map[string]any{ev("version", "2.0", "name", "example", "alert_count", 11)}, []map[string]any{ev("version", "2.0", "name", "example", "alert_count", 10)}},
		{"parentheses", `((event.i > 100 and event.i < 200) or (event.i > 500 and event.i < 600))`, nil,
			[]map[string]any{ev("i", 150), ev("i", 550)}, []map[string]any{ev("i", 300), ev("i", 600)}},
		{"mixed", `(event.i > 100 and event.i < 200) or event.i > 1000`, nil,
			[]map[string]any{ev("i", 150), ev("i", 1001)}, []map[string]any{ev("i", 500)}},
		{"negation", `not (event.i > 50 or event.i < 10)`, nil,
			[]map[string]any{ev("i", 10), ev("i", 50)}, []map[string]any{ev("i", 51), ev("i", 9), ev()}},
		{"not binds looser than ==", `not event.i == 1`, nil, []map[string]any{ev("i", 2)}, []map[string]any{ev("i", 1), ev()}},
		{"and/or left to right", `event.i == 1 or event.i == 2 and event.j == 3`, nil,
			[]map[string]any{ev("i", 1, "j", 3), ev("i", 2, "j", 3)}, []map[string]any{ev("i", 1, "j", 0)}},
		{"search", `event.url is search("example.com", ignorecase=true)`, nil,
			[]map[string]any{ev("url", "http://www.EXAMPLE.com/x")}, []map[string]any{ev("url", "http://other.org"), ev()}},
		{"not search", `event.url is not search("example.com", ignorecase=true)`, nil,
			[]map[string]any{ev("url", "http://other.org")}, []map[string]any{ev("url", "http://Example.com"), ev()}},
		{"match", `event.url is match("http://www.example.com", ignorecase=true)`, nil,
			[]map[string]any{ev("url", "HTTP://www.example.com/a")}, []map[string]any{ev("url", "see http://www.example.com")}},
		{"not match", `event.url is not match("http://www.example.com", ignorecase=true)`, nil,
			[]map[string]any{ev("url", "see http://www.example.com")}, []map[string]any{ev("url", "http://www.example.com/a"), ev()}},
		{"match case sensitive", `event.url is match("http")`, nil,
			[]map[string]any{ev("url", "http://a")}, []map[string]any{ev("url", "HTTP://a")}},
		{"regex", `event.url is regex("example\.com", ignorecase=true)`, nil,
			[]map[string]any{ev("url", "www.Example.com")}, []map[string]any{ev("url", "www.examplexcom")}},
		{"not regex", `event.url is not regex("example\.com", ignorecase=true)`, nil,
			[]map[string]any{ev("url", "www.examplexcom")}, []map[string]any{ev("url", "www.example.com")}},
		{"multiline", `event.log is search("^error", multiline=true)`, nil,
			[]map[string]any{ev("log", "ok\nerror: x")}, []map[string]any{ev("log", "ok error")}},
		{"in vars", `event.level in vars.expected_levels`, levels,
			[]map[string]any{ev("level", "ERROR")}, []map[string]any{ev("level", "INFO"), ev()}},
		{"not in", `event.level not in ["INFO", "DEBUG"]`, nil,
			[]map[string]any{ev("level", "ERROR")}, []map[string]any{ev("level", "INFO"), ev()}},
		{"contains", `event.affected_hosts contains "host1"`, nil,
			[]map[string]any{ev("affected_hosts", []any{"host0", "host1"})}, []map[string]any{ev("affected_hosts", []any{"host2"}), ev()}},
		{"not contains", `vars.expected_levels not contains "INFO"`, levels, []map[string]any{ev()}, nil},
		{"not contains event", `event.hosts not contains "h1"`, nil,
			[]map[string]any{ev("hosts", []any{"h2"})}, []map[string]any{ev("hosts", []any{"h1"}), ev()}},
		{"select", `event.levels is select('>=', 10)`, nil,
			[]map[string]any{ev("levels", []any{1, 2, 3, 20})}, []map[string]any{ev("levels", []any{1, 2, 3}), ev()}},
		{"not select", `event.levels is not select('>=', 10)`, nil,
			[]map[string]any{ev("levels", []any{1, 2, 3})}, []map[string]any{ev("levels", []any{1, 2, 3, 20}), ev()}},
		{"select search", `event.names is select('search', 'ba.')`, nil,
			[]map[string]any{ev("names", []any{"foo", "xbar"})}, []map[string]any{ev("names", []any{"foo"})}},
		{"selectattr", `event.objects is selectattr('age', '>=', 20)`, nil,
			[]map[string]any{ev("objects", []any{map[string]any{"age": 10}, map[string]any{"age": 21}})},
			[]map[string]any{ev("objects", []any{map[string]any{"age": 10}, map[string]any{"name": "x"}})}},
		{"not selectattr", `event.objects is not selectattr('age', '>=', 20)`, nil,
			[]map[string]any{ev("objects", []any{map[string]any{"age": 10}})},
			[]map[string]any{ev("objects", []any{map[string]any{"age": 21}}), ev()}},
		{"selectattr on a mapping", `event.person is selectattr('name', '==', 'fred')`, nil,
			[]map[string]any{ev("person", map[string]any{"name": "fred"})}, []map[string]any{ev("person", map[string]any{"name": "bob"})}},
		{"selectattr in", `event.people is selectattr('name', 'in', ['fred', 'barney'])`, nil,
			[]map[string]any{ev("people", []any{map[string]any{"name": "barney"}})}, []map[string]any{ev("people", []any{map[string]any{"name": "wilma"}})}},
		{"selectattr not in", `event.people is selectattr('name', 'not in', ['fred'])`, nil,
			[]map[string]any{ev("people", []any{map[string]any{"name": "barney"}})}, []map[string]any{ev("people", []any{map[string]any{"name": "fred"}})}},
		{"selectattr contains", `event.people is selectattr('tags', 'contains', 'db')`, nil,
			[]map[string]any{ev("people", []any{map[string]any{"tags": []any{"db", "web"}}})}, []map[string]any{ev("people", []any{map[string]any{"tags": []any{"web"}}})}},
		{"selectattr not contains", `event.people is selectattr('tags', 'not contains', 'db')`, nil,
			[]map[string]any{ev("people", []any{map[string]any{"tags": []any{"web"}}})}, []map[string]any{ev("people", []any{map[string]any{"tags": []any{"db"}}})}},
		{"selectattr match", `event.people is selectattr('name', 'match', 'fr')`, nil,
			[]map[string]any{ev("people", []any{map[string]any{"name": "fred"}})}, []map[string]any{ev("people", []any{map[string]any{"name": "alfred"}})}},
		{"selectattr nested key", `event.people is selectattr('address.city', '==', 'Paris')`, nil,
			[]map[string]any{ev("people", []any{map[string]any{"address": map[string]any{"city": "Paris"}}})}, []map[string]any{ev("people", []any{map[string]any{"address": map[string]any{}}})}},
		{"is defined", `event.msg is defined`, nil, []map[string]any{ev("msg", "x"), ev("msg", nil)}, []map[string]any{ev()}},
		{"is not defined", `event.msg is not defined`, nil, []map[string]any{ev()}, []map[string]any{ev("msg", "x")}},
		{"missing field never matches", `event.payload.eventType != 'GET'`, nil,
			[]map[string]any{ev("payload", map[string]any{"eventType": "POST"})}, []map[string]any{ev("payload", map[string]any{}), ev()}},
		{"plus", `event.total == event.a + 2`, nil, []map[string]any{ev("a", 1, "total", 3)}, []map[string]any{ev("a", 1, "total", 4)}},
		{"string plus", `event.full == event.first + "-x"`, nil, []map[string]any{ev("first", "a", "full", "a-x")}, []map[string]any{ev("first", "a", "full", "a")}},
		{"vars", `event.name == vars.name`, map[string]any{"name": "fred"}, []map[string]any{ev("name", "fred")}, []map[string]any{ev("name", "bob")}},
		{"bare variable", `event.i > threshold`, map[string]any{"threshold": 5}, []map[string]any{ev("i", 6)}, []map[string]any{ev("i", 5)}},
		{"variable in a string", `event.name == "{{ name }}"`, map[string]any{"name": "fred"}, []map[string]any{ev("name", "fred")}, []map[string]any{ev("name", "bob")}},
		{"bracket keys", `event["a-b"][0] == 1`, nil, []map[string]any{ev("a-b", []any{1})}, []map[string]any{ev("a-b", []any{2})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, e := range tc.match {
				if got := edaRun(t, single(yamlQuote(tc.cond)), tc.vars, e); len(got) != 1 {
					t.Errorf("%s does not match %v", tc.cond, e)
				}
			}
			for _, e := range tc.miss {
				if got := edaRun(t, single(yamlQuote(tc.cond)), tc.vars, e); len(got) != 0 {
					t.Errorf("%s matches %v", tc.cond, e)
				}
			}
		})
	}
}

func yamlQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func TestEDAMultipleConditions(t *testing.T) {
	// docs/conditions.rst: "Multiple conditions with assignment".
	src := edaRules(`    - name: multiple conditions
      condition:
        all:
          - events.first << event.i == 0
          - events.second << event.i == 1
          - events.third << event.i == events.first.i + 2
      action:
        debug:
          first: "{{ events.first.i }}"
          third: "{{ events.third.i }}"
    - name: all match
      condition:
        all:
          - event.target_os == "linux"
          - event.tracking_id == 345
      action:
        debug:
    - name: any match
      condition:
        any:
          - event.target_os == "windows"
          - event.target_os is not defined
      action:
        debug:
`)
	fired, args := edaRunArgs(t, src, nil, ev("i", 0, "target_os", "mac"), ev("i", 1, "target_os", "mac"), ev("i", 2, "target_os", "mac"), ev("target_os", "linux"), ev("tracking_id", 345), ev("target_os", "windows"))
	// Only a firing consumes an event (match_multiple_rules is false); the
	// range events carry a target_os so that "any match" (which an event
	// without one matches) does not fire on them and take them from the
	// waiting "multiple conditions" match.
	want := []string{"multiple conditions", "all match", "any match"}
	if !reflect.DeepEqual(fired, want) {
		t.Fatalf("fired %q, want %q", fired, want)
	}
	if args[0] != `{"first":0,"third":2}` {
		t.Errorf("args %s", args[0])
	}
}

func TestEDAConditionErrors(t *testing.T) {
	cases := []struct {
		name, src string
		vars      map[string]any
		want      string
	}{
		{"undefined vars key", single(`event.i == vars.nope`), nil,
			`eda.yml:7:29: ruleset "eda": rule "r": condition: vars does not contain key "nope"`},
		{"undefined bare variable", single(`event.i is defined and event.i > limit`), nil,
			`eda.yml:7:51: ruleset "eda": rule "r": condition: unknown name "limit": a condition reads event, events, fact, facts, vars, or a variable given in vars, --vars or --env-vars`},
		{"unknown test", single(`event.i is definde`), nil,
			`eda.yml:7:29: ruleset "eda": rule "r": condition: unknown test "definde" (want defined, match, search, regex, select or selectattr)`},
		{"bad select operator", single(`event.l is select('=~', 1)`), nil,
			`eda.yml:7:36: ruleset "eda": rule "r": condition: select: the operator must be one of ==, !=, >, >=, <, <=, regex, search, match`},
		{"bad regex in quotes", single(`event.url is match("a(")`), nil,
			`eda.yml:7:37: ruleset "eda": rule "r": condition: invalid regular expression "a(": missing closing ): ` + "`a(`"},
		{"bad option", single(`event.url is match("a", ignorecase=yes)`), nil,
			`eda.yml:7:53: ruleset "eda": rule "r": condition: ignorecase: want true or false`},
		{"type error in translation points into the condition", single(`event.i is defined and 1 + "a" == 2`), nil,
			`eda.yml:7:41: ruleset "eda": rule "r": condition: invalid operation: + (mismatched types int and string)`},
		{"assignment to event in all", edaRules("    - name: r\n      condition:\n        all:\n          - event.x << event.i is defined\n          - event.j == 1\n      action: {debug: {}}\n"), nil,
			`eda.yml:9:13: ruleset "eda": rule "r": condition: all[0]: assignment event.x is invalid: a match is named events.NAME or facts.NAME`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("eda.yml", []byte(tc.src), Options{Registry: testRegistry(), ExtraVars: tc.vars})
			if err == nil {
				t.Fatal("loaded")
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

// A native rulebook keeps expr's meaning: `and` binds tighter than `or`.
func TestNativeRulebookKeepsExprPrecedence(t *testing.T) {
	src := strings.Replace(single(`event.i == 1 or event.i == 2 and event.j == 3`), "eda.builtin.range", "range", 1)
	if got := edaRun(t, src, nil, ev("i", 1, "j", 0)); len(got) != 1 {
		t.Fatalf("native precedence lost: fired %q", got)
	}
	// The same condition beside an EDA-only one reads as EDA.
	src = strings.Replace(edaRules(""), "eda.builtin.range", "range", 1) + ("    - name: r\n      condition: event.i == 1 or event.i == 2 and event.j == 3\n      action: {debug: {}}\n" +
		"    - name: s\n      condition: event.k is defined\n      action: {debug: {}}\n")
	if got := edaRun(t, src, nil, ev("i", 1, "j", 0)); len(got) != 0 {
		t.Fatalf("EDA precedence not applied: fired %q", got)
	}
}

// TestEDAJinjaActionArguments: action arguments of an EDA rulebook are
// Jinja2, as ansible-rulebook renders them (docs/actions.rst, filters);
// event data stays escaped as in native templates.
func TestEDAJinjaActionArguments(t *testing.T) {
	src := edaRules(`    - name: r
      condition: event.host is defined
      action:
        post_event:
          event:
            upper: "{{ event.host | upper }}"
            method: "{{ event.host.upper() }}"
            starts: "{{ event.host.startswith('web') }}"
            missing: "{{ event.nope | default('none') }}"
            base: "{{ event.path | basename }}"
            dir: "{{ event.path | dirname }}"
            norm: "{{ '/a/./b/../c//d' | normpath }}"
            sub: "{{ event.mail | regex_replace('(\\w+)@(\\w+)', '\\2 at \\1') }}"
            concat: "{{ event.host ~ '-' ~ event.n }}"
            cond: "{{ 'big' if event.n > 1 else 'small' }}"
            count: "{{ event.tags | length }}"
            joined: "{{ event.tags | join(',') }}"
            first: "{{ event.tags | first }}"
            cap: "{{ event.host | capitalize }}"
            text: "host {{ event.host | lower }} has {{ event.tags | length }} tags"
            defined: "{{ event.nope is defined }}"
            json: "{{ event.tags | to_json }}"
            secret: "{{ event.leak | lower }}"
            variable: "{{ greeting | upper }}"
`)
	_, args := edaRunArgs(t, src, map[string]any{"greeting": "hi"}, ev("host", "Web1", "path", "/var/log/app.log", "mail", "bob@example", "n", 2,
		"tags", []any{"a", "b"}, "leak", "${ENV:HOME}"))
	var got map[string]map[string]any
	if err := json.Unmarshal([]byte(args[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"upper": "WEB1", "method": "WEB1", "starts": false, "missing": "none", "base": "app.log", "dir": "/var/log",
		"norm": "/a/c/d", "sub": "example at bob", "concat": "Web1-2", "cond": "big", "count": float64(2), "joined": "a,b",
		"first": "a", "cap": "Web1", "text": "host web1 has 2 tags", "defined": false, "json": `["a", "b"]`,
		"secret": "${env:home}", "variable": "HI",
	}
	for k, w := range want {
		if !reflect.DeepEqual(got["event"][k], w) {
			t.Errorf("%s = %#v, want %#v", k, got["event"][k], w)
		}
	}
}

func TestEDAJinjaErrors(t *testing.T) {
	src := edaRules("    - name: r\n      condition: event.host is defined\n      action:\n        debug:\n          msg: \"{{ event.host | shout }}\"\n")
	_, err := Parse("eda.yml", []byte(src), Options{Registry: testRegistry()})
	want := `eda.yml:10:33: ruleset "eda": rule "r": actions[0]: debug: msg: unsupported filter "shout" in template`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// docs/conditions.rst, "Condition with fact and event": a fact set by
// set_fact is named with facts.first << and compared with later events.
func TestEDAFactAndEvent(t *testing.T) {
	src := edaRules(`    - name: remember
      condition: event.i == 0
      action:
        set_fact:
          fact:
            custom:
              expected_index: 2
    - name: Condition using a set_fact fact and an event
      condition:
        all:
          - facts.first << fact.custom.expected_index is defined
          - event.i == facts.first.custom.expected_index
      action:
        debug:
          msg: "{{ events.m_1.i }}"
`)
	fired, args := edaRunArgs(t, src, nil, ev("i", 0), ev("i", 1), ev("i", 2))
	want := []string{"remember", "Condition using a set_fact fact and an event"}
	if !reflect.DeepEqual(fired, want) {
		t.Fatalf("fired %q, want %q", fired, want)
	}
	if args[1] != `{"msg":2}` {
		t.Errorf("args %s", args[1])
	}
}
