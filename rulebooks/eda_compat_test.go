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
