package rulebooks

import (
	"strings"
	"testing"

	"github.com/rulebook-dev/rulebook/engine"
)

// TestActionWarningsHaveTheirPosition: an action's Warn findings become
// warnings at the line and column of the template they name, in plain,
// quoted and literal block strings, and do not fail the load.
func TestActionWarningsHaveTheirPosition(t *testing.T) {
	reg := testRegistry()
	reg.RegisterAction(engine.ActionSpec{Type: "sh", New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil },
		Warn: func(args map[string]any) []engine.ArgWarning {
			s, _ := args["line"].(string)
			var out []engine.ArgWarning
			for _, p := range engine.TemplateParts(s) {
				if p.ReadsEventData() {
					out = append(out, engine.ArgWarning{Path: []string{"line"}, Column: p.Column, Message: "event data in " + p.Src})
				}
			}
			return out
		}})
	src := header + `    - name: r
      condition: event.i == 0
      actions:
        - sh:
            line: echo {{ event.a }}
        - sh: {line: "echo {{ vars.v }} {{ event.b }}"}
        - sh:
            line: |
              first {{ vars.v }}
                second {{ event.c }}
        - sh: {line: echo}
`
	rb, err := Parse("w.yml", []byte(src), Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range rb.Warnings {
		got = append(got, w.Error())
	}
	want := []string{
		`w.yml:9:24: warning: ruleset "rs": rule "r": actions[0]: sh: line: event data in event.a`,
		`w.yml:10:41: warning: ruleset "rs": rule "r": actions[1]: sh: line: event data in event.b`,
		`w.yml:14:24: warning: ruleset "rs": rule "r": actions[2]: sh: line: event data in event.c`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	lines := strings.Split(src, "\n")
	for _, w := range rb.Warnings {
		if at := lines[w.Line-1][w.Column-1:]; !strings.HasPrefix(at, "{{ event.") {
			t.Errorf("%d:%d points at %q", w.Line, w.Column, at)
		}
	}
}

// TestURLArgsAreEscaped: a spec's URLArgs are compiled so that values land
// percent-encoded in their place; errors still point into the text as
// written.
func TestURLArgsAreEscaped(t *testing.T) {
	reg := testRegistry()
	reg.RegisterAction(engine.ActionSpec{Type: "call", New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil },
		URLArgs: []string{"url", "nested.url"}})
	src := header + `    - name: r
      condition: event.i == 0
      action:
        call:
          url: "https://x/items/{{ event.id }}?q={{ event.q }}"
          other: "https://x/{{ event.id }}"
          nested: {url: "{{ vars.base }}/{{ event.id }}"}
`
	rb, err := Parse("u.yml", []byte(src), Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	out, err := rb.Rulesets[0].Rules[0].Actions[0].Args.Render(engine.Env{
		Event: map[string]any{"id": "a b/c", "q": "x&y=z#"},
		Vars:  map[string]any{"base": "https://y/api"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := out.(map[string]any)
	if got["url"] != "https://x/items/a%20b%2Fc?q=x%26y%3Dz%23" || got["other"] != "https://x/a b/c" ||
		got["nested"].(map[string]any)["url"] != "https://y/api/a%20b%2Fc" {
		t.Fatalf("rendered %v", got)
	}

	bad := strings.Replace(src, "{{ event.q }}", "{{ event.q +* }}", 1)
	_, err = Parse("u.yml", []byte(bad), Options{Registry: reg})
	if err == nil || !strings.HasPrefix(err.Error(), "u.yml:9:") {
		t.Fatalf("error %v, want one at line 9", err)
	}
}
