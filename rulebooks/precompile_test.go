package rulebooks

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rulebook-dev/rulebook/engine"
)

// TestPrecompileAsSequential: a ruleset big enough for its conditions to
// be compiled on several goroutines loads as one compiled rule by rule:
// the same errors with the same positions in the same order, the same
// rules with the same conditions (match names, EDA fallbacks, all/any).
func TestPrecompileAsSequential(t *testing.T) {
	var b strings.Builder
	b.WriteString("- name: big\n  vars: {limit: 3}\n  sources: [{range: {limit: 1}}]\n  rules:\n")
	for i := 0; i < 700; i++ {
		fmt.Fprintf(&b, "    - name: r%d\n", i)
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "      condition: event.host == \"h%d\" && event.cpu > 90\n", i)
		case 1:
			fmt.Fprintf(&b, "      condition: event.i == %d +\n", i) // syntax error
		case 2:
			fmt.Fprintf(&b, "      condition: 'event.i + %d'\n", i) // not a boolean
		case 3:
			b.WriteString("      condition: limit\n") // a bare variable: EDA's
		case 4:
			fmt.Fprintf(&b, "      condition:\n        all:\n          - events.a << event.i == %d\n          - event.j == events.a.i\n", i)
		case 5:
			fmt.Fprintf(&b, "      condition:\n        any:\n          - event.i == %d\n          - nosuch(event.i)\n", i)
		case 6:
			b.WriteString("      condition: \"\"\n") // empty
		case 7:
			fmt.Fprintf(&b, "      condition: event.x contains \"%d\" or not (event.y > vars.limit)\n", i)
		case 8:
			fmt.Fprintf(&b, "      condition:\n        not_all:\n          - event.i == %d\n          - event.i == %d\n        timeout: 5m\n", i, i+1)
		case 9:
			fmt.Fprintf(&b, "      condition: nope(event.i, %d) == 1\n", i)
		}
		b.WriteString("      action: {run_playbook: {name: p.yml}}\n")
	}
	src := []byte(b.String())
	clock := engine.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	load := func(pre bool) (*Rulebook, error) {
		noPrecompile = !pre
		defer func() { noPrecompile = false }()
		return Parse("big.yml", src, Options{Registry: testRegistry(), Clock: clock})
	}
	_, seqErr := load(false)
	_, preErr := load(true)
	if seqErr == nil || preErr == nil {
		t.Fatalf("want errors, got %v / %v", seqErr, preErr)
	}
	if seqErr.Error() != preErr.Error() {
		t.Fatalf("errors differ:\nsequential:\n%v\nprecompiled:\n%v", seqErr, preErr)
	}
	if n := strings.Count(preErr.Error(), "\n") + 1; n < 300 {
		t.Fatalf("%d errors, want one per bad rule:\n%v", n, preErr)
	}

	// Without the bad rules, the rules themselves.
	var good strings.Builder
	for _, chunk := range strings.SplitAfter(b.String(), "    - name: ") {
		if !strings.Contains(chunk, " +\n") && !strings.Contains(chunk, "'event.i + ") && !strings.Contains(chunk, "nosuch(") &&
			!strings.Contains(chunk, "condition: \"\"") && !strings.Contains(chunk, "nope(") {
			good.WriteString(chunk)
		}
	}
	src = []byte(strings.TrimSuffix(good.String(), "    - name: "))
	seq, err := load(false)
	if err != nil {
		t.Fatal(err)
	}
	pre, err := load(true)
	if err != nil {
		t.Fatal(err)
	}
	sr, pr := seq.Rulesets[0].Rules, pre.Rulesets[0].Rules
	if len(sr) < 300 || len(sr) != len(pr) {
		t.Fatalf("%d and %d rules", len(sr), len(pr))
	}
	for i := range sr {
		a, b := sr[i], pr[i]
		if a.Name != b.Name || a.Fingerprint != b.Fingerprint || a.Kind != b.Kind || !reflect.DeepEqual(a.Names, b.Names) ||
			len(a.Conditions) != len(b.Conditions) || !reflect.DeepEqual(a.IndexedTests(), b.IndexedTests()) {
			t.Fatalf("rule %d: %+v, want %+v", i, b, a)
		}
		for j := range a.Conditions {
			if a.Conditions[j].Source != b.Conditions[j].Source {
				t.Fatalf("rule %s condition %d: %q, want %q", a.Name, j, b.Conditions[j].Source, a.Conditions[j].Source)
			}
		}
	}
}
