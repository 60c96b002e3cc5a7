package main

import (
	"math"
	"os"
	"runtime/debug"
	"sync"
)

// Loading a large rulebook holds its YAML tree and its compiled
// conditions at once (a rule's part of the tree is let go only once the
// rule is checked, and a ruleset's conditions are compiled ahead of the
// checks on the other cores), and the collector's goal, twice the heap
// it last found live, took the peak of 10,000 rules past 100 MB of RSS.
// While the rulebook loads, a soft memory limit in proportion to its
// text bounds that peak; the collector runs a little more often near it,
// and the limit the process had is put back once the engine is built.

// loadMemPerByte is the limit per byte of rulebook text: a rule's
// compiled form is 15-30 times its text at the peak of a load (the
// 10,000-rule benchmarks), so twice that is left.
const loadMemPerByte = 56

// loadMemMin is the least limit: a small rulebook's load is not bounded.
const loadMemMin = 56 << 20

// boundLoadMemory sets the soft memory limit for loading the rulebook at
// path and returns the function that puts the previous one back (once,
// however often it is called). A limit set by the user (GOMEMLIMIT, or
// one already in place) is left alone. Only the first load is bounded: a
// reload runs beside the rules in force, which the text of the new ones
// says nothing of.
func boundLoadMemory(path string) (restore func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	prev := debug.SetMemoryLimit(-1) // reads it
	if prev != math.MaxInt64 {
		return func() {}
	}
	st, err := os.Stat(path)
	if err != nil {
		return func() {} // ReadFile reports it
	}
	debug.SetMemoryLimit(max(loadMemMin, loadMemPerByte*st.Size()))
	var once sync.Once
	return func() { once.Do(func() { debug.SetMemoryLimit(prev) }) }
}
