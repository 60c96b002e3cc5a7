package rulebooks

import (
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestModes(t *testing.T) {
	src := `- name: rs
  mode: shadow
  approval: {timeout: 10m}
  sources: [{range: {limit: 1}}]
  rules:
    - name: inherits
      condition: event.i == 1
      action: {none: {}}
    - name: approves
      mode: approve
      approval: {on_timeout: approve}
      condition: event.i == 2
      action: {none: {}}
    - name: auto
      mode: auto
      condition: event.i == 3
      action: {none: {}}
`
	rb, err := Parse("m.yml", []byte(src), Options{Registry: testRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	rules := rb.Rulesets[0].Rules
	if rules[0].Mode != engine.ModeShadow || rules[0].Approval != nil {
		t.Errorf("inherits: mode %q approval %+v, want the ruleset's shadow", rules[0].Mode, rules[0].Approval)
	}
	if a := rules[1].Approval; rules[1].Mode != engine.ModeApprove || a == nil || a.Timeout != 10*time.Minute || a.OnTimeout != engine.DecisionApproved {
		t.Errorf("approves: mode %q approval %+v, want approve, 10m from the ruleset, on_timeout approve", rules[1].Mode, a)
	}
	if rules[2].Mode != engine.ModeAuto {
		t.Errorf("auto: mode %q", rules[2].Mode)
	}

	for _, tc := range []struct{ name, rule, want string }{
		{"bad mode", "mode: yolo", `m.yml:5:13: ruleset "rs": rule "r": mode: want "auto", "shadow" or "approve", got "yolo"`},
		{"approval outside approve", "approval: {timeout: 5m}", `m.yml:5:17: ruleset "rs": rule "r": approval: the rule's mode is "auto"; approval applies to mode approve`},
		{"bad on_timeout", "mode: approve\n      approval: {on_timeout: maybe}", `m.yml:6:30: ruleset "rs": rule "r": approval: on_timeout: want "reject" or "approve", got "maybe"`},
		{"unknown approval key", "mode: approve\n      approval: {timeuot: 5m}", `unknown key "timeuot"`},
		{"bad timeout", "mode: approve\n      approval: {timeout: -5m}", `approval: timeout`},
		{"notify with an engine action", "mode: approve\n      approval: {notify: {debug: {msg: x}}}", `approval: notify: "debug" is an engine action`},
		{"notify template sees vars.approval only as declared", "mode: approve\n      approval: {notify: {none2: {}}}", `unknown action "none2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "- name: rs\n  sources: [{range: {limit: 1}}]\n  rules:\n    - name: r\n      " + tc.rule + "\n      condition: event.i == 1\n      action: {none: {}}\n"
			_, err := Parse("m.yml", []byte(src), Options{Registry: testRegistry()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %s", err, tc.want)
			}
		})
	}
}
