package rulebooks

import (
	"reflect"
	"strings"
	"testing"
)

const edaBook = `---
# An EDA rulebook, as ansible-rulebook's docs write them.
- name: eda
  hosts: all
  sources:
    - eda.builtin.range:   # EDA's prefix
        limit: 5
  rules:
    - name: defined and left-to-right logic
      # the comment above a rule stays
      condition: event.x is defined and event.i == 1 or event.i == 2 and event.x == True
      action:
        debug:
          msg: "{{ event.i }}"
    - name: negated comparison
      condition: not event.i == 3   # line comment
      throttle:
        once_within: 5 minutes
        group_by_attributes:
          - event.meta.hosts
      action:
        ansible.eda.debug:
          msg: negated
    - name: select
      condition:
        all:
          - events.first << event.levels is select('>=', threshold)
          - event.people is not selectattr('age', '<', 18)
      action:
        debug:
          first: "{{ events.first }}"
`

func TestConvertKeepsCommentsAndFiresTheSame(t *testing.T) {
	vars := map[string]any{"threshold": 10}
	out, err := Convert("eda.yml", []byte(edaBook), Options{Registry: testRegistry(), ExtraVars: vars})
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		"# An EDA rulebook, as ansible-rulebook's docs write them.",
		"- range: # EDA's prefix",
		"# the comment above a rule stays",
		"condition: (defined(event.x) and event.i == 1 or event.i == 2) and event.x == true",
		"condition: not (event.i == 3) # line comment",
		"group_by:",
		"debug:\n          msg: negated",
		`- events.first << select(event.levels, ">=", vars.threshold)`,
		`- not selectattr(event.people, "age", "<", 18)`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("converted rulebook lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "first:") {
		t.Errorf("debug keeps an argument a native rulebook rejects:\n%s", text)
	}
	events := []map[string]any{
		ev("x", true, "i", 1), ev("x", true, "i", 2), ev("i", 2), ev("i", 3), ev("i", 4), ev("i", 5),
		ev("levels", []any{1, 20}), ev("people", []any{map[string]any{"age": 30}}),
	}
	edaFired, edaArgs := edaRunArgs(t, edaBook, vars, events...)
	nativeFired, nativeArgs := edaRunArgs(t, text, vars, events...)
	if !reflect.DeepEqual(edaFired, nativeFired) || !reflect.DeepEqual(edaArgs[:2], nativeArgs[:2]) {
		t.Fatalf("EDA fired %q %q\nconverted fired %q %q", edaFired, edaArgs, nativeFired, nativeArgs)
	}
	// i=2 without x: unknown and true is not a match; i=5 is throttled.
	want := []string{"defined and left-to-right logic", "defined and left-to-right logic", "negated comparison", "select"}
	if !reflect.DeepEqual(edaFired, want) {
		t.Fatalf("fired %q, want %q", edaFired, want)
	}
	// The converted rulebook is native: converting it again changes nothing.
	again, err := Convert("native.yml", out, Options{Registry: testRegistry(), ExtraVars: vars})
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != text {
		t.Errorf("second conversion differs:\n%s", again)
	}
}
