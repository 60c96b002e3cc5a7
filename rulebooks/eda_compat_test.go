package rulebooks

import (
	"reflect"
	"strings"
	"testing"
)

// TestEDAAssertFact: assert_fact, set_fact's name in earlier
// ansible-rulebook releases, asserts the fact, which the next rule matches.
func TestEDAAssertFact(t *testing.T) {
	src := edaRules(`    - name: remember the greeting
      condition: event.i == 1
      action:
        assert_fact:
          fact:
            greeting: hi there
    - name: greeting known
      condition: event.greeting == "hi there"
      action:
        print_event:
`)
	fired := edaRun(t, src, nil, ev("i", 0), ev("i", 1), ev("i", 2))
	want := []string{"remember the greeting", "greeting known"}
	if !reflect.DeepEqual(fired, want) {
		t.Fatalf("fired %q, want %q", fired, want)
	}
}

// TestEDAUnnamedRule: `- name:` with no value is rejected (ansible-rulebook
// rejects it too) once, at the name, saying what to write, and two unnamed
// rules are not also reported as duplicates.
func TestEDAUnnamedRule(t *testing.T) {
	src := edaRules(`    - name:
      condition: event.i == 1
      action:
        debug:
    - name:
      condition: event.i == 2
      action:
        debug:
`)
	_, err := Parse("eda.yml", []byte(src), Options{Registry: testRegistry()})
	if err == nil {
		t.Fatal("loaded a rulebook with unnamed rules")
	}
	msg := err.Error()
	for _, want := range []string{"eda.yml:6:12:", "eda.yml:10:12:", "give the rule a name"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "duplicate") {
		t.Errorf("error %q reports empty names as duplicates", msg)
	}
}

// TestEDAUnknownSourcePlugin: a source that is neither built in nor close
// to a built-in name (ansible-rulebook's test sources nested, replay...)
// is an error that says how to provide its Python plugin.
func TestEDAUnknownSourcePlugin(t *testing.T) {
	src := `- name: nested loops
  hosts: all
  sources:
    - nested:
        i_limit: 5
        j_limit: 5
  rules:
    - name: r1
      condition: event.nested.i == 1 and event.nested.j == 1
      action:
        debug:
`
	_, err := Parse("eda.yml", []byte(src), Options{Registry: testRegistry()})
	if err == nil {
		t.Fatal("loaded a rulebook with an unknown source")
	}
	for _, want := range []string{"eda.yml:4:7:", `unknown source type "nested"`, "--source-dir DIR", "nested.py"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestEDAEventsInSingleCondition: in a rule's only condition `events.x`
// reads the event, as `event.x` does (ansible-rulebook accepts either);
// in all/any `events.m_0` still names an earlier match.
func TestEDAEventsInSingleCondition(t *testing.T) {
	src := edaRules(`    - name: null in list
      condition: events.state in [null, "down"]
      action:
        print_event:
    - name: level high
      condition: events.level > 2
      action:
        print_event:
    - name: pair
      condition:
        all:
          - event.kind == "start"
          - event.id == events.m_0.id
      action:
        print_event:
`)
	fired := edaRun(t, src, nil, ev("level", 1), ev("state", "down"), ev("level", 3), ev("kind", "start", "id", 7), ev("id", 7))
	want := []string{"null in list", "level high", "pair"}
	if !reflect.DeepEqual(fired, want) {
		t.Fatalf("fired %q, want %q", fired, want)
	}
}

// TestEDAVarTemplateOnTheRight: a condition's right side may be a Jinja
// template of a variable, compared as the variable's value. The template
// alone marks the rulebook as EDA's: nothing else in it is EDA-only.
func TestEDAVarTemplateOnTheRight(t *testing.T) {
	src := `- name: templated
  hosts: all
  sources:
    - range:
        limit: 5
  rules:
    - name: r
      condition: event.i == "{{ custom.expected_index }}"
      action:
        debug:
`
	fired := edaRun(t, src, map[string]any{"custom": map[string]any{"expected_index": 2}}, ev("i", 1), ev("i", 2), ev("i", 3))
	if !reflect.DeepEqual(fired, []string{"r"}) {
		t.Fatalf("fired %q, want one firing for i == 2", fired)
	}
}

// TestEDABareVariableInActionTemplate: `{{ my_int }}`, a variable by its
// bare name as EDA's action templates write it, renders the variable even
// when nothing else marks the rulebook as EDA's.
func TestEDABareVariableInActionTemplate(t *testing.T) {
	src := `- name: typed facts
  hosts: all
  sources:
    - range:
        limit: 5
  rules:
    - name: r1
      condition: event.action == "go"
      action:
        set_fact:
          fact:
            var_int: "{{ my_int }}"
    - name: int matches
      condition: event.var_int == 2
      action:
        debug:
          msg: "{{ my_int }} twice is {{ my_int * 2 }}"
`
	fired, args := edaRunArgs(t, src, map[string]any{"my_int": 2}, ev("action", "go"))
	if want := []string{"r1", "int matches"}; !reflect.DeepEqual(fired, want) {
		t.Fatalf("fired %q, want %q", fired, want)
	}
	if args[1] != `{"msg":"2 twice is 4"}` {
		t.Errorf("debug args %s", args[1])
	}
}

// TestEDARetry: run_playbook's `retry: true` retries once on failure;
// retries, when given, says how often; `retry: false` does not retry.
func TestEDARetry(t *testing.T) {
	for _, tc := range []struct {
		args string
		want int
	}{
		{"retry: true\n          delay: 1", 1},
		{"retry: true\n          retries: 3", 3},
		{"retry: false", 0},
	} {
		src := edaRules(`    - name: r
      condition: event.i == 1
      action:
        run_playbook:
          name: x.yml
          ` + tc.args + "\n")
		rb, err := Parse("eda.yml", []byte(src), Options{Registry: testRegistry()})
		if err != nil {
			t.Fatalf("%s: %v", tc.args, err)
		}
		if got := rb.Rulesets[0].Rules[0].Actions[0].Policy.Retries; got != tc.want {
			t.Errorf("%s: retries %d, want %d", tc.args, got, tc.want)
		}
	}
}
