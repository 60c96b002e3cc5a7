package rulebooks

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

func testRegistry() *engine.Registry {
	reg := engine.NewRegistry()
	reg.RegisterSource(engine.SourceSpec{Type: "range", New: func(engine.SourceConfig) (engine.Source, error) { return nil, nil },
		Check: func(args map[string]any) error {
			for k := range args {
				if k != "limit" {
					return engine.ArgErrorf([]string{k}, "unknown key %q", k)
				}
			}
			return nil
		}})
	reg.RegisterAction(engine.ActionSpec{Type: "run_playbook", New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil },
		Check: func(args map[string]any) error {
			if _, ok := args["name"]; !ok {
				return engine.ArgErrorf(nil, "missing key \"name\"")
			}
			if v, ok := args["verbosity"]; ok {
				if _, isInt := v.(int); !isInt {
					return engine.ArgErrorf([]string{"verbosity"}, "want a number")
				}
			}
			return nil
		}})
	return reg
}

const header = "- name: rs\n  sources:\n    - range: {limit: 1}\n  rules:\n"

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"not a list", "name: x\n", []string{"f.yml:1:1: a rulebook is a list of rulesets, not a mapping"}},
		{"invalid yaml", "- name: [\n", []string{"f.yml:1:1: invalid YAML: did not find expected node content"}},
		// yaml.v3 names the line the enclosing construct started on (the
		// rules list, line 4, counted from 0); the problem is on line 9.
		{"yaml: indentation mistake at its line", header + "    - name: r\n      condition: event.i == 1\n      action:\n        debug: {}\n     actions: []\n", []string{
			"f.yml:9:6: invalid YAML: did not find expected '-' indicator; check this line's indentation against the lines above it"}},
		{"yaml: over-indented key at its line", header + "    - name: r\n      condition: event.i == 1\n      action:\n        debug:\n          msg: a\n         var: b\n", []string{
			"f.yml:10:10: invalid YAML: did not find expected key; check this line's indentation against the lines above it"}},
		{"yaml: brackets in a flow sequence", header + "    - name: r\n      condition: event.i == 1\n      throttle:\n        once_within: 5m\n        group_by: [event.meta.hosts[0]]\n      action: {none: {}}\n", []string{
			`f.yml:9:9: invalid YAML: did not find expected ',' or ']'; in a [...] list an item that holds brackets must be quoted: group_by: ["event.meta.hosts[0]"]`}},
		{"yaml: mistake after multi-line values", header + "    - name: r\n      condition: event.i == 1\n      throttle:\n        once_within: 5m\n        group_by: [\n          event.a,\n          event.b]\n      action:\n        debug:\n          msg: |\n            two\n            lines\n    - name: s\n      condition: event.i == 2\n     action: {none: {}}\n", []string{
			"f.yml:19:6: invalid YAML: did not find expected '-' indicator; check this line's indentation against the lines above it"}},
		{"yaml: tab indentation", header + "    - name: r\n\t  condition: event.i == 1\n", []string{
			"f.yml:6:4: invalid YAML: found a tab character that violates indentation"}},
		{"eda: jinja default filter", header + "    - name: r\n      condition: event.i == 1\n      action: {debug: {msg: \"{{ event.x | default('n/a') }}\"}}\n", []string{
			`unknown name default; this rulebook is read as native (no EDA-only condition), so templates are expr, not Jinja; a default is written event.x ?? "fallback"`}},
		{"eda: jinja filter", header + "    - name: r\n      condition: event.i == 1\n      action: {debug: {msg: \"{{ event.x | upper }}\"}}\n", []string{
			`; this rulebook is read as native (no EDA-only condition), so templates are expr, not Jinja; call the function: upper(event.x), or pipe into a call: event.x | upper()`}},
		{"eda: jinja filter the engine has no function for", header + "    - name: r\n      condition: event.i == 1\n      action: {debug: {msg: \"{{ event.x | to_nice_yaml }}\"}}\n", []string{
			`; this rulebook is read as native (no EDA-only condition), so templates are expr, not Jinja; call a function instead, e.g. upper(event.x)`}},
		{"missing keys", "- hosts: all\n", []string{
			`f.yml:1:3: ruleset "": missing key "name"`, `f.yml:1:3: ruleset "": missing key "sources"`, `f.yml:1:3: ruleset "": missing key "rules"`}},
		{"unknown ruleset key with suggestion", "- name: rs\n  sources: []\n  rules: []\n  match_multiple_rule: true\n", []string{
			`f.yml:3:10: ruleset "rs": rules: a ruleset needs at least one rule`,
			`f.yml:4:3: ruleset "rs": unknown key "match_multiple_rule"; did you mean "match_multiple_rules"?`}},
		{"source arg error points at the key", "- name: rs\n  sources:\n    - range:\n        limt: 3\n  rules:\n    - {name: r, condition: event.i == 1, action: {none: {}}}\n", []string{
			`f.yml:4:9: ruleset "rs": sources[0]: range: limt: unknown key "limt"`}},
		{"unknown filter with suggestion", "- name: rs\n  sources:\n    - range: {limit: 1}\n      filters:\n        - eda.builtin.json_filtr:\n  rules:\n    - {name: r, condition: event.i == 1, action: {none: {}}}\n", []string{
			`f.yml:5:11: ruleset "rs": sources[0]: filters[0]: unknown filter "json_filtr" (want one of dashes_to_underscores, event_splitter, insert_hosts_to_meta, json_filter, normalize_keys, set); did you mean "json_filter"?`}},
		{"filter arg error points at the key", "- name: rs\n  sources:\n    - range: {limit: 1}\n      filters:\n        - json_filter:\n            include_keys: [a]\n        - ansible.eda.insert_hosts_to_meta:\n            host_pth: x\n  rules:\n    - {name: r, condition: event.i == 1, action: {none: {}}}\n", []string{
			`f.yml:8:13: ruleset "rs": sources[0]: filters[1]: insert_hosts_to_meta: host_pth: unknown key "host_pth"`}},
		{"set filter expression column", "- name: rs\n  sources:\n    - range: {limit: 1}\n      filters:\n        - set: {meta.hosts: \"payload.hosts +\"}\n  rules:\n    - {name: r, condition: event.i == 1, action: {none: {}}}\n", []string{
			`f.yml:5:44: ruleset "rs": sources[0]: filters[0]: set: meta.hosts: unexpected token EOF`}},
		{"filters must be a list", "- name: rs\n  sources:\n    - range: {limit: 1}\n      filters:\n        json_filter: {}\n  rules:\n    - {name: r, condition: event.i == 1, action: {none: {}}}\n", []string{
			`f.yml:5:9: ruleset "rs": sources[0]: filters: want a list of filters`}},
		{"action arg error points at the key", header + "    - name: r\n      condition: event.i == 1\n      action:\n        run_playbook:\n          name: x.yml\n          verbosity: loud\n", []string{
			`f.yml:10:11: ruleset "rs": rule "r": actions[0]: run_playbook: verbosity: want a number`}},
		{"policy keys are checked and removed", header + "    - name: r\n      condition: event.i == 1\n      action:\n        run_playbook: {name: x.yml, retries: -1, timeout: soon}\n", []string{
			`f.yml:8:46: ruleset "rs": rule "r": actions[0]: run_playbook: retries: must be at least 0, got -1`,
			`f.yml:8:59: ruleset "rs": rule "r": actions[0]: run_playbook: timeout: invalid duration "soon"`}},
		{"condition column inside a quoted string", header + "    - name: r\n      condition: \"event.i == 1 and evnt.j\"\n      action: {none: {}}\n", []string{
			`f.yml:6:36: ruleset "rs": rule "r": condition: unknown name evnt`}},
		{"condition column after an assignment", header + "    - name: r\n      condition:\n        all:\n          - events.a << event.i = 1\n      action: {none: {}}\n", []string{
			`f.yml:8:33: ruleset "rs": rule "r": condition: all[0]: unexpected token Operator("=")`}},
		{"not_all needs a timeout", header + "    - name: r\n      condition:\n        not_all: [event.i == 1]\n      action: {none: {}}\n", []string{
			`f.yml:7:9: ruleset "rs": rule "r": condition: not_all needs a timeout`}},
		{"throttle needs one kind", header + "    - name: r\n      condition: event.i == 1\n      throttle: {once_within: 1m, once_after: 2m}\n      action: {none: {}}\n", []string{
			`f.yml:7:17: ruleset "rs": rule "r": throttle: give exactly one of once_within, once_after or accumulate_within`}},
		{"accumulate needs a threshold", header + "    - name: r\n      condition: event.i == 1\n      throttle: {accumulate_within: 1m}\n      action: {none: {}}\n", []string{
			`f.yml:7:17: ruleset "rs": rule "r": throttle: accumulate_within needs a threshold`}},
		{"action and actions", header + "    - name: r\n      condition: event.i == 1\n      action: {none: {}}\n      actions: [{none: {}}]\n", []string{
			`f.yml:8:16: ruleset "rs": rule "r": actions: give either action or actions, not both`}},
		{"unknown builtin arg", header + "    - name: r\n      condition: event.i == 1\n      action: {debug: {mesage: hi}}\n", []string{
			`f.yml:7:24: ruleset "rs": rule "r": actions[0]: debug: unknown key "mesage"`}},
		{"unknown action", header + "    - name: r\n      condition: event.i == 1\n      action: {run_playbok: {}}\n", []string{
			`f.yml:7:16: ruleset "rs": rule "r": actions[0]: unknown action "run_playbok"; did you mean "run_playbook"?`}},
		{"huge nested condition", header + "    - name: r\n      condition: " + strings.Repeat("(", 1_500_000) + "true" + strings.Repeat(")", 1_500_000) + "\n      action: {none: {}}\n", []string{
			`f.yml:6:18: ruleset "rs": rule "r": condition: too long: 3000004 bytes; the limit is 65536 (64 KiB)`}},
		{"deeply nested condition", header + "    - name: r\n      condition:\n        any:\n          - event.i == 1\n          - " + strings.Repeat("(", 201) + "true" + strings.Repeat(")", 201) + "\n      action: {none: {}}\n", []string{
			`f.yml:9:213: ruleset "rs": rule "r": condition: any[1]: brackets nest deeper than 200 levels`}},
		{"deeply nested template", header + "    - name: r\n      condition: event.i == 1\n      action: {debug: {msg: \"n={{ " + strings.Repeat("[", 201) + "1" + strings.Repeat("]", 201) + " }}\"}}\n", []string{
			`f.yml:7:235: ruleset "rs": rule "r": actions[0]: debug: msg: template: brackets nest deeper than 200 levels`}},
		{"huge template", header + "    - name: r\n      condition: event.i == 1\n      action: {debug: {msg: \"{{ event.i }}" + strings.Repeat("x", 70000) + "\"}}\n", []string{
			`f.yml:7:30: ruleset "rs": rule "r": actions[0]: debug: msg: template too long: 70013 bytes; the limit is 65536 (64 KiB)`}},
		{"secret name completed by a template", header + "    - name: r\n      condition: event.i == 1\n      action: {debug: {msg: \"token ${env:{{ event.name }}}\"}}\n", []string{
			`f.yml:7:36: ruleset "rs": rule "r": actions[0]: debug: msg: secret reference "${env:{{" is completed by a template: a secret's name must be literal text`}},
		{"var_root is a key path or a mapping of key paths to names", header + "    - name: r\n      condition: event.i == 1\n      actions:\n        - print_event: {var_root: [a]}\n        - run_playbook: {name: x.yml, var_root: {a..b: x, c: [y]}}\n        - debug: {var_root: a}\n", []string{
			`f.yml:8:35: ruleset "rs": rule "r": actions[0]: print_event: var_root: want a key path or a mapping of key paths to names, got a list`,
			`f.yml:9:50: ruleset "rs": rule "r": actions[1]: run_playbook: var_root: key path "a..b" has an empty key`,
			`f.yml:9:62: ruleset "rs": rule "r": actions[1]: run_playbook: var_root: c: want the name its value takes in events, got a list`,
			`f.yml:10:19: ruleset "rs": rule "r": actions[2]: debug: unknown key "var_root"`}},
		{"once_after_per_group and accumulate_sliding go with their throttle", header + "    - name: r\n      condition: event.i == 1\n      throttle: {once_within: 1m, once_after_per_group: true, accumulate_sliding: true}\n      action: {none: {}}\n", []string{
			`once_after_per_group goes with once_after`, `accumulate_sliding goes with accumulate_within`}},
		{"duplicate ruleset", header + "    - {name: r, condition: event.i == 1, action: {none: {}}}\n" + header + "    - {name: r, condition: event.i == 1, action: {none: {}}}\n", []string{
			`f.yml:6:9: ruleset "rs": name: duplicate ruleset name (first defined at line 1)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yml", []byte(tc.src), Options{Registry: testRegistry()})
			if err == nil {
				t.Fatal("no error")
			}
			got := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			if n := strings.Count(got, "\n") + 1; n != len(tc.want) {
				t.Errorf("%d errors, want %d:\n%s", n, len(tc.want), got)
			}
		})
	}
}

func TestLoadSecrets(t *testing.T) {
	src := header + "    - name: r\n      condition: event.i == 1\n      action: {run_playbook: {name: x.yml, extra_vars: {token: \"${env:RULEBOOK_TEST_UNSET}\"}}}\n"
	rb, err := Parse("f.yml", []byte(src), Options{Registry: testRegistry()})
	if err != nil {
		t.Fatalf("without CheckSecrets: %v", err)
	}
	// Not an error, but a warning at the reference, with its key path.
	wantWarn := `f.yml:7:64: warning: ruleset "rs": rule "r": actions[0]: run_playbook: extra_vars.token: secret ${env:RULEBOOK_TEST_UNSET}: environment variable "RULEBOOK_TEST_UNSET" is not set (run and validate --strict refuse this)`
	if len(rb.Warnings) != 1 || rb.Warnings[0].Error() != wantWarn {
		t.Fatalf("warnings %v, want\n%s", rb.Warnings, wantWarn)
	}
	_, err = Parse("f.yml", []byte(src), Options{Registry: testRegistry(), CheckSecrets: true})
	if err == nil || !strings.Contains(err.Error(), `environment variable "RULEBOOK_TEST_UNSET" is not set`) {
		t.Fatalf("with CheckSecrets: %v", err)
	}
	t.Setenv("RULEBOOK_TEST_SET", "s3cret")
	src = strings.ReplaceAll(src, "RULEBOOK_TEST_UNSET", "RULEBOOK_TEST_SET")
	rb, err = Parse("f.yml", []byte(src), Options{Registry: testRegistry(), CheckSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rb.Warnings) != 0 {
		t.Errorf("warnings for a resolved secret: %v", rb.Warnings)
	}
	if strings.Contains(rb.Rulesets[0].Rules[0].Actions[0].Pos, "s3cret") {
		t.Fatal("secret leaked")
	}
}

func TestLoadPolicyAndVars(t *testing.T) {
	src := "- name: rs\n  vars: {a: 1, b: 2}\n  defaults: {retries: 2, timeout: 1m}\n  execution_strategy: parallel\n  sources: [{range: {limit: 1}}]\n  rules:\n" +
		"    - name: r\n      condition: event.i == vars.a\n      action: {run_playbook: {name: x.yml, timeout: 5m, lock: event.host}}\n"
	rb, err := Parse("f.yml", []byte(src), Options{Registry: testRegistry(), ExtraVars: map[string]any{"b": 3}})
	if err != nil {
		t.Fatal(err)
	}
	rs := rb.Rulesets[0]
	if rs.Vars["a"] != 1 || rs.Vars["b"] != 3 || rs.Sequential {
		t.Fatalf("vars %v sequential %v", rs.Vars, rs.Sequential)
	}
	a := rs.Rules[0].Actions[0]
	if a.Policy.Retries != 2 || a.Policy.Timeout != 5*time.Minute || a.Lock == nil {
		t.Fatalf("policy %+v lock %v", a.Policy, a.Lock)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(header + "    - {name: r, condition: event.i == 1, action: {none: {}}}\n"))
	f.Add([]byte(header + "    - name: r\n      condition: {all: [event.a == 1, events.m_0.b == event.b], timeout: 1m}\n      throttle: {once_after: 1m, group_by: [event.h]}\n      actions: [{debug: {msg: \"{{ event.a }}\"}}, {set_fact: {fact: {x: 1}}}]\n"))
	f.Add([]byte("- name: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, err := Parse("fuzz.yml", data, Options{Registry: testRegistry(), Clock: engine.NewFakeClock(time.Unix(0, 0))})
		if err != nil {
			if _, ok := err.(ErrorList); !ok {
				t.Fatalf("error is %T, want ErrorList", err)
			}
			return
		}
		if rb == nil {
			t.Fatal("no rulebook and no error")
		}
	})
}

func TestPathArgsResolveAgainstTheRulebook(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "playbooks"), 0o755)
	os.WriteFile(filepath.Join(dir, "playbooks", "fix.yml"), []byte("- hosts: all\n"), 0o644)
	reg := engine.NewRegistry()
	reg.RegisterSource(engine.SourceSpec{Type: "range", New: func(engine.SourceConfig) (engine.Source, error) { return nil, nil }})
	var checked []string
	reg.RegisterAction(engine.ActionSpec{Type: "run_playbook", PathArgs: []string{"name", "tls.ca"},
		New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil },
		Check: func(args map[string]any) error {
			checked = append(checked, args["name"].(string))
			return nil
		}})
	src := "- name: rs\n  sources: [{range: {}}]\n  rules:\n" +
		"    - {name: a, condition: event.i == 1, action: {run_playbook: {name: playbooks/fix.yml, tls: {ca: playbooks/fix.yml}}}}\n" +
		"    - {name: b, condition: event.i == 1, action: {run_playbook: {name: ns.coll.play}}}\n" +
		"    - {name: c, condition: event.i == 1, action: {run_playbook: {name: \"{{ event.p }}\"}}}\n"
	path := filepath.Join(dir, "rb.yml")
	if _, err := Parse(path, []byte(src), Options{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "playbooks", "fix.yml"), "ns.coll.play", "{{ event.p }}"}
	if strings.Join(checked, "|") != strings.Join(want, "|") {
		t.Fatalf("Check saw %q, want %q", checked, want)
	}
}

// TestLoadReportsEveryArgError: a Check that finds several problems
// (errors.Join, as the plugin host's schema check returns) gets each one
// reported at its own key.
func TestLoadReportsEveryArgError(t *testing.T) {
	reg := testRegistry()
	reg.RegisterAction(engine.ActionSpec{Type: "multi", New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil },
		Check: func(args map[string]any) error {
			return errors.Join(engine.ArgErrorf([]string{"a"}, "bad a"), engine.ArgErrorf([]string{"b", "c"}, "bad c"))
		}})
	src := header + "    - name: r\n      condition: event.i == 1\n      action:\n        multi:\n          a: 1\n          b:\n            c: 2\n"
	_, err := Parse("f.yml", []byte(src), Options{Registry: reg})
	want := `f.yml:9:11: ruleset "rs": rule "r": actions[0]: multi: a: bad a` + "\n" +
		`f.yml:11:13: ruleset "rs": rule "r": actions[0]: multi: b.c: bad c`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// TestActionCheckSeesOnlyBoundedTemplates: an action's Check (or Warn) may
// split or parse the templates of its arguments itself, so a template over
// the size or nesting bounds is rejected, at its position, before the
// action sees it.
func TestActionCheckSeesOnlyBoundedTemplates(t *testing.T) {
	var seen []string
	reg := testRegistry()
	reg.RegisterAction(engine.ActionSpec{Type: "shell", New: func(engine.ActionEnv) (engine.Action, error) { return nil, nil },
		Check: func(args map[string]any) error {
			s, _ := args["cmd"].(string)
			seen = append(seen, s)
			return nil
		}})
	deep := "{{ " + strings.Repeat("(", 1_000_000) + "1" + strings.Repeat(")", 1_000_000) + " }}"
	src := header + "    - name: r\n      condition: event.i == 1\n      action: {shell: {cmd: \"echo " + deep + "\"}}\n"
	_, err := Parse("f.yml", []byte(src), Options{Registry: reg})
	want := `f.yml:7:30: ruleset "rs": rule "r": actions[0]: shell: cmd: template too long: 2000012 bytes; the limit is 65536 (64 KiB)`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
	if len(seen) != 0 {
		t.Errorf("Check saw a template over the bounds (%d bytes)", len(seen[0]))
	}
	// Within bounds, Check runs as before.
	src = header + "    - name: r\n      condition: event.i == 1\n      action: {shell: {cmd: \"echo {{ event.i }}\"}}\n"
	if _, err := Parse("f.yml", []byte(src), Options{Registry: reg}); err != nil || len(seen) != 1 || seen[0] != "echo {{ event.i }}" {
		t.Errorf("bounded template: error %v, Check called %d times", err, len(seen))
	}
}

func TestLoadFilters(t *testing.T) {
	src := "- name: rs\n  sources:\n    - range: {limit: 1}\n      filters:\n        - eda.builtin.dashes_to_underscores:\n        - ansible.eda.json_filter: {exclude_keys: ['x*']}\n        - set: {meta.hosts: payload.hosts}\n  rules:\n    - {name: r, condition: event.i == 1, action: {none: {}}}\n"
	rb, err := Parse("f.yml", []byte(src), Options{Registry: testRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	got := rb.Rulesets[0].Sources[0].Filters
	want := []engine.FilterConfig{
		{Name: "dashes_to_underscores", Args: map[string]any{}},
		{Name: "json_filter", Args: map[string]any{"exclude_keys": []any{"x*"}}},
		{Name: "set", Args: map[string]any{"meta.hosts": "payload.hosts"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("filters %#v, want %#v", got, want)
	}
}

// TestFileDeclaredPlugins: the plugins of a file parsed once, as
// DeclaredPlugins reads them (paths relative to the rulebook's directory;
// nothing from a rulebook that does not decode), and the same file
// compiles afterwards with positions intact.
func TestFileDeclaredPlugins(t *testing.T) {
	src := "- name: rs\n  plugins:\n    - {path: bin/p, sha256: abc}\n    - {path: /abs/q}\n  sources: [{range: {limit: 1}}]\n  rules:\n    - {name: r, condition: event.i == 1, action: {none: {}}}\n"
	f := NewFile("dir/site.yml", []byte(src))
	got := f.DeclaredPlugins()
	want := []PluginSpec{{Path: "dir/bin/p", SHA256: "abc"}, {Path: "/abs/q"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plugins %+v, want %+v", got, want)
	}
	for _, bad := range []string{"- name: [\n", "- just a string\n", "plugins: {path: x}\n", ""} {
		if got := NewFile("x.yml", []byte(bad)).DeclaredPlugins(); got != nil {
			t.Errorf("%q: plugins %+v, want none", bad, got)
		}
	}
	bad := NewFile("bad.yml", []byte("- name: rs\n  sources: [{range: {limit: 1}}]\n  rules:\n    - {name: r, condition: event.i ==, action: {run_playbook: {name: p.yml}}}\n"))
	for i := 0; i < 2; i++ { // a File compiles again, the same
		_, err := bad.Compile(Options{Registry: testRegistry()})
		if err == nil || !strings.HasPrefix(err.Error(), "bad.yml:4:37: ") {
			t.Fatalf("compile %d: %v, want an error at bad.yml:4:37", i, err)
		}
	}
	// Compile lets go of the rules' nodes; a second compile, and the
	// plugins, are as the first.
	if _, err := f.Compile(Options{Registry: testRegistry()}); err == nil {
		t.Fatal("plugins with a bad sha256 compiled")
	}
	if got := f.DeclaredPlugins(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after compile: plugins %+v, want %+v", got, want)
	}
	good := NewFile("site.yml", []byte("- name: rs\n  sources: [{range: {limit: 1}}]\n  rules:\n    - {name: r, condition: event.i == 1, action: {run_playbook: {name: p.yml}}}\n"))
	for i := 0; i < 2; i++ {
		rb, err := good.Compile(Options{Registry: testRegistry()})
		if err != nil {
			t.Fatalf("compile %d: %v", i, err)
		}
		if r := rb.Rulesets[0].Rules; len(r) != 1 || r[0].Name != "r" || r[0].Conditions[0].Source != "event.i == 1" {
			t.Fatalf("compile %d: rules %+v", i, r)
		}
	}
}
