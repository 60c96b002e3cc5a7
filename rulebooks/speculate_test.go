package rulebooks

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rulebook-dev/rulebook/engine"
)

func TestGuessConditions(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"plain", "- name: r\n  condition: event.i == 1\n", []string{"event.i == 1"}},
		{"in a list item", "    - condition: event.i == 1   \n", []string{"event.i == 1"}},
		{"comment after", "  condition: event.i == 1 # one\n", []string{"event.i == 1"}},
		{"double quoted", "  condition: \"event.s == 'a'\"\n", []string{"event.s == 'a'"}},
		{"single quoted", "  condition: 'event.s == \"a\"' # c\n", []string{`event.s == "a"`}},
		{"escape: left to the loader", "  condition: \"event.s == \\\"a\\\"\"\n", nil},
		{"doubled quote: left", "  condition: 'event.s == ''a'''\n", nil},
		{"block scalar: left", "  condition: >\n    event.i == 1\n", nil},
		{"flow: left", "  condition: {all: [event.i == 1]}\n", nil},
		{"a mapping: left", "  condition: a: b\n", nil},
		{"not the key", "  conditions: event.i == 1\n  xcondition: event.i == 2\n", nil},
		{"all items", "  condition:\n    all:\n      - events.a << event.i == 1\n      - event.j == events.a.i\n    timeout: 5m\n", []string{"events.a << event.i == 1", "event.j == events.a.i"}},
		{"any items at the key's column", "  condition:\n    any:\n    - event.i == 1\n    - 'event.i == 2'\n  action:\n    - debug: {}\n", []string{"event.i == 1", "event.i == 2"}},
		{"list ends", "  condition:\n    not_all:\n      - event.i == 1\n  actions:\n    - event.i == 9\n", []string{"event.i == 1"}},
		{"crlf", "  condition: event.i == 1\r\n", []string{"event.i == 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := guessConditions([]byte(tc.src)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestGuessConditionsAsYAML: on the example rulebooks, what is guessed is
// what YAML reads, for every condition written on one line.
func TestGuessConditionsAsYAML(t *testing.T) {
	files, _ := filepath.Glob("examples/*.yml")
	checked := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
			continue
		}
		guessed := map[string]bool{}
		for _, g := range guessConditions(data) {
			guessed[g] = true
		}
		walkRules(doc.Content[0], func(_, rule *yaml.Node) {
			if rule == nil {
				return
			}
			for _, cn := range conditionNodes(mapValue(rule, "condition")) {
				if cn.Style&(yaml.LiteralStyle|yaml.FoldedStyle|yaml.FlowStyle) != 0 || strings.Contains(cn.Value, "\n") ||
					strings.ContainsAny(cn.Value, `\`) {
					continue
				}
				if line := strings.Split(string(data), "\n")[cn.Line-1]; strings.Contains(line, "{") || strings.Contains(line, "''") {
					continue // in a flow mapping, or an escaped quote
				}
				checked++
				if !guessed[cn.Value] {
					t.Errorf("%s:%d: condition %q not guessed", name, cn.Line, cn.Value)
				}
			}
		})
	}
	if checked < 20 {
		t.Fatalf("only %d conditions checked", checked)
	}
}

// speculationRulebook has n rules with duplicated conditions and, when
// bad, a fifth of them with a condition that does not compile.
func speculationRulebook(n int, bad bool) []byte {
	var b strings.Builder
	b.WriteString("- name: big\n  sources: [{range: {limit: 1}}]\n  rules:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "    - name: r%d\n", i)
		k := i % 10
		if !bad && (k == 1 || k == 4) {
			k = 0
		}
		switch k {
		case 1:
			fmt.Fprintf(&b, "      condition: event.i == %d +\n", i) // syntax error
		case 2:
			b.WriteString("      condition: event.host == \"same\"\n") // the same text in many rules
		case 3:
			fmt.Fprintf(&b, "      condition:\n        all:\n          - events.a << event.i == %d\n          - event.j == events.a.i\n", i)
		case 4:
			fmt.Fprintf(&b, "      condition: 'event.i + %d'\n", i) // not a boolean
		default:
			fmt.Fprintf(&b, "      condition: event.host == \"h%d\" && event.cpu > 90\n", i)
		}
		b.WriteString("      action: {run_playbook: {name: p.yml}}\n")
	}
	return []byte(b.String())
}

// TestSpeculationAsSequential: conditions compiled while the YAML is
// parsed give the load a compile of the rules one by one gives: the same
// errors in the same order, the same rules; and each guess is taken.
func TestSpeculationAsSequential(t *testing.T) {
	for _, bad := range []bool{true, false} {
		n := 700
		src := speculationRulebook(n, bad)
		noPrecompile = true
		seq, seqErr := Parse("big.yml", src, Options{Registry: testRegistry()})
		noPrecompile = false
		f := NewFile("big.yml", src)
		spec := f.spec
		if spec == nil {
			t.Skip("GOMAXPROCS is 1: nothing is compiled ahead")
		}
		got, err := f.Compile(Options{Registry: testRegistry()})
		<-spec.ready
		if spec.batch == nil {
			t.Fatalf("%d rules: nothing compiled ahead", n)
		}
		if left := len(spec.at); left != 0 {
			t.Fatalf("%d rules: %d guessed conditions not taken", n, left)
		}
		if fmt.Sprint(err) != fmt.Sprint(seqErr) {
			t.Fatalf("%d rules: errors differ:\nsequential:\n%v\nspeculated:\n%v", n, seqErr, err)
		}
		if bad {
			if err == nil || strings.Count(err.Error(), "\n")+1 != 140 {
				t.Fatalf("want 140 errors, got %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sr, gr := seq.Rulesets[0].Rules, got.Rulesets[0].Rules
		if len(sr) != len(gr) {
			t.Fatalf("%d and %d rules", len(sr), len(gr))
		}
		for i := range sr {
			a, b := sr[i], gr[i]
			if a.Name != b.Name || a.Fingerprint != b.Fingerprint || a.Kind != b.Kind || !reflect.DeepEqual(a.Names, b.Names) ||
				len(a.Conditions) != len(b.Conditions) || !reflect.DeepEqual(a.IndexedTests(), b.IndexedTests()) {
				t.Fatalf("rule %d: %+v, want %+v", i, b, a)
			}
			for j := range a.Conditions {
				if a.Conditions[j].Source != b.Conditions[j].Source {
					t.Fatalf("rule %s condition %d: %q, want %q", a.Name, j, b.Conditions[j].Source, a.Conditions[j].Source)
				}
				if a.Conditions[j] == b.Conditions[j] || (j > 0 && b.Conditions[j] == b.Conditions[j-1]) {
					t.Fatalf("rule %s: a condition shared", a.Name)
				}
			}
		}
		for i := 12; i < len(gr); i += 10 { // "same": a condition of its own each
			if gr[i].Conditions[0] == gr[i-10].Conditions[0] {
				t.Fatalf("rules %s and %s share a condition", gr[i].Name, gr[i-10].Name)
			}
		}
	}
}

// TestSpeculationKeepsTheClock: conditions compiled ahead run on the
// system clock; a load on another clock must compile its own, or now()
// would read the wrong one.
func TestSpeculationKeepsTheClock(t *testing.T) {
	var b strings.Builder
	b.WriteString("- name: big\n  sources: [{range: {limit: 1}}]\n  rules:\n")
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "    - name: r%d\n      condition: timestamp(event.ts) > now() && event.i == %d\n      action: {run_playbook: {name: p.yml}}\n", i, i)
	}
	clock := engine.NewFakeClock(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	f := NewFile("clock.yml", []byte(b.String()))
	if f.spec == nil {
		t.Skip("GOMAXPROCS is 1: nothing is compiled ahead")
	}
	rb, err := f.Compile(Options{Registry: testRegistry(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(rb.Rulesets, engine.Options{Clock: clock})
	ex, err := eng.Explain("big", map[string]any{"ts": "2010-01-01T00:00:00Z", "i": 7})
	if err != nil {
		t.Fatal(err)
	}
	var matched []string
	for _, r := range ex[0].Rules {
		if r.Match == "true" {
			matched = append(matched, r.Rule)
		}
	}
	if !reflect.DeepEqual(matched, []string{"r7"}) {
		t.Fatalf("matched %q, want r7 (now() on the fake clock, 2001)", matched)
	}
}
