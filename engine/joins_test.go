package engine_test

import (
	"fmt"
	"strings"
	"testing"
)

// Join indexes only narrow the partial matches an item is tested against:
// an engine with them fires exactly what an engine testing every partial
// fires (times, rules, firing IDs, event IDs), over random runs of
// stateRules.
func TestJoinIndexesChangeNoFiring(t *testing.T) {
	log := func(seed uint64, scan bool) string {
		run := newRandomRun(t, seed)
		if scan {
			run.eng.DropJoinIndexes()
		}
		for range 20000 {
			run.step()
		}
		var b strings.Builder
		for _, f := range run.rec.firings {
			fmt.Fprintf(&b, "%s %s %s %v\n", f.Time.Sub(t0), f.Rule, f.ID, f.EventIDs)
		}
		return b.String()
	}
	for seed := range uint64(3) {
		indexed, scanning := log(seed, false), log(seed, true)
		if indexed != scanning {
			t.Fatalf("seed %d: the indexed engine fired differently:\n%s", seed, firstDiff(indexed, scanning))
		}
		for _, rule := range []string{" same value ", " with fact ", " page owner ", " missing end ", " triple "} {
			if !strings.Contains(indexed, rule) {
				t.Fatalf("seed %d: %s never fired, the run proves little", seed, rule)
			}
		}
	}
}

// firstDiff shows the first line where a and b differ.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  %s\n  %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines against %d", len(al), len(bl))
}
